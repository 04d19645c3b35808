//! One run of a study, start to finish, from its directory alone: `loopgrad study --run-cell DIR` (what
//! `--jobs` runs locally, one process per run, and what `--emit-jobs` writes, one line per run) reads
//! `DIR/study.json`, trains with the run loop ([`crate::run::train`], the one `loopgrad train` runs), then
//! evaluates the checkpoint at the test-time step counts.
//!
//! A run is *finished* when its `metrics.jsonl` holds the final evaluation record and `test_time.json` exists for
//! the same step: the study skips it. A run killed after its first checkpoint is resumed (bit for bit the run it
//! would have been); one killed before is restarted from scratch. A run that stopped on an error (a NaN loss)
//! stays failed: the study reports it and does not retry it; delete its directory to try again.

use super::expand::RunSpec;
use super::testtime::{self, TestTime, TEST_TIME_FILE};
use crate::run::record::{read_records_lenient, ErrorRecord, EvalRecord, Record};
use crate::run::{self, Ended, Interrupted, Progress, Start};
use crate::rundir::{RunDir, CHECKPOINT_FILE, METRICS_FILE};
use crate::TrainConfig;
use anyhow::{anyhow, bail, Context, Result};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::AtomicUsize;

/// The file that says what a run directory is for.
pub const SPEC_FILE: &str = "study.json";
/// The training's progress lines, as `loopgrad train` prints them without a terminal.
pub const LOG_FILE: &str = "train.log";

/// Where a run directory stands.
#[derive(Clone, Debug, PartialEq)]
pub enum RunStatus {
    /// No checkpoint yet (or no directory).
    NotStarted,
    /// A checkpoint but no final evaluation: continue with `--resume`.
    Partial,
    /// Trained, but no test-time evaluation of the final checkpoint yet.
    Trained,
    /// Trained and evaluated: nothing to do.
    Finished,
    /// Stopped on an error, with the logged message.
    Failed(String),
}

/// The last line of each kind a run logged, read leniently: a line cut short by a kill is skipped.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunLog {
    /// The final evaluation record (`"kind":"eval","final":true`).
    pub final_eval: Option<EvalRecord>,
    /// An error record (`"kind":"error"`).
    pub error: Option<ErrorRecord>,
    /// Seconds spent training: the sum over the run's segments (a resumed run starts a new one) of the last
    /// `elapsed_s` of each, so steps redone after a resume count twice, as they cost.
    pub train_seconds: f64,
    /// Training examples that finished their supervision steps (halted), summed over the train records: how many
    /// puzzle versions the run trained on, so data throughput can be compared between conditions (a slot holds an
    /// example for up to N_sup steps, so a cheaper step does not mean more examples per step).
    pub examples_trained: u64,
}

/// Reads `metrics.jsonl` of a run directory (an empty log when there is none).
pub fn read_log(dir: &Path) -> RunLog {
    let mut log = RunLog::default();
    let (mut last_step, mut last_elapsed, mut segment) = (0, 0.0, 0.0);
    for record in read_records_lenient(&dir.join(METRICS_FILE)) {
        match record {
            Record::Train(r) => {
                if r.step <= last_step || r.elapsed_s < last_elapsed {
                    log.train_seconds += segment;
                }
                (last_step, last_elapsed, segment) = (r.step, r.elapsed_s, r.elapsed_s);
                log.examples_trained += r.halted as u64;
            }
            Record::Eval(r) if r.last => log.final_eval = Some(r),
            Record::Eval(_) => {}
            Record::Error(r) => log.error = Some(r),
        }
    }
    log.train_seconds += segment;
    log
}

/// Reads a run's `test_time.json`, if it is there and readable.
pub fn read_test_time(dir: &Path) -> Option<TestTime> {
    let text = read_regular(&dir.join(TEST_TIME_FILE))?;
    serde_json::from_str(&text).ok()
}

/// The text of `path` if it is a readable regular file. A FIFO is never opened (`rundir::read_text` refuses it):
/// with no writer, opening it blocks forever (`study --collect` hung on a FIFO in place of a run's
/// `metrics.jsonl` or `test_time.json`).
fn read_regular(path: &Path) -> Option<String> {
    crate::rundir::read_text(path).ok()
}

