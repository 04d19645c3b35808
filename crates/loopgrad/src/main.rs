//! The `loopgrad` command line: train (the default), eval, trace, info, data, bench, plot, study.
//!
//! Every subcommand lives in its own module under `cli/`. Errors reach the user as one line naming the file,
//! row or tensor at fault, with a non-zero exit code, never a panic or a backtrace.

mod cli;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "loopgrad", version, about = "Tiny recursive reasoning models (TRM, HRM) trained on the CPU")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model (the default command: `loopgrad` alone trains the `default` preset).
    Train(cli::train::TrainArgs),
    /// Evaluate a checkpoint on a puzzle file.
    Eval(cli::eval::EvalArgs),
    /// Draw one puzzle's answer after every recursion of every supervision step (SVG), from any checkpoint.
    Trace(cli::trace::TraceArgs),
    /// A preset's architecture and parameter count.
    Info(cli::info::InfoArgs),
    /// Generate, convert and validate puzzle sets (Sudoku, Maze, ARC-AGI).
    #[command(subcommand)]
    Data(cli::data::DataCommand),
    /// Draw a run's loss and accuracy curves as an SVG.
    Plot(cli::plot::PlotArgs),
    /// The recursion study: a grid of runs over seeds, test-time recursion, and a report with tables and plots.
    Study(cli::study::StudyArgs),
    /// Time whole training steps (or evaluations) on random tokens; flags and JSON as the PyTorch reference.
    Bench(cli::bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Train(args)) => cli::train::run(args),
        Some(Command::Eval(args)) => cli::eval::run(args),
        Some(Command::Trace(args)) => cli::trace::run(args),
        Some(Command::Info(args)) => cli::info::run(args),
        Some(Command::Data(cmd)) => cli::data::run(cmd),
        Some(Command::Plot(args)) => cli::plot::run(args),
        Some(Command::Study(args)) => cli::study::run(args),
        Some(Command::Bench(args)) => cli::bench::run(args),
        None => cli::train::run(cli::train::TrainArgs::default()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // Stopped by SIGINT or SIGTERM with everything saved: 130 or 143, as shells report a signal, so that a
        // script or scheduler requeues the run (docs/run-directories.md).
        Err(e) if e.downcast_ref::<loopgrad_train::run::Interrupted>().is_some() => {
            let interrupted = e.downcast_ref::<loopgrad_train::run::Interrupted>().expect("just matched");
            eprintln!("{interrupted}");
            ExitCode::from(interrupted.exit_code())
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
