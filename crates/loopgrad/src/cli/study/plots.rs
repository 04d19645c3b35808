//! The study's SVG plots, per task: held-out (or validation) exact accuracy against effective depth, against
//! parameters (where the cells differ in them) and against training FLOPs (every compared cell, mean ± sd over
//! seeds as a point and a bar), and against the number of supervision steps at evaluation (the test-time
//! conditions, one line each); and learning curves, accuracy along training against training FLOPs and against
//! optimizer steps (one line per `study::curves` series, mean over seeds with its 95% t interval as a band).

use loopgrad_train::study::collect::CellResult;
use loopgrad_train::study::curves::{task_curves, Series};
use loopgrad_train::study::report::TaskPlots;
use loopgrad_train::study::{Budget, QuestionKind, Results};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::collections::BTreeSet;
use std::error::Error;
use std::path::Path;

type Drawn = Result<(), Box<dyn Error>>;

/// The ten "tab10" colours: the default plan's test-time plot draws nine lines, each its own colour.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
];

/// Draws every plot into `dir` and returns, per task, (alt text, path relative to the report) of each plot.
pub fn draw_all(results: &Results, dir: &Path, rel: &str) -> Result<Vec<TaskPlots>, Box<dyn Error>> {
    let plan = &results.expansion.plan;
    let mut out = Vec::new();
    let curves = task_curves(results);
    for task in &plan.tasks {
        let of_task = |c: &String| plan.condition(c).is_some_and(|c| c.task == task.name);
        let mut seen = BTreeSet::new();
        let mut compared = Vec::new();
        let mut test_time = Vec::new();
        for q in &plan.questions {
            for c in q.conditions.iter().filter(|c| of_task(c)) {
                match q.kind {
                    QuestionKind::Compare => {
                        for &b in &q.budgets {
                            if seen.insert((c.clone(), b)) {
                                compared.push(results.cell(c, b));
                            }
                        }
                    }
                    QuestionKind::TestTime => test_time.push(results.cell(c, Budget::Steps)),
                }
            }
        }
        let mut plots = Vec::new();
        let name = |kind: &str| format!("{}-{kind}.svg", task.name);
        // The captions' subject: "sudoku6: held-out exact accuracy" (validation in the learning-rate plans).
        let what = &format!("{}: {} exact accuracy", task.name, results.task_scored_set(&task.name));
        if compared.iter().any(|c| c.exact.is_some()) {
            let depth = |c: &CellResult| c.cell.effective_depth as f64;
            scatter(
                &dir.join(name("depth")),
                what,
                "effective depth (blocks per supervision step)",
                &compared,
                depth,
                false,
            )?;
            plots.push(("accuracy vs effective depth".to_string(), format!("{rel}/{}", name("depth"))));
            // Against parameters, where the cells differ in them (the recursion against parameters question).
            if compared.iter().map(|c| c.cell.params).collect::<BTreeSet<_>>().len() > 1 {
                let params = |c: &CellResult| c.cell.params as f64;
                scatter(&dir.join(name("params")), what, "parameters", &compared, params, true)?;
                plots.push(("accuracy vs parameters".to_string(), format!("{rel}/{}", name("params"))));
            }
            let flops = |c: &CellResult| c.cell.train_flops();
            scatter(&dir.join(name("flops")), what, "training FLOPs", &compared, flops, true)?;
            plots.push(("accuracy vs training FLOPs".to_string(), format!("{rel}/{}", name("flops"))));
        }
        if test_time.iter().any(|c| !c.test_time.is_empty()) {
            eval_steps(&dir.join(name("eval-steps")), what, &test_time)?;
            plots.push(("accuracy vs evaluation steps".to_string(), format!("{rel}/{}", name("eval-steps"))));
        }
        if let Some(c) = curves.iter().find(|c| c.task == task.name).filter(|c| !c.series.is_empty()) {
            learning(&dir.join(name("curve-flops")), what, &c.series, Along::Flops)?;
            plots.push(("accuracy along training vs training FLOPs".into(), format!("{rel}/{}", name("curve-flops"))));
            learning(&dir.join(name("curve-steps")), what, &c.series, Along::Steps)?;
            plots.push(("accuracy along training vs optimizer steps".into(), format!("{rel}/{}", name("curve-steps"))));
        }
        if !plots.is_empty() {
            out.push(TaskPlots { task: task.name.clone(), plots });
        }
    }
    Ok(out)
}

