//! The step `loopgrad bench` and `benches/step.rs` time: [`Trainer::train_step`] itself, on a training set of one
//! batch of random tokens, so that the benchmark times what users run (the model's supervision step with its
//! T-1 untaped recursions and the recorded one, the ACT loss, backward, AdamATan2 on the weights, sign-SGD on the
//! puzzle row, EMA, and the trainer's slot bookkeeping). No slot halts before N_sup = 10,000 steps (adaptive
//! halting is off), so the carry runs on from step to step as it does for a slot in training. Also the 16-step
//! no-grad evaluation of the batch, as `loopgrad eval` runs it, and one latent recursion without a tape.
//!
//! The shape is that of the PyTorch reference `../shared/bench/torch_trm.py`, with its defaults: the paper-size
//! TRM (D 512, 2 layers, T 3, n 6, 81 tokens + 16 prefix positions, vocabulary 11, batch 8).

use crate::config::{DataConfig, OptimConfig, RunConfig, TrainConfig, MAX_SUPERVISION_STEPS};
use crate::eval::{evaluate_batch, BatchScores};
use crate::slots::ExampleStream;
use crate::trainer::{stream_seed, Trainer};
use anyhow::Result;
use loopgrad_autograd::window::Recurrence;
use loopgrad_models::config::{ForwardDtype, HrmConfig, ModelConfig, TrmConfig, TrmVariant};
use loopgrad_models::step::{Batch, Carry, CarryVars};
use loopgrad_models::{GradWindow, Model, Reasoner};
use loopgrad_nn::optim::{AdamAtan2Config, OptimizerConfig, SignSgdConfig};
use loopgrad_nn::schedule::LrSchedule;
use loopgrad_puzzles::{ExampleSet, ExampleSetBuilder, Identifiers};
use loopgrad_tensor::Rng;

/// The reference recipe's optimizer settings, as in `torch_trm.py`.
pub const LR: f64 = 1e-4;
pub const WEIGHT_DECAY: f64 = 1.0;
pub const EMA_DECAY: f64 = 0.999;
/// Supervision steps of an evaluation (N_sup of the paper).
pub const EVAL_STEPS: usize = 16;
/// The most token ids a benchmark's vocabulary may have: training examples hold tokens as bytes.
pub const MAX_VOCAB: usize = 256;

/// The shape of a benchmarked model (the flags of `torch_trm.py`).
#[derive(Clone, Debug, PartialEq)]
pub struct BenchShape {
    /// HRM instead of TRM (then `t` is H_cycles, `n` L_cycles, and `layers` the depth of each level).
    pub hrm: bool,
    /// The token-mixing MLP (`mlp`) instead of attention (`att`); TRM only.
    pub mlp: bool,
    pub hidden: usize,
    pub heads: usize,
    pub expansion: f64,
    pub layers: usize,
    pub t: usize,
    pub n: usize,
    pub seq: usize,
    pub vocab: usize,
    pub prefix: usize,
    pub batch: usize,
    pub seed: u64,
    /// The products' precision (`--dtype`, the model's `forward_dtype`).
    pub forward_dtype: ForwardDtype,
}

impl BenchShape {
    /// The main job's shape: TRM-MLP, D 64, 36 tokens + 4 prefix positions, vocabulary 8, T 2, n 2, batch 64.
    pub fn main_job() -> Self {
        BenchShape { hidden: 64, t: 2, n: 2, seq: 36, vocab: 8, prefix: 4, batch: 64, ..Self::paper(true) }
    }

    /// The paper-size TRM (`torch_trm.py`'s defaults): D 512, T 3, n 6, 81 + 16 positions, batch 8.
    pub fn paper(mlp: bool) -> Self {
        BenchShape {
            hrm: false,
            mlp,
            hidden: 512,
            heads: 8,
            expansion: 4.0,
            layers: 2,
            t: 3,
            n: 6,
            seq: 81,
            vocab: 11,
            prefix: 16,
            batch: 8,
            seed: 0,
            forward_dtype: ForwardDtype::F32,
        }
    }

    /// A shape for tests, a step in milliseconds: D 16, 2 heads, T 2, n 2, 16 positions of 6 symbols after 2
    /// prefix slots, batch 4; HRM or TRM, with the token MLP or attention.
    pub fn tiny(hrm: bool, mlp: bool) -> Self {
        BenchShape { hrm, hidden: 16, heads: 2, t: 2, n: 2, seq: 16, vocab: 6, prefix: 2, batch: 4, ..Self::paper(mlp) }
    }

