//! STUB: signatures fixed; bodies to be implemented (forward, backward, derivative doc, tests).

use crate::tape::{Ctx, Tape, Var};
use loopgrad_tensor::Float;

#[derive(Clone, Copy, Debug)]
pub struct Meta {}

impl<E: Float> Tape<E> {
    /// Sum of every element -> a scalar (shape []).
    pub fn sum(&mut self, x: Var) -> Var {
        let _ = x;
        unimplemented!("sum")
    }

    /// Mean of every element -> a scalar (shape []).
    pub fn mean(&mut self, x: Var) -> Var {
        let _ = x;
        unimplemented!("mean")
    }
}

pub(crate) fn backward_sum<E: Float>(_m: &Meta, _ctx: &mut Ctx<'_, E>) {
    unimplemented!("backward_sum")
}

pub(crate) fn backward_mean<E: Float>(_m: &Meta, _ctx: &mut Ctx<'_, E>) {
    unimplemented!("backward_mean")
}
