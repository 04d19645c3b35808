//! STUB: to be implemented (forward as a Tape method, backward, tests).
use crate::tape::Ctx;
use loopgrad_tensor::Float;

#[derive(Clone, Copy, Debug)]
pub struct CeMeta {}

#[derive(Clone, Copy, Debug)]
pub struct BceMeta {}

pub(crate) fn backward_stablemax_ce<E: Float>(_m: &CeMeta, _ctx: &mut Ctx<'_, E>) {
    unimplemented!("backward_stablemax_ce")
}
pub(crate) fn backward_softmax_ce<E: Float>(_m: &CeMeta, _ctx: &mut Ctx<'_, E>) {
    unimplemented!("backward_softmax_ce")
}
pub(crate) fn backward_bce_logits<E: Float>(_m: &BceMeta, _ctx: &mut Ctx<'_, E>) {
    unimplemented!("backward_bce_logits")
}
