//! Test-time recursion: a trained model scored after each of several supervision step counts, more or fewer than
//! it trained with. Evaluation from the init carry is a prefix computation (the carry after s steps does not
//! depend on how many steps follow), so one pass of max(steps) steps scores every count: [`evaluate_at_steps`]
//! equals [`crate::evaluate`] run once per count, at the cost of the longest alone.

use super::machine::Machine;
use crate::eval::{changed_cells, for_each_batch, Tally};
use crate::run::Interrupted;
use crate::rundir::{write_atomic, CHECKPOINT_FILE, CONFIG_FILE};
use crate::{data, EvalResult, TrainConfig, Trainer};
use anyhow::{bail, Context, Result};
use loopgrad_autograd::ops::nograd::argmax_last;
use loopgrad_autograd::Tape;
use loopgrad_models::step::{token_accuracy, IGNORE_LABEL};
use loopgrad_models::Model;
use loopgrad_puzzles::example_set::{ExampleSetBuilder, Identifiers};
use loopgrad_puzzles::ExampleSet;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

/// The most training puzzles [`evaluate_run`] scores.
pub const TRAIN_SCORED: usize = 1000;

/// The file a run directory keeps its test-time results in.
pub const TEST_TIME_FILE: &str = "test_time.json";

/// A run's test-time evaluation, as stored in `test_time.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestTime {
    /// The optimizer step of the evaluated checkpoint.
    pub step: u64,
    /// "ema" or "live": the weights evaluation uses (EMA when the run kept one).
    pub weights: String,
    /// One result per supervision step count, in increasing order of steps.
    pub results: Vec<StepResult>,
    /// The training puzzles (each original once, not its augmentations; the first [`TRAIN_SCORED`]) scored the
    /// same way at the N_sup the model trained with: training-set exact accuracy, beside which the held-out
    /// accuracy shows the generalisation gap. Absent from files written before it was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train: Option<StepResult>,
    pub seconds: f64,
    pub machine: Machine,
}

/// Held-out scores after `steps` supervision steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    pub steps: usize,
    pub examples: usize,
    pub exact_accuracy: f64,
    pub token_accuracy: f64,
    /// Over the tokens the answer changes; absent from files written before it was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_token_accuracy: Option<f64>,
    /// NaN (written `null`) when the net diverged at this many steps: the file still reads back.
    #[serde(deserialize_with = "crate::run::record::number_or_null")]
    pub loss: f64,
}

impl From<&EvalResult> for StepResult {
    fn from(r: &EvalResult) -> Self {
        StepResult {
            steps: r.steps,
            examples: r.examples,
            exact_accuracy: r.exact_accuracy,
            token_accuracy: r.token_accuracy,
            changed_token_accuracy: Some(r.changed_token_accuracy).filter(|a| a.is_finite()),
            loss: r.loss,
        }
    }
}

/// Scores the first `limit` examples of `set` (all when 0) after each count in `steps` (sorted, deduplicated),
/// in batches of `batch_size`, running every example max(steps) supervision steps from the init carry without a
/// tape. The scores at count s are exactly those [`crate::evaluate`] gives with `steps = s`.
pub fn evaluate_at_steps(
    model: &Model,
    tape: &mut Tape<f32>,
    set: &ExampleSet,
    limit: usize,
    steps: &[usize],
    batch_size: usize,
) -> Vec<EvalResult> {
    evaluate_at_steps_unless(model, tape, set, limit, steps, batch_size, &|| false).expect("never stopped")
}

