//! Exponential moving average of the weights, used for evaluation (TRM's `EMAHelper`, `ema_rate` 0.999).
//!
//! After every optimizer step: `shadow = (1 - decay) * p + decay * shadow`, in that order of operations as the
//! reference writes it. The shadow starts as a copy of the weights when the EMA is created (`register`).
//!
//! That start is a bias: after t updates the initial weights still carry weight decay^t (with decay 0.99, a
//! quarter of the average after 137 steps), which handicaps short runs. [`Ema::update_corrected`] removes it the
//! way Adam corrects its moments: the average that starts from zero, m_t = decay m_{t-1} + (1 - decay) p_t, is
//! divided by 1 - decay^t, the weight it has gathered. The shadow holds the corrected value itself,
//!
//! ```text
//! shadow_t = (decay (1 - decay^(t-1)) shadow_{t-1} + (1 - decay) p_t) / (1 - decay^t)
//! ```
//!
//! so the first update copies the weights (its coefficient on the old shadow is 0), the init never enters, and
//! as t grows it becomes the reference's update. `t` is the optimizer step, which a checkpoint already holds.
//!
//! Which parameters: TRM averages `named_parameters()` that require grad, which leaves out the buffers: the
//! carry init vectors (`H_init`, `L_init`) and the puzzle-embedding table. Evaluation with the EMA therefore
//! uses the *live* puzzle embeddings. Build the list with [`crate::optim::trainable_except`] and the table
//! excluded to match.
//!
//! Evaluation swaps the shadow into the store in place ([`Ema::swap_in`]): each parameter's tensor is exchanged
//! with its shadow, a pointer swap with no copy and no allocation, and [`Ema::swap_out`] swaps back.
//! (TRM deep-copies the model instead; the values seen are the same.)

use crate::checkpoint::{CheckpointError, CheckpointReader, CheckpointWriter};
use loopgrad_autograd::{Param, ParamStore};
use loopgrad_tensor::{Float, Tensor};

/// The EMA shadow of a fixed list of parameters.
pub struct Ema<E: Float> {
    decay: f64,
    params: Vec<Param>,
    /// `shadow[i]` belongs to `params[i]`; while swapped in, it holds the live weights instead.
    shadow: Vec<Tensor<E>>,
    swapped: bool,
}

impl<E: Float> Ema<E> {
    /// Starts the average at the current values of `params`. Panics unless 0 <= decay <= 1.
    pub fn new(store: &ParamStore<E>, params: Vec<Param>, decay: f64) -> Self {
        assert!((0.0..=1.0).contains(&decay), "Ema::new: decay {decay} is not in [0, 1]");
        let shadow = params.iter().map(|&p| store.value(p).clone()).collect();
        Ema { decay, params, shadow, swapped: false }
    }

    pub fn decay(&self) -> f64 {
        self.decay
    }

    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// True between [`Ema::swap_in`] and [`Ema::swap_out`].
    pub fn is_swapped_in(&self) -> bool {
        self.swapped
    }

    /// The averaged value of the `i`-th managed parameter (wherever it currently lives).
    pub fn shadow<'a>(&'a self, store: &'a ParamStore<E>, i: usize) -> &'a Tensor<E> {
        if self.swapped {
            store.value(self.params[i])
        } else {
            &self.shadow[i]
        }
    }

    /// Folds the current weights into the average. Call after every optimizer step. Panics while swapped in
    /// (the store then holds the average, and folding it into itself would be a silent bug).
    pub fn update(&mut self, store: &ParamStore<E>) {
        assert!(!self.swapped, "Ema::update: the EMA weights are swapped in; call swap_out first");
        let (live, keep) = (E::from_f64(1.0 - self.decay), E::from_f64(self.decay));
        for (s, &p) in self.shadow.iter_mut().zip(&self.params) {
            for (s, &x) in s.data_mut().iter_mut().zip(store.value(p).data()) {
                *s = live * x + keep * *s;
            }
        }
    }