/// Where the run in `dir` stands.
pub fn status(dir: &Path, spec: &RunSpec) -> RunStatus {
    let log = read_log(dir);
    if let Some(e) = &log.error {
        return RunStatus::Failed(e.message.clone());
    }
    if log.final_eval.is_some() {
        let evaluated = read_test_time(dir).is_some_and(|t| {
            t.step == spec.steps && t.results.iter().map(|r| r.steps).eq(sorted_unique(&spec.eval_steps))
        });
        return if evaluated { RunStatus::Finished } else { RunStatus::Trained };
    }
    if dir.join(CHECKPOINT_FILE).exists() {
        RunStatus::Partial
    } else {
        RunStatus::NotStarted
    }
}

fn sorted_unique(steps: &[usize]) -> Vec<usize> {
    let mut s = steps.to_vec();
    s.sort_unstable();
    s.dedup();
    s
}

/// Creates the run directory with its `study.json`, or checks that an existing one was planned the same way
/// (a study directory never mixes two versions of a plan). Only the plan's name may differ: a run another plan
/// made with the same training arguments, steps, seed and evaluation is the same experiment, so a plan that
/// shares a condition with another (the hierarchy plan's TRM is stage 2's) reuses its finished runs when they are
/// copied into its `runs/`, and keeps their `study.json` as the record of where they were made.
pub fn prepare(dir: &Path, spec: &RunSpec) -> Result<()> {
    let path = dir.join(SPEC_FILE);
    if path.exists() {
        let existing = read_spec(dir)?;
        if (RunSpec { plan: spec.plan.clone(), ..existing }) != *spec {
            bail!(
                "{}: this run was planned differently (e.g. other overrides or eval steps); use another --out, or \
                 delete the directory to rerun it",
                path.display()
            );
        }
        return Ok(());
    }
    fs::create_dir_all(dir).with_context(|| format!("{}: cannot create the run directory", dir.display()))?;
    let mut text = serde_json::to_string_pretty(spec)?;
    text.push('\n');
    crate::rundir::write_atomic(&path, text.as_bytes())
}

/// Reads a run directory's `study.json`.
pub fn read_spec(dir: &Path) -> Result<RunSpec> {
    let path = dir.join(SPEC_FILE);
    let text = crate::rundir::read_text(&path)?;
    let spec: RunSpec =
        serde_json::from_str(&text).map_err(|e| anyhow!("{}: not a study run spec: {e}", path.display()))?;
    // What the plan checks of its eval_steps, checked again of a hand-edited file: an empty list panicked in the
    // test-time evaluation, and a count of 2^63 ran (nearly) forever.
    let max = crate::config::MAX_SUPERVISION_STEPS;
    if spec.eval_steps.is_empty() || spec.eval_steps.iter().any(|&n| n == 0 || n > max) {
        bail!(
            "{}: eval_steps {:?}: expected a non-empty list of step counts from 1 to {max}",
            path.display(),
            spec.eval_steps
        );
    }
    Ok(spec)
}

/// What [`execute`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Already finished: nothing was run.
    Skipped,
    /// Trained (fresh, or resumed from a checkpoint when `resumed`) and/or evaluated.
    Done { resumed: bool, trained: bool, test_time: TestTime },
}

/// Brings the run in `dir` to finished: trains it (progress appended to `train.log`) unless it is trained, then
/// evaluates it at the test-time step counts, holding the run directory's lock throughout. Once `stop` holds a
/// signal number, training stops with a checkpoint (or the evaluation before its next batch) and this returns an
/// [`Interrupted`] error.
pub fn execute(dir: &Path, stop: &AtomicUsize) -> Result<Outcome> {
    let spec = read_spec(dir)?;
    let mut run_dir = RunDir::open(dir)?;
    let state = status(dir, &spec);
    let start = match &state {
        RunStatus::Finished => return Ok(Outcome::Skipped),
        RunStatus::Failed(message) => {
            bail!("{}: the run failed earlier ({message}); delete the directory to retry it", dir.display())
        }
        RunStatus::Trained => None,
        RunStatus::NotStarted => {
            // A run killed before its first checkpoint may have left scores of an older run (the run loop empties
            // its metrics and rewrites its config).
            let _ = fs::remove_file(dir.join(TEST_TIME_FILE));
            Some((spec_config(&spec, dir)?, Start::Fresh))
        }
        RunStatus::Partial => Some((crate::state::resume_config(dir)?, Start::Resume)),
    };
    let resumed = matches!(start, Some((_, Start::Resume)));
    let trained = start.is_some();
    if let Some((config, start)) = start {
        train(&mut run_dir, config, start, stop)?;
    }
    if read_log(dir).final_eval.is_none() {
        bail!("{}: training ended without its final evaluation (interrupted?); run it again to resume", dir.display());
    }
    let test_time = testtime::evaluate_run(dir, &spec.eval_steps, spec.test_time_examples, stop)?;
    Ok(Outcome::Done { resumed, trained, test_time })
}

