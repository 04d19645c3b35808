//! `loopgrad trace`: recursion at work, as a picture. One held-out puzzle's decoded answer after every recursion
//! of every supervision step, the cells that changed since the previous reading, the cells still wrong, and the
//! halting head's confidence, drawn as an SVG (or printed as JSON).

use crate::cli::eval::{load_model, ModelSource};
use anyhow::{bail, Result};
use loopgrad_models::step::IGNORE_LABEL;
use loopgrad_puzzles::{maze, sudoku};
use loopgrad_train::config::MAX_SUPERVISION_STEPS;
use loopgrad_train::data;
use loopgrad_train::trace::{trace_example, Trace};
use std::fmt::Write as _;
use std::path::PathBuf;

#[derive(clap::Args)]
// `--checkpoint` is optional in the shared ModelSource (eval --collect loads no model); trace needs one.
#[command(group = clap::ArgGroup::new("model_checkpoint").arg("checkpoint").required(true))]
pub struct TraceArgs {
    #[command(flatten)]
    pub model: ModelSource,
    /// Puzzles: a Sudoku or Maze CSV (the format of `loopgrad data`). Without it, the held-out set of the
    /// checkpoint's own run, rebuilt as training built it from the run's training config (`--config`, else the
    /// `config.toml` beside the checkpoint).
    #[arg(long, requires = "task")]
    pub data: Option<PathBuf>,
    /// sudoku or maze (with --data; without it, the run's own task).
    #[arg(long)]
    pub task: Option<String>,
    /// Which puzzle of the file (0-based row).
    #[arg(long, default_value_t = 0)]
    pub index: usize,
    /// Supervision steps to run (default: the model's halt_max_steps).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Where the SVG goes.
    #[arg(long, default_value = "trace.svg")]
    pub out: PathBuf,
    /// Print the trace as one JSON object instead of drawing it.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: TraceArgs) -> Result<()> {
    crate::cli::use_threads(0)?;
    if !args.json {
        crate::cli::check_output_file("--out", &args.out)?;
    }
    let mut loaded = load_model(&args.model)?;
    let (set, task, source) = match (&args.data, &args.task) {
        (Some(path), Some(task)) => {
            loopgrad_train::overrides::check_name("--task", task, ["sudoku", "maze"])?;
            (data::load_test_file(task, path, args.index + 1)?, task.clone(), path.display().to_string())
        }
        _ => held_out_of_run(&args)?,
    };
    if args.index >= set.len() {
        bail!("--index {}: {source} holds {} puzzles", args.index, set.len());
    }
    let what = format!("{source} ({task})");
    loopgrad_train::trainer::check_data(&loaded.train_config(), &set, &what)?;
    let steps = args.steps.unwrap_or(loaded.config.halt_max_steps());
    if steps == 0 || steps > MAX_SUPERVISION_STEPS {
        bail!("--steps {steps}: give 1 to {MAX_SUPERVISION_STEPS}");
    }
    let trace = trace_example(&loaded.model, &mut loaded.tape, &set, args.index, steps);
    if args.json {
        println!("{}", serde_json::to_string(&trace)?);
        return Ok(());
    }
    let title = format!(
        "{source} #{}: {} supervision steps x {} recursions ({} weights)",
        args.index,
        steps,
        trace.steps[0].len(),
        if loaded.ema { "EMA" } else { "live" }
    );
    let svg = draw(&trace, &task, &title)?;
    loopgrad_train::rundir::write_atomic(&args.out, svg.as_bytes())?;
    let solved = (0..steps).find(|&s| wrong_cells(&trace, s) == 0);
    println!(
        "{source} #{}: {}; wrote {}",
        args.index,
        match solved {
            Some(s) => format!("solved from supervision step {}", s + 1),
            None => format!("{} cells still wrong after {steps} steps", wrong_cells(&trace, steps - 1)),
        },
        args.out.display()
    );
    Ok(())
}

