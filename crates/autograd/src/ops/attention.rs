//! STUB: signatures fixed; bodies to be implemented (forward, backward, derivative doc, tests).

use crate::tape::{Ctx, Tape, Var};
use loopgrad_tensor::Float;

#[derive(Clone, Copy, Debug)]
pub struct Meta {}

impl<E: Float> Tape<E> {
    /// Fused bidirectional multi-head attention on a fused projection: qkv [B, L, 3 H hd] laid out as
    /// [q heads | k heads | v heads] (the TRM/HRM layout), RoPE applied to q and k when `rope` = (cos, sin)
    /// [L, hd] is given -> [B, L, H hd].
    pub fn attention(&mut self, qkv: Var, heads: usize, rope: Option<(Var, Var)>) -> Var {
        let _ = (qkv, heads, rope);
        unimplemented!("attention")
    }
}

pub(crate) fn backward<E: Float>(_m: &Meta, _ctx: &mut Ctx<'_, E>) {
    unimplemented!("backward")
}
