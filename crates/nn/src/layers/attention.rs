//! `Attention`: bidirectional multi-head self-attention with a fused qkv projection and rotary positions.

use super::{Linear, ParamSink};
use loopgrad_autograd::{Tape, Var};
use loopgrad_tensor::Float;

/// `{name}.qkv_proj` (D -> 3D: q heads, then k heads, then v heads) and `{name}.o_proj` (D -> D), no biases;
/// `heads` heads of D / heads each, no causal mask, RoPE on q and k when tables are given.
#[derive(Clone, Debug)]
pub struct Attention {
    pub qkv_proj: Linear,
    pub o_proj: Linear,
    pub heads: usize,
}

impl Attention {
    pub fn new(sink: &mut (impl ParamSink + ?Sized), name: &str, width: usize, heads: usize) -> Self {
        assert!(
            heads > 0 && width.is_multiple_of(heads),
            "Attention {name}: width {width} is not a multiple of {heads} heads"
        );
        Attention {
            qkv_proj: Linear::new(sink, &format!("{name}.qkv_proj"), width, 3 * width, false),
            o_proj: Linear::new(sink, &format!("{name}.o_proj"), width, width, false),
            heads,
        }
    }

    pub fn head_dim(&self) -> usize {
        self.o_proj.in_features / self.heads
    }

    /// x [B, L, D] -> [B, L, D]; `rope` = (cos, sin) [L, head_dim] from [`rope_tables`](super::rope_tables), as tape constants.
    pub fn forward<E: Float>(&self, tape: &mut Tape<E>, x: Var, rope: Option<(Var, Var)>) -> Var {
        let qkv = self.qkv_proj.forward(tape, x);
        let o = tape.attention(qkv, self.heads, rope);
        self.o_proj.forward(tape, o)
    }

    pub fn num_params(width: usize) -> usize {
        4 * width * width
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::Manifest;

    #[test]
    fn parameter_names_and_count() {
        let mut m = Manifest::new();
        let a = Attention::new(&mut m, "inner.L_level.layers.1.self_attn", 512, 8);
        assert_eq!(a.head_dim(), 64);
        assert_eq!(m.entries[0].name, "inner.L_level.layers.1.self_attn.qkv_proj.weight");
        assert_eq!(m.entries[0].shape, [1536, 512]);
        assert_eq!(m.entries[1].name, "inner.L_level.layers.1.self_attn.o_proj.weight");
        assert_eq!(m.count(|_| true), Attention::num_params(512));
    }
}
