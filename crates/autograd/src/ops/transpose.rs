//! STUB: signatures fixed; bodies to be implemented (forward, backward, derivative doc, tests).

use crate::tape::{Ctx, Tape, Var};
use loopgrad_tensor::Float;

#[derive(Clone, Copy, Debug)]
pub struct Meta {}

impl<E: Float> Tape<E> {
    /// Swaps the last two axes: [.., m, n] -> [.., n, m] (materialised).
    pub fn transpose(&mut self, x: Var) -> Var {
        let _ = x;
        unimplemented!("transpose")
    }
}

pub(crate) fn backward<E: Float>(_m: &Meta, _ctx: &mut Ctx<'_, E>) {
    unimplemented!("backward")
}
