//! The run loop: trains a config in a run directory to `run.steps` (or resumes it from its checkpoint), logs
//! `metrics.jsonl`, evaluates on the held-out set, checkpoints atomically, and stops cleanly on Ctrl-C. `loopgrad
//! train` and the study's runner both call [`train`]; what a user sees of it (a progress bar, a log file) is the
//! caller's [`Progress`].

pub mod record;

use crate::rundir::{RunDir, CHECKPOINT_FILE, CONFIG_FILE};
use crate::{data, evaluate, EvalResult, TrainConfig, Trainer};
use anyhow::{bail, Result};
use loopgrad_puzzles::ExampleSet;
use record::{ErrorRecord, EvalRecord, LogInterval, Record};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// Whether a run starts fresh in its directory or continues from the directory's checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    Fresh,
    Resume,
}

/// How a run that returned without an error ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Ended {
    /// Trained to `run.steps` (or to `run.time_limit_s`), checkpointed, and evaluated on the held-out set.
    Finished { step: u64, train_seconds: f64, result: EvalResult },
    /// Stopped by a stop request at `step`, with a checkpoint saved there: resume to continue.
    Interrupted { step: u64 },
}

/// What the run loop reports as it goes; the caller decides how to show it.
pub trait Progress {
    /// Training begins at step `at` of `total` (a resumed run begins where it stopped).
    fn start(&mut self, at: u64, total: u64);
    /// Optimizer step `step` finished.
    fn stepped(&mut self, step: u64);
    /// A logging interval ended at `step` of `total`; `summary` describes it in one line.
    fn logged(&mut self, step: u64, total: u64, summary: &str);
    /// A line worth showing: the data set, the model, an evaluation's scores.
    fn note(&mut self, line: &str);
    /// Training ended (`completed`), or stopped on an error.
    fn end(&mut self, completed: bool);
}

/// Progress that goes nowhere (tests).
pub struct Quiet;

impl Progress for Quiet {
    fn start(&mut self, _: u64, _: u64) {}
    fn stepped(&mut self, _: u64) {}
    fn logged(&mut self, _: u64, _: u64, _: &str) {}
    fn note(&mut self, _: &str) {}
    fn end(&mut self, _: bool) {}
}

/// Sets this process's thread count to the config's `run.threads` (0 = every core) and flushes denormals, as
/// every run and every evaluation of a run does, so that a checkpoint scores the same wherever it is evaluated.
/// Returns the thread count.
pub fn use_threads(config: &TrainConfig) -> usize {
    let threads = match config.run.threads {
        0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        n => n,
    };
    loopgrad_tensor::parallel::set_threads(threads);
    loopgrad_tensor::parallel::flush_denormals();
    threads
}

/// The process's stop request, set by Ctrl-C (SIGINT). The handler is installed on the first call; a run polls
/// the flag between steps.
pub fn stop_signal() -> &'static AtomicBool {
    static STOP: OnceLock<&'static AtomicBool> = OnceLock::new();
    STOP.get_or_init(|| {
        let flag: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
        // Another handler may already be installed (an embedding program's); training still works without ours.
        let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
        flag
    })
}

/// Refuses to start a fresh run in a directory that already holds one.
pub fn check_fresh(dir: &Path) -> Result<()> {
    if dir.join(CHECKPOINT_FILE).exists() {
        bail!("{} already holds a run; use --resume {0} to continue it, or another --out", dir.display());
    }
    Ok(())
}

