//! `loopgrad data`: generate puzzle sets and validate puzzle files.
//!
//! - `loopgrad data sudoku --box 3x3 --count N [--min-rating R | --givens MIN-MAX] --out FILE.csv [--seed S]`
//! - `loopgrad data maze --size S --min-route L --count N --out FILE.csv [--seed S]`
//! - `loopgrad data inspect --task sudoku|maze|arc PATH`
//!
//! Generated files are written to a temporary name and renamed into place. `inspect` validates every row or task
//! and exits non-zero with one line naming the file and the row or task at the first problem; on success it prints
//! counts, a histogram and one example drawn as a grid.

use anyhow::{anyhow, bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use loopgrad_puzzles::{arc, maze, sudoku};
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Append a formatted line to a report (`writeln!` on a `String` cannot fail).
macro_rules! outln {
    ($out:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($out, $($arg)*);
    }};
}

/// Append formatted text to a report.
macro_rules! outp {
    ($out:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = write!($out, $($arg)*);
    }};
}

/// Print a finished report. A closed pipe (`loopgrad data inspect ... | head`) is not an error.
fn emit(report: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    match std::io::stdout().lock().write_all(report.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("cannot write to stdout"),
        _ => Ok(()),
    }
}

#[derive(Subcommand)]
pub enum DataCommand {
    /// Generate Sudoku puzzles in the Sudoku-Extreme CSV format (minimal unique puzzles by default).
    Sudoku(SudokuArgs),
    /// Generate mazes in the Maze-Hard CSV format (random walls, a minimum route, A* labels).
    Maze(MazeArgs),
    /// Validate a puzzle file or directory; print counts, a histogram and one example.
    Inspect(InspectArgs),
}

#[derive(Args)]
pub struct SudokuArgs {
    /// Box shape ROWSxCOLS, 2 rows and columns or more: 2x2 (4x4 grid), 2x3 or 3x2 (6x6), 2x4 or 4x2 (8x8), 3x3 (9x9).
    #[arg(long = "box", default_value = "3x3")]
    box_shape: String,
    /// Number of puzzles.
    #[arg(long)]
    count: usize,
    /// Minimum difficulty (tdoku guess scale, see docs/puzzles.md), reached by hill climbing.
    #[arg(long, conflicts_with = "givens")]
    min_rating: Option<f64>,
    /// Number of givens, MIN-MAX (minimal puzzles topped up with solution cells).
    #[arg(long, value_name = "MIN-MAX")]
    givens: Option<String>,
    /// Output CSV file.
    #[arg(long)]
    out: PathBuf,
    /// Seed; puzzle i depends only on (seed, i).
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Args)]
pub struct MazeArgs {
    /// Side of the square maze.
    #[arg(long, default_value_t = 30)]
    size: usize,
    /// Minimum route length in cells, S and G included (Maze-Hard: 110 for 30x30).
    #[arg(long, default_value_t = 110)]
    min_route: usize,
    /// Number of mazes.
    #[arg(long)]
    count: usize,
    /// Output CSV file.
    #[arg(long)]
    out: PathBuf,
    /// Seed; maze i depends only on (seed, i).
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Clone, Copy, ValueEnum)]
enum TaskKind {
    Sudoku,
    Maze,
    Arc,
}

#[derive(Args)]
pub struct InspectArgs {
    /// What the input holds.
    #[arg(long, value_enum)]
    task: TaskKind,
    /// A CSV file (sudoku, maze); a task directory, a task file or a Kaggle *_challenges.json (arc).
    path: PathBuf,
}

pub fn run(cmd: DataCommand) -> anyhow::Result<()> {
    crate::cli::use_threads(0)?;
    match cmd {
        DataCommand::Sudoku(args) => generate_sudoku(&args),
        DataCommand::Maze(args) => generate_maze(&args),
        DataCommand::Inspect(args) => match args.task {
            TaskKind::Sudoku => inspect_sudoku(&args.path),
            TaskKind::Maze => inspect_maze(&args.path),
            TaskKind::Arc => inspect_arc(&args.path),
        },
    }
}

