//! Optimizers, schedule and EMA together: convergence on a quadratic, weight decay alone, sign-SGD after a real
//! embedding backward, and a resumed run that continues bit for bit.

use loopgrad_autograd::{Param, ParamStore, Tape};
use loopgrad_nn::checkpoint::{CheckpointReader, CheckpointWriter, Policy};
use loopgrad_nn::optim::{
    trainable_except, AdamAtan2, AdamAtan2Config, AdamW, AdamWConfig, Optimizer, OptimizerConfig, SignSgdConfig,
    SparseSignSgd,
};
use loopgrad_nn::{Ema, LrSchedule};
use loopgrad_tensor::{Rng, Tensor};
use std::fs;

/// Sets the gradient of 0.5 * sum(a_i (w_i - c_i)^2) at the current w: a_i (w_i - c_i), plus noise from `rng`.
fn quadratic_grad(store: &mut ParamStore<f32>, p: Param, scale: &[f32], center: &[f32], rng: &mut Rng, noise: f64) {
    let w = store.value(p).to_vec();
    for (i, g) in store.grad_mut(p).data_mut().iter_mut().enumerate() {
        *g += scale[i] * (w[i] - center[i]) + (noise * rng.normal()) as f32;
    }
}

fn converges(mut opt: Box<dyn Optimizer<f32>>, lr: f64, steps: usize) -> f32 {
    let mut store = ParamStore::<f32>::new();
    let p = store.add("w", Tensor::from_slice(&[5.0, -3.0, 0.5, 10.0], [4]));
    let (scale, center) = ([1.0, 10.0, 0.1, 3.0], [1.0, 2.0, -1.0, 0.0]);
    let mut rng = Rng::new(0);
    for _ in 0..steps {
        quadratic_grad(&mut store, p, &scale, &center, &mut rng, 0.0);
        opt.step(&mut store, lr);
    }
    store.value(p).data().iter().zip(center).map(|(w, c)| (w - c).abs()).fold(0.0, f32::max)
}

#[test]
fn adam_atan2_and_adamw_converge_on_an_ill_conditioned_quadratic() {
    let params = |s: &ParamStore<f32>| s.ids().collect::<Vec<_>>();
    let mut store = ParamStore::<f32>::new();
    store.add("w", Tensor::zeros([4]));
    for cfg in [
        OptimizerConfig::AdamAtan2(AdamAtan2Config { weight_decay: 0.0, ..Default::default() }),
        OptimizerConfig::AdamW(AdamWConfig { weight_decay: 0.0, ..Default::default() }),
    ] {
        let start = converges(cfg.build(&store, params(&store)), 0.05, 0);
        let end = converges(cfg.build(&store, params(&store)), 0.05, 3000);
        assert!(start > 5.0 && end < 1e-2, "{cfg:?}: max error {start} -> {end}");
    }
}

#[test]
fn weight_decay_alone_shrinks_geometrically_and_leaves_frozen_params_alone() {
    let mut store = ParamStore::<f32>::new();
    let w = store.add("w", Tensor::from_slice(&[2.0, -4.0], [2]));
    let h = store.add_frozen("inner.H_init", Tensor::from_slice(&[1.0], [1]));
    let dense = trainable_except(&store, &[]);
    assert_eq!(dense, [w], "frozen parameters are never handed to an optimizer");
    let mut atan2 = AdamAtan2::new(&store, dense.clone(), AdamAtan2Config { weight_decay: 0.5, ..Default::default() });
    let mut want = [2.0f32, -4.0];
    let decay = (1.0f64 - 0.1 * 0.5) as f32;
    for _ in 0..10 {
        atan2.step(&mut store, 0.1); // zero gradients: atan2(0, 0) = 0, only the decay acts
        want.iter_mut().for_each(|x| *x *= decay);
    }
    assert_eq!(store.value(w).data(), &want);
    assert_eq!(store.value(h).data(), &[1.0]);

    let mut adamw = AdamW::new(&store, dense, AdamWConfig { weight_decay: 0.5, ..Default::default() });
    adamw.step(&mut store, 0.1);
    assert_eq!(store.value(w).data(), &[want[0] * decay, want[1] * decay]);
}

#[test]
#[should_panic(expected = "inner.H_init is frozen")]
fn optimizing_a_frozen_parameter_is_refused() {
    let mut store = ParamStore::<f32>::new();
    let h = store.add_frozen("inner.H_init", Tensor::zeros([1]));
    AdamAtan2::new(&store, vec![h], AdamAtan2Config::default());
}

