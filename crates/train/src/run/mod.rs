//! The run loop: trains a config in a run directory to `run.steps` (or resumes it from its checkpoint), logs
//! `metrics.jsonl`, evaluates on the held-out set, checkpoints atomically, and stops cleanly on SIGINT (Ctrl-C) or
//! SIGTERM (what Slurm, `timeout` and container stops send). `loopgrad train` and the study's runner both call
//! [`train`]; what a user sees of it (a progress bar, a log file) is the caller's [`Progress`]. The guarantees are
//! listed in `docs/run-directories.md`.

pub mod record;

use crate::arc::ArcPass;
use crate::data::Datasets;
use crate::eval::{evaluate_unless, Predictions};
use crate::rundir::{RunDir, CHECKPOINT_FILE, CONFIG_FILE, IDENTIFIERS_FILE};
use crate::{data, EvalResult, TrainConfig, Trainer};
use anyhow::{bail, Result};
use loopgrad_puzzles::ExampleSet;
use record::{ErrorRecord, EvalRecord, LogInterval, Record};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
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
    /// Trained to `run.steps` (or to `run.time_limit_s`), checkpointed, and evaluated on the held-out set; an ARC
    /// run also voted over the versions of its held-out test inputs (`arc`, when the whole set was evaluated).
    Finished { step: u64, train_seconds: f64, result: EvalResult, arc: Option<ArcPass> },
    /// Stopped by `signal` at `step`, with a checkpoint saved there: resume to continue.
    Interrupted { step: u64, signal: i32 },
}

/// The error of a run stopped by a signal: the process should exit with [`Interrupted::exit_code`], 128 + the
/// signal's number as shells report it (130 for SIGINT, 143 for SIGTERM), so that a script or scheduler can tell an
/// interrupted run (requeue it) from a finished one (0) and a failed one (1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interrupted {
    pub signal: i32,
    /// What was interrupted, and how to continue.
    pub message: String,
}

impl Interrupted {
    pub fn exit_code(&self) -> u8 {
        (128 + self.signal).clamp(0, 255) as u8
    }
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for Interrupted {}

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
    /// The names of what the data loader skipped (ARC tasks larger than the canvas), when it skipped any; the
    /// data line already counts them, so showing the names is the caller's choice (`train --verbose`).
    fn skipped(&mut self, _names: &[String]) {}
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

/// Sets this process's thread count by the thread rule from the config's `run.threads` (when 0,
/// `LOOPGRAD_THREADS`, else every core: `loopgrad_tensor::parallel::use_threads`) and flushes denormals, as every
/// run and every evaluation of a run does, so that a checkpoint scores the same wherever it is evaluated.
/// Returns the thread count; the error names `LOOPGRAD_THREADS` when it holds no thread count.
pub fn use_threads(config: &TrainConfig) -> Result<usize> {
    // Flushing first: rayon's workers, started by the first `use_threads`, take the mode of the thread that
    // starts them, as the data loaders' threads did before rayon.
    loopgrad_tensor::parallel::flush_denormals();
    loopgrad_tensor::parallel::use_threads(config.run.threads).map_err(anyhow::Error::msg)
}

/// The signals that stop a run with a checkpoint.
pub const STOP_SIGNALS: [i32; 2] = [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM];

/// SIGINT or SIGTERM by name, for messages.
pub fn signal_name(signal: i32) -> &'static str {
    match signal {
        signal_hook::consts::SIGTERM => "SIGTERM",
        signal_hook::consts::SIGINT => "SIGINT",
        _ => "a signal",
    }
}

/// The process's stop request: 0, or the number of the signal (SIGINT or SIGTERM) that asked the run to stop.
/// The handlers are installed on the first call; a run polls the value between steps and between evaluation
/// batches. A second signal while the first is being handled ends the process at once, with 128 + its number
/// (every file is written atomically, so even that leaves the previous checkpoint whole).
pub fn stop_signal() -> &'static AtomicUsize {
    &signals().0
}

