//! `Linear`: y = x W^T (+ b), W stored [out, in] as in PyTorch, LeCun truncated-normal init, zero bias.

use super::{Init, ParamSink};
use loopgrad_autograd::{Param, Tape, Var};
use loopgrad_tensor::Float;

/// A fully connected layer. Parameters `{name}.weight` [out, in] (truncated normal, std 1/sqrt(in)) and, if
/// asked for, `{name}.bias` `[out]` (zeros): the reference `CastedLinear`.
#[derive(Clone, Debug)]
pub struct Linear {
    pub weight: Param,
    pub bias: Option<Param>,
    pub in_features: usize,
    pub out_features: usize,
}

impl Linear {
    pub fn new(
        sink: &mut (impl ParamSink + ?Sized),
        name: &str,
        in_features: usize,
        out_features: usize,
        bias: bool,
    ) -> Self {
        let std = 1.0 / (in_features as f64).sqrt();
        let weight = sink.param(&format!("{name}.weight"), &[out_features, in_features], Init::TruncNormal(std), true);
        let bias = bias.then(|| sink.param(&format!("{name}.bias"), &[out_features], Init::Constant(0.0), true));
        Linear { weight, bias, in_features, out_features }
    }

    /// x [.., in] -> [.., out].
    pub fn forward<E: Float>(&self, tape: &mut Tape<E>, x: Var) -> Var {
        let w = tape.param(self.weight);
        let b = self.bias.map(|b| tape.param(b));
        tape.linear(x, w, b)
    }

    /// Number of parameters of a layer of this size.
    pub fn num_params(in_features: usize, out_features: usize, bias: bool) -> usize {
        in_features * out_features + if bias { out_features } else { 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::{Builder, Manifest};
    use loopgrad_autograd::ParamStore;
    use loopgrad_tensor::{Rng, Tensor};

    #[test]
    fn names_shapes_and_init() {
        let mut store = ParamStore::<f64>::new();
        let mut rng = Rng::new(3);
        let lin = Linear::new(&mut Builder::new(&mut store, &mut rng), "inner.q_head", 256, 2, true);
        assert_eq!(store.name(lin.weight), "inner.q_head.weight");
        assert_eq!(store.shape(lin.weight).dims(), &[2, 256]);
        let b = lin.bias.unwrap();
        assert_eq!(store.name(b), "inner.q_head.bias");
        assert!(store.value(b).data().iter().all(|&x| x == 0.0));
        let w = store.value(lin.weight).data();
        let std = (w.iter().map(|x| x * x).sum::<f64>() / w.len() as f64).sqrt();
        assert!((std - 1.0 / 16.0).abs() < 0.01, "LeCun std 1/sqrt(256) = 0.0625, got {std}");
        let bound = 2.0 / 16.0 / 0.879_625_661_034_239_8;
        assert!(w.iter().all(|x| x.abs() <= bound + 1e-12), "cut at 2 sigma of the underlying normal");

        let mut m = Manifest::new();
        Linear::new(&mut m, "x", 256, 2, true);
        assert_eq!(m.count(|_| true), Linear::num_params(256, 2, true));
    }

    #[test]
    fn forward_is_x_times_w_transposed_plus_b() {
        let mut store = ParamStore::<f64>::new();
        let mut rng = Rng::new(0);
        let lin = Linear::new(&mut Builder::new(&mut store, &mut rng), "l", 3, 2, true);
        store.value_mut(lin.weight).data_mut().copy_from_slice(&[1.0, 2.0, 3.0, -1.0, 0.5, 0.0]);
        store.value_mut(lin.bias.unwrap()).data_mut().copy_from_slice(&[10.0, 20.0]);
        let mut tape = Tape::new(store);
        let x = tape.constant(Tensor::from_vec(vec![1.0, 1.0, 1.0, 0.0, 2.0, -1.0], [2, 3]));
        let y = lin.forward(&mut tape, x);
        assert_eq!(tape.value(y).dims(), &[2, 2]);
        assert_eq!(tape.value(y).data(), &[16.0, 19.5, 11.0, 21.0]);
    }
}
