//! AdamW (Loshchilov & Hutter, decoupled weight decay), as `torch.optim.AdamW` computes it, per element at step
//! t (counted from 1):
//!
//! ```text
//! p  = p * (1 - lr * wd)
//! m  = lerp(m, g, 1 - b1)      = m + (1 - b1) (g - m)
//! v  = b2 v + (1 - b2) g^2
//! p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
//! ```
//!
//! (PyTorch's `_single_tensor_adamw`: `param.mul_(1 - lr * wd)`, `exp_avg.lerp_`, `exp_avg_sq.mul_.addcmul_`,
//! `denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)`, `param.addcdiv_(exp_avg, denom,
//! value=-step_size)`.) The alternative to [`super::AdamAtan2`] for the study; same state, same checkpoint
//! names.

use super::{bias_corrections, Adam, AdamRule};
use loopgrad_tensor::Float;
use serde::{Deserialize, Serialize};

/// Hyper-parameters of [`AdamW`]; the defaults are PyTorch's.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01 }
    }
}

/// AdamW over a fixed list of parameters.
pub type AdamW<E> = Adam<E, AdamWConfig>;

impl AdamRule for AdamWConfig {
    const NAME: &'static str = "AdamW";

    fn update<E: Float>(self, lr: f64, t: u64) -> impl Fn(&mut [E], &mut [E], &mut [E], &mut [E]) {
        let AdamWConfig { beta1, beta2, eps, weight_decay } = self;
        let (bc1, bc2) = bias_corrections(beta1, beta2, t);
        let step_size = E::from_f64(lr / bc1);
        let decay = E::from_f64(1.0 - lr * weight_decay);
        let bc2_sqrt = E::from_f64(bc2.sqrt());
        let eps = E::from_f64(eps);
        let (one_minus_b1, b2, one_minus_b2) = (E::from_f64(1.0 - beta1), E::from_f64(beta2), E::from_f64(1.0 - beta2));
        move |value, grad, m, v| {
            for (((x, g), m), v) in value.iter_mut().zip(grad).zip(m).zip(v) {
                let gi = *g;
                *g = E::ZERO;
                *m += one_minus_b1 * (gi - *m);
                *v = *v * b2 + one_minus_b2 * gi * gi;
                let denom = v.sqrt() / bc2_sqrt + eps;
                *x = *x * decay - step_size * (*m / denom);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::Optimizer;
    use loopgrad_autograd::ParamStore;
    use loopgrad_tensor::Tensor;

    #[test]
    fn first_step_is_lr_times_sign_shrunk_by_eps_and_decay() {
        // t = 1: m/(1-b1) = g and sqrt(v)/sqrt(1-b2) = |g|, so the step is lr * g / (|g| + eps).
        let mut store = ParamStore::<f64>::new();
        let p = store.add("w", Tensor::from_slice(&[1.0, -1.0, 3.0], [3]));
        store.grad_mut(p).data_mut().copy_from_slice(&[2.0, -1e-8, 0.0]);
        let cfg = AdamWConfig { weight_decay: 0.1, ..Default::default() };
        let mut opt = AdamW::new(&store, vec![p], cfg);
        opt.step(&mut store, 0.01);
        let decay = 1.0 - 0.01 * 0.1;
        let want = [1.0 * decay - 0.01 * 2.0 / (2.0 + 1e-8), -decay + 0.01 * 1e-8 / (1e-8 + 1e-8), 3.0 * decay];
        for (got, want) in store.value(p).data().iter().zip(want) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
        assert!(store.grad(p).data().iter().all(|&g| g == 0.0));
    }

    #[test]
    fn second_step_by_hand() {
        let mut store = ParamStore::<f64>::new();
        let p = store.add("w", Tensor::from_slice(&[0.5], [1]));
        let cfg = AdamWConfig { beta1: 0.8, beta2: 0.9, eps: 1e-3, weight_decay: 0.0 };
        let mut opt = AdamW::new(&store, vec![p], cfg);
        store.grad_mut(p).data_mut()[0] = 1.0;
        opt.step(&mut store, 0.1);
        store.grad_mut(p).data_mut()[0] = 3.0;
        opt.step(&mut store, 0.1);
        let x1 = 0.5 - 0.1 * 1.0 / (1.0 + 1e-3);
        let (m, v): (f64, f64) = (0.8 * 0.2 + 0.2 * 3.0, 0.9 * 0.1 + 0.1 * 9.0);
        let x2 = x1 - (0.1 / (1.0 - 0.64)) * m / (v.sqrt() / (1.0f64 - 0.81).sqrt() + 1e-3);
        let got = store.value(p).data()[0];
        assert!((got - x2).abs() < 1e-12, "{got} vs {x2}");
    }
}
