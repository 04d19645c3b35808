//! `loopgrad train`: the main job. Resolves a config from a preset or a TOML file (plus `--set` overrides) and a
//! run directory, then runs the run loop (`loopgrad_train::run`: train, log `metrics.jsonl`, evaluate, checkpoint,
//! resume, stop on Ctrl-C) with a progress bar, and prints the held-out result.

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use loopgrad_train::run::{self, Ended, Interrupted, Progress, Start};
use loopgrad_train::rundir::{CHECKPOINT_FILE, CONFIG_FILE};
use loopgrad_train::{state, TrainConfig};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Default)]
pub struct TrainArgs {
    /// A training preset (`loopgrad info --list` names them). Default: `default`.
    #[arg(long, conflicts_with = "config")]
    pub preset: Option<String>,
    /// A whole config as TOML (the `config.toml` of any run directory is one).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Override one config field by dotted path, e.g. `--set run.steps=500 --set model.h_cycles=3`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// The run directory (default: runs/NAME-TIMESTAMP).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run in this directory from its checkpoint, exactly where it stopped.
    #[arg(long, conflicts_with_all = ["preset", "config", "out"])]
    pub resume: Option<PathBuf>,
    /// Name what the data loader skipped (ARC tasks larger than the canvas).
    #[arg(long)]
    pub verbose: bool,
}

pub fn run(args: TrainArgs) -> Result<()> {
    let (config, dir) = resolve(&args)?;
    run::use_threads(&config)?;
    let start = if args.resume.is_some() { Start::Resume } else { Start::Fresh };
    let mut bar = Bar { bar: None, log_every: config.run.log_every, verbose: args.verbose };
    let scored = run::scored_set(&config);
    match run::train(config, &dir, start, run::stop_signal(), &mut bar)? {
        Ended::Interrupted { step, signal } => {
            let message = format!(
                "interrupted by {} at step {step}: checkpoint saved; continue with `loopgrad train --resume {}`",
                run::signal_name(signal),
                dir.display()
            );
            Err(Interrupted { signal, message }.into())
        }
        Ended::Finished { step, train_seconds, result, arc } => {
            println!("trained {step} steps in {train_seconds:.0} s; {}", run::describe(&result, scored));
            println!("{scored} exact accuracy: {:.1}% on {} puzzles", 100.0 * result.exact_accuracy, result.examples);
            if let Some(arc) = arc {
                println!("held-out ARC score, votes over the versions: {}", arc.describe());
            }
            println!("run directory: {}", dir.display());
            Ok(())
        }
    }
}

/// The config and the run directory, from the arguments.
fn resolve(args: &TrainArgs) -> Result<(TrainConfig, PathBuf)> {
    // A config read from a file is validated on its own first, so that its errors name the file and errors
    // that only the overrides cause name the overrides (a preset's own fields are always valid).
    if let Some(dir) = &args.resume {
        crate::cli::check_input_file("--resume", &dir.join(CHECKPOINT_FILE))?;
        let stored = state::resume_config(dir)?;
        stored.validate().with_context(|| format!("{}: metadata `config`", dir.join(CHECKPOINT_FILE).display()))?;
        note_edited_config(dir, &stored);
        let resumed = stored.with_overrides(&args.sets)?;
        state::check_resume_overrides(&stored, &resumed, state::checkpoint_step(dir)?)?;
        return Ok((resumed, dir.clone()));
    }
    let (config, name) = match (&args.config, &args.preset) {
        (Some(path), _) => {
            let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "config".into());
            let config = TrainConfig::from_file(path)?;
            config.validate().with_context(|| path.display().to_string())?;
            (config.with_overrides(&args.sets)?, stem)
        }
        (None, preset) => {
            let name = preset.as_deref().unwrap_or("default");
            (TrainConfig::preset(name)?.with_overrides(&args.sets)?, name.to_string())
        }
    };
    let dir = match &args.out {
        Some(d) => d.clone(),
        None => Path::new("runs").join(format!("{name}-{}", timestamp())),
    };
    run::check_fresh(&dir)?;
    Ok((config, dir))
}

/// A resumed run takes its config from the checkpoint, which is what makes it continue exactly; a `config.toml`
/// edited since is not read, and saying so spares a user waiting for a change that never comes.
fn note_edited_config(dir: &Path, stored: &TrainConfig) {
    let path = dir.join(CONFIG_FILE);
    if path.is_file() && TrainConfig::from_file(&path).ok().as_ref() != Some(stored) {
        eprintln!(
            "note: {} differs from the config saved in the checkpoint, and a resumed run uses the checkpoint's; \
             change fields with --set (e.g. --set run.steps=5000)",
            path.display()
        );
    }
}

/// The run loop's progress on a terminal: a bar, with notes printed above it. Without a terminal there is no
/// bar, and notes and about ten progress lines per run go to stderr.
struct Bar {
    bar: Option<ProgressBar>,
    /// The config's `run.log_every`: one logged interval in so many steps.
    log_every: u64,
    /// `train --verbose`: name what the data loader skipped.
    verbose: bool,
}

impl Bar {
    fn hidden(&self) -> bool {
        self.bar.as_ref().is_none_or(|b| b.is_hidden())
    }
}

impl Progress for Bar {
    fn start(&mut self, at: u64, total: u64) {
        self.bar = Some(progress_bar(total, at));
    }

    fn stepped(&mut self, step: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(step);
        }
    }

    fn logged(&mut self, step: u64, total: u64, summary: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(summary.to_string());
        }
        // Without a terminal there is no bar: print about ten progress lines per run instead.
        if self.hidden() && (step % (total / 10).max(1) < self.log_every.max(1) || step == total) {
            eprintln!("step {step}/{total}: {summary}");
        }
    }

    fn skipped(&mut self, names: &[String]) {
        if self.verbose {
            self.note(&format!("skipped tasks: {}", names.join(", ")));
        }
    }

    fn note(&mut self, line: &str) {
        match &self.bar {
            Some(bar) if !bar.is_hidden() => bar.println(line),
            _ => eprintln!("{line}"),
        }
    }

    fn end(&mut self, completed: bool) {
        if let Some(bar) = &self.bar {
            if completed {
                bar.finish_and_clear();
            } else {
                bar.abandon();
            }
        }
    }
}

fn progress_bar(total: u64, at: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] step {pos}/{len} | {msg} | ETA {eta}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_position(at);
    bar
}

/// YYYYmmdd-HHMMSS in UTC, for run directory names.
fn timestamp() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + (month <= 2) as i64;
    format!("{year:04}{month:02}{day:02}-{:02}{:02}{:02}", rem / 3600, rem / 60 % 60, rem % 60)
}
