//! STUB: signatures fixed; bodies to be implemented (forward, backward, derivative doc, tests).

use crate::tape::{Ctx, Tape, Var};
use loopgrad_tensor::Float;

#[derive(Clone, Copy, Debug)]
pub struct ConcatMeta {}

#[derive(Clone, Copy, Debug)]
pub struct SliceMeta {}

impl<E: Float> Tape<E> {
    /// Concatenation on the sequence axis: a [B, La, D], b [B, Lb, D] -> [B, La + Lb, D].
    pub fn concat_seq(&mut self, a: Var, b: Var) -> Var {
        let _ = (a, b);
        unimplemented!("concat_seq")
    }

    /// Positions start..start+len on the sequence axis: x [B, L, D] -> [B, len, D].
    pub fn slice_seq(&mut self, x: Var, start: usize, len: usize) -> Var {
        let _ = (x, start, len);
        unimplemented!("slice_seq")
    }
}

pub(crate) fn backward_concat<E: Float>(_m: &ConcatMeta, _ctx: &mut Ctx<'_, E>) {
    unimplemented!("backward_concat")
}

pub(crate) fn backward_slice<E: Float>(_m: &SliceMeta, _ctx: &mut Ctx<'_, E>) {
    unimplemented!("backward_slice")
}