/// [`evaluate_at_steps`], giving up (None) as soon as `stop()` says so, checked before each batch: a study told
/// to stop does not finish scoring hundreds of puzzles first.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_at_steps_unless(
    model: &Model,
    tape: &mut Tape<f32>,
    set: &ExampleSet,
    limit: usize,
    steps: &[usize],
    batch_size: usize,
    stop: &dyn Fn() -> bool,
) -> Option<Vec<EvalResult>> {
    let mut stopped = false;
    let mut counts = steps.to_vec();
    counts.sort_unstable();
    counts.dedup();
    assert!(counts.first().is_some_and(|&s| s > 0), "evaluate_at_steps: step counts must be positive, got {steps:?}");
    let mut tallies = vec![Tally::default(); counts.len()];
    let n = for_each_batch(set, limit, batch_size, |batch, b| {
        stopped = stopped || stop();
        if stopped {
            return;
        }
        let mut carry = model.initial_carry(&tape.params, b);
        for s in 1..=*counts.last().expect("non-empty") {
            let scored = counts.iter().position(|&c| c == s);
            let (next, scores) = tape.no_grad(|t| {
                let out = model.supervision_step(t, carry, batch);
                let scores = scored.map(|_| {
                    let ce = t.stablemax_ce(out.logits, &batch.labels, IGNORE_LABEL);
                    let mut predicted = vec![0; batch.labels.len()];
                    argmax_last(t.value(out.logits), &mut predicted);
                    (token_accuracy(t.value(out.logits), &batch.labels), predicted, t.value(ce).to_vec())
                });
                (out.carry, scores)
            });
            carry = next;
            tape.reset();
            if let (Some(k), Some((acc, predicted, ce))) = (scored, scores) {
                for (slot, (&a, &loss)) in acc.iter().zip(&ce).enumerate() {
                    tallies[k].add(a, changed_cells(batch, &predicted, slot), loss);
                }
            }
        }
    });
    (!stopped).then(|| counts.iter().zip(tallies).map(|(&steps, tally)| tally.result(n, steps)).collect())
}

/// Evaluates a finished run directory's checkpoint (the EMA weights when the run kept them, as the trainer's own
/// evaluation does) on its held-out set, regenerated from its `config.toml`, at every count of `steps`, and
/// writes `test_time.json` atomically. Like `loopgrad train`, it sets the process's thread count to the run's
/// `run.threads` and flushes denormals, so that the step count the model trained with reproduces the run's final
/// evaluation exactly.
///
/// Once `stop` holds a signal number, it gives up before the next batch and returns an [`Interrupted`] error
/// (nothing written: the next invocation evaluates the run again).
pub fn evaluate_run(dir: &Path, steps: &[usize], limit: usize, stop: &AtomicUsize) -> Result<TestTime> {
    let t0 = Instant::now();
    let config = TrainConfig::from_file(&dir.join(CONFIG_FILE))?;
    crate::run::use_threads(&config)?;
    let data = data::load(&config.data)?;
    crate::trainer::check_data(&config, &data.test, "held-out")?;
    let mut trainer = Trainer::new(config.clone(), &data.train)?;
    let checkpoint = dir.join(CHECKPOINT_FILE);
    trainer
        .load_checkpoint(&checkpoint, data.train.len())
        .with_context(|| format!("{}: cannot load for test-time evaluation", checkpoint.display()))?;
    if trainer.step() != config.run.steps {
        bail!("{}: at step {} of {}; the run has not finished", checkpoint.display(), trainer.step(), config.run.steps);
    }
    // The trainer's own evaluation batch, so that the count the model trained with reproduces its final score.
    let batch = config.run.batch_size.max(64);
    let stopped = || stop.load(Relaxed) != 0;
    let interrupted = || {
        let message = format!("{}: test-time evaluation interrupted; run it again to evaluate", dir.display());
        Interrupted { signal: stop.load(Relaxed) as i32, message }
    };
    let results = trainer
        .with_eval_weights(|model, tape| {
            evaluate_at_steps_unless(model, tape, &data.test, limit, steps, batch, &stopped)
        })
        .ok_or_else(interrupted)?;
    let originals = originals(&data.train);
    let n_sup = config.model.halt_max_steps();
    let (train, _) = trainer
        .with_eval_weights(|model, tape| {
            crate::eval::evaluate_unless(model, tape, &originals, TRAIN_SCORED, n_sup, batch, &stopped)
        })
        .ok_or_else(interrupted)?;
    let result = TestTime {
        step: trainer.step(),
        weights: if config.optim.ema > 0.0 { "ema" } else { "live" }.to_string(),
        results: results.iter().map(StepResult::from).collect(),
        train: Some(StepResult::from(&train)),
        seconds: t0.elapsed().as_secs_f64(),
        machine: Machine::this(),
    };
    let mut text = serde_json::to_string_pretty(&result)?;
    text.push('\n');
    write_atomic(&dir.join(TEST_TIME_FILE), text.as_bytes())?;
    Ok(result)
}

