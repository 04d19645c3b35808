//! STUB: signatures fixed; bodies to be implemented (forward, backward, derivative doc, tests).

use crate::tape::{Ctx, Tape, Var};
use loopgrad_tensor::Float;

#[derive(Clone, Copy, Debug)]
pub struct Meta {}

impl<E: Float> Tape<E> {
    /// SwiGLU on a fused projection: gate_up [.., 2I] = [g, u] (gate first) -> silu(g) * u [.., I].
    pub fn swiglu(&mut self, gate_up: Var) -> Var {
        let _ = gate_up;
        unimplemented!("swiglu")
    }
}

pub(crate) fn backward<E: Float>(_m: &Meta, _ctx: &mut Ctx<'_, E>) {
    unimplemented!("backward")
}
