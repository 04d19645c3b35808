//! The learning-rate schedule of TRM/HRM: linear warmup from 0, then cosine decay to a floor ratio, where a
//! floor ratio of 1 (TRM's default) means "constant after warmup".
//!
//! This is TRM's `cosine_schedule_with_warmup_lr_lambda` (with `num_cycles = 0.5`):
//!
//! ```text
//! step <  warmup:  lr = base_lr * step / max(1, warmup)
//! step >= warmup:  progress = (step - warmup) / max(1, total - warmup)
//!                  lr = base_lr * (min_ratio + max(0, (1 - min_ratio) * 0.5 * (1 + cos(pi * progress))))
//! ```
//!
//! `step` is the number of the optimizer step about to be taken, counting from 1: TRM increments
//! `train_state.step` before it computes the rate, so the first update uses `base_lr / warmup` and step
//! `warmup` is the first at the full rate. The same schedule scales both the AdamATan2 rate and the
//! puzzle-embedding sign-SGD rate, each from its own base.

use serde::{Deserialize, Serialize};

/// Warmup length and floor ratio (TRM's `lr_warmup_steps` and `lr_min_ratio`). The total number of steps is
/// not part of it: it comes from the run length, and is only used when `min_ratio < 1`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LrSchedule {
    pub warmup_steps: u64,
    /// The rate at the end of training as a fraction of the base rate; 1 keeps it constant after warmup.
    pub min_ratio: f64,
    /// Warmup as a fraction of the run, in place of `warmup_steps` when above 0: `round(fraction * total)`
    /// steps, so that runs of different lengths (an equal-FLOPs budget gives cheap models more steps) spend the
    /// same share of their run warming up. 0 (the default, and absent from older files) keeps `warmup_steps`.
    pub warmup_fraction: f64,
}

impl Default for LrSchedule {
    /// TRM's `cfg_pretrain.yaml`: 2000 warmup steps, then constant.
    fn default() -> Self {
        LrSchedule { warmup_steps: 2000, min_ratio: 1.0, warmup_fraction: 0.0 }
    }
}

impl LrSchedule {
    /// Linear warmup over `warmup_steps`, then constant.
    pub fn constant(warmup_steps: u64) -> Self {
        LrSchedule { warmup_steps, min_ratio: 1.0, warmup_fraction: 0.0 }
    }

    /// Linear warmup, then a half cosine from the base rate down to `min_ratio` times it at the last step.
    pub fn cosine(warmup_steps: u64, min_ratio: f64) -> Self {
        assert!((0.0..=1.0).contains(&min_ratio), "LrSchedule::cosine: min_ratio {min_ratio} is not in [0, 1]");
        LrSchedule { warmup_steps, min_ratio, warmup_fraction: 0.0 }
    }

    /// The warmup length of a run of `total_steps`: `warmup_fraction` of it when set, else `warmup_steps`.
    pub fn warmup(&self, total_steps: u64) -> u64 {
        if self.warmup_fraction > 0.0 {
            (self.warmup_fraction * total_steps as f64).round() as u64
        } else {
            self.warmup_steps
        }
    }

    /// The learning rate of optimizer step `step` (1-based) of a run of `total_steps`, for base rate `base_lr`.
    pub fn lr(&self, base_lr: f64, step: u64, total_steps: u64) -> f64 {
        let warmup = self.warmup(total_steps);
        if step < warmup {
            return base_lr * step as f64 / warmup.max(1) as f64;
        }
        let progress = (step - warmup) as f64 / total_steps.saturating_sub(warmup).max(1) as f64;
        let cosine = (1.0 - self.min_ratio) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
        base_lr * (self.min_ratio + cosine.max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_is_linear_from_zero_and_reaches_the_base_rate_at_step_warmup() {
        let s = LrSchedule::constant(4);
        let lrs: Vec<f64> = (0..7).map(|t| s.lr(2.0, t, 100)).collect();
        assert_eq!(lrs, [0.0, 0.5, 1.0, 1.5, 2.0, 2.0, 2.0]);
    }

    #[test]
    fn constant_is_cosine_with_floor_one_and_ignores_the_total() {
        let s = LrSchedule::constant(10);
        for t in [10, 11, 500, 10_000] {
            assert_eq!(s.lr(1e-4, t, 20), 1e-4);
        }
    }

    #[test]
    fn cosine_goes_from_base_to_the_floor_through_the_midpoint() {
        let s = LrSchedule::cosine(10, 0.1);
        assert_eq!(s.lr(1.0, 10, 110), 1.0);
        assert!((s.lr(1.0, 60, 110) - 0.55).abs() < 1e-15, "half way: floor + half the span");
        assert!((s.lr(1.0, 110, 110) - 0.1).abs() < 1e-15);
        // Past the end the reference keeps following the cosine back up (num_cycles 0.5 means half a period
        // over the run); runs never go there, but we match it rather than clamp.
        assert!(s.lr(1.0, 160, 110) > 0.1);
        let mut prev = f64::INFINITY;
        for t in 10..=110 {
            let lr = s.lr(1.0, t, 110);
            assert!(lr <= prev, "monotone decay");
            prev = lr;
        }
    }

    #[test]
    fn zero_warmup_starts_at_the_base_rate() {
        assert_eq!(LrSchedule::cosine(0, 0.0).lr(3.0, 0, 10), 3.0);
        assert_eq!(LrSchedule::cosine(0, 0.0).lr(3.0, 10, 10), 0.0);
    }

    #[test]
    fn warmup_fraction_scales_with_the_run_and_zero_keeps_the_steps() {
        let s = LrSchedule { warmup_fraction: 0.1, ..LrSchedule::constant(100) };
        assert_eq!(s.warmup(1000), 100);
        assert_eq!(s.warmup(137), 14);
        assert_eq!(s.lr(1.0, 7, 137), 0.5, "half way through a 14-step warmup");
        assert_eq!(s.lr(1.0, 14, 137), 1.0);
        assert_eq!(s.lr(1.0, 50, 5000), 0.1, "500 warmup steps in a run of 5,000");
        assert_eq!(LrSchedule::constant(100).warmup(137), 100);
    }

    #[test]
    fn config_reads_trm_field_values_and_rejects_typos() {
        let s: LrSchedule = serde_json::from_str(r#"{"warmup_steps": 2000, "min_ratio": 1.0}"#).unwrap();
        assert_eq!(s, LrSchedule::default());
        assert!(serde_json::from_str::<LrSchedule>(r#"{"warmup": 5}"#).is_err());
    }
}
