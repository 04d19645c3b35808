//! STUB: signatures fixed; bodies to be implemented (forward, backward, derivative doc, tests).

use crate::tape::{Ctx, Tape, Var};
use loopgrad_tensor::Float;

#[derive(Clone, Copy, Debug)]
pub struct CeMeta {}

#[derive(Clone, Copy, Debug)]
pub struct BceMeta {}

impl<E: Float> Tape<E> {
    /// Stablemax cross-entropy per sequence: logits [B, L, V], labels [B * L]; positions whose label is
    /// `ignore` contribute nothing -> [B], each the mean over that sequence's valid positions (0 if none).
    pub fn stablemax_ce(&mut self, logits: Var, labels: &[usize], ignore: usize) -> Var {
        let _ = (logits, labels, ignore);
        unimplemented!("stablemax_ce")
    }

    /// Softmax cross-entropy per sequence, with the same conventions as [`Tape::stablemax_ce`].
    pub fn softmax_ce(&mut self, logits: Var, labels: &[usize], ignore: usize) -> Var {
        let _ = (logits, labels, ignore);
        unimplemented!("softmax_ce")
    }

    /// Binary cross-entropy with logits, element-wise: x and target of the same shape -> same shape.
    pub fn bce_logits(&mut self, x: Var, target: Var) -> Var {
        let _ = (x, target);
        unimplemented!("bce_logits")
    }
}

pub(crate) fn backward_stablemax_ce<E: Float>(_m: &CeMeta, _ctx: &mut Ctx<'_, E>) {
    unimplemented!("backward_stablemax_ce")
}

pub(crate) fn backward_softmax_ce<E: Float>(_m: &CeMeta, _ctx: &mut Ctx<'_, E>) {
    unimplemented!("backward_softmax_ce")
}

pub(crate) fn backward_bce_logits<E: Float>(_m: &BceMeta, _ctx: &mut Ctx<'_, E>) {
    unimplemented!("backward_bce_logits")
}
