//! Evaluation: every example runs exactly `steps` supervision steps from the init carry, without a tape (the
//! reference evaluates at N_sup with halting off, so that a batch halts together). Scores are taken at the final
//! step.

use crate::trainer::fill_row;
use loopgrad_autograd::ops::nograd::argmax_last;
use loopgrad_autograd::Tape;
use loopgrad_models::step::{slot_accuracies, Batch, Carry, StepOutput, IGNORE_LABEL};
use loopgrad_models::Model;
use loopgrad_puzzles::ExampleSet;
use serde::Serialize;

/// Held-out scores. `loss` is the mean over examples of the per-sequence mean stablemax cross-entropy at the
/// final supervision step.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EvalResult {
    pub examples: usize,
    pub exact_accuracy: f64,
    /// Over every labelled token, the givens included.
    pub token_accuracy: f64,
    /// Over the tokens the answer changes (label != input: a Sudoku's blanks, a maze's route), which the givens
    /// cannot inflate; NaN when no example has any.
    pub changed_token_accuracy: f64,
    pub loss: f64,
    pub steps: usize,
}

/// What the model answered for each example (for task-specific scoring: maze validity, ARC voting).
#[derive(Clone, Debug, Default)]
pub struct Predictions {
    /// Argmax tokens `[examples][seq_len]`.
    pub tokens: Vec<Vec<u8>>,
    /// q_halt logit at the final step (ARC's tie-break confidence).
    pub q_halt: Vec<f64>,
}

/// Evaluates the first `limit` examples of `set` (all when `limit` is 0 or larger) in batches of `batch_size`.
pub fn evaluate(
    model: &Model,
    tape: &mut Tape<f32>,
    set: &ExampleSet,
    limit: usize,
    steps: usize,
    batch_size: usize,
) -> (EvalResult, Predictions) {
    evaluate_unless(model, tape, set, limit, steps, batch_size, &|| false).expect("never stopped")
}

/// [`evaluate`], giving up (None) as soon as `stop()` says so, checked before each batch and each supervision step
/// ([`evaluate_batch_unless`]): a run told to stop does not finish an evaluation of thousands of puzzles, or one
/// batch at thousands of steps, first.
pub fn evaluate_unless(
    model: &Model,
    tape: &mut Tape<f32>,
    set: &ExampleSet,
    limit: usize,
    steps: usize,
    batch_size: usize,
    stop: &dyn Fn() -> bool,
) -> Option<(EvalResult, Predictions)> {
    let l = set.seq_len();
    let mut tally = Tally::default();
    let mut preds = Predictions::default();
    let mut scores = BatchScores::default();
    let mut stopped = false;
    let n = for_each_batch(set, limit, batch_size, |batch, _| {
        stopped = stopped || stop() || !evaluate_batch_unless(model, tape, batch, steps, &mut scores, stop);
        if stopped {
            return;
        }
        for (i, (&accuracy, &loss)) in scores.accuracy.iter().zip(&scores.loss).enumerate() {
            tally.add(accuracy, changed_cells(batch, &scores.argmax, i), loss);
            preds.q_halt.push(scores.q_halt[i] as f64);
            preds.tokens.push(scores.argmax[i * l..(i + 1) * l].iter().map(|&t| t as u8).collect());
        }
    });
    (!stopped).then(|| (tally.result(n, steps), preds))
}

/// The final-step scores of one batch, per slot. Reused from batch to batch (with the carry it evaluates), so a
/// batch after the first allocates nothing.
#[derive(Debug, Default)]
pub struct BatchScores {
    /// (valid, correct, exact) per slot, from [`slot_accuracies`].
    pub accuracy: Vec<(usize, usize, bool)>,
    /// Mean stablemax cross-entropy over each slot's valid tokens.
    pub loss: Vec<f32>,
    /// The q_halt logit per slot.
    pub q_halt: Vec<f32>,
    /// Argmax token per position [B * L].
    pub argmax: Vec<usize>,
    carry: Carry<f32>,
}

/// Runs `steps` supervision steps of `batch` from the init carry without a tape and scores the final one into
/// `scores` (left empty when `steps` is 0).
pub fn evaluate_batch(model: &Model, tape: &mut Tape<f32>, batch: &Batch, steps: usize, scores: &mut BatchScores) {
    evaluate_batch_unless(model, tape, batch, steps, scores, &|| false);
}

/// [`evaluate_batch`], giving up (false, with `scores` incomplete) as soon as `stop()` says so, checked before each
/// supervision step: one batch at `run.eval_steps` = 10,000 runs for many seconds, and Ctrl-C must not wait for it.
pub fn evaluate_batch_unless(
    model: &Model,
    tape: &mut Tape<f32>,
    batch: &Batch,
    steps: usize,
    scores: &mut BatchScores,
    stop: &dyn Fn() -> bool,
) -> bool {
    scores.clear();
    let mut carry = std::mem::take(&mut scores.carry);
    model.restart_carry(&tape.params, batch.size(), &mut carry);
    for s in 0..steps {
        if stop() {
            scores.carry = carry;
            return false;
        }
        carry = tape.no_grad(|t| {
            let out = model.supervision_step(t, carry, batch);
            if s + 1 == steps {
                scores.record(t, &out, batch);
            }
            out.carry
        });
        tape.reset();
    }
    scores.carry = carry;
    true
}

impl BatchScores {
    fn clear(&mut self) {
        self.accuracy.clear();
        self.loss.clear();
        self.q_halt.clear();
        self.argmax.clear();
    }

