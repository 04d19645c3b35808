//! One supervision step's inputs and outputs, the ACT loss of the reference recipe, and the step's metrics.
//!
//! ```text
//! loss = ( sum_b CE_b  +  0.5 sum_b BCE(q_halt_b, exact_b)  [+ 0.5 sum_b BCE(q_continue_b, target_b)] ) / B
//! CE_b = mean over the valid tokens of sequence b of the stablemax cross-entropy
//! ```
//! "valid" means a label other than [`IGNORE_LABEL`]; exact_b means every valid token's argmax is right.

use loopgrad_autograd::ops::nograd::argmax_last;
use loopgrad_autograd::window::RecursionRun;
use loopgrad_autograd::{Tape, Var};
use loopgrad_tensor::{Float, Tensor};

/// Labels equal to this id (PAD, token 0 in every puzzle) contribute nothing to the loss or the accuracy.
pub const IGNORE_LABEL: usize = 0;

/// A batch of B examples of L tokens, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// Input tokens [B * L].
    pub inputs: Vec<usize>,
    /// Target tokens [B * L] ([`IGNORE_LABEL`] where nothing is asked).
    pub labels: Vec<usize>,
    /// Puzzle identifier of each example [B] (rows of the puzzle-embedding table).
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

/// The recurrent state of every slot: one tensor [B, P + L, D] per latent (TRM: [y, z]; single-z: [z];
/// multi-scale: [y, z_1, .., z_n]; HRM: [z_H, z_L]; baseline: [z]). Detached: no gradient flows into a step
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

/// The loss on the tape and what the trainer logs.
pub struct Loss {
    /// The scalar to call backward on.
    pub loss: Var,
    pub slots: Vec<SlotStats>,
    /// sum_b CE_b, sum_b BCE(q_halt), sum_b BCE(q_continue) (0 without a target), before dividing by B.
    pub lm_loss: f64,
    pub q_halt_loss: f64,
    pub q_continue_loss: f64,
}

/// Per-token correctness of `logits` [B, L, V] against `labels` [B * L]: per slot (valid, correct, exact).
pub fn token_accuracy<E: Float>(logits: &Tensor<E>, labels: &[usize]) -> Vec<(usize, usize, bool)> {
    let l = logits.dims()[1];
    let mut pred = vec![0; labels.len()];
    argmax_last(logits, &mut pred);
    pred.chunks_exact(l)
        .zip(labels.chunks_exact(l))
        .map(|(p, y)| {
            let valid = y.iter().filter(|&&t| t != IGNORE_LABEL).count();
            let correct = p.iter().zip(y).filter(|(p, y)| **y != IGNORE_LABEL && p == y).count();
            (valid, correct, correct == valid)
        })
        .collect()
}

/// The reference ACT loss (see the module doc). `q_continue_target` [B] (HRM's bootstrapped target, from
/// [`crate::Model::q_continue_target`]) adds the continue term.
pub fn act_loss<E: Float>(
    tape: &mut Tape<E>,
    out: &StepOutput<E>,
    batch: &Batch,
    q_continue_target: Option<&[E]>,
) -> Loss {
    let b = batch.size();
    let acc = token_accuracy(tape.value(out.logits), &batch.labels);
    let ce = tape.stablemax_ce(out.logits, &batch.labels, IGNORE_LABEL); // [B]
    let lm = tape.sum(ce);
    let exact: Vec<E> = acc.iter().map(|a| if a.2 { E::ONE } else { E::ZERO }).collect();
    let exact = tape.constant(Tensor::from_vec(exact, [b, 1, 1]));
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
    let slots = (0..b)
        .map(|i| SlotStats {
            valid: acc[i].0,
            correct: acc[i].1,
            exact: acc[i].2,
            lm_loss: ce_v[i].to_f64(),
            q_halt: qh[i].to_f64(),
            q_continue: qc[i].to_f64(),
        })
        .collect();
    Loss {
        loss,
        slots,
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
