//! STUB: signatures fixed; bodies to be implemented (forward, backward, derivative doc, tests).

use crate::tape::{Ctx, Tape, Var};
use loopgrad_tensor::Float;

#[derive(Clone, Copy, Debug)]
pub struct MatMulMeta {}

#[derive(Clone, Copy, Debug)]
pub struct LinearMeta {}

impl<E: Float> Tape<E> {
    /// y = x W^T (+ b): x [.., in], w [out, in] (PyTorch layout), b [out] -> [.., out].
    pub fn linear(&mut self, x: Var, w: Var, b: Option<Var>) -> Var {
        let _ = (x, w, b);
        unimplemented!("linear")
    }

    /// Batched product over equal leading axes: a [.., m, k] times b [.., k, n] (or b [.., n, k] when
    /// `trans_b`) -> [.., m, n].
    pub fn matmul(&mut self, a: Var, b: Var, trans_b: bool) -> Var {
        let _ = (a, b, trans_b);
        unimplemented!("matmul")
    }
}

pub(crate) fn backward_matmul<E: Float>(_m: &MatMulMeta, _ctx: &mut Ctx<'_, E>) {
    unimplemented!("backward_matmul")
}

pub(crate) fn backward_linear<E: Float>(_m: &LinearMeta, _ctx: &mut Ctx<'_, E>) {
    unimplemented!("backward_linear")
}
