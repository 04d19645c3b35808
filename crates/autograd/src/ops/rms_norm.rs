//! STUB: signatures fixed; bodies to be implemented (forward, backward, derivative doc, tests).

use crate::tape::{Ctx, Tape, Var};
use loopgrad_tensor::Float;

#[derive(Clone, Copy, Debug)]
pub struct Meta {}

impl<E: Float> Tape<E> {
    /// RMSNorm without gain over the last axis: y = x / sqrt(mean(x^2) + eps).
    pub fn rms_norm(&mut self, x: Var, eps: f64) -> Var {
        let _ = (x, eps);
        unimplemented!("rms_norm")
    }
}

pub(crate) fn backward<E: Float>(_m: &Meta, _ctx: &mut Ctx<'_, E>) {
    unimplemented!("backward")
}
