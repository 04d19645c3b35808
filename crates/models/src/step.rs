//! One supervision step's inputs and outputs, the ACT loss of the reference recipe, and the step's metrics.
//!
//! ```text
//! loss = ( sum_b CE_b  +  0.5 sum_b BCE(q_halt_b, exact_b)  [+ 0.5 sum_b BCE(q_continue_b, target_b)] ) / B
//! CE_b = mean over the valid tokens of sequence b of the stablemax cross-entropy
//! ```
//! "valid" means a label other than [`IGNORE_LABEL`]; exact_b means every valid token's argmax is right.

use loopgrad_autograd::window::RecursionRun;
use loopgrad_autograd::{Tape, Var};
use loopgrad_tensor::{kernels, Float, Tensor};
use std::ops::{Deref, DerefMut};

/// Labels equal to this id (PAD, token 0 in every puzzle) contribute nothing to the loss or the accuracy.
pub const IGNORE_LABEL: usize = 0;

/// A batch of B examples of L tokens, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// Input tokens [B * L].
    pub inputs: Vec<usize>,
    /// Target tokens [B * L] ([`IGNORE_LABEL`] where nothing is asked).
    pub labels: Vec<usize>,
    /// Puzzle identifier of each example `[B]` (rows of the puzzle-embedding table).
    pub puzzle_ids: Vec<usize>,
}

impl Batch {
    pub fn size(&self) -> usize {
        self.puzzle_ids.len()
    }

    /// Panics with a message naming the mismatch (a caller bug, not bad data: loaders validate data).
    pub fn check(&self, seq_len: usize, num_puzzles: usize) {
        let b = self.size();
        assert!(
            self.inputs.len() == b * seq_len && self.labels.len() == b * seq_len,
            "Batch: {} inputs and {} labels for {b} examples of {seq_len} tokens",
            self.inputs.len(),
            self.labels.len()
        );
        if let Some(&p) = self.puzzle_ids.iter().find(|&&p| p >= num_puzzles) {
            panic!("Batch: puzzle id {p} out of range for {num_puzzles} puzzle identifiers");
        }
    }
}

/// The recurrent state of every slot: one tensor [B, P + L, D] per latent (TRM: `[y, z]`; single-z: `[z]`;
/// multi-scale: `[y, z_1, .., z_n]`; HRM: `[z_H, z_L]`; baseline: `[z]`). Detached: no gradient flows into a step
/// from the previous one.
#[derive(Clone, Debug, PartialEq)]
pub struct Carry<E: Float> {
    pub states: Vec<Tensor<E>>,
}

impl<E: Float> Carry<E> {
    pub fn batch_size(&self) -> usize {
        self.states[0].dims()[0]
    }
}

/// No states yet (a placeholder while a step consumes the carry, or a buffer for [`crate::Model::restart_carry`]).
impl<E: Float> Default for Carry<E> {
    fn default() -> Self {
        Carry { states: Vec::new() }
    }
}

/// The carry as tape variables while a step runs (TRM: [y, z]), on the stack for up to [`CarryVars::INLINE`]
/// latents so that a step allocates nothing; more (multi-scale z with n >= 8) spill into a `Vec`.
pub struct CarryVars {
    inline: [Var; CarryVars::INLINE],
    spilled: Vec<Var>,
    len: usize,
}

impl CarryVars {
    /// Every model's carry but multi-scale z with n >= 8 fits.
    pub const INLINE: usize = 8;

    /// Each state of `states` as a tape constant (moved, not copied), in carry order.
    pub fn constants<E: Float>(tape: &mut Tape<E>, states: impl ExactSizeIterator<Item = Tensor<E>>) -> Self {
        let len = states.len();
        let spill = len > Self::INLINE;
        let mut vars = CarryVars {
            inline: [Var::Value(0); Self::INLINE], // entries from `len` on are never read
            spilled: Vec::with_capacity(if spill { len } else { 0 }),
            len,
        };
        for (i, t) in states.enumerate() {
            let v = tape.constant(t);
            if spill {
                vars.spilled.push(v);
            } else {
                vars.inline[i] = v;
            }
        }
        vars
    }
}

impl Deref for CarryVars {
    type Target = [Var];
    fn deref(&self) -> &[Var] {
        if self.len > Self::INLINE {
            &self.spilled
        } else {
            &self.inline[..self.len]
        }
    }
}

impl DerefMut for CarryVars {
    fn deref_mut(&mut self) -> &mut [Var] {
        if self.len > Self::INLINE {
            &mut self.spilled
        } else {
            &mut self.inline[..self.len]
        }
    }
}

/// What backward needs from the recursion beyond the tape (the recomputation of `full_recompute`).
pub struct PendingBackward {
    pub run: RecursionRun,
    pub x: Var,
    pub rope: Option<(Var, Var)>,
}

/// What one supervision step produced on the tape, and the carry for the next step.
pub struct StepOutput<E: Float> {
    /// [B, L, V].
    pub logits: Var,
    /// [B, 1, 1].
    pub q_halt: Var,
    /// [B, 1, 1].
    pub q_continue: Var,
    /// The new carry (a copy of the final states; the tape keeps its own for backward).
    pub carry: Carry<E>,
    /// Consumed by [`crate::Model::backward`].
    pub recursion: Option<PendingBackward>,
}

