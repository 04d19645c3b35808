//! AdamATan2: Adam with `atan2` in place of the division by `sqrt(v) + eps` (Everett et al. 2024,
//! arXiv:2407.05872), the optimizer of TRM and HRM.
//!
//! We match the `adam-atan2` package that TRM/HRM import (`from adam_atan2 import AdamATan2`), whose fused
//! kernel and reference implementation compute, per element, at step t (counted from 1):
//!
//! ```text
//! p  = p * (1 - lr * wd)                              decoupled weight decay, applied first
//! m  = lerp(m, g, 1 - b1)      = m + (1 - b1) (g - m)
//! v  = b2 v + (1 - b2) g^2
//! p -= lr * atan2(m / (1 - b1^t), sqrt(v) / sqrt(1 - b2^t))
//! ```
//!
//! Note where the first bias correction sits: *inside* the atan2, on m. (The design note's
//! `lr/(1-b1^t) * atan2(m, ...)` would scale the bounded atan2 step itself by up to 10x early in training; the
//! package does not.) There is no epsilon, and no `a`/`b` scale factors: lucidrains' `adam-atan2-pytorch` has
//! `b * atan2(m, a * sqrt(v))` variants with a = 1.27, but TRM does not use that package. The constants
//! (weight-decay factor, bias corrections) are computed in f64 and rounded once to `E`, like the kernel's
//! host-side double arithmetic; the element-wise math runs in `E`.

use super::{bias_corrections, Adam, AdamRule};
use loopgrad_tensor::kernels::{self, AdamAtan2Step};
use loopgrad_tensor::Float;
use serde::{Deserialize, Serialize};

/// Hyper-parameters of [`AdamAtan2`]. Defaults are TRM's `cfg_pretrain.yaml` (betas 0.9/0.95, weight decay
/// 0.1; the Sudoku and Maze presets use 1.0).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdamAtan2Config {
    pub beta1: f64,
    pub beta2: f64,
    pub weight_decay: f64,
}

impl Default for AdamAtan2Config {
    fn default() -> Self {
        AdamAtan2Config { beta1: 0.9, beta2: 0.95, weight_decay: 0.1 }
    }
}

/// AdamATan2 over a fixed list of parameters (see the module doc for the formula).
pub type AdamAtan2<E> = Adam<E, AdamAtan2Config>;

impl AdamRule for AdamAtan2Config {
    const NAME: &'static str = "AdamAtan2";

    fn update<E: Float>(self, lr: f64, t: u64) -> impl Fn(&mut [E], &mut [E], &mut [E], &mut [E]) {
        let AdamAtan2Config { beta1, beta2, weight_decay } = self;
        let (bc1, bc2) = bias_corrections(beta1, beta2, t);
        let step = AdamAtan2Step {
            decay: E::from_f64(1.0 - lr * weight_decay),
            step_size: E::from_f64(lr),
            bc1_recip: E::from_f64(1.0 / bc1),
            bc2_sqrt: E::from_f64(bc2.sqrt()),
            one_minus_beta1: E::from_f64(1.0 - beta1),
            beta2: E::from_f64(beta2),
            one_minus_beta2: E::from_f64(1.0 - beta2),
        };
        move |value, grad, m, v| kernels::adam_atan2_step(value, grad, m, v, &step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::Optimizer;
    use loopgrad_autograd::{Param, ParamStore};
    use loopgrad_tensor::Tensor;

    fn one_param(value: &[f64], grad: &[f64]) -> (ParamStore<f64>, Param) {
        let mut store = ParamStore::new();
        let p = store.add("w", Tensor::from_slice(value, [value.len()]));
        store.grad_mut(p).data_mut().copy_from_slice(grad);
        (store, p)
    }

    #[test]
    fn first_step_by_hand() {
        // t = 1: m = 0.1 g, v = 0.05 g^2, m/(1-0.9) = g, sqrt(v)/sqrt(1-0.95) = |g|: the update is
        // lr * atan2(g, |g|) = lr * sign(g) * pi/4, after the decay p * (1 - lr wd).
        let (mut store, p) = one_param(&[1.0, -2.0, 0.5], &[0.3, -4.0, 0.0]);
        let mut opt = AdamAtan2::new(&store, vec![p], AdamAtan2Config { beta1: 0.9, beta2: 0.95, weight_decay: 0.5 });
        opt.step(&mut store, 0.01);
        let q = std::f64::consts::FRAC_PI_4 * 0.01;
        let want = [1.0 * (1.0 - 0.005) - q, -2.0 * (1.0 - 0.005) + q, 0.5 * (1.0 - 0.005)];
        for (got, want) in store.value(p).data().iter().zip(want) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
        assert!(store.grad(p).data().iter().all(|&g| g == 0.0), "step consumes the gradient");
        assert_eq!(opt.steps(), 1);
    }

    #[test]
    fn second_step_by_hand() {
        let (mut store, p) = one_param(&[0.0], &[1.0]);
        let cfg = AdamAtan2Config { beta1: 0.9, beta2: 0.95, weight_decay: 0.0 };
        let mut opt = AdamAtan2::new(&store, vec![p], cfg);
        opt.step(&mut store, 0.1);
        store.grad_mut(p).data_mut()[0] = -2.0;
        opt.step(&mut store, 0.1);
        // m = 0.9 * 0.1 + 0.1 * -2 = -0.11; v = 0.95 * 0.05 + 0.05 * 4 = 0.2475.
        let (m, v) = (-0.11f64, 0.2475f64);
        let upd = (m / (1.0 - 0.81)).atan2(v.sqrt() / (1.0f64 - 0.9025).sqrt());
        let want = -0.1 * std::f64::consts::FRAC_PI_4 - 0.1 * upd;
        let got = store.value(p).data()[0];
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }

    #[test]
    fn the_update_is_bounded_by_lr_times_pi_over_2_whatever_the_gradient() {
        let (mut store, p) = one_param(&[0.0; 4], &[1e30, -1e-30, 7.0, 1e-3]);
        let mut opt = AdamAtan2::new(&store, vec![p], AdamAtan2Config { weight_decay: 0.0, ..Default::default() });
        for _ in 0..5 {
            let before = store.value(p).clone();
            store.grad_mut(p).data_mut().copy_from_slice(&[1e30, -1e-30, 7.0, 1e-3]);
            opt.step(&mut store, 1.0);
            for (a, b) in store.value(p).data().iter().zip(before.data()) {
                assert!((a - b).abs() <= std::f64::consts::FRAC_PI_2 + 1e-12 && a.is_finite());
            }
        }
    }
}