/// Items `0..count` made by `make` in one parallel loop on rayon's pool (each piece of work on its own copy of
/// `state`), reporting progress every 2 s from whichever thread finishes an item; the result does not depend on
/// the threads because item `i` depends only on `(seed, i)`. The first failure stops the loop; when several items
/// fail, which one's error is reported may vary (the messages name the flag that asked too much either way).
/// One loop rather than chunks: on a loaded machine every chunk paid a wake-up of the pool and of the caller.
fn generate_with_progress<S: Clone + Send, T: Send>(
    count: usize,
    what: &str,
    state: S,
    make: impl Fn(&mut S, usize) -> Result<T, String> + Sync,
) -> anyhow::Result<Vec<T>> {
    if count == 0 {
        bail!("--count must be at least 1 (a file without {what} is not a valid set)");
    }
    if count > MAX_COUNT {
        bail!("--count {count} is more than {MAX_COUNT}; write several files with different --seed");
    }
    let start = Instant::now();
    let done = AtomicUsize::new(0);
    let last_report = Mutex::new(start);
    let items: Result<Vec<T>, String> = (0..count)
        .into_par_iter()
        .map_with(state, |state, i| {
            let item = make(state, i);
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            // try_lock: a thread that finds another reporting goes on with its work.
            if let Ok(mut last) = last_report.try_lock() {
                if last.elapsed().as_secs_f64() >= 2.0 {
                    *last = Instant::now();
                    eprintln!("  {what}: {n}/{count} ({:.1}/s)", n as f64 / start.elapsed().as_secs_f64());
                }
            }
            item
        })
        .collect();
    items.map_err(anyhow::Error::msg)
}

/// The most puzzles one `loopgrad data` call generates (held in memory until the file is written).
const MAX_COUNT: usize = 10_000_000;

fn parse_range(text: &str) -> anyhow::Result<(usize, usize)> {
    let parse = || -> Option<(usize, usize)> {
        let (a, b) = text.split_once('-')?;
        Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
    };
    match parse() {
        Some((a, b)) if a <= b => Ok((a, b)),
        _ => bail!("--givens `{text}` is not MIN-MAX with MIN <= MAX"),
    }
}

fn generate_sudoku(args: &SudokuArgs) -> anyhow::Result<()> {
    let shape = sudoku::BoxShape::parse(&args.box_shape).map_err(|e| anyhow!("--box: {e}"))?;
    if shape.rows < 2 || shape.cols < 2 {
        // Their puzzles are Latin squares, which no reader takes for a Sudoku file (`sudoku::csv`).
        bail!("--box {}: a box needs 2 rows and 2 columns or more (2x2, 2x3, 3x2, 2x4, 3x3, ...)", args.box_shape);
    }
    crate::cli::check_output_file("--out", &args.out)?;
    let difficulty = match (args.min_rating, &args.givens) {
        (Some(r), _) if !(r.is_finite() && r >= 0.0) => bail!("--min-rating {r} must be a non-negative number"),
        (Some(r), _) => sudoku::Difficulty::MinRating(r),
        (None, Some(g)) => {
            let (min, max) = parse_range(g)?;
            if max > shape.cells() {
                bail!("--givens {g}: a {shape} Sudoku has {} cells", shape.cells());
            }
            sudoku::Difficulty::Givens { min, max }
        }
        (None, None) => sudoku::Difficulty::Minimal,
    };
    // A generator that gives up is blamed on the flag that asked too much.
    let flag = match (args.min_rating, &args.givens) {
        (Some(r), _) => format!("--min-rating {r}: "),
        (None, Some(g)) => format!("--givens {g}: "),
        (None, None) => String::new(),
    };
    let start = Instant::now();
    let records = generate_with_progress(args.count, "puzzles", sudoku::Solver::new(shape), |solver, i| {
        sudoku::dataset::generate_one(solver, difficulty, args.seed, i).map_err(|e| format!("{flag}{e}"))
    })?;
    let secs = start.elapsed().as_secs_f64();
    sudoku::write_csv(&args.out, &records).with_context(|| format!("cannot write {}", args.out.display()))?;
    let ratings: Vec<f64> = records.iter().map(|r| r.rating).collect();
    println!(
        "wrote {} {shape} puzzles to {} in {secs:.1} s ({:.1}/s on {} threads); rating {}",
        records.len(),
        args.out.display(),
        records.len() as f64 / secs.max(1e-9),
        rayon::current_num_threads(),
        summary(&ratings)
    );
    Ok(())
}