/// Runs `build` (making or reading a run's data) so that a stop signal meanwhile ends the process at once with
/// 128 + its number, as the default action would: nothing of the run is written before its data exists, and
/// generating a large set can take minutes in which no step boundary comes to poll [`stop_signal`].
/// A signal that came just before is honoured the same way, at once; one process builds one run's data.
pub fn building_data<T>(build: impl FnOnce() -> T) -> T {
    struct Building(&'static AtomicBool);
    impl Drop for Building {
        fn drop(&mut self) {
            self.0.store(false, Ordering::SeqCst);
        }
    }
    let (stop, building) = signals();
    let _guard = Building(building.as_ref());
    building.store(true, Ordering::SeqCst);
    let signal = stop.load(Ordering::SeqCst);
    if signal != 0 {
        std::process::exit(128 + signal as i32);
    }
    build()
}

/// The stop request and the building-data flag, with their handlers installed on first use.
fn signals() -> &'static (Arc<AtomicUsize>, Arc<AtomicBool>) {
    static SIGNALS: OnceLock<(Arc<AtomicUsize>, Arc<AtomicBool>)> = OnceLock::new();
    SIGNALS.get_or_init(|| {
        let flag = Arc::new(AtomicUsize::new(0));
        let building = Arc::new(AtomicBool::new(false));
        let asked = Arc::new(AtomicBool::new(false));
        for signal in STOP_SIGNALS {
            // signal-hook's documented pattern: the conditional shutdowns first, so that they see the flags as they
            // were before this signal set them. A failure to install leaves the default action (the process dies).
            let _ = signal_hook::flag::register_conditional_shutdown(signal, 128 + signal, building.clone());
            let _ = signal_hook::flag::register_conditional_shutdown(signal, 128 + signal, asked.clone());
            let _ = signal_hook::flag::register(signal, asked.clone());
            let _ = signal_hook::flag::register_usize(signal, flag.clone(), signal as usize);
        }
        (flag, building)
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
/// held-out set. Returns early, with a checkpoint, once `stop` holds a signal number. Takes the directory's lock
/// for the whole run (see [`RunDir::open`]).
pub fn train(
    config: TrainConfig,
    dir: &Path,
    start: Start,
    stop: &AtomicUsize,
    progress: &mut dyn Progress,
) -> Result<Ended> {
    train_in(&mut RunDir::open(dir)?, config, start, stop, progress)
}

/// [`train`] in a run directory already opened (and locked) by the caller.
pub fn train_in(
    run: &mut RunDir,
    mut config: TrainConfig,
    start: Start,
    stop: &AtomicUsize,
    progress: &mut dyn Progress,
) -> Result<Ended> {
    let dir = run.path().to_path_buf();
    let checkpoint = dir.join(CHECKPOINT_FILE);
    // Checked again under the lock: another process may have started a run here since the caller looked.
    if start == Start::Fresh {
        check_fresh(&dir)?;
    }
    let t0 = Instant::now();
    let data = building_data(|| data::load(&config.data))?;
    // ARC's puzzle-embedding table has a row per augmented task, known only once the data is built.
    crate::arc::size_puzzle_table(&mut config, &data)?;
    crate::trainer::check_data(&config, &data.test, "held-out")?;
    progress.note(&format!("data: {} ({:.1} s)", data.description, t0.elapsed().as_secs_f64()));
    if !data.skipped.is_empty() {
        progress.skipped(&data.skipped);
    }

    let mut trainer = Trainer::new(config.clone(), &data.train)?;
    let r = &config.run;
    let mut logged_final = None;
    if start == Start::Resume {
        trainer.load_checkpoint(&checkpoint, data.train.len())?;
        let more_to_train = trainer.step() < r.steps;
        let kept = run.cut_metrics_to_step(trainer.step(), !more_to_train)?;
        logged_final = kept.last().and_then(|record| match record {
            Record::Eval(e) if e.last && e.step == trainer.step() => Some(e.clone()),
            _ => None,
        });
        progress.note(&format!("resuming {} at step {}", dir.display(), trainer.step()));
    } else {
        run.clear_metrics()?;
        run.write(CONFIG_FILE, config.to_toml().as_bytes())?;
        if config.data.task == "arc" {
            // Evaluation reads the identifier table to know which augmentation each puzzle id is.
            let names: Vec<&str> =
                (0..data.train.num_identifiers()).map(|i| data.train.identifier_name(i as u32)).collect();
            run.write(IDENTIFIERS_FILE, serde_json::to_string(&names)?.as_bytes())?;
        }
    }
    let params = trainer.model.param_count(&trainer.tape.params);
    progress.note(&format!(
        "model: {} ({params} parameters), {} thread(s), run directory {}",
        config.model.arch(),
        loopgrad_tensor::parallel::threads(),
        dir.display()
    ));

    progress.start(trainer.step(), r.steps);
    let started = Instant::now();
    let first_step = trainer.step();
    let mut interval = LogInterval::default();
    let signal = || stop.load(Ordering::SeqCst) as i32;
    while trainer.step() < r.steps && signal() == 0 {
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
            // An evaluation cut short by a signal logs nothing; the checkpoint below is still written.
            if let Some((result, _)) = evaluate_held_out_unless(&mut trainer, &data.test, r.eval_examples, stop) {
                progress.note(&format!("step {step}: {}", describe(&result, scored_set(&trainer.config))));
                run.log(&Record::Eval(EvalRecord::new(step, &result, false)))?;
            }
        }
        if r.checkpoint_every > 0 && step % r.checkpoint_every == 0 {
            trainer.save_checkpoint(&checkpoint)?;
        }
    }
    progress.end(true);
    // A resumed run that took no step has its checkpoint already.
    if start == Start::Fresh || trainer.step() > first_step {
        trainer.save_checkpoint(&checkpoint)?;
    }
    let interrupted = |step| Ok(Ended::Interrupted { step, signal: signal() });
    if signal() != 0 {
        return interrupted(trainer.step());
    }
    let train_seconds = started.elapsed().as_secs_f64();
    // A finished run resumed again: its final evaluation is logged already, and is not appended twice.
    if let Some(e) = logged_final {
        let result = EvalResult {
            examples: e.examples,
            exact_accuracy: e.exact_accuracy,
            token_accuracy: e.token_accuracy,
            changed_token_accuracy: e.changed_token_accuracy.unwrap_or(f64::NAN),
            loss: e.loss,
            steps: e.eval_steps,
        };
        return Ok(Ended::Finished { step: trainer.step(), train_seconds, result, arc: e.arc });
    }
    // Said before it starts: the final evaluation of a large held-out set, or at many `run.eval_steps`, is long.
    let examples = match r.final_eval_examples {
        0 => data.test.len(),
        n => n.min(data.test.len()),
    };
    let steps = held_out_eval_steps(&trainer.config);
    let scored = scored_set(&trainer.config);
    progress.note(&format!("final evaluation: {examples} {scored} puzzles at {steps} supervision steps"));
    let Some((result, predictions)) = evaluate_held_out_unless(&mut trainer, &data.test, r.final_eval_examples, stop)
    else {
        return interrupted(trainer.step());
    };
    let arc = score_arc(&config, &data, &predictions, progress)?;
    run.log(&Record::Eval(EvalRecord { arc: arc.clone(), ..EvalRecord::new(trainer.step(), &result, true) }))?;
    Ok(Ended::Finished { step: trainer.step(), train_seconds, result, arc })
}

/// An ARC run's pass@1 and pass@2 on its held-out test inputs: the final evaluation's predictions voted over the
/// versions, as `loopgrad eval --task arc` votes. Only a whole held-out set is voted (a vote over some of a test
/// input's versions would not be the paper's score); otherwise the note says how to get it.
fn score_arc(
    config: &TrainConfig,
    data: &Datasets,
    predictions: &Predictions,
    progress: &mut dyn Progress,
) -> Result<Option<ArcPass>> {
    if config.data.task != "arc" {
        return Ok(None);
    }
    if predictions.tokens.len() < data.test.len() {
        progress.note(&format!(
            "no ARC pass@2: run.final_eval_examples kept {} of the {} held-out examples; score the whole set with \
             `loopgrad eval --task arc`",
            predictions.tokens.len(),
            data.test.len()
        ));
        return Ok(None);
    }
    crate::arc::pass_at_1_2(&data.test, &data.arc_test_tasks, predictions).map(Some)
}

/// Scores the first `limit` held-out examples (all for 0) with the evaluation weights, at `run.eval_steps`
/// supervision steps (N_sup for 0), in batches of at least 64.
pub fn evaluate_held_out(trainer: &mut Trainer, test: &ExampleSet, limit: usize) -> EvalResult {
    evaluate_held_out_unless(trainer, test, limit, &AtomicUsize::new(0)).expect("never stopped").0
}

/// [`evaluate_held_out`] with the predictions, given up (None) once `stop` holds a signal number.
fn evaluate_held_out_unless(
    trainer: &mut Trainer,
    test: &ExampleSet,
    limit: usize,
    stop: &AtomicUsize,
) -> Option<(EvalResult, Predictions)> {
    let steps = held_out_eval_steps(&trainer.config);
    let batch = trainer.config.run.batch_size.max(64);
    let stopped = || stop.load(Ordering::SeqCst) != 0;
    trainer.with_eval_weights(|model, tape| evaluate_unless(model, tape, test, limit, steps, batch, &stopped))
}

/// The supervision steps a held-out evaluation runs: `run.eval_steps`, or N_sup (`halt_max_steps`) for 0.
fn held_out_eval_steps(config: &TrainConfig) -> usize {
    match config.run.eval_steps {
        0 => config.model.halt_max_steps(),
        s => s,
    }
}

/// What a run's evaluations score: "validation" when the config carves a validation split from the training
/// stream (`data.validation_count`, and then the held-out set is not built), else "held-out".
pub fn scored_set(config: &TrainConfig) -> &'static str {
    if config.data.validation_count > 0 {
        "validation"
    } else {
        "held-out"
    }
}

/// One line of scores on the `scored` set ([`scored_set`]).
pub fn describe(r: &EvalResult, scored: &str) -> String {
    format!(
        "{scored} exact {:.1}%, token {:.1}%{}, loss {:.4} on {} puzzles ({} steps)",
        100.0 * r.exact_accuracy,
        100.0 * r.token_accuracy,
        match r.changed_token_accuracy {
            a if a.is_finite() => format!(" (changed cells {:.1}%)", 100.0 * a),
            _ => String::new(),
        },
        r.loss,
        r.examples,
        r.steps
    )
}
