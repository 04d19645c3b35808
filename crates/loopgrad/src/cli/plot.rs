//! `loopgrad plot RUN_DIR`: an SVG of a run's loss and accuracy curves, from its `metrics.jsonl`.

use anyhow::{anyhow, bail, Result};
use loopgrad_train::run::record::{read_records, Record};
use loopgrad_train::rundir::METRICS_FILE;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct PlotArgs {
    /// A run directory written by `loopgrad train` (it holds metrics.jsonl).
    pub run_dir: PathBuf,
    /// Where to write the SVG (default: RUN_DIR/curves.svg).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// One named curve: (step, value) points.
struct Series {
    name: &'static str,
    points: Vec<(f64, f64)>,
    color: RGBColor,
}

pub fn run(args: PlotArgs) -> Result<()> {
    // `read_records` refuses a FIFO or device in the file's place itself.
    let metrics = args.run_dir.join(METRICS_FILE);
    if let Some(out) = &args.out {
        crate::cli::check_output_file("--out", out)?;
    }
    let records = read_records(&metrics)?;
    if records.is_empty() {
        bail!("{}: no records to plot", metrics.display());
    }
    let train = |value: fn(&loopgrad_train::run::record::TrainRecord) -> f64| -> Vec<(f64, f64)> {
        let points =
            records
                .iter()
                .filter_map(|r| if let Record::Train(t) = r { Some((t.step as f64, value(t))) } else { None });
        points.filter(|&(step, v)| plottable(step, v)).collect()
    };
    let eval = |value: fn(&loopgrad_train::run::record::EvalRecord) -> f64| -> Vec<(f64, f64)> {
        let points =
            records.iter().filter_map(|r| if let Record::Eval(e) = r { Some((e.step as f64, value(e))) } else { None });
        points.filter(|&(step, v)| plottable(step, v)).collect()
    };
    let losses = vec![
        Series { name: "train loss", points: train(|t| t.loss), color: BLUE },
        Series { name: "eval loss", points: eval(|e| e.loss), color: RED },
    ];
    let accuracies = vec![
        Series { name: "train exact accuracy", points: train(|t| t.exact_accuracy), color: BLUE },
        Series { name: "eval exact accuracy", points: eval(|e| e.exact_accuracy), color: RED },
        Series { name: "eval token accuracy", points: eval(|e| e.token_accuracy), color: GREEN },
    ];
    let out = args.out.unwrap_or_else(|| args.run_dir.join("curves.svg"));
    draw(&out, &losses, &accuracies).map_err(|e| anyhow!("{}: cannot draw the plot: {e}", out.display()))?;
    println!("wrote {}", out.display());
    Ok(())
}

/// The largest step and |value| drawn. Beyond, plotters' axis ranges overflow (a loss of 1e308 times the 5%
/// headroom is infinite, and the mesh never finishes); no run logs such numbers unless its file was edited.
const PLOT_LIMIT: f64 = 1e15;

/// A finite point with a step in [0, PLOT_LIMIT] and |value| <= PLOT_LIMIT.
fn plottable(step: f64, value: f64) -> bool {
    (0.0..=PLOT_LIMIT).contains(&step) && value.is_finite() && value.abs() <= PLOT_LIMIT
}

fn draw(out: &Path, losses: &[Series], accuracies: &[Series]) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(out, (1100, 450)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(550);
    panel(&left, "loss", losses, false)?;
    panel(&right, "accuracy", accuracies, true)?;
    root.present()?;
    Ok(())
}

fn panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    title: &str,
    series: &[Series],
    unit_range: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let all = series.iter().flat_map(|s| s.points.iter());
    let max_step = all.clone().map(|p| p.0).fold(1.0, f64::max);
    let (lo, hi) = if unit_range {
        (0.0, 1.0)
    } else {
        let hi = all.clone().map(|p| p.1).fold(f64::MIN, f64::max);
        let lo = all.map(|p| p.1).fold(f64::MAX, f64::min);
        if lo <= hi {
            (lo.min(0.0), hi * 1.05 + 1e-12)
        } else {
            (0.0, 1.0)
        }
    };
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(55)
        .build_cartesian_2d(0.0..max_step, lo..hi)?;
    chart.configure_mesh().x_desc("optimizer step").draw()?;
    for s in series.iter().filter(|s| !s.points.is_empty()) {
        let color = s.color;
        chart
            .draw_series(LineSeries::new(s.points.iter().copied(), color.stroke_width(2)))?
            .label(s.name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    Ok(())
}