/// Accuracy (mean ± sd) against `x` for every cell with results, blue at equal steps, red at equal FLOPs, each
/// point labelled with its condition. With `log_x`, the axis is log10 of `x`, labelled in `x` (plotters' own log
/// axis prints no labels when the range spans less than a decade).
fn scatter(
    path: &Path,
    what: &str,
    x_desc: &str,
    cells: &[CellResult],
    x: impl Fn(&CellResult) -> f64,
    log_x: bool,
) -> Drawn {
    let position = |c: &CellResult| if log_x { x(c).log10() } else { x(c) };
    let points: Vec<(f64, f64, f64, &CellResult)> = cells
        .iter()
        .filter_map(|c| c.exact.map(|s| (position(c), 100.0 * s.mean, 100.0 * s.sd.unwrap_or(0.0), c)))
        .collect();
    let (lo, hi) = points.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| (lo.min(p.0), hi.max(p.0)));
    let pad = if log_x { ((hi - lo) * 0.08).max(0.05) } else { ((hi - lo) * 0.08).max(1.0) };
    let root = SVGBackend::new(path, (800, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let caption = format!("{what} vs {x_desc}");
    let mut chart = frame(&root, &caption).build_cartesian_2d(lo - pad..hi + pad, 0.0..100.0)?;
    let label = |v: &f64| if log_x { format!("{:.1e}", 10f64.powf(*v)) } else { format!("{v:.0}") };
    chart.configure_mesh().x_desc(x_desc).y_desc("exact accuracy (%)").x_label_formatter(&label).draw()?;
    for &(x, y, sd, cell) in &points {
        let color = budget_color(cell.cell.budget);
        if sd > 0.0 {
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(x, y - sd), (x, y + sd)],
                color.stroke_width(2),
            )))?;
        }
        let marker = EmptyElement::at((x, y))
            + Circle::new((0, 0), 4, color.filled())
            + Text::new(cell.cell.condition.clone(), (6, -14), ("sans-serif", 11).into_font().color(&color));
        chart.draw_series(std::iter::once(marker))?;
    }
    for (name, b) in [("equal steps", Budget::Steps), ("equal training FLOPs", Budget::Flops)] {
        let color = budget_color(b);
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
            .label(name)
            .legend(move |(x, y)| Circle::new((x + 8, y), 4, color.filled()));
    }
    labels(&mut chart, SeriesLabelPosition::LowerRight)?;
    root.present()?;
    Ok(())
}

type Chart<'a> = ChartContext<'a, SVGBackend<'a>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The legend, where the data leaves room: accuracy rises with steps, so the eval-steps lines leave the upper
/// left free; the scatter plots spread their points, and the legend sits lower right.
fn labels(chart: &mut Chart<'_>, at: SeriesLabelPosition) -> Drawn {
    chart.configure_series_labels().position(at).background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    Ok(())
}

fn frame<'a, 'b>(root: &'a DrawingArea<SVGBackend<'b>, Shift>, caption: &str) -> ChartBuilder<'a, 'b, SVGBackend<'b>> {
    let mut builder = ChartBuilder::on(root);
    builder.caption(caption, ("sans-serif", 18)).margin(12).x_label_area_size(40).y_label_area_size(50);
    builder
}

fn budget_color(b: Budget) -> RGBColor {
    match b {
        Budget::Steps => PALETTE[0],
        Budget::Flops => PALETTE[1],
    }
}

