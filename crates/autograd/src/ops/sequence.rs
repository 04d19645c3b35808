//! STUB: to be implemented (forward as a Tape method, backward, tests).
use crate::tape::Ctx;
use loopgrad_tensor::Float;

#[derive(Clone, Copy, Debug)]
pub struct ConcatMeta {}

#[derive(Clone, Copy, Debug)]
pub struct SliceMeta {}

pub(crate) fn backward_concat<E: Float>(_m: &ConcatMeta, _ctx: &mut Ctx<'_, E>) {
    unimplemented!("backward_concat")
}
pub(crate) fn backward_slice<E: Float>(_m: &SliceMeta, _ctx: &mut Ctx<'_, E>) {
    unimplemented!("backward_slice")
}