/// The held-out set of the checkpoint's own run (no `--data`): its training config (`--config`, else the
/// `config.toml` beside the checkpoint) builds the same sets training built; the held-out one is returned, with
/// the task and a name for messages.
fn held_out_of_run(args: &TraceArgs) -> Result<(loopgrad_puzzles::ExampleSet, String, String)> {
    let checkpoint = args.model.checkpoint.as_deref().unwrap_or(std::path::Path::new("checkpoint.safetensors"));
    let beside = checkpoint.parent().unwrap_or(std::path::Path::new(".")).join("config.toml");
    let path = args.model.config.clone().unwrap_or(beside);
    if !path.is_file() {
        bail!(
            "no --data, and no training config at {}: give --data FILE --task sudoku|maze, or --config RUN/config.toml",
            path.display()
        );
    }
    let config = loopgrad_train::TrainConfig::from_file(&path)?;
    let task = config.data.task.clone();
    if task != "sudoku" && task != "maze" {
        bail!("{}: data.task is {task:?}; trace draws sudoku and maze puzzles", path.display());
    }
    if let Some(given) = &args.task {
        if *given != task {
            bail!("--task {given}: the run of {} trained on {task}", path.display());
        }
    }
    let sets = data::load(&config.data)?;
    Ok((sets.test, task, format!("held-out puzzles of {}", path.display())))
}

fn wrong_cells(trace: &Trace, step: usize) -> usize {
    let answer = &trace.answer(step).tokens;
    trace.labels.iter().zip(answer).filter(|&(&l, &a)| l as usize != IGNORE_LABEL && l != a).count()
}

/// The two lines under the title.
const LEGEND: &str = r##"<text x="10" y="38" font-size="11" fill="#555">each row one supervision step, each grid one recursion (the last is the step's answer)</text>
<text x="10" y="53" font-size="11" fill="#555">yellow: changed since the previous reading; red: wrong; grey: given</text>
"##;

/// How a puzzle's tokens are drawn.
enum Style {
    /// Digits in cells; givens shaded; thick lines around boxes of `box_rows` x `box_cols`.
    Sudoku { box_rows: usize, box_cols: usize },
    /// Walls, free cells, start, goal and path as colours.
    Maze,
}