    /// The model, with N_sup at its largest (adaptive halting is off: a slot halts only after that many steps).
    pub fn model_config(&self) -> ModelConfig {
        if self.hrm {
            return ModelConfig::Hrm(HrmConfig {
                seq_len: self.seq,
                vocab_size: self.vocab,
                num_puzzle_identifiers: 1,
                puzzle_emb_len: self.prefix,
                hidden_size: self.hidden,
                num_heads: self.heads,
                expansion: self.expansion,
                h_layers: self.layers,
                l_layers: self.layers,
                h_cycles: self.t,
                l_cycles: self.n,
                halt_max_steps: MAX_SUPERVISION_STEPS,
                halt_exploration_prob: 0.0,
                grad_window: GradWindow::OneStep,
                q_continue: true,
                rms_norm_eps: 1e-5,
                rope_theta: 10000.0,
                forward_dtype: self.forward_dtype,
            });
        }
        ModelConfig::Trm(TrmConfig {
            seq_len: self.seq,
            vocab_size: self.vocab,
            num_puzzle_identifiers: 1,
            puzzle_emb_len: self.prefix,
            hidden_size: self.hidden,
            num_heads: self.heads,
            expansion: self.expansion,
            num_layers: self.layers,
            h_cycles: self.t,
            l_cycles: self.n,
            halt_max_steps: MAX_SUPERVISION_STEPS,
            halt_exploration_prob: 0.0,
            mlp_t: self.mlp,
            variant: TrmVariant::YZ,
            grad_window: GradWindow::LastRecursion,
            q_continue: false,
            rms_norm_eps: 1e-5,
            rope_theta: 10000.0,
            forward_dtype: self.forward_dtype,
        })
    }

    /// The trainer's config: the model, `torch_trm.py`'s optimizer settings at a constant rate (no warmup), EMA,
    /// batch = slots, no adaptive halting. The data fields describe the one batch of random tokens
    /// ([`BenchShape::examples`]); nothing is generated or read.
    pub fn train_config(&self) -> TrainConfig {
        TrainConfig {
            model: self.model_config(),
            data: DataConfig {
                task: "sudoku".into(),
                train_path: "(random tokens)".into(),
                test_path: "(random tokens)".into(),
                sudoku_box: String::new(),
                sudoku_givens: [0, 0],
                maze_size: 0,
                maze_min_route: 0,
                train_count: self.batch,
                test_count: 0,
                augmentations: 0,
                seed: self.seed,
                heldout_disjoint: "exact".into(),
                arc_path: Vec::new(),
                arc_canvas: loopgrad_puzzles::arc::MAX_SIDE,
                validation_count: 0,
            },
            optim: OptimConfig {
                lr: LR,
                dense: OptimizerConfig::AdamAtan2(AdamAtan2Config {
                    beta1: 0.9,
                    beta2: 0.95,
                    weight_decay: WEIGHT_DECAY,
                }),
                puzzle_emb_lr: LR,
                puzzle_emb: SignSgdConfig { weight_decay: WEIGHT_DECAY },
                schedule: LrSchedule::constant(0),
                ema: EMA_DECAY,
                ema_bias_correction: false,
            },
            run: RunConfig {
                batch_size: self.batch,
                steps: u64::MAX,
                act: false,
                time_limit_s: 0.0,
                eval_every: 0,
                eval_examples: 0,
                final_eval_examples: 0,
                eval_steps: 0,
                log_every: 1,
                checkpoint_every: 0,
                seed: self.seed,
                threads: 0,
            },
        }
    }

    /// One batch of random tokens (inputs 1..vocab, labels 2..vocab, as in `torch_trm.py`: no PAD, every label
    /// counts), row b of the batch drawn b-th from `seed`.
    pub fn batch(&self) -> Batch {
        assert!((3..=MAX_VOCAB).contains(&self.vocab), "BenchShape: vocabulary {} is not in 3..=256", self.vocab);
        let mut rng = Rng::new(self.seed ^ 0xbe7c);
        let tokens = self.batch * self.seq;
        Batch {
            inputs: (0..tokens).map(|_| 1 + rng.below(self.vocab - 1)).collect(),
            labels: (0..tokens).map(|_| 2 + rng.below(self.vocab - 2)).collect(),
            puzzle_ids: vec![0; self.batch],
        }
    }

    /// [`BenchShape::batch`] as a training set whose rows are in the order the trainer's example stream takes
    /// them, so that the trainer's first batch is exactly that batch, slot for slot.
    pub fn examples(&self) -> ExampleSet {
        let batch = self.batch();
        let config = self.train_config();
        let mut stream = ExampleStream::new(self.batch, stream_seed(&config));
        let mut row_of_example = vec![0; self.batch];
        for slot in 0..self.batch {
            row_of_example[stream.next_index()] = slot;
        }
        let mut builder = ExampleSetBuilder::new(self.seq, self.vocab);
        let bytes = |row: &[usize]| row.iter().map(|&t| t as u8).collect::<Vec<u8>>();
        for &row in &row_of_example {
            let span = row * self.seq..(row + 1) * self.seq;
            builder.begin_group();
            builder.begin_puzzle(0);
            builder.push_example(&bytes(&batch.inputs[span.clone()]), &bytes(&batch.labels[span]));
        }
        builder.finish(&Identifiers::new())
    }
}