    /// Scores the step `out` (its logits and q_halt) against the batch's labels.
    fn record(&mut self, tape: &mut Tape<f32>, out: &StepOutput<f32>, batch: &Batch) {
        let ce = tape.stablemax_ce(out.logits, &batch.labels, IGNORE_LABEL);
        let logits = tape.value(out.logits);
        self.accuracy.extend(slot_accuracies(logits, &batch.labels));
        self.argmax.resize(batch.labels.len(), 0);
        argmax_last(logits, &mut self.argmax);
        self.loss.extend_from_slice(tape.value(ce).data());
        self.q_halt.extend_from_slice(tape.value(out.q_halt).data());
    }
}

/// Visits the first `limit` examples of `set` (all when `limit` is 0 or larger), in order, in batches of
/// `batch_size` rows (the last one shorter): `visit(batch, rows)` gets each batch filled. Returns the number of
/// examples visited.
pub(crate) fn for_each_batch(
    set: &ExampleSet,
    limit: usize,
    batch_size: usize,
    mut visit: impl FnMut(&Batch, usize),
) -> usize {
    let n = if limit == 0 { set.len() } else { limit.min(set.len()) };
    let l = set.seq_len();
    let mut batch = Batch { inputs: Vec::new(), labels: Vec::new(), puzzle_ids: Vec::new() };
    for start in (0..n).step_by(batch_size.max(1)) {
        let b = batch_size.min(n - start);
        batch.inputs.resize(b * l, 0);
        batch.labels.resize(b * l, 0);
        batch.puzzle_ids.resize(b, 0);
        for slot in 0..b {
            fill_row(&mut batch, slot, set, start + slot);
        }
        visit(&batch, b);
    }
    n
}

/// Slot `slot`'s (changed, right): its positions whose label differs from the input (the cells the answer fills),
/// and how many of them `predicted` [B * L] gets right.
pub(crate) fn changed_cells(batch: &Batch, predicted: &[usize], slot: usize) -> (usize, usize) {
    let l = batch.inputs.len() / batch.size().max(1);
    let range = slot * l..(slot + 1) * l;
    let cells = batch.inputs[range.clone()].iter().zip(&batch.labels[range.clone()]).zip(&predicted[range]);
    cells
        .filter(|((&input, &label), _)| label != IGNORE_LABEL && label != input)
        .fold((0, 0), |(changed, right), ((_, &label), &p)| (changed + 1, right + (p == label) as usize))
}

/// The running sums of an evaluation, one example at a time, in order (so the loss sums the same way wherever
/// it is used).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Tally {
    exact: usize,
    correct: usize,
    valid: usize,
    changed: usize,
    changed_right: usize,
    loss: f64,
}

impl Tally {
    /// One example: its `(valid, correct, exact)` from `token_accuracy`, its `(changed, right)` from
    /// [`changed_cells`], and its mean cross-entropy.
    pub(crate) fn add(&mut self, (valid, correct, exact): (usize, usize, bool), changed: (usize, usize), loss: f32) {
        self.changed += changed.0;
        self.changed_right += changed.1;
        self.valid += valid;
        self.correct += correct;
        self.exact += exact as usize;
        self.loss += loss as f64;
    }

    /// The scores over `examples` examples evaluated with `steps` supervision steps.
    pub(crate) fn result(self, examples: usize, steps: usize) -> EvalResult {
        EvalResult {
            examples,
            exact_accuracy: self.exact as f64 / examples.max(1) as f64,
            token_accuracy: self.correct as f64 / self.valid.max(1) as f64,
            changed_token_accuracy: match self.changed {
                0 => f64::NAN,
                n => self.changed_right as f64 / n as f64,
            },
            loss: self.loss / examples.max(1) as f64,
            steps,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loopgrad_puzzles::sudoku::dataset::{generate_puzzles, to_example_set, Difficulty};
    use loopgrad_puzzles::sudoku::{BoxShape, BLANK};

    #[test]
    fn changed_cells_are_the_labelled_tokens_that_differ_from_the_input() {
        let ignore = IGNORE_LABEL;
        let batch = Batch {
            inputs: vec![1, 2, 1, 3, 5, 5, 5, 5],
            labels: vec![4, 2, 6, 3, 5, ignore, 5, 6],
            puzzle_ids: vec![0, 0],
        };
        let predicted = [4, 2, 5, 0, 5, 0, 0, 6];
        // Slot 0: positions 0 and 2 change, 0 is right; slot 1: only position 3 (1 is not asked).
        assert_eq!(changed_cells(&batch, &predicted, 0), (2, 1));
        assert_eq!(changed_cells(&batch, &predicted, 1), (1, 1));
        let mut tally = Tally::default();
        tally.add((4, 2, false), (2, 1), 0.0);
        tally.add((3, 2, false), (1, 1), 0.0);
        let r = tally.result(2, 8);
        assert_eq!((r.token_accuracy, r.changed_token_accuracy), (4.0 / 7.0, 2.0 / 3.0));
        assert!(Tally::default().result(0, 8).changed_token_accuracy.is_nan(), "no changed cell: no figure");
    }

    #[test]
    fn a_sudokus_changed_cells_are_its_blanks() {
        let shape = BoxShape::parse("2x3").unwrap();
        let puzzles = generate_puzzles(shape, 3, Difficulty::Minimal, 7).unwrap();
        let set = to_example_set(&puzzles, 0, 7);
        for_each_batch(&set, 0, 3, |batch, rows| {
            for (slot, puzzle) in puzzles.iter().enumerate().take(rows) {
                let blanks = puzzle.puzzle.iter().filter(|&&d| d + 1 == BLANK).count();
                assert!(blanks > 0);
                assert_eq!(changed_cells(batch, &batch.labels, slot), (blanks, blanks), "the answer, scored");
            }
        });
    }
}