    /// The bias-corrected update after optimizer step `t` (1-based; see the module notes): the weighted average
    /// of the weights after steps 1..=t with weights decay^(t-s), the initial weights left out. Panics while
    /// swapped in, or for t = 0.
    pub fn update_corrected(&mut self, store: &ParamStore<E>, t: u64) {
        assert!(!self.swapped, "Ema::update_corrected: the EMA weights are swapped in; call swap_out first");
        assert!(t >= 1, "Ema::update_corrected: steps count from 1");
        let gathered = |t: u64| 1.0 - self.decay.powf(t as f64);
        let norm = gathered(t);
        let (live, keep) = if norm > 0.0 {
            ((1.0 - self.decay) / norm, self.decay * gathered(t - 1) / norm)
        } else {
            (0.0, 1.0) // decay 1: frozen, as update() is
        };
        let (live, keep) = (E::from_f64(live), E::from_f64(keep));
        for (s, &p) in self.shadow.iter_mut().zip(&self.params) {
            for (s, &x) in s.data_mut().iter_mut().zip(store.value(p).data()) {
                *s = live * x + keep * *s;
            }
        }
    }

    /// Puts the averaged weights into the store (for evaluation or for exporting them). Panics if already in.
    pub fn swap_in(&mut self, store: &mut ParamStore<E>) {
        assert!(!self.swapped, "Ema::swap_in: already swapped in");
        self.exchange(store);
    }

    /// Puts the live weights back. Panics if not swapped in.
    pub fn swap_out(&mut self, store: &mut ParamStore<E>) {
        assert!(self.swapped, "Ema::swap_out: not swapped in");
        self.exchange(store);
    }

    fn exchange(&mut self, store: &mut ParamStore<E>) {
        for (s, &p) in self.shadow.iter_mut().zip(&self.params) {
            std::mem::swap(s, store.value_mut(p));
        }
        self.swapped = !self.swapped;
    }