/// One line per condition: mean exact accuracy after each number of supervision steps at evaluation, on a log2
/// axis labelled at the powers of two.
fn eval_steps(path: &Path, what: &str, cells: &[CellResult]) -> Drawn {
    let max = cells.iter().flat_map(|c| c.test_time.keys()).copied().max().unwrap_or(1) as f64;
    let root = SVGBackend::new(path, (800, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let caption = format!("{what} vs supervision steps at evaluation");
    let top = max.log2().max(1.0);
    let mut chart = frame(&root, &caption).build_cartesian_2d(-0.3..top + 0.3, 0.0..100.0)?;
    let label =
        |v: &f64| if (v - v.round()).abs() < 1e-6 { format!("{}", 2f64.powf(v.round())) } else { String::new() };
    chart
        .configure_mesh()
        .x_desc("supervision steps at evaluation")
        .y_desc("exact accuracy (%)")
        .x_labels(4 * (top.ceil() as usize + 1) + 1)
        .x_label_formatter(&label)
        .draw()?;
    for (i, cell) in cells.iter().filter(|c| !c.test_time.is_empty()).enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let points: Vec<(f64, f64)> =
            cell.test_time.iter().map(|(&s, m)| ((s as f64).log2(), 100.0 * m.mean)).collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(format!("{} (N_sup {})", cell.cell.condition, cell.cell.n_sup))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        chart.draw_series(points.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
    }
    labels(&mut chart, SeriesLabelPosition::UpperLeft)?;
    root.present()?;
    Ok(())
}

/// The x axis of a learning curve.
#[derive(Clone, Copy, PartialEq)]
enum Along {
    /// Training FLOPs, on a log10 axis labelled in FLOPs (conditions differ several-fold in FLOPs per step).
    Flops,
    /// Optimizer steps, linear.
    Steps,
}

/// One line per series: mean held-out exact accuracy at each evaluated step, the 95% t interval of the mean as a
/// shaded band where 2 or more seeds have the step.
fn learning(path: &Path, what: &str, series: &[Series], along: Along) -> Drawn {
    let x = |p: &loopgrad_train::study::curves::Point| match along {
        Along::Flops => p.flops.log10(),
        Along::Steps => p.step as f64,
    };
    let xs = series.iter().flat_map(|s| s.points.iter().map(x));
    let (lo, hi) = xs.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = match along {
        Along::Flops => (lo - ((hi - lo) * 0.04).max(0.05), hi + ((hi - lo) * 0.04).max(0.05)),
        Along::Steps => (0.0, hi * 1.02 + 1.0),
    };
    let x_desc = match along {
        Along::Flops => "training FLOPs",
        Along::Steps => "optimizer steps",
    };
    let root = SVGBackend::new(path, (800, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let caption = format!("{what} along training vs {x_desc}");
    let mut chart = frame(&root, &caption).build_cartesian_2d(lo..hi, 0.0..100.0)?;
    let label = |v: &f64| match along {
        Along::Flops => format!("{:.1e}", 10f64.powf(*v)),
        Along::Steps => format!("{v:.0}"),
    };
    chart.configure_mesh().x_desc(x_desc).y_desc("exact accuracy (%)").x_label_formatter(&label).draw()?;
    for (i, s) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        // The band: upper edge left to right, lower edge back, over the points that have an interval.
        let banded: Vec<_> = s.points.iter().filter_map(|p| p.interval.map(|ci| (x(p), ci))).collect();
        if banded.len() >= 2 {
            let clip = |v: f64| (100.0 * v).clamp(0.0, 100.0);
            let mut outline: Vec<(f64, f64)> = banded.iter().map(|(x, ci)| (*x, clip(ci.hi))).collect();
            outline.extend(banded.iter().rev().map(|(x, ci)| (*x, clip(ci.lo))));
            chart.draw_series(std::iter::once(Polygon::new(outline, color.mix(0.15).filled())))?;
        }
        let points: Vec<(f64, f64)> = s.points.iter().map(|p| (x(p), 100.0 * p.exact.mean)).collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(s.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        chart.draw_series(points.into_iter().map(|p| Circle::new(p, 2, color.filled())))?;
    }
    // Accuracy rises along training: early in it, near the top, is where no curve has reached yet.
    labels(&mut chart, SeriesLabelPosition::UpperLeft)?;
    root.present()?;
    Ok(())
}