/// The config a run trains with, from its `train_args` as [`super::expand`] writes them: `--preset NAME`, then
/// `--set KEY=VALUE` pairs (the flags `loopgrad train` takes, so that a reader can rerun a run by hand).
fn spec_config(spec: &RunSpec, dir: &Path) -> Result<TrainConfig> {
    let bad = || {
        anyhow!(
            "{}: train_args {:?}: expected --preset NAME, then --set KEY=VALUE pairs",
            dir.join(SPEC_FILE).display(),
            spec.train_args
        )
    };
    let (preset, sets) = match spec.train_args.as_slice() {
        [flag, name, rest @ ..] if flag == "--preset" && rest.len() % 2 == 0 => (name, rest),
        _ => return Err(bad()),
    };
    let mut overrides = Vec::new();
    for pair in sets.chunks(2) {
        if pair[0] != "--set" {
            return Err(bad());
        }
        overrides.push(pair[1].clone());
    }
    TrainConfig::preset(preset)
        .and_then(|c| c.with_overrides(&overrides))
        .with_context(|| format!("{}: train_args", dir.join(SPEC_FILE).display()))
}

/// Trains the run with the run loop, its progress appended to the run's log. An interruption is an error here
/// ([`Interrupted`], for the exit code): the run is not finished, and the next `--run-cell` resumes it.
fn train(run_dir: &mut RunDir, config: TrainConfig, start: Start, stop: &AtomicUsize) -> Result<()> {
    let dir = run_dir.path().to_path_buf();
    let log_path = dir.join(LOG_FILE);
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("{}: cannot open", log_path.display()))?;
    run::use_threads(&config)?;
    let mut progress = LogFile { file: log };
    let scored = run::scored_set(&config);
    let ended = run::train_in(run_dir, config, start, stop, &mut progress)
        .with_context(|| format!("{}: training failed (its log: {})", dir.display(), log_path.display()))?;
    match ended {
        Ended::Finished { step, train_seconds, result, .. } => {
            progress.note(&format!("trained {step} steps in {train_seconds:.0} s; {}", run::describe(&result, scored)));
            Ok(())
        }
        Ended::Interrupted { step, signal } => {
            progress.note(&format!("interrupted by signal {signal} at step {step}: checkpoint saved"));
            let message = format!("{}: interrupted at step {step}; run it again to resume", dir.display());
            Err(Interrupted { signal, message }.into())
        }
    }
}

/// Progress as lines appended to a run's `train.log`: notes, and each logging interval. The log is for a reader
/// (`metrics.jsonl` is the record), so a line that cannot be written is dropped rather than failing the run.
struct LogFile {
    file: File,
}

impl Progress for LogFile {
    fn start(&mut self, _: u64, _: u64) {}
    fn stepped(&mut self, _: u64) {}
    fn logged(&mut self, step: u64, total: u64, summary: &str) {
        self.note(&format!("step {step}/{total}: {summary}"));
    }
    fn note(&mut self, line: &str) {
        let _ = writeln!(self.file, "{line}");
    }
    fn end(&mut self, _: bool) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::record::TrainRecord;
    use std::process::Command;

