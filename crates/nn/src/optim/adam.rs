//! What the Adam-family optimizers share: [`Adam`] holds the parameter list and the moments, counts the steps
//! and saves and restores its state; its [`AdamRule`] (the config of [`super::AdamAtan2`] or [`super::AdamW`])
//! says how one parameter is updated from its gradient and moments. Both keep the same state under the same
//! checkpoint names, so a study can swap one for the other.

use super::{check_params, Optimizer};
use crate::checkpoint::{CheckpointError, CheckpointReader, CheckpointWriter};
use loopgrad_autograd::{Param, ParamStore};
use loopgrad_tensor::{Float, Tensor};

/// The update of one Adam-family optimizer, implemented by its config.
pub trait AdamRule: Copy {
    /// The optimizer's name in panic messages.
    const NAME: &'static str;

    /// The update of step `t` (counted from 1) at learning rate `lr`, as a function applied to each parameter in
    /// turn: `update(value, grad, exp_avg, exp_avg_sq)`, all of one length; it consumes (zeroes) `grad`. The
    /// step's constants are computed once, here, before the returned function runs.
    fn update<E: Float>(self, lr: f64, t: u64) -> impl Fn(&mut [E], &mut [E], &mut [E], &mut [E]);
}

/// An Adam-family optimizer over a fixed list of parameters; name it by its alias, [`super::AdamAtan2`] or
/// [`super::AdamW`].
pub struct Adam<E: Float, R: AdamRule> {
    config: R,
    params: Vec<Param>,
    state: Moments<E>,
}

impl<E: Float, R: AdamRule> Adam<E, R> {
    /// Panics if a parameter is frozen or listed twice.
    pub fn new(store: &ParamStore<E>, params: Vec<Param>, config: R) -> Self {
        check_params(R::NAME, store, &params);
        let state = Moments::zeros(store, &params);
        Adam { config, params, state }
    }

    pub fn config(&self) -> &R {
        &self.config
    }
}

impl<E: Float, R: AdamRule> Optimizer<E> for Adam<E, R> {
    fn step(&mut self, store: &mut ParamStore<E>, lr: f64) {
        self.state.t += 1;
        let update = self.config.update::<E>(lr, self.state.t);
        for (i, &p) in self.params.iter().enumerate() {
            let (value, grad) = store.value_and_grad_mut(p);
            let (m, v) = (self.state.exp_avg[i].data_mut(), self.state.exp_avg_sq[i].data_mut());
            update(value.data_mut(), grad.data_mut(), m, v);
        }
    }

    fn params(&self) -> &[Param] {
        &self.params
    }

    fn steps(&self) -> u64 {
        self.state.t
    }

    fn save_state<'a>(&'a self, store: &ParamStore<E>, prefix: &str, w: &mut CheckpointWriter<'a, E>) {
        self.state.save(store, &self.params, prefix, w);
    }

    fn load_state(
        &mut self,
        store: &ParamStore<E>,
        prefix: &str,
        r: &mut CheckpointReader,
    ) -> Result<(), CheckpointError> {
        self.state.load(store, &self.params, prefix, r)
    }
}

/// Adam's per-parameter state: first and second moments (zero-initialised) and the step count.
struct Moments<E: Float> {
    t: u64,
    exp_avg: Vec<Tensor<E>>,
    exp_avg_sq: Vec<Tensor<E>>,
}

impl<E: Float> Moments<E> {
    fn zeros(store: &ParamStore<E>, params: &[Param]) -> Self {
        Moments {
            t: 0,
            exp_avg: params.iter().map(|&p| Tensor::zeros(store.shape(p))).collect(),
            exp_avg_sq: params.iter().map(|&p| Tensor::zeros(store.shape(p))).collect(),
        }
    }

    fn save<'a>(&'a self, store: &ParamStore<E>, params: &[Param], prefix: &str, w: &mut CheckpointWriter<'a, E>) {
        for (i, &p) in params.iter().enumerate() {
            w.add_tensor(format!("{prefix}exp_avg.{}", store.name(p)), &self.exp_avg[i]);
            w.add_tensor(format!("{prefix}exp_avg_sq.{}", store.name(p)), &self.exp_avg_sq[i]);
        }
        w.set_json(format!("{prefix}step"), &self.t);
    }

    /// Reads into fresh buffers first, so that a failed load leaves the optimizer as it was.
    fn load(
        &mut self,
        store: &ParamStore<E>,
        params: &[Param],
        prefix: &str,
        r: &mut CheckpointReader,
    ) -> Result<(), CheckpointError> {
        let key = format!("{prefix}step");
        let t: u64 = r.json(&key)?;
        if t == u64::MAX {
            // The next step counts t + 1, which would overflow.
            return Err(CheckpointError::Metadata {
                path: r.path().to_path_buf(),
                key,
                reason: format!("{t} steps leave no next step"),
            });
        }
        let mut m: Vec<Tensor<E>> = Vec::with_capacity(params.len());
        let mut v: Vec<Tensor<E>> = Vec::with_capacity(params.len());
        for &p in params {
            let mut mi = Tensor::zeros(store.shape(p));
            r.read_into(&format!("{prefix}exp_avg.{}", store.name(p)), &mut mi)?;
            let mut vi = Tensor::zeros(store.shape(p));
            let name = format!("{prefix}exp_avg_sq.{}", store.name(p));
            r.read_into(&name, &mut vi)?;
            // Its square root divides the update: a negative entry would make the next step NaN, blamed on the rate.
            if let Some(index) = vi.data().iter().position(|&x: &E| x < E::ZERO) {
                let (path, value) = (r.path().to_path_buf(), vi.data()[index].to_f64());
                let why = "a second moment (a running mean of squares) cannot be negative";
                return Err(CheckpointError::OutOfRange { path, tensor: name, index, value, why });
            }
            m.push(mi);
            v.push(vi);
        }
        *self = Moments { t, exp_avg: m, exp_avg_sq: v };
        Ok(())
    }
}
