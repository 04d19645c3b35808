//! Optimizers with the reference formulas: [`AdamAtan2`] (TRM/HRM's optimizer), [`AdamW`], and
//! [`SparseSignSgd`] for the rows of the puzzle-embedding table that a batch touched.
//!
//! Each optimizer manages an explicit list of parameters of a [`ParamStore`], so the puzzle-embedding table can
//! go to sign-SGD while everything else goes to AdamATan2, as in TRM's `pretrain.py`. Use
//! [`trainable_except`] to build the dense list. The learning rate is an argument of `step`, because the
//! schedule sets it for every step (TRM writes `param_group["lr"]` before each `optim.step()`).
//!
//! `step` consumes the gradients: after it, the gradient buffers of the managed parameters are zero, ready for
//! the next backward pass (fused into the update loop, so it costs no extra pass over memory). Read gradient
//! norms before stepping.

mod adam;
mod adam_atan2;
mod adamw;
mod sign_sgd;

pub use adam::{Adam, AdamRule};
pub use adam_atan2::{AdamAtan2, AdamAtan2Config};
pub use adamw::{AdamW, AdamWConfig};
pub use sign_sgd::{SignSgdConfig, SparseSignSgd};

use crate::checkpoint::{CheckpointError, CheckpointReader, CheckpointWriter};
use loopgrad_autograd::{Param, ParamStore};
use loopgrad_tensor::Float;
use serde::{Deserialize, Serialize};

/// A dense optimizer over a fixed list of parameters.
pub trait Optimizer<E: Float> {
    /// One update of every managed parameter from its gradient, with learning rate `lr`; zeroes those
    /// gradients.
    fn step(&mut self, store: &mut ParamStore<E>, lr: f64);

    /// The parameters this optimizer updates.
    fn params(&self) -> &[Param];

    /// The number of steps taken (the `t` of the bias corrections).
    fn steps(&self) -> u64;

    /// Adds the optimizer state to `w` under `prefix` (e.g. `train.optim.`): tensors
    /// `{prefix}exp_avg.{param}` and `{prefix}exp_avg_sq.{param}` (PyTorch's state names) and the metadata entry
    /// `{prefix}step`.
    fn save_state<'a>(&'a self, store: &ParamStore<E>, prefix: &str, w: &mut CheckpointWriter<'a, E>);

    /// Restores what [`Optimizer::save_state`] wrote, so that the next step is bit for bit the one an
    /// uninterrupted run would have taken.
    fn load_state(
        &mut self,
        store: &ParamStore<E>,
        prefix: &str,
        r: &mut CheckpointReader,
    ) -> Result<(), CheckpointError>;
}

/// Which dense optimizer to build, with its hyper-parameters (a config field of the training recipe).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OptimizerConfig {
    AdamAtan2(AdamAtan2Config),
    #[serde(rename = "adamw")]
    AdamW(AdamWConfig),
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig::AdamAtan2(AdamAtan2Config::default())
    }
}

impl OptimizerConfig {
    /// The optimizer over `params` (see [`trainable_except`]).
    pub fn build<E: Float>(&self, store: &ParamStore<E>, params: Vec<Param>) -> Box<dyn Optimizer<E>> {
        match *self {
            OptimizerConfig::AdamAtan2(c) => Box::new(AdamAtan2::new(store, params, c)),
            OptimizerConfig::AdamW(c) => Box::new(AdamW::new(store, params, c)),
        }
    }
}

/// Every trainable parameter of `store` except `exclude`, in store order: the set TRM hands to AdamATan2
/// (`model.parameters()`, which holds neither the carry init buffers nor the puzzle-embedding table).
pub fn trainable_except<E: Float>(store: &ParamStore<E>, exclude: &[Param]) -> Vec<Param> {
    store.ids().filter(|p| store.is_trainable(*p) && !exclude.contains(p)).collect()
}

/// Panics unless `params` are distinct trainable parameters of `store`. Weight decay on a frozen parameter
/// (the carry init vectors) would silently change it, so this is checked when an optimizer is built.
pub(crate) fn check_params<E: Float>(who: &str, store: &ParamStore<E>, params: &[Param]) {
    let mut seen = std::collections::HashSet::new();
    for &p in params {
        assert!((p.0 as usize) < store.len(), "{who}: parameter id {} is not in the store", p.0);
        assert!(store.is_trainable(p), "{who}: parameter {} is frozen and must not be optimized", store.name(p));
        assert!(seen.insert(p), "{who}: parameter {} listed twice", store.name(p));
    }
}

/// Bias-correction constants of step `t` (1-based), in f64 as the reference computes them on the host.
pub(crate) fn bias_corrections(beta1: f64, beta2: f64, t: u64) -> (f64, f64) {
    let t = t as f64;
    (1.0 - beta1.powf(t), 1.0 - beta2.powf(t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use loopgrad_tensor::Tensor;

    #[test]
    fn optimizer_config_reads_a_tagged_json_object_and_rejects_typos() {
        let c: OptimizerConfig = serde_json::from_str(r#"{"kind": "adam_atan2", "weight_decay": 1.0}"#).unwrap();
        assert_eq!(c, OptimizerConfig::AdamAtan2(AdamAtan2Config { weight_decay: 1.0, ..Default::default() }));
        let c: OptimizerConfig = serde_json::from_str(r#"{"kind": "adamw", "eps": 1e-6}"#).unwrap();
        assert_eq!(c, OptimizerConfig::AdamW(AdamWConfig { eps: 1e-6, ..Default::default() }));
        assert!(serde_json::from_str::<OptimizerConfig>(r#"{"kind": "adamw", "epsilon": 1e-6}"#).is_err());
        let text = serde_json::to_string(&OptimizerConfig::default()).unwrap();
        assert_eq!(serde_json::from_str::<OptimizerConfig>(&text).unwrap(), OptimizerConfig::default());
    }

    #[test]
    fn trainable_except_skips_frozen_and_excluded_parameters_in_store_order() {
        let mut store = ParamStore::<f32>::new();
        let a = store.add("a", Tensor::zeros([1]));
        store.add_frozen("inner.H_init", Tensor::zeros([1]));
        let table = store.add("inner.puzzle_emb.weights", Tensor::zeros([2, 1]));
        let b = store.add("b", Tensor::zeros([1]));
        assert_eq!(trainable_except(&store, &[table]), [a, b]);
    }
}
