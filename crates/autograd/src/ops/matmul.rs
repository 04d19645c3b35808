//! STUB: to be implemented (forward as a Tape method, backward, tests).
use crate::tape::Ctx;
use loopgrad_tensor::Float;

#[derive(Clone, Copy, Debug)]
pub struct MatMulMeta {}

#[derive(Clone, Copy, Debug)]
pub struct LinearMeta {}

pub(crate) fn backward_matmul<E: Float>(_m: &MatMulMeta, _ctx: &mut Ctx<'_, E>) {
    unimplemented!("backward_matmul")
}
pub(crate) fn backward_linear<E: Float>(_m: &LinearMeta, _ctx: &mut Ctx<'_, E>) {
    unimplemented!("backward_linear")
}
