//! `SwiGlu`: the gated MLP of TRM/HRM, down(silu(g) * u) with [g, u] from one fused projection.

use super::{Linear, ParamSink};
use loopgrad_autograd::Tape;
use loopgrad_autograd::Var;
use loopgrad_tensor::Float;

/// The hidden width of the reference SwiGLU for an input width `width` and an `expansion` (4 in every preset):
/// `_find_multiple(round(expansion * width * 2 / 3), 256)`, i.e. two thirds of the classic 4x MLP, rounded
/// half-to-even as Python's `round` does, then up to a multiple of 256. 1536 for width 512; 512 for the
/// token-mixing MLP over L' = 81 + 16 = 97 positions; 256 for any width up to 96.
pub fn swiglu_width(width: usize, expansion: f64) -> usize {
    let hidden = (expansion * width as f64 * 2.0 / 3.0).round_ties_even() as usize;
    hidden.div_ceil(256) * 256
}

/// `{name}.gate_up_proj` (W -> 2I, gate rows first, then up rows) and `{name}.down_proj` (I -> W), no biases.
#[derive(Clone, Debug)]
pub struct SwiGlu {
    pub gate_up_proj: Linear,
    pub down_proj: Linear,
}

impl SwiGlu {
    pub fn new(sink: &mut (impl ParamSink + ?Sized), name: &str, width: usize, expansion: f64) -> Self {
        let inter = swiglu_width(width, expansion);
        SwiGlu {
            gate_up_proj: Linear::new(sink, &format!("{name}.gate_up_proj"), width, 2 * inter, false),
            down_proj: Linear::new(sink, &format!("{name}.down_proj"), inter, width, false),
        }
    }

    /// x [.., W] -> [.., W]. The projection and the gate go through `linear_swiglu`, which untaped never
    /// stores the [.., 2I] gate/up tensor.
    pub fn forward<E: Float>(&self, tape: &mut Tape<E>, x: Var) -> Var {
        let h = match self.gate_up_proj.bias {
            None => tape.linear_swiglu(x, tape.param(self.gate_up_proj.weight)),
            Some(_) => {
                let gate_up = self.gate_up_proj.forward(tape, x);
                tape.swiglu(gate_up)
            }
        };
        self.down_proj.forward(tape, h)
    }

    pub fn num_params(width: usize, expansion: f64) -> usize {
        3 * width * swiglu_width(width, expansion)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::Manifest;

    #[test]
    fn widths_match_the_reference() {
        assert_eq!(swiglu_width(512, 4.0), 1536, "round(1365.33) = 1365 -> 1536");
        assert_eq!(swiglu_width(97, 4.0), 512, "round(258.67) = 259 -> 512");
        assert_eq!(swiglu_width(64, 4.0), 256);
        assert_eq!(swiglu_width(96, 4.0), 256, "256 exactly stays 256");
        assert_eq!(swiglu_width(97, 8.0), 768, "round(517.33) = 517 -> 768");
        // Python's round() takes ties to even: 0.75 * 513 * 2/3 = 256.5 -> 256 (round half up would give 512).
        assert_eq!(swiglu_width(513, 0.75), 256);
        assert_eq!(swiglu_width(0, 4.0), 0);
    }

    #[test]
    fn parameter_names_and_count() {
        let mut m = Manifest::new();
        SwiGlu::new(&mut m, "inner.L_level.layers.0.mlp", 512, 4.0);
        let names: Vec<_> = m.entries.iter().map(|e| (e.name.as_str(), e.shape.clone())).collect();
        assert_eq!(
            names,
            [
                ("inner.L_level.layers.0.mlp.gate_up_proj.weight", vec![3072, 512]),
                ("inner.L_level.layers.0.mlp.down_proj.weight", vec![512, 1536]),
            ]
        );
        assert_eq!(m.count(|_| true), SwiGlu::num_params(512, 4.0));
        assert_eq!(SwiGlu::num_params(512, 4.0), 2_359_296);
    }
}
