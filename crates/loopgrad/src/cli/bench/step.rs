//! The step `loopgrad bench` and `benches/step.rs` time: one supervision training step of a TRM or HRM on random
//! tokens, made of the very calls `Trainer::train_step` makes (the model's supervision step with its T-1
//! untaped recursions and the recorded one, the ACT loss, backward, AdamATan2 on the weights, sign-SGD on the
//! puzzle row, EMA), without the trainer's slot bookkeeping: no slot ever halts, so the carry runs on from step to
//! step as it does for a slot in training. Also the 16-step no-grad evaluation of a batch, as `loopgrad eval`
//! runs it, and one latent recursion without a tape.
//!
//! The shape flags are those of the PyTorch reference `../shared/bench/torch_trm.py`, with its defaults: the
//! paper-size TRM (D 512, 2 layers, T 3, n 6, 81 tokens + 16 prefix positions, vocabulary 11, batch 8).

use loopgrad_autograd::window::Recurrence;
use loopgrad_autograd::Tape;
use loopgrad_models::config::{ForwardDtype, HrmConfig, ModelConfig, TrmConfig, TrmVariant};
use loopgrad_models::step::{act_loss, Batch, Carry, CarryVars, SlotStats};
use loopgrad_models::{GradWindow, Model};
use loopgrad_nn::ema::Ema;
use loopgrad_nn::optim::{trainable_except, AdamAtan2, AdamAtan2Config, Optimizer, SignSgdConfig, SparseSignSgd};
use loopgrad_tensor::Rng;
use loopgrad_train::eval::{evaluate_batch, BatchScores};

/// The reference recipe's optimizer settings, as in `torch_trm.py`.
pub const LR: f64 = 1e-4;
pub const WEIGHT_DECAY: f64 = 1.0;
pub const EMA_DECAY: f64 = 0.999;
/// Supervision steps of an evaluation (N_sup of the paper).
pub const EVAL_STEPS: usize = 16;

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

// `main_job`, `paper` and `latent_recursion_no_grad` serve `benches/step.rs`, which includes this file.
#[allow(dead_code)]
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
}

impl BenchShape {
    /// The model, with halting out of reach (`halt_max_steps` = usize::MAX): a benchmark step never resets.
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
                halt_max_steps: usize::MAX,
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
            halt_max_steps: usize::MAX,
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
}

/// A model in training on one fixed random batch.
pub struct BenchStep {
    pub config: ModelConfig,
    pub model: Model,
    pub tape: Tape<f32>,
    dense: AdamAtan2<f32>,
    sparse: SparseSignSgd,
    ema: Ema<f32>,
    carry: Carry<f32>,
    batch: Batch,
    // What a step writes besides the tape, kept across steps as the trainer keeps it.
    /// The per-slot results of `act_loss`.
    slots: Vec<SlotStats>,
    /// HRM's continue target: no slot is ever on its last step (halting is out of reach).
    not_last_step: Vec<bool>,
    /// The evaluation's scores and carry.
    eval_scores: BatchScores,
}

impl BenchStep {
    /// The model drawn from `shape.seed`, and a batch of random tokens (inputs 1..vocab, labels 2..vocab, as in
    /// `torch_trm.py`: no PAD, every label counts).
    pub fn new(shape: &BenchShape) -> Self {
        let config = shape.model_config();
        let (model, store) = Model::build::<f32>(&config, shape.seed);
        let precision = config.forward_dtype().precision();
        let table = model.puzzle_emb();
        let dense_params = trainable_except(&store, &[table]);
        let adam = AdamAtan2Config { beta1: 0.9, beta2: 0.95, weight_decay: WEIGHT_DECAY };
        let dense = AdamAtan2::new(&store, dense_params.clone(), adam);
        let sparse = SparseSignSgd::new(&store, table, SignSgdConfig { weight_decay: WEIGHT_DECAY });
        let ema = Ema::new(&store, dense_params, EMA_DECAY);
        let mut rng = Rng::new(shape.seed ^ 0xbe7c);
        let tokens = shape.batch * shape.seq;
        let vocab = shape.vocab.max(3);
        let batch = Batch {
            inputs: (0..tokens).map(|_| 1 + rng.below(vocab - 1)).collect(),
            labels: (0..tokens).map(|_| 2 + rng.below(vocab - 2)).collect(),
            puzzle_ids: vec![0; shape.batch],
        };
        let carry = model.initial_carry(&store, shape.batch);
        BenchStep {
            config,
            model,
            tape: {
                let mut tape = Tape::new(store);
                tape.set_precision(precision);
                tape
            },
            dense,
            sparse,
            ema,
            carry,
            slots: Vec::new(),
            not_last_step: vec![false; batch.size()],
            eval_scores: BatchScores::default(),
            batch,
        }
    }

    /// One supervision training step; returns the loss.
    pub fn train_step(&mut self) -> f32 {
        let mut out = self.model.supervision_step(&mut self.tape, std::mem::take(&mut self.carry), &self.batch);
        let target = self
            .config
            .q_continue()
            .then(|| self.model.q_continue_target(&mut self.tape, &out.carry, &self.batch, &self.not_last_step));
        let loss = act_loss(&mut self.tape, &out, &self.batch, target.as_ref().map(|t| t.data()), &mut self.slots);
        let value = self.tape.value(loss.loss).item();
        self.model.backward(&mut self.tape, loss.loss, &mut out);
        self.dense.step(&mut self.tape.params, LR);
        self.sparse.step(&mut self.tape.params, LR, &self.batch.puzzle_ids);
        self.ema.update(&self.tape.params);
        self.tape.reset();
        self.carry = out.carry;
        value
    }

    /// The evaluation of the batch as `loopgrad eval` runs it ([`evaluate_batch`]): [`EVAL_STEPS`] supervision
    /// steps without a tape from the init carry, scored at the last (the live weights; `loopgrad eval` swaps the
    /// EMA weights in first, which costs nothing per step).
    pub fn eval(&mut self) {
        evaluate_batch(&self.model, &mut self.tape, &self.batch, EVAL_STEPS, &mut self.eval_scores);
    }

    /// One latent recursion of a TRM (n + 1 net calls) without a tape, from the current carry.
    #[allow(dead_code)]
    pub fn latent_recursion_no_grad(&mut self) {
        let Model::Trm(trm) = &self.model else { panic!("latent_recursion_no_grad: not a TRM") };
        let tape = &mut self.tape;
        let x = trm.io.input_embeddings(tape, &self.batch);
        let rope = loopgrad_models::Reasoner::rope_constants(trm, tape);
        let calls = loopgrad_models::trm::TrmCalls { trm, x, rope };
        let mut state = CarryVars::constants(tape, self.carry.states.iter().cloned());
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
