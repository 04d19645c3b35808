//! STUB: signatures fixed; bodies to be implemented (forward, backward, derivative doc, tests).

use crate::tape::{Ctx, Tape, Var};
use loopgrad_tensor::Float;

#[derive(Clone, Copy, Debug)]
pub struct Meta {}

impl<E: Float> Tape<E> {
    /// Rotary position embedding (rotate-half): x [B, L, H, hd], cos and sin [L, hd] (constants) -> same shape.
    pub fn rope(&mut self, x: Var, cos: Var, sin: Var) -> Var {
        let _ = (x, cos, sin);
        unimplemented!("rope")
    }
}

pub(crate) fn backward<E: Float>(_m: &Meta, _ctx: &mut Ctx<'_, E>) {
    unimplemented!("backward")
}