/// The first example of each group of `set`: each training puzzle once, as given, without its augmentations.
pub fn originals(set: &ExampleSet) -> ExampleSet {
    let mut ids = Identifiers::new();
    for id in 0..set.num_identifiers() {
        ids.intern(set.identifier_name(id as u32));
    }
    let mut builder = ExampleSetBuilder::new(set.seq_len(), set.vocab_size());
    for g in 0..set.num_groups() {
        let first = set.puzzle_examples(set.group_puzzles(g).start).start;
        builder.begin_group();
        builder.begin_puzzle(set.puzzle_id(first));
        builder.push_example(set.inputs(first), set.labels(first));
    }
    builder.finish(&ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate;

    #[test]
    fn originals_are_the_training_puzzles_without_their_augmentations() {
        let mut config = TrainConfig::preset("default").unwrap().data;
        config.train_count = 7;
        config.test_count = 3;
        config.augmentations = 0;
        let plain = data::load(&config).unwrap().train;
        config.augmentations = 4;
        let augmented = data::load(&config).unwrap().train;
        assert_eq!(augmented.len(), 35);
        let back = originals(&augmented);
        assert_eq!(back.len(), 7);
        for i in 0..7 {
            assert_eq!((back.inputs(i), back.labels(i)), (plain.inputs(i), plain.labels(i)));
        }
    }

    /// The `smoke` preset's trainer on 20 training puzzles after `steps` steps, and its 13 held-out puzzles.
    fn smoke_trainer(steps: usize) -> (Trainer, ExampleSet) {
        let mut config = TrainConfig::preset("smoke").unwrap();
        config.data.train_count = 20;
        config.data.test_count = 13;
        let data = data::load(&config.data).unwrap();
        let mut trainer = Trainer::new(config, &data.train).unwrap();
        for _ in 0..steps {
            trainer.train_step(&data.train).unwrap();
        }
        (trainer, data.test)
    }

    #[test]
    fn one_pass_equals_one_evaluation_per_step_count() {
        let (mut trainer, test) = smoke_trainer(3);
        let steps = [4, 1, 2, 4];
        let (model, tape) = (&trainer.model, &mut trainer.tape);
        let together = evaluate_at_steps(model, tape, &test, 11, &steps, 4);
        assert_eq!(together.iter().map(|r| r.steps).collect::<Vec<_>>(), [1, 2, 4]);
        for r in &together {
            let (alone, _) = evaluate(model, tape, &test, 11, r.steps, 4);
            assert_eq!(*r, alone, "at {} steps", r.steps);
        }
        assert_ne!(together[0].loss, together[2].loss, "different step counts score differently");
    }

    #[test]
    fn a_stop_ends_the_evaluation_before_its_next_batch() {
        let (mut trainer, test) = smoke_trainer(0);
        let (model, tape) = (&trainer.model, &mut trainer.tape);
        // 13 puzzles in batches of 4: four batches. A stop raised during the second is seen before the third.
        let looks = std::cell::Cell::new(0);
        let stop = || {
            looks.set(looks.get() + 1);
            looks.get() > 2
        };
        assert!(evaluate_at_steps_unless(model, tape, &test, 0, &[1, 2], 4, &stop).is_none());
        assert_eq!(looks.get(), 3, "stopped at the third batch");
        let never = evaluate_at_steps_unless(model, tape, &test, 0, &[1, 2], 4, &|| false);
        assert_eq!(never.unwrap(), evaluate_at_steps(model, tape, &test, 0, &[1, 2], 4));
    }
}
