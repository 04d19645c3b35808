//! Evaluation: every example runs exactly `steps` supervision steps from the init carry, without a tape (the
//! reference evaluates at N_sup with halting off, so that a batch halts together). Scores are taken at the final
//! step.

use crate::trainer::fill_row;
use loopgrad_autograd::Tape;
use loopgrad_models::step::{token_accuracy, Batch, IGNORE_LABEL};
use loopgrad_models::Model;
use loopgrad_puzzles::ExampleSet;
use serde::Serialize;

/// Held-out scores. `loss` is the mean over examples of the per-sequence mean stablemax cross-entropy at the
/// final supervision step.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EvalResult {
    pub examples: usize,
    pub exact_accuracy: f64,
    pub token_accuracy: f64,
    pub loss: f64,
    pub steps: usize,
}

/// What the model answered for each example (for task-specific scoring: maze validity, ARC voting).
#[derive(Clone, Debug, Default)]
pub struct Predictions {
    /// Argmax tokens [examples][seq_len].
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
    let l = set.seq_len();
    let mut tally = Tally::default();
    let mut preds = Predictions::default();
    let n = for_each_batch(set, limit, batch_size, |batch, b| {
        let mut carry = model.initial_carry(&tape.params, b);
        for s in 0..steps {
            let last = s + 1 == steps;
            let scores = tape.no_grad(|t| {
                let out = model.supervision_step(t, carry, batch);
                let scores = last.then(|| {
                    let ce = t.stablemax_ce(out.logits, &batch.labels, IGNORE_LABEL);
                    let logits = t.value(out.logits);
                    let mut argmax = vec![0usize; batch.labels.len()];
                    loopgrad_autograd::ops::nograd::argmax_last(logits, &mut argmax);
                    (token_accuracy(logits, &batch.labels), t.value(ce).to_vec(), t.value(out.q_halt).to_vec(), argmax)
                });
                (out.carry, scores)
            });
            carry = scores.0;
            tape.reset();
            if let Some((acc, ce, q_halt, argmax)) = scores.1 {
                for i in 0..b {
                    tally.add(acc[i], ce[i]);
                    preds.q_halt.push(q_halt[i] as f64);
                    preds.tokens.push(argmax[i * l..(i + 1) * l].iter().map(|&t| t as u8).collect());
                }
            }
        }
    });
    (tally.result(n, steps), preds)
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

/// The running sums of an evaluation, one example at a time, in order (so the loss sums the same way wherever
/// it is used).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Tally {
    exact: usize,
    correct: usize,
    valid: usize,
    loss: f64,
}

impl Tally {
    /// One example: its `(valid, correct, exact)` from `token_accuracy`, and its mean cross-entropy.
    pub(crate) fn add(&mut self, (valid, correct, exact): (usize, usize, bool), loss: f32) {
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
            loss: self.loss / examples.max(1) as f64,
            steps,
        }
    }
}
