//! The post-norm block of TRM/HRM in its two variants, and a stack of blocks with input injection.
//!
//! ```text
//! attention variant:  h = rms(h + attn(h));                          h = rms(h + swiglu_D(h))
//! mlp_t variant:      t = h^T [B, D, L']; t = rms(t + swiglu_L'(t)); h = t^T; h = rms(h + swiglu_D(h))
//! ```
//! rms is RMSNorm over the last axis without a gain: x / sqrt(mean(x^2) + eps), eps = 1e-5, and each
//! `rms(h + f(h))` is one fused op (`Tape::add_rms_norm`: the sum is never stored). In the mlp_t variant the
//! first norm therefore runs over the token axis, as in the reference (it normalises the transposed tensor).
//! The MLP variant has no positional encoding: the token MLP's weights are per position.

use super::{Attention, ParamSink, SwiGlu};
use loopgrad_autograd::{Tape, Var};
use loopgrad_tensor::Float;

/// The sizes of a block.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BlockSpec {
    /// D, the hidden width.
    pub width: usize,
    /// Attention heads (ignored by the mlp_t variant).
    pub heads: usize,
    /// SwiGLU expansion (4 in every reference config).
    pub expansion: f64,
    /// `Some(L')` for the token-mixing MLP variant over L' positions (prefix + sequence), `None` for attention.
    pub token_mlp_positions: Option<usize>,
    /// RMSNorm epsilon (1e-5).
    pub eps: f64,
}

impl BlockSpec {
    pub fn num_params(&self) -> usize {
        let mixer = match self.token_mlp_positions {
            Some(l) => SwiGlu::num_params(l, self.expansion),
            None => Attention::num_params(self.width),
        };
        mixer + SwiGlu::num_params(self.width, self.expansion)
    }
}

/// What mixes information across positions.
#[derive(Clone, Debug)]
pub enum Mixer {
    /// `self_attn`: multi-head attention with RoPE.
    Attention(Attention),
    /// `mlp_t`: a SwiGLU over the token axis (TRM's Sudoku model).
    TokenMlp(SwiGlu),
}

/// One post-norm block: `{name}.self_attn.*` or `{name}.mlp_t.*`, then `{name}.mlp.*`.
#[derive(Clone, Debug)]
pub struct Block {
    pub mixer: Mixer,
    pub mlp: SwiGlu,
    pub eps: f64,
}

impl Block {
    pub fn new(sink: &mut (impl ParamSink + ?Sized), name: &str, spec: &BlockSpec) -> Self {
        let mixer = match spec.token_mlp_positions {
            Some(l) => Mixer::TokenMlp(SwiGlu::new(sink, &format!("{name}.mlp_t"), l, spec.expansion)),
            None => Mixer::Attention(Attention::new(sink, &format!("{name}.self_attn"), spec.width, spec.heads)),
        };
        let mlp = SwiGlu::new(sink, &format!("{name}.mlp"), spec.width, spec.expansion);
        Block { mixer, mlp, eps: spec.eps }
    }

    /// h [B, L', D] -> [B, L', D]. `rope` is used by the attention variant only.
    pub fn forward<E: Float>(&self, tape: &mut Tape<E>, h: Var, rope: Option<(Var, Var)>) -> Var {
        let h = match &self.mixer {
            Mixer::Attention(attn) => {
                let a = attn.forward(tape, h, rope);
                tape.add_rms_norm(h, a, self.eps)
            }
            Mixer::TokenMlp(mlp_t) => {
                let t = tape.transpose(h);
                let m = mlp_t.forward(tape, t);
                let n = tape.add_rms_norm(t, m, self.eps);
                tape.transpose(n)
            }
        };
        let m = self.mlp.forward(tape, h);
        tape.add_rms_norm(h, m, self.eps)
    }
}

/// A stack of blocks `{name}.layers.{i}` applied to `h + injection`: the reference `ReasoningModule`, TRM's
/// `net` and HRM's H and L levels.
#[derive(Clone, Debug)]
pub struct BlockStack {
    pub layers: Vec<Block>,
}