    #[test]
    fn the_log_reader_sums_segments_and_skips_cut_lines() {
        let d = std::env::temp_dir().join(format!("loopgrad-study-log-{}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        let train = |step: u64, elapsed_s: f64| {
            let r = TrainRecord {
                step,
                loss: 1.0,
                lm_loss: 1.0,
                q_halt_loss: 0.0,
                lr: 1e-4,
                halted: step as usize / 10,
                exact_accuracy: 0.0,
                token_accuracy: 0.0,
                halt_steps: 0.0,
                samples_per_s: 1.0,
                elapsed_s,
            };
            serde_json::to_string(&Record::Train(r)).unwrap()
        };
        let eval = |last: bool, exact_accuracy: f64| {
            let r = EvalRecord {
                step: 30,
                last,
                examples: 4,
                exact_accuracy,
                token_accuracy: 0.5,
                changed_token_accuracy: Some(0.25),
                loss: 1.0,
                eval_steps: 2,
                arc: None,
            };
            serde_json::to_string(&Record::Eval(r)).unwrap()
        };
        let cut = train(30, 3.0);
        let lines = [
            train(10, 1.0),
            train(20, 2.0),
            cut[..cut.len() / 2].to_string(),
            train(30, 0.5),
            eval(false, 0.1),
            eval(true, 0.25),
        ];
        fs::write(d.join("metrics.jsonl"), lines.join("\n")).unwrap();
        let log = read_log(&d);
        assert_eq!(log.train_seconds, 2.5);
        // Halted examples of the three whole train records (1 + 2 + 3); the cut line counts nothing.
        assert_eq!(log.examples_trained, 6);
        assert_eq!(log.final_eval.unwrap().exact_accuracy, 0.25);
        assert!(log.error.is_none());
        fs::write(d.join("metrics.jsonl"), r#"{"kind":"error","step":3,"message":"the loss became NaN"}"#).unwrap();
        let spec = RunSpec {
            name: "x".into(),
            plan: "p".into(),
            task: "t".into(),
            condition: "c".into(),
            steps: 30,
            seed: 0,
            train_args: vec![],
            eval_steps: vec![1],
            test_time_examples: 0,
        };
        assert_eq!(status(&d, &spec), RunStatus::Failed("the loss became NaN".into()));
        fs::remove_dir_all(&d).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn fifos_for_the_log_and_the_test_time_scores_read_as_absent() {
        // Was: a hang in `study --collect` (opening a FIFO to read waits for a writer).
        let d = std::env::temp_dir().join(format!("loopgrad-study-fifo-{}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        for name in ["metrics.jsonl", TEST_TIME_FILE] {
            let made = Command::new("mkfifo").arg(d.join(name)).status();
            if !made.is_ok_and(|s| s.success()) {
                eprintln!("skipping: mkfifo is not available");
                return;
            }
        }
        let dir = d.clone();
        let (log, test_time) =
            crate::rundir::tests::within_deadline(move || (read_log(&dir).final_eval, read_test_time(&dir)));
        assert!(log.is_none() && test_time.is_none());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_run_of_another_plan_is_reused_only_when_it_is_the_same_experiment() {
        let d = std::env::temp_dir().join(format!("loopgrad-study-reuse-{}", std::process::id()));
        let spec = RunSpec {
            name: "T2n2-8000st-s0".into(),
            plan: "generalisation".into(),
            task: "sudoku6".into(),
            condition: "T2n2".into(),
            steps: 8000,
            seed: 0,
            train_args: vec!["--preset".into(), "default".into()],
            eval_steps: vec![1, 8],
            test_time_examples: 250,
        };
        prepare(&d, &spec).unwrap();
        let other_plan = RunSpec { plan: "generalisation-hierarchy".into(), ..spec.clone() };
        prepare(&d, &other_plan).unwrap();
        assert_eq!(read_spec(&d).unwrap(), spec, "the record of where the run was made stays");
        let other_args = RunSpec { train_args: vec!["--preset".into(), "sudoku6-att".into()], ..other_plan.clone() };
        let other_seed = RunSpec { seed: 1, ..other_plan };
        for different in [other_args, other_seed] {
            let err = prepare(&d, &different).unwrap_err().to_string();
            assert!(err.contains("this run was planned differently"), "{err}");
        }
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_spec_without_usable_eval_steps_is_refused_naming_the_file() {
        let d = std::env::temp_dir().join(format!("loopgrad-study-spec-{}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        let spec = r#"{"name":"x","plan":"p","task":"t","condition":"c","steps":30,"seed":0,"train_args":[],"#;
        // Was: [] panicked in evaluate_at_steps; 2^63 steps ran until killed.
        for steps in ["[]", "[0, 1]", "[9223372036854775808]"] {
            fs::write(d.join(SPEC_FILE), format!(r#"{spec}"eval_steps":{steps},"test_time_examples":0}}"#)).unwrap();
            let err = read_spec(&d).unwrap_err().to_string();
            assert!(err.starts_with(&format!("{}: eval_steps [", d.join(SPEC_FILE).display())), "{err}");
            assert!(err.ends_with("expected a non-empty list of step counts from 1 to 10000"), "{err}");
        }
        fs::remove_dir_all(&d).unwrap();
    }
}
