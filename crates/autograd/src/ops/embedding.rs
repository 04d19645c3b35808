//! STUB: signatures fixed; bodies to be implemented (forward, backward, derivative doc, tests).

use crate::tape::{Ctx, Tape, Var};
use loopgrad_tensor::Float;

#[derive(Clone, Copy, Debug)]
pub struct Meta {}

impl<E: Float> Tape<E> {
    /// Rows of `table` [V, D] gathered by `ids` -> [batch_shape.., D] (ids.len() = product of batch_shape).
    /// Backward scatter-adds into the table's gradient, touching only the rows in `ids`.
    pub fn embedding(&mut self, table: Var, ids: &[usize], batch_shape: &[usize]) -> Var {
        let _ = (table, ids, batch_shape);
        unimplemented!("embedding")
    }
}

pub(crate) fn backward<E: Float>(_m: &Meta, _ctx: &mut Ctx<'_, E>) {
    unimplemented!("backward")
}
