//! `loopgrad train`: the main job. Trains a model from a preset or a TOML config (plus `--set` overrides),
//! shows a progress bar, logs `metrics.jsonl`, evaluates on held-out puzzles, checkpoints atomically, stops
//! cleanly on Ctrl-C, and resumes exactly with `--resume`.

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use loopgrad_train::rundir::RunDir;
use loopgrad_train::{data, evaluate, state, EvalResult, StepStats, TrainConfig, Trainer};
use serde_json::json;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The checkpoint's file name inside a run directory.
pub const CHECKPOINT: &str = "checkpoint.safetensors";

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
}

pub fn run(args: TrainArgs) -> Result<()> {
    let (config, dir) = resolve(&args)?;
    let threads = if config.run.threads == 0 {
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    } else {
        config.run.threads
    };
    loopgrad_tensor::parallel::set_threads(threads);
    loopgrad_tensor::parallel::flush_denormals();
    train(config, dir, args.resume.is_some(), threads)
}

/// Loads the data, trains to `run.steps` (or resumes), checkpoints, and prints the held-out evaluation.
fn train(config: TrainConfig, dir: PathBuf, resume: bool, threads: usize) -> Result<()> {
    let t0 = Instant::now();
    let data = data::load(&config.data)?;
    loopgrad_train::trainer::check_data(&config, &data.test, "held-out")?;
    eprintln!("data: {} ({:.1} s)", data.description, t0.elapsed().as_secs_f64());

    let mut trainer = Trainer::new(config.clone(), &data.train)?;
    let mut run = RunDir::open(&dir)?;
    if resume {
        trainer.load_checkpoint(&dir.join(CHECKPOINT), data.train.len())?;
        eprintln!("resuming {} at step {}", dir.display(), trainer.step());
    } else {
        run.write("config.toml", config.to_toml().as_bytes())?;
    }
    let params = trainer.model.param_count(&trainer.tape.params);
    eprintln!(
        "model: {} ({params} parameters), {threads} thread(s), run directory {}",
        config.model.arch(),
        dir.display()
    );

    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    // A second handler cannot be installed (e.g. in tests that call run twice); training still works.
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));

    let r = &config.run;
    let bar = progress_bar(r.steps, trainer.step());
    let start = Instant::now();
    let mut window = Window::default();
    let mut interrupted = false;
    while trainer.step() < r.steps {
        if stop.load(Ordering::SeqCst) {
            interrupted = true;
            break;
        }
        if r.time_limit_s > 0.0 && start.elapsed().as_secs_f64() > r.time_limit_s {
            say(&bar, format!("time limit of {} s reached at step {}", r.time_limit_s, trainer.step()));
            break;
        }
        let t = Instant::now();
        let stats = match trainer.train_step(&data.train) {
            Ok(s) => s,
            Err(e) => {
                bar.abandon();
                run.log(&json!({"kind": "error", "step": trainer.step() + 1, "message": e.to_string()}))?;
                return Err(e);
            }
        };
        window.add(&stats, t.elapsed().as_secs_f64(), r.batch_size);
        let step = stats.step;
        bar.set_position(step);
        if step % r.log_every.max(1) == 0 || step == r.steps {
            let record = window.record(step, start.elapsed().as_secs_f64());
            bar.set_message(window.message());
            // Without a terminal there is no bar: print about ten progress lines per run instead.
            if bar.is_hidden() && (step % (r.steps / 10).max(1) < r.log_every.max(1) || step == r.steps) {
                eprintln!("step {step}/{}: {}", r.steps, window.message());
            }
            run.log(&record)?;
            window = Window::default();
        }
        if r.eval_every > 0 && step % r.eval_every == 0 && step < r.steps {
            let result = run_eval(&mut trainer, &data.test, r.eval_examples);
            say(&bar, format!("step {step}: {}", describe(&result)));
            run.log(&eval_record(step, &result, false))?;
        }
        if r.checkpoint_every > 0 && step % r.checkpoint_every == 0 {
            trainer.save_checkpoint(&dir.join(CHECKPOINT))?;
        }
    }
    bar.finish_and_clear();
    trainer.save_checkpoint(&dir.join(CHECKPOINT))?;
    if interrupted {
        println!(
            "interrupted at step {}: checkpoint saved; continue with `loopgrad train --resume {}`",
            trainer.step(),
            dir.display()
        );
        return Ok(());
    }
    let train_s = start.elapsed().as_secs_f64();
    let result = run_eval(&mut trainer, &data.test, 0);
    run.log(&eval_record(trainer.step(), &result, true))?;
    println!("trained {} steps in {:.0} s; {}", trainer.step(), train_s, describe(&result));
    println!("held-out exact accuracy: {:.1}% on {} puzzles", 100.0 * result.exact_accuracy, result.examples);
    println!("run directory: {}", dir.display());
    Ok(())
}