/// Per-slot results of a step (no gradient).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SlotStats {
    /// Tokens with a label other than [`IGNORE_LABEL`].
    pub valid: usize,
    /// Valid tokens whose argmax is the label.
    pub correct: usize,
    /// Every valid token right (the target of q_halt).
    pub exact: bool,
    /// Mean stablemax cross-entropy over the valid tokens.
    pub lm_loss: f64,
    pub q_halt: f64,
    pub q_continue: f64,
}

/// The loss on the tape and its parts (the per-slot results go to the caller's buffer, see [`act_loss`]).
pub struct Loss {
    /// The scalar to call backward on.
    pub loss: Var,
    /// sum_b CE_b, sum_b BCE(q_halt), sum_b BCE(q_continue) (0 without a target), before dividing by B.
    pub lm_loss: f64,
    pub q_halt_loss: f64,
    pub q_continue_loss: f64,
}

/// Per-token correctness of `logits` [B, L, V] against `labels` [B * L]: per slot (valid, correct, exact).
pub fn token_accuracy<E: Float>(logits: &Tensor<E>, labels: &[usize]) -> Vec<(usize, usize, bool)> {
    slot_accuracies(logits, labels).collect()
}

/// [`token_accuracy`] one slot at a time, without allocating.
pub fn slot_accuracies<'a, E: Float>(
    logits: &'a Tensor<E>,
    labels: &'a [usize],
) -> impl Iterator<Item = (usize, usize, bool)> + 'a {
    let (seq_len, vocab) = (logits.dims()[1], logits.dims()[2]);
    let slots = logits.data().chunks_exact(seq_len * vocab).zip(labels.chunks_exact(seq_len));
    slots.map(move |(logits, labels)| slot_accuracy(logits, labels, vocab))
}

/// One slot's (valid, correct, exact): its `logits` [L, V] against its `labels` [L]. The argmax is the row kernel
/// `argmax_last` runs, one token at a time so that it needs no output buffer.
fn slot_accuracy<E: Float>(logits: &[E], labels: &[usize], vocab: usize) -> (usize, usize, bool) {
    let (mut valid, mut correct) = (0, 0);
    for (row, &label) in logits.chunks_exact(vocab).zip(labels).filter(|(_, &y)| y != IGNORE_LABEL) {
        let mut predicted = 0;
        kernels::row_argmax(row, vocab, std::slice::from_mut(&mut predicted));
        valid += 1;
        correct += (predicted == label) as usize;
    }
    (valid, correct, correct == valid)
}

/// The reference ACT loss (see the module doc). `q_continue_target` `[B]` (HRM's bootstrapped target, from
/// [`crate::Model::q_continue_target`]) adds the continue term. `slots` receives the per-slot results (its
/// capacity is reused: keep it across steps and a steady-state step allocates nothing here).
pub fn act_loss<E: Float>(
    tape: &mut Tape<E>,
    out: &StepOutput<E>,
    batch: &Batch,
    q_continue_target: Option<&[E]>,
    slots: &mut Vec<SlotStats>,
) -> Loss {
    let b = batch.size();
    slots.clear();
    let accuracies = slot_accuracies(tape.value(out.logits), &batch.labels);
    slots.extend(accuracies.map(|(valid, correct, exact)| SlotStats { valid, correct, exact, ..SlotStats::default() }));
    let ce = tape.stablemax_ce(out.logits, &batch.labels, IGNORE_LABEL); // [B]
    let lm = tape.sum(ce);
    let mut exact = Tensor::uninit([b, 1, 1]);
    for (e, s) in exact.data_mut().iter_mut().zip(slots.iter()) {
        *e = if s.exact { E::ONE } else { E::ZERO };
    }
    let exact = tape.constant(exact);
    let halt = tape.bce_logits(out.q_halt, exact);
    let halt = tape.sum(halt);
    let mut q_terms = halt;
    let mut q_continue_loss = 0.0;
    if let Some(target) = q_continue_target {
        let target = tape.constant(Tensor::from_slice(target, [b, 1, 1]));
        let cont = tape.bce_logits(out.q_continue, target);
        let cont = tape.sum(cont);
        q_continue_loss = tape.value(cont).item().to_f64();
        q_terms = tape.add(halt, cont);
    }
    let q_terms = tape.scale(q_terms, 0.5);
    let total = tape.add(lm, q_terms);
    let loss = tape.scale(total, 1.0 / b as f64);

    let (ce_v, qh, qc) = (tape.value(ce).data(), tape.value(out.q_halt).data(), tape.value(out.q_continue).data());
    for (i, s) in slots.iter_mut().enumerate() {
        (s.lm_loss, s.q_halt, s.q_continue) = (ce_v[i].to_f64(), qh[i].to_f64(), qc[i].to_f64());
    }
    Loss {
        loss,
        lm_loss: tape.value(lm).item().to_f64(),
        q_halt_loss: tape.value(halt).item().to_f64(),
        q_continue_loss,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_accuracy_ignores_pad_labels() {
        // B = 2, L = 3, V = 3.
        #[rustfmt::skip]
        let logits = Tensor::<f32>::from_vec(vec![
            0.0, 1.0, 0.0,   0.0, 0.0, 1.0,   1.0, 0.0, 0.0,
            0.0, 1.0, 0.0,   0.0, 1.0, 0.0,   0.0, 0.0, 1.0,
        ], [2, 3, 3]);
        let labels = [1, 2, IGNORE_LABEL, 1, 2, 2];
        assert_eq!(token_accuracy(&logits, &labels), [(2, 2, true), (3, 2, false)]);
    }
}