#[test]
fn sign_sgd_after_an_embedding_backward_uses_the_summed_row_gradient() {
    let mut store = ParamStore::<f64>::new();
    let table = store.add("inner.puzzle_emb.weights", Tensor::full([4, 2], 1.0));
    let mut tape = Tape::new(store);
    // Puzzle 2 appears twice in the batch with opposite-signed upstream weights of different size.
    let t = tape.param(table);
    let rows = tape.embedding(t, &[2, 0, 2], &[3]);
    let weights = tape.constant(Tensor::from_slice(&[-3.0, 1.0, -1.0, 1.0, 2.0, -1.0], [3, 2]));
    let prod = tape.mul(rows, weights);
    let loss = tape.sum(prod);
    tape.backward(loss);
    assert_eq!(tape.params.grad(table).data(), &[-1.0, 1.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0]);
    let mut opt = SparseSignSgd::new(&tape.params, table, SignSgdConfig { weight_decay: 0.0 });
    opt.step(&mut tape.params, 0.25, &[2, 0, 2]);
    assert_eq!(tape.params.value(table).data(), &[1.25, 0.75, 1.0, 1.0, 1.25, 1.0, 1.0, 1.0]);
    assert!(tape.params.grad(table).data().iter().all(|&g| g == 0.0));
}

/// Everything a run needs to continue: weights, dense optimizer, sign-SGD, EMA, data RNG, step counter.
struct Run {
    store: ParamStore<f32>,
    w: Param,
    table: Param,
    adam: Box<dyn Optimizer<f32>>,
    emb: SparseSignSgd,
    ema: Ema<f32>,
    rng: Rng,
    step: u64,
}

const TOTAL: u64 = 40;

impl Run {
    fn new(optimizer: OptimizerConfig) -> Self {
        let mut rng = Rng::new(11);
        let mut store = ParamStore::new();
        let w = store.add("inner.lm_head.weight", loopgrad_nn::init::lecun_linear(&mut rng, 3, 5));
        store.add_frozen("inner.H_init", loopgrad_nn::init::trunc_normal(&mut rng, [5], 1.0));
        let table = store.add("inner.puzzle_emb.weights", Tensor::zeros([6, 5]));
        let dense = trainable_except(&store, &[table]);
        let adam = optimizer.build(&store, dense.clone());
        let emb = SparseSignSgd::new(&store, table, SignSgdConfig::default());
        let ema = Ema::new(&store, dense, 0.9);
        Run { store, w, table, adam, emb, ema, rng, step: 0 }
    }

    fn train(&mut self, steps: u64) {
        let schedule = LrSchedule::cosine(5, 0.1);
        for _ in 0..steps {
            self.step += 1;
            let center: Vec<f32> = (0..15).map(|i| i as f32 / 15.0).collect();
            quadratic_grad(&mut self.store, self.w, &[1.0; 15], &center, &mut self.rng, 0.3);
            let rows: Vec<usize> = (0..3).map(|_| self.rng.below(6)).collect();
            for &r in &rows {
                let noise: Vec<f32> = (0..5).map(|_| self.rng.normal() as f32).collect();
                let g = self.store.grad_mut(self.table);
                g.data_mut()[r * 5..(r + 1) * 5].iter_mut().zip(noise).for_each(|(g, n)| *g += n);
            }
            self.adam.step(&mut self.store, schedule.lr(1e-2, self.step, TOTAL));
            self.emb.step(&mut self.store, schedule.lr(1e-1, self.step, TOTAL), &rows);
            self.ema.update(&self.store);
        }
    }

    fn save(&self, path: &std::path::Path) {
        let mut w = CheckpointWriter::with_params(&self.store);
        self.adam.save_state(&self.store, "train.optim.", &mut w);
        self.ema.save_state(&self.store, "train.ema.", &mut w);
        w.set_json("train.step", &self.step);
        w.set_json("train.rng", &self.rng);
        w.write(path).unwrap();
    }

    fn resume(optimizer: OptimizerConfig, path: &std::path::Path) -> Self {
        let mut run = Run::new(optimizer);
        let mut r = CheckpointReader::open(path).unwrap();
        r.load_params(&mut run.store, Policy::Error).unwrap();
        run.adam.load_state(&run.store, "train.optim.", &mut r).unwrap();
        run.ema.load_state(&run.store, "train.ema.", &mut r).unwrap();
        run.step = r.json("train.step").unwrap();
        run.rng = r.json("train.rng").unwrap();
        assert!(r.finish(Policy::Error).unwrap().is_empty(), "every tensor of the checkpoint is used");
        run
    }