impl BlockStack {
    pub fn new(sink: &mut (impl ParamSink + ?Sized), name: &str, num_layers: usize, spec: &BlockSpec) -> Self {
        let layers = (0..num_layers).map(|i| Block::new(sink, &format!("{name}.layers.{i}"), spec)).collect();
        BlockStack { layers }
    }

    /// blocks(h + injection) (or blocks(h) without an injection), h and injection [B, L', D].
    pub fn forward<E: Float>(
        &self,
        tape: &mut Tape<E>,
        h: Var,
        injection: Option<Var>,
        rope: Option<(Var, Var)>,
    ) -> Var {
        let mut h = match injection {
            Some(inj) => tape.add(h, inj),
            None => h,
        };
        for layer in &self.layers {
            h = layer.forward(tape, h, rope);
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::{rope_tables, Builder, Manifest};
    use loopgrad_autograd::gradcheck::GradCheck;
    use loopgrad_autograd::ParamStore;
    use loopgrad_tensor::{Rng, Tensor};

    /// Both variants of a two-block stack with an injection, against finite differences in f64: the input, the
    /// injection and (a sample of) every weight.
    #[test]
    fn block_stack_gradients_match_finite_differences() {
        for token_mlp_positions in [None, Some(5)] {
            let spec = BlockSpec { width: 4, heads: 2, expansion: 4.0, token_mlp_positions, eps: 1e-5 };
            let mut store = ParamStore::<f64>::new();
            let mut rng = Rng::new(7);
            let stack = BlockStack::new(&mut Builder::new(&mut store, &mut rng), "net", 2, &spec);
            let mut tape = Tape::new(store);
            let mut inputs = [Tensor::zeros([2, 5, 4]), Tensor::zeros([2, 5, 4])];
            for t in &mut inputs {
                rng.fill_normal(t.data_mut(), 1.0);
            }
            let (cos, sin) = rope_tables::<f64>(5, 2, 10000.0);
            let check = GradCheck { max_per_tensor: 12, ..GradCheck::default() };
            check
                .check("block stack", &mut tape, &inputs, |t, v| {
                    let rope =
                        token_mlp_positions.is_none().then(|| (t.constant(cos.clone()), t.constant(sin.clone())));
                    stack.forward(t, v[0], Some(v[1]), rope)
                })
                .unwrap_or_else(|e| panic!("{token_mlp_positions:?}: {e}"));
        }
    }

    fn spec(token_mlp_positions: Option<usize>) -> BlockSpec {
        BlockSpec { width: 512, heads: 8, expansion: 4.0, token_mlp_positions, eps: 1e-5 }
    }

    #[test]
    fn the_reference_names_in_order() {
        let mut m = Manifest::new();
        BlockStack::new(&mut m, "inner.L_level", 2, &spec(Some(97)));
        let names: Vec<&str> = m.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names[..4],
            [
                "inner.L_level.layers.0.mlp_t.gate_up_proj.weight",
                "inner.L_level.layers.0.mlp_t.down_proj.weight",
                "inner.L_level.layers.0.mlp.gate_up_proj.weight",
                "inner.L_level.layers.0.mlp.down_proj.weight",
            ]
        );
        assert_eq!(m.entries[0].shape, [1024, 97]);
        assert_eq!(m.entries.len(), 8);
        assert_eq!(m.count(|_| true), 2 * spec(Some(97)).num_params());
    }

    #[test]
    fn block_sizes_behind_the_published_counts() {
        // Attention block at D = 512: qkv 786,432 + o 262,144 + SwiGLU 2,359,296.
        assert_eq!(spec(None).num_params(), 3_407_872);
        // mlp_t block over L' = 97: token SwiGLU 3 * 97 * 512 = 148,992 + SwiGLU 2,359,296.
        assert_eq!(spec(Some(97)).num_params(), 2_508_288);
    }
}