fn generate_maze(args: &MazeArgs) -> anyhow::Result<()> {
    let config = maze::MazeConfig::new(args.size, args.min_route);
    config.check("--size", "--min-route").map_err(|e| anyhow!(e))?;
    crate::cli::check_output_file("--out", &args.out)?;
    let start = Instant::now();
    let records = generate_with_progress(args.count, "mazes", (), |_, i| {
        maze::generate::generate_one(&config, args.seed, i).map(|(m, _)| m).map_err(|gave_up| gave_up.message(&config))
    })?;
    let secs = start.elapsed().as_secs_f64();
    maze::write_csv(&args.out, &records).with_context(|| format!("cannot write {}", args.out.display()))?;
    let routes: Vec<f64> = records.iter().map(|r| r.rating).collect();
    println!(
        "wrote {} {}x{} mazes to {} in {secs:.1} s ({:.1}/min on {} threads); route cells {}",
        records.len(),
        args.size,
        args.size,
        args.out.display(),
        records.len() as f64 * 60.0 / secs.max(1e-9),
        rayon::current_num_threads(),
        summary(&routes)
    );
    Ok(())
}

fn summary(values: &[f64]) -> String {
    if values.is_empty() {
        return "n/a".into();
    }
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    format!("min {min:.2} / mean {mean:.2} / max {max:.2}")
}

/// A text histogram of `values` in at most 10 equal-width buckets (integer-aligned when the values are integers).
fn histogram(title: &str, values: &[f64]) -> String {
    let mut out = format!("{title}: {}\n", summary(values));
    if values.is_empty() {
        return out;
    }
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let integers = values.iter().all(|v| v.fract() == 0.0);
    let mut width = ((max - min) / 10.0).max(if integers { 1.0 } else { 1e-9 });
    if integers {
        width = width.ceil();
    }
    let buckets = (((max - min) / width).floor() as usize + 1).min(10);
    let mut counts = vec![0usize; buckets];
    for &v in values {
        counts[(((v - min) / width) as usize).min(buckets - 1)] += 1;
    }
    let top = *counts.iter().max().unwrap();
    for (b, &n) in counts.iter().enumerate() {
        let lo = min + b as f64 * width;
        let label = if integers && width == 1.0 {
            format!("{lo:>8}")
        } else if integers {
            format!("{lo:>6}-{:<6}", lo + width - 1.0)
        } else {
            format!("{lo:>8.2}-{:<8.2}", lo + width)
        };
        out.push_str(&format!("  {label} {:>8} {}\n", n, "#".repeat((n * 40).div_ceil(top.max(1)))));
    }
    out
}

/// Rows per source, or the number of distinct sources when there are many (generated files name every row).
fn sources<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for s in items {
        match counts.iter_mut().find(|(k, _)| k == s) {
            Some((_, n)) => *n += 1,
            None => counts.push((s.to_string(), 1)),
        }
    }
    if counts.len() > 10 {
        return format!("sources: {} distinct (first: {})\n", counts.len(), counts[0].0);
    }
    let mut out = String::from("rows by source:\n");
    for (k, n) in &counts {
        out.push_str(&format!("  {k}: {n}\n"));
    }
    out
}

fn side_by_side(left: &str, right: &str, gap: &str) -> String {
    let width = left.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    let (l, r): (Vec<&str>, Vec<&str>) = (left.lines().collect(), right.lines().collect());
    (0..l.len().max(r.len()))
        .map(|i| format!("{:<width$}{gap}{}\n", l.get(i).unwrap_or(&""), r.get(i).unwrap_or(&"")))
        .collect()
}