    fn fingerprint(&mut self) -> Vec<u32> {
        let mut out: Vec<u32> = Vec::new();
        for p in self.store.ids() {
            out.extend(self.store.value(p).data().iter().map(|x| x.to_bits()));
        }
        self.ema.swap_in(&mut self.store);
        out.extend(self.store.value(self.w).data().iter().map(|x| x.to_bits()));
        self.ema.swap_out(&mut self.store);
        out.push(self.adam.steps() as u32);
        out.push(self.rng.next_u64() as u32);
        out
    }
}

#[test]
fn train_n_equals_train_k_save_resume_train_n_minus_k_bit_for_bit() {
    let d = std::env::temp_dir().join(format!("loopgrad-nn-resume-{}", std::process::id()));
    fs::create_dir_all(&d).unwrap();
    for optimizer in [OptimizerConfig::default(), OptimizerConfig::AdamW(AdamWConfig::default())] {
        let path = d.join("checkpoint.safetensors");
        let mut straight = Run::new(optimizer);
        straight.train(TOTAL);
        let mut first = Run::new(optimizer);
        first.train(17);
        first.save(&path);
        let mut resumed = Run::resume(optimizer, &path);
        assert_eq!(resumed.step, 17);
        resumed.train(TOTAL - 17);
        assert_eq!(resumed.fingerprint(), straight.fingerprint(), "{optimizer:?}");
        // And the weights moved: the test would be vacuous otherwise.
        assert_ne!(Run::new(optimizer).fingerprint(), straight.fingerprint());
    }
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn resuming_with_a_mismatched_optimizer_state_fails_cleanly_and_changes_nothing() {
    let d = std::env::temp_dir().join(format!("loopgrad-nn-resume-bad-{}", std::process::id()));
    fs::create_dir_all(&d).unwrap();
    let path = d.join("weights-only.safetensors");
    let mut run = Run::new(OptimizerConfig::default());
    run.train(3);
    CheckpointWriter::with_params(&run.store).write(&path).unwrap();
    let before = run.fingerprint();
    let mut r = CheckpointReader::open(&path).unwrap();
    let err = run.adam.load_state(&run.store, "train.optim.", &mut r).unwrap_err().to_string();
    assert!(err.ends_with("metadata `train.optim.step`: missing"), "{err}");
    let err = run.ema.load_state(&run.store, "train.ema.", &mut r).unwrap_err().to_string();
    assert!(err.ends_with("tensor `train.ema.inner.lm_head.weight` is missing"), "{err}");
    assert_eq!(run.fingerprint()[..before.len() - 1], before[..before.len() - 1]);
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn an_optimizer_step_count_with_no_next_step_is_refused() {
    // Was: loaded, then "attempt to add with overflow" in the next step (a panic with overflow checks).
    let mut run = Run::new(OptimizerConfig::default());
    run.train(1);
    let mut w = CheckpointWriter::with_params(&run.store);
    run.adam.save_state(&run.store, "train.optim.", &mut w);
    w.set_json("train.optim.step", &u64::MAX);
    let mut r = CheckpointReader::from_bytes("ckpt.safetensors", w.to_bytes().unwrap()).unwrap();
    let err = run.adam.load_state(&run.store, "train.optim.", &mut r).unwrap_err().to_string();
    assert_eq!(err, "ckpt.safetensors: metadata `train.optim.step`: 18446744073709551615 steps leave no next step");
}

#[test]
fn a_negative_second_moment_is_refused_naming_the_tensor() {
    // Was: loaded, then a NaN loss at the next step, blamed on the learning rate.
    let mut run = Run::new(OptimizerConfig::default());
    run.train(2);
    // The dense optimizer holds one parameter, `w`: its state written by hand, one second moment negative.
    let name = format!("train.optim.exp_avg_sq.{}", run.store.name(run.w));
    let mean = Tensor::zeros(run.store.shape(run.w));
    let mut bad = Tensor::full(run.store.shape(run.w), 1.0);
    bad.data_mut()[3] = -1.0;
    let mut w = CheckpointWriter::with_params(&run.store);
    w.add_tensor(format!("train.optim.exp_avg.{}", run.store.name(run.w)), &mean);
    w.add_tensor(name.clone(), &bad);
    w.set_json("train.optim.step", &2u64);
    let mut r = CheckpointReader::from_bytes("ckpt.safetensors", w.to_bytes().unwrap()).unwrap();
    let err = run.adam.load_state(&run.store, "train.optim.", &mut r).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("ckpt.safetensors: tensor `{name}` holds -1 at element 3: a second moment (a running mean of squares) cannot be negative")
    );
}