    /// Adds the shadow to `w` as `{prefix}{param name}` (e.g. `train.ema.inner.lm_head.weight`). Panics while
    /// swapped in: the store's weights would then be the average, and the checkpoint would resume from it.
    pub fn save_state<'a>(&'a self, store: &ParamStore<E>, prefix: &str, w: &mut CheckpointWriter<'a, E>) {
        assert!(!self.swapped, "Ema::save_state: swap the live weights back in before saving a checkpoint");
        for (s, &p) in self.shadow.iter().zip(&self.params) {
            w.add_tensor(format!("{prefix}{}", store.name(p)), s);
        }
    }

    /// Restores the shadow saved by [`Ema::save_state`]. Reads into fresh buffers, so a failed load leaves the
    /// EMA as it was.
    pub fn load_state(
        &mut self,
        store: &ParamStore<E>,
        prefix: &str,
        r: &mut CheckpointReader,
    ) -> Result<(), CheckpointError> {
        assert!(!self.swapped, "Ema::load_state: swap the live weights back in before loading");
        let mut fresh = Vec::with_capacity(self.params.len());
        for &p in &self.params {
            let mut t = Tensor::zeros(store.shape(p));
            r.read_into(&format!("{prefix}{}", store.name(p)), &mut t)?;
            fresh.push(t);
        }
        self.shadow = fresh;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with(values: &[f64]) -> (ParamStore<f64>, Param) {
        let mut store = ParamStore::new();
        let p = store.add("w", Tensor::from_slice(values, [values.len()]));
        (store, p)
    }

    #[test]
    fn update_is_the_reference_average_and_starts_from_the_weights() {
        let (mut store, p) = store_with(&[1.0, 2.0]);
        let mut ema = Ema::new(&store, vec![p], 0.75);
        store.value_mut(p).data_mut().copy_from_slice(&[5.0, -2.0]);
        ema.update(&store);
        assert_eq!(ema.shadow(&store, 0).data(), &[0.25 * 5.0 + 0.75 * 1.0, 0.25 * -2.0 + 0.75 * 2.0]);
        ema.update(&store);
        assert_eq!(ema.shadow(&store, 0).data(), &[0.25 * 5.0 + 0.75 * 2.0, 0.25 * -2.0 + 0.75 * 1.0]);
    }

    #[test]
    fn the_corrected_average_leaves_the_init_out() {
        let (mut store, p) = store_with(&[100.0]);
        let mut ema = Ema::new(&store, vec![p], 0.5);
        let steps = [2.0, 4.0, 8.0];
        for (t, &x) in steps.iter().enumerate() {
            store.value_mut(p).data_mut()[0] = x;
            ema.update_corrected(&store, t as u64 + 1);
        }
        // Weights 0.25, 0.5, 1 on steps 1..3, normalised by 1.75; the init (100) has no weight.
        let want = (0.25 * 2.0 + 0.5 * 4.0 + 1.0 * 8.0) / 1.75;
        assert!((ema.shadow(&store, 0).data()[0] - want).abs() < 1e-12, "{:?}", ema.shadow(&store, 0).data());
        // The first corrected update is the weights themselves; late ones are the reference's.
        let (mut store, p) = store_with(&[1.0]);
        let mut a = Ema::new(&store, vec![p], 0.9);
        store.value_mut(p).data_mut()[0] = 3.0;
        a.update_corrected(&store, 1);
        assert_eq!(a.shadow(&store, 0).data(), &[3.0]);
        let mut b = Ema::new(&store, vec![p], 0.9);
        store.value_mut(p).data_mut()[0] = 5.0;
        b.update_corrected(&store, 1000);
        a.update(&store);
        let mut c = Ema::new(&store, vec![p], 0.9);
        c.shadow[0].data_mut()[0] = 3.0;
        c.update_corrected(&store, 1000);
        assert!((c.shadow(&store, 0).data()[0] - a.shadow(&store, 0).data()[0]).abs() < 1e-12);
    }

    #[test]
    fn swap_in_and_out_exchange_buffers_without_copying() {
        let (mut store, p) = store_with(&[1.0, 2.0, 3.0]);
        let mut ema = Ema::new(&store, vec![p], 0.5);
        store.value_mut(p).data_mut().fill(9.0);
        ema.update(&store);
        let live_ptr = store.value(p).data().as_ptr();
        let shadow_ptr = ema.shadow(&store, 0).data().as_ptr();
        ema.swap_in(&mut store);
        assert_eq!(store.value(p).data(), &[5.0, 5.5, 6.0]);
        assert_eq!(store.value(p).data().as_ptr(), shadow_ptr, "the shadow buffer itself moved into the store");
        assert_eq!(ema.shadow(&store, 0).data(), &[5.0, 5.5, 6.0], "shadow() follows the swap");
        ema.swap_out(&mut store);
        assert_eq!(store.value(p).data(), &[9.0; 3]);
        assert_eq!(store.value(p).data().as_ptr(), live_ptr);
    }

    #[test]
    #[should_panic(expected = "swapped in")]
    fn update_while_swapped_in_panics() {
        let (mut store, p) = store_with(&[1.0]);
        let mut ema = Ema::new(&store, vec![p], 0.9);
        ema.swap_in(&mut store);
        ema.update(&store);
    }

    #[test]
    fn decay_one_freezes_and_decay_zero_tracks() {
        let (mut store, p) = store_with(&[1.0]);
        let (mut frozen, mut tracking) = (Ema::new(&store, vec![p], 1.0), Ema::new(&store, vec![p], 0.0));
        store.value_mut(p).data_mut()[0] = 4.0;
        frozen.update(&store);
        tracking.update(&store);
        assert_eq!(frozen.shadow(&store, 0).data(), &[1.0]);
        assert_eq!(tracking.shadow(&store, 0).data(), &[4.0]);
    }
}