fn inspect_sudoku(path: &Path) -> anyhow::Result<()> {
    let mut out = String::new();
    let records = sudoku::read_csv(path, None)?;
    sudoku::csv::check_unique(&path.display().to_string(), &records)?;
    let shape = records[0].shape;
    let givens: Vec<f64> = records.iter().map(|r| sudoku::givens(&r.puzzle) as f64).collect();
    let ratings: Vec<f64> = records.iter().map(|r| r.rating).collect();
    outln!(
        out,
        "{}: {} valid {shape} Sudoku puzzles, each with a unique solution equal to its answer",
        path.display(),
        records.len()
    );
    outp!(out, "{}", sources(records.iter().map(|r| r.source.as_str())));
    outln!(out, "givens: {}", summary(&givens));
    outp!(out, "{}", histogram("rating", &ratings));
    let r = &records[0];
    outln!(out, "row 1 ({}, rating {}): question | answer", r.source, r.rating);
    outp!(out, "{}", side_by_side(&sudoku::draw(&r.puzzle, shape), &sudoku::draw(&r.solution, shape), "    "));
    emit(&out)
}

fn inspect_maze(path: &Path) -> anyhow::Result<()> {
    let mut out = String::new();
    let records = maze::read_csv(path)?;
    let size = records[0].size;
    let walls: Vec<f64> = records
        .iter()
        .map(|r| r.question.iter().filter(|&&c| c == maze::WALL).count() as f64 / (size * size) as f64)
        .collect();
    let routes: Vec<f64> =
        records.iter().map(|r| (r.answer.iter().filter(|&&c| c == maze::PATH).count() + 2) as f64).collect();
    let ratings: Vec<f64> = records.iter().map(|r| r.rating).collect();
    let astar = records.iter().filter(|r| maze::label(&r.question, size).as_deref() == Some(&r.answer[..])).count();
    outln!(
        out,
        "{}: {} valid {size}x{size} mazes, every answer a shortest S->G path ({astar} of them A*'s own plan)",
        path.display(),
        records.len()
    );
    outln!(out, "wall fraction: {}", summary(&walls));
    outln!(out, "route cells: {}", summary(&routes));
    outp!(out, "{}", histogram("rating", &ratings));
    outln!(out, "row 1 ({}, rating {}):", records[0].source, records[0].rating);
    outp!(out, "{}", maze::draw(&records[0].answer, size));
    emit(&out)
}

fn inspect_arc(path: &Path) -> anyhow::Result<()> {
    let mut out = String::new();
    let tasks = arc::load_path(path)?;
    let demos: usize = tasks.iter().map(|t| t.train.len()).sum();
    let tests: usize = tasks.iter().map(|t| t.test.len()).sum();
    let known: usize = tasks.iter().map(|t| t.test.iter().filter(|p| p.output.is_some()).count()).sum();
    outln!(
        out,
        "{}: {} valid ARC tasks, {demos} demonstration pairs, {tests} test pairs ({known} with known outputs)",
        path.display(),
        tasks.len()
    );
    let largest: Vec<f64> = tasks
        .iter()
        .map(|t| {
            // Every grid the task holds, a test output too where the file gives it: a model must fit them all.
            let tests = t.test.iter().flat_map(|p| std::iter::once(&p.input).chain(p.output.as_ref()));
            let grids = t.train.iter().flat_map(|p| [&p.input, &p.output]).chain(tests);
            grids.map(|g| g.rows.max(g.cols)).max().unwrap_or(0) as f64
        })
        .collect();
    outp!(out, "{}", histogram("largest grid side per task", &largest));
    // The loaders refuse files without tasks and tasks without pairs; this guards the report all the same.
    let Some((t, p)) = tasks.iter().find_map(|t| Some((t, t.train.first()?))) else {
        bail!("{}: no ARC task with a demonstration pair", path.display());
    };
    outln!(
        out,
        "task {} demonstration 1 ({}x{} -> {}x{}): input | output",
        t.id,
        p.input.rows,
        p.input.cols,
        p.output.rows,
        p.output.cols
    );
    outp!(out, "{}", side_by_side(&p.input.draw(), &p.output.draw(), "    "));
    emit(&out)
}