/// The config and the run directory, from the arguments.
fn resolve(args: &TrainArgs) -> Result<(TrainConfig, PathBuf)> {
    // A config read from a file is validated on its own first, so that its errors name the file and errors
    // that only the overrides cause name the overrides (a preset's own fields are always valid).
    if let Some(dir) = &args.resume {
        crate::cli::check_input_file("--resume", &dir.join(CHECKPOINT))?;
        let stored = state::resume_config(dir)?;
        stored.validate().with_context(|| format!("{}: metadata `config`", dir.join(CHECKPOINT).display()))?;
        note_edited_config(dir, &stored);
        return Ok((stored.with_overrides(&args.sets)?, dir.clone()));
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
    if dir.join(CHECKPOINT).exists() {
        bail!("{} already holds a run; use --resume {0} to continue it, or another --out", dir.display());
    }
    Ok((config, dir))
}

/// A resumed run takes its config from the checkpoint, which is what makes it continue exactly; a `config.toml`
/// edited since is not read, and saying so spares a user waiting for a change that never comes.
fn note_edited_config(dir: &Path, stored: &TrainConfig) {
    let path = dir.join("config.toml");
    if path.is_file() && TrainConfig::from_file(&path).ok().as_ref() != Some(stored) {
        eprintln!(
            "note: {} differs from the config saved in the checkpoint, and a resumed run uses the checkpoint's; \
             change fields with --set (e.g. --set run.steps=5000)",
            path.display()
        );
    }
}

fn run_eval(trainer: &mut Trainer, test: &loopgrad_puzzles::ExampleSet, limit: usize) -> EvalResult {
    let steps = match trainer.config.run.eval_steps {
        0 => trainer.config.model.halt_max_steps(),
        s => s,
    };
    let batch = trainer.config.run.batch_size.max(64);
    trainer.with_eval_weights(|model, tape| evaluate(model, tape, test, limit, steps, batch).0)
}

fn describe(r: &EvalResult) -> String {
    format!(
        "held-out exact {:.1}%, token {:.1}%, loss {:.4} on {} puzzles ({} steps)",
        100.0 * r.exact_accuracy,
        100.0 * r.token_accuracy,
        r.loss,
        r.examples,
        r.steps
    )
}

fn eval_record(step: u64, r: &EvalResult, last: bool) -> serde_json::Value {
    json!({
        "kind": "eval", "step": step, "final": last, "examples": r.examples, "exact_accuracy": r.exact_accuracy,
        "token_accuracy": r.token_accuracy, "loss": r.loss, "eval_steps": r.steps,
    })
}

/// Training statistics over one logging interval.
#[derive(Default)]
struct Window {
    steps: u64,
    loss: f64,
    lm_loss: f64,
    q_halt_loss: f64,
    lr: f64,
    halted: usize,
    exact: usize,
    correct: usize,
    valid: usize,
    halt_steps: u64,
    seconds: f64,
    samples: usize,
}

impl Window {
    fn add(&mut self, s: &StepStats, seconds: f64, batch: usize) {
        self.steps += 1;
        self.loss += s.loss;
        self.lm_loss += s.lm_loss;
        self.q_halt_loss += s.q_halt_loss;
        self.lr = s.lr;
        self.halted += s.halted;
        self.exact += s.exact;
        self.correct += s.tokens_correct;
        self.valid += s.tokens_valid;
        self.halt_steps += s.halt_steps;
        self.seconds += seconds;
        self.samples += batch;
    }

    fn ratio(a: f64, b: f64) -> f64 {
        if b > 0.0 {
            a / b
        } else {
            0.0
        }
    }

    fn record(&self, step: u64, elapsed: f64) -> serde_json::Value {
        let n = self.steps.max(1) as f64;
        json!({
            "kind": "train", "step": step, "loss": self.loss / n, "lm_loss": self.lm_loss / n,
            "q_halt_loss": self.q_halt_loss / n, "lr": self.lr, "halted": self.halted,
            "exact_accuracy": Self::ratio(self.exact as f64, self.halted as f64),
            "token_accuracy": Self::ratio(self.correct as f64, self.valid as f64),
            "halt_steps": Self::ratio(self.halt_steps as f64, self.halted as f64),
            "samples_per_s": Self::ratio(self.samples as f64, self.seconds), "elapsed_s": elapsed,
        })
    }

    fn message(&self) -> String {
        let n = self.steps.max(1) as f64;
        format!(
            "loss {:.4} | token {:.1}% exact {:.1}% | halt {:.1} steps | {:.0} samples/s",
            self.loss / n,
            100.0 * Self::ratio(self.correct as f64, self.valid as f64),
            100.0 * Self::ratio(self.exact as f64, self.halted as f64),
            Self::ratio(self.halt_steps as f64, self.halted as f64),
            Self::ratio(self.samples as f64, self.seconds)
        )
    }
}

/// A line above the progress bar, or on stderr when there is no bar.
fn say(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
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