/// The SVG: a title, then one row per supervision step, one grid per recursion (the last is the step's answer).
fn draw(trace: &Trace, task: &str, title: &str) -> Result<String> {
    let cells = trace.labels.len();
    let style = match task {
        "sudoku" => match sudoku::BoxShape::for_cells(cells) {
            Some(b) => Style::Sudoku { box_rows: b.rows, box_cols: b.cols },
            None => bail!("trace: {cells} cells is no Sudoku this program draws"),
        },
        _ => Style::Maze,
    };
    let side = maze::side_of(cells).filter(|s| s * s == cells);
    let Some(side) = side else { bail!("trace: {cells} cells do not make a square grid") };
    let cell = (180 / side).clamp(5, 22) as f64;
    let grid = cell * side as f64;
    let (left, top, gap) = (150.0, 72.0, 16.0);
    let columns = trace.steps[0].len();
    let width = (left + columns as f64 * (grid + gap) + gap).max(560.0); // room for the title and legend
    let height = top + trace.steps.len() as f64 * (grid + gap + 8.0) + 30.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif">"##
    );
    let _ = writeln!(s, r##"<rect width="100%" height="100%" fill="white"/>"##);
    let _ = writeln!(s, r##"<text x="10" y="20" font-size="14">{}</text>"##, escape(title));
    s.push_str(LEGEND);
    let mut previous = trace.inputs.clone();
    for (step, readings) in trace.steps.iter().enumerate() {
        let y0 = top + step as f64 * (grid + gap + 8.0);
        let halt = readings.last().expect("a step has readings").q_halt;
        let _ = writeln!(s, r##"<text x="10" y="{}" font-size="13">step {}</text>"##, y0 + 14.0, step + 1);
        let _ = writeln!(
            s,
            r##"<text x="10" y="{}" font-size="11" fill="#555">P(halt) {:.3}</text>"##,
            y0 + 30.0,
            sigmoid(halt)
        );
        let _ = writeln!(
            s,
            r##"<text x="10" y="{}" font-size="11" fill="#555">wrong cells {}</text>"##,
            y0 + 46.0,
            wrong_cells(trace, step)
        );
        for (r, reading) in readings.iter().enumerate() {
            let x0 = left + r as f64 * (grid + gap);
            if step == 0 {
                let _ =
                    writeln!(s, r##"<text x="{x0}" y="{}" font-size="10" fill="#555">r{}</text>"##, y0 - 3.0, r + 1);
            }
            draw_grid(&mut s, &style, trace, &reading.tokens, &previous, (x0, y0), cell, side);
            previous.clone_from(&reading.tokens);
        }
    }
    s.push_str("</svg>\n");
    Ok(s)
}

/// One grid at `(x0, y0)`: `answer` drawn in `style`, cells that differ from `previous` filled yellow (Sudoku)
/// or outlined yellow (maze), cells that differ from the label marked red.
#[allow(clippy::too_many_arguments)]
fn draw_grid(
    s: &mut String,
    style: &Style,
    trace: &Trace,
    answer: &[u8],
    previous: &[u8],
    (x0, y0): (f64, f64),
    cell: f64,
    side: usize,
) {
    for (i, &token) in answer.iter().enumerate() {
        let (x, y) = (x0 + (i % side) as f64 * cell, y0 + (i / side) as f64 * cell);
        let label = trace.labels[i];
        let wrong = label as usize != IGNORE_LABEL && token != label;
        let changed = token != previous[i];
        match style {
            Style::Sudoku { .. } => {
                let given = trace.inputs[i] > sudoku::BLANK;
                let fill = if changed {
                    "#fff3a0"
                } else if given {
                    "#e8e8e8"
                } else {
                    "white"
                };
                let _ = writeln!(
                    s,
                    r##"<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{fill}" stroke="#bbb" stroke-width="0.5"/>"##
                );
                if token > sudoku::BLANK {
                    let colour = if wrong {
                        "#d00"
                    } else if given {
                        "#666"
                    } else {
                        "black"
                    };
                    let _ = writeln!(
                        s,
                        r##"<text x="{}" y="{}" font-size="{:.0}" text-anchor="middle" fill="{colour}">{}</text>"##,
                        x + cell / 2.0,
                        y + cell * 0.75,
                        cell * 0.7,
                        token - 1
                    );
                }
            }
            Style::Maze => {
                let fill = match maze::CHARSET.get((token as usize).wrapping_sub(1)) {
                    Some(&maze::WALL) => "#333",
                    Some(&maze::START) => "#2a2",
                    Some(&maze::GOAL) => "#e80",
                    Some(&maze::PATH) => "#37d",
                    _ => "white",
                };
                let stroke = if wrong {
                    r##"stroke="#d00" stroke-width="1.2""##
                } else if changed {
                    r##"stroke="#fc0" stroke-width="1.2""##
                } else {
                    r##"stroke="#ddd" stroke-width="0.3""##
                };
                let _ =
                    writeln!(s, r##"<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{fill}" {stroke}/>"##);
            }
        }
    }
    if let Style::Sudoku { box_rows, box_cols } = style {
        let n = side as f64 * cell;
        for r in (0..=side).step_by(*box_rows) {
            let y = y0 + r as f64 * cell;
            let _ = writeln!(s, r##"<line x1="{x0}" y1="{y}" x2="{}" y2="{y}" stroke="black"/>"##, x0 + n);
        }
        for c in (0..=side).step_by(*box_cols) {
            let x = x0 + c as f64 * cell;
            let _ = writeln!(s, r##"<line x1="{x}" y1="{y0}" x2="{x}" y2="{}" stroke="black"/>"##, y0 + n);
        }
    }
}

fn sigmoid(x: f32) -> f64 {
    1.0 / (1.0 + (-(x as f64)).exp())
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