/// A trainer on one fixed batch of random tokens.
pub struct BenchStep {
    pub config: ModelConfig,
    pub trainer: Trainer,
    train: ExampleSet,
    /// The batch the trainer trains on, for the evaluation and the latent recursion.
    batch: Batch,
    /// The init carry the latent recursion starts from, made at its first call (the training step never needs it).
    carry: Option<Carry<f32>>,
    /// The evaluation's scores and carry.
    eval_scores: BatchScores,
}

impl BenchStep {
    /// The trainer of [`BenchShape::train_config`] on [`BenchShape::examples`]: the model drawn from `shape.seed`.
    pub fn new(shape: &BenchShape) -> Result<Self> {
        let config = shape.train_config();
        let train = shape.examples();
        let trainer = Trainer::new(config, &train)?;
        Ok(BenchStep {
            config: shape.model_config(),
            trainer,
            train,
            batch: shape.batch(),
            carry: None,
            eval_scores: BatchScores::default(),
        })
    }

    /// One supervision training step, [`Trainer::train_step`]; returns the loss. A non-finite loss is the
    /// trainer's error.
    pub fn train_step(&mut self) -> Result<f64> {
        Ok(self.trainer.train_step(&self.train)?.loss)
    }

    /// The evaluation of the batch as `loopgrad eval` runs it ([`evaluate_batch`]): [`EVAL_STEPS`] supervision
    /// steps without a tape from the init carry, scored at the last (the live weights; `loopgrad eval` swaps the
    /// EMA weights in first, which costs nothing per step).
    pub fn eval(&mut self) {
        let t = &mut self.trainer;
        evaluate_batch(&t.model, &mut t.tape, &self.batch, EVAL_STEPS, &mut self.eval_scores);
    }

    /// One latent recursion of a TRM (n + 1 net calls) without a tape, from the init carry.
    pub fn latent_recursion_no_grad(&mut self) {
        let Model::Trm(trm) = &self.trainer.model else { panic!("latent_recursion_no_grad: not a TRM") };
        let tape = &mut self.trainer.tape;
        let carry = self.carry.get_or_insert_with(|| trm.initial_carry(&tape.params, self.batch.size()));
        let x = trm.io.input_embeddings(tape, &self.batch);
        let rope = trm.io.rope_constants(tape);
        let calls = loopgrad_models::trm::TrmCalls { trm, x, rope };
        let mut state = CarryVars::constants(tape, carry.states.iter().cloned());
        tape.no_grad(|t| calls.recursion(t, &mut state));
        tape.reset();
    }

    /// FLOPs of one training step: every GEMM and attention product, forward and backward, from the model's
    /// [`ModelConfig::step_cost`] (2 per multiply-add), times the batch.
    pub fn train_flops(&self) -> f64 {
        self.config.step_cost().total_flops() * self.batch.size() as f64
    }

    /// FLOPs of one evaluation: [`EVAL_STEPS`] forward passes (HRM's step cost counts a second forward for its
    /// continue target, which evaluation does not run).
    pub fn eval_flops(&self) -> f64 {
        let forward = self.config.step_cost().forward_flops;
        let forward = if self.config.q_continue() { forward / 2.0 } else { forward };
        EVAL_STEPS as f64 * forward * self.batch.size() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The trainer's first batch is the bench's batch, slot for slot.
    #[test]
    fn the_set_feeds_the_trainer_the_benchmark_batch() {
        let shape = BenchShape::tiny(false, true);
        let (set, batch) = (shape.examples(), shape.batch());
        let mut stream = ExampleStream::new(set.len(), stream_seed(&shape.train_config()));
        for slot in 0..shape.batch {
            let e = stream.next_index();
            let row = |v: &[usize]| -> Vec<u8> {
                v[slot * shape.seq..(slot + 1) * shape.seq].iter().map(|&t| t as u8).collect()
            };
            assert_eq!(set.inputs(e), row(&batch.inputs), "slot {slot}");
            assert_eq!(set.labels(e), row(&batch.labels), "slot {slot}");
        }
    }

    /// The benchmark's losses are a trainer's, built from the same config and set, step for step, bit for bit.
    #[test]
    fn bench_loss_equals_the_trainers_on_the_same_seed() {
        for hrm in [false, true] {
            let shape = BenchShape::tiny(hrm, !hrm);
            let mut bench = BenchStep::new(&shape).unwrap();
            let mut trainer = Trainer::new(shape.train_config(), &shape.examples()).unwrap();
            for step in 0..3 {
                let ours = bench.train_step().unwrap();
                let theirs = trainer.train_step(&shape.examples()).unwrap().loss;
                assert!(ours.is_finite() && ours > 0.0);
                assert_eq!(ours.to_bits(), theirs.to_bits(), "hrm {hrm}, step {step}: {ours} vs {theirs}");
            }
        }
    }
}