/// Loads the data, trains `config` in `dir` to `run.steps` (from the directory's checkpoint when `start` is
/// [`Start::Resume`]), checkpointing every `run.checkpoint_every` steps and at the end, and evaluates on the
/// held-out set. Returns early, with a checkpoint, once `stop` is set.
pub fn train(
    config: TrainConfig,
    dir: &Path,
    start: Start,
    stop: &AtomicBool,
    progress: &mut dyn Progress,
) -> Result<Ended> {
    let t0 = Instant::now();
    let data = data::load(&config.data)?;
    crate::trainer::check_data(&config, &data.test, "held-out")?;
    progress.note(&format!("data: {} ({:.1} s)", data.description, t0.elapsed().as_secs_f64()));

    let mut trainer = Trainer::new(config.clone(), &data.train)?;
    let mut run = RunDir::open(dir)?;
    let checkpoint = dir.join(CHECKPOINT_FILE);
    if start == Start::Resume {
        trainer.load_checkpoint(&checkpoint, data.train.len())?;
        progress.note(&format!("resuming {} at step {}", dir.display(), trainer.step()));
    } else {
        run.write(CONFIG_FILE, config.to_toml().as_bytes())?;
    }
    let params = trainer.model.param_count(&trainer.tape.params);
    progress.note(&format!(
        "model: {} ({params} parameters), {} thread(s), run directory {}",
        config.model.arch(),
        loopgrad_tensor::parallel::threads(),
        dir.display()
    ));

    let r = &config.run;
    progress.start(trainer.step(), r.steps);
    let started = Instant::now();
    let mut interval = LogInterval::default();
    let mut interrupted = false;
    while trainer.step() < r.steps {
        if stop.load(Ordering::SeqCst) {
            interrupted = true;
            break;
        }
        if r.time_limit_s > 0.0 && started.elapsed().as_secs_f64() > r.time_limit_s {
            progress.note(&format!("time limit of {} s reached at step {}", r.time_limit_s, trainer.step()));
            break;
        }
        let t = Instant::now();
        let stats = match trainer.train_step(&data.train) {
            Ok(s) => s,
            Err(e) => {
                progress.end(false);
                let step = trainer.step() + 1;
                run.log(&Record::Error(ErrorRecord { step, message: e.to_string() }))?;
                return Err(e);
            }
        };
        interval.add(&stats, t.elapsed().as_secs_f64(), r.batch_size);
        let step = stats.step;
        progress.stepped(step);
        if step % r.log_every.max(1) == 0 || step == r.steps {
            let record = interval.record(step, started.elapsed().as_secs_f64());
            progress.logged(step, r.steps, &interval.message());
            run.log(&Record::Train(record))?;
            interval = LogInterval::default();
        }
        if r.eval_every > 0 && step % r.eval_every == 0 && step < r.steps {
            let result = evaluate_held_out(&mut trainer, &data.test, r.eval_examples);
            progress.note(&format!("step {step}: {}", describe(&result)));
            run.log(&Record::Eval(EvalRecord::new(step, &result, false)))?;
        }
        if r.checkpoint_every > 0 && step % r.checkpoint_every == 0 {
            trainer.save_checkpoint(&checkpoint)?;
        }
    }
    progress.end(true);
    trainer.save_checkpoint(&checkpoint)?;
    if interrupted {
        return Ok(Ended::Interrupted { step: trainer.step() });
    }
    let train_seconds = started.elapsed().as_secs_f64();
    let result = evaluate_held_out(&mut trainer, &data.test, 0);
    run.log(&Record::Eval(EvalRecord::new(trainer.step(), &result, true)))?;
    Ok(Ended::Finished { step: trainer.step(), train_seconds, result })
}

/// Scores the first `limit` held-out examples (all for 0) with the evaluation weights, at `run.eval_steps`
/// supervision steps (N_sup for 0), in batches of at least 64.
pub fn evaluate_held_out(trainer: &mut Trainer, test: &ExampleSet, limit: usize) -> EvalResult {
    let steps = match trainer.config.run.eval_steps {
        0 => trainer.config.model.halt_max_steps(),
        s => s,
    };
    let batch = trainer.config.run.batch_size.max(64);
    trainer.with_eval_weights(|model, tape| evaluate(model, tape, test, limit, steps, batch).0)
}

/// One line of held-out scores.
pub fn describe(r: &EvalResult) -> String {
    format!(
        "held-out exact {:.1}%, token {:.1}%, loss {:.4} on {} puzzles ({} steps)",
        100.0 * r.exact_accuracy,
        100.0 * r.token_accuracy,
        r.loss,
        r.examples,
        r.steps
    )
}
