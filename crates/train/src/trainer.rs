//! The trainer: deep supervision with a per-slot carry, ACT halting, the two optimizers, EMA.
//!
//! One call of [`Trainer::train_step`] is one optimizer step, and one supervision step of every slot:
//!
//! ```text
//! halted slots take fresh examples, their carry resets to the init vectors
//! out  = model.supervision_step(carry, batch)         T-1 recursions without a tape, 1 recorded
//! loss = (sum_b CE_b + 0.5 sum_b BCE(q_halt_b, exact_b)) / B
//! backward; AdamATan2 on the weights, sign-SGD on the batch's puzzle rows; EMA; reset the tape
//! carry = out.carry (detached); each slot halts at N_sup, or when its Q-head says so (training only)
//! ```
//!
//! Everything a step writes besides the tape lives across steps (the carry, the batch, `StepBuffers`) and every
//! tensor comes from the pool, so a step after the first few allocates nothing
//! (`tests/steady_state_allocations.rs`).

use crate::config::TrainConfig;
use crate::slots::{ExampleStream, Halting, Slots};
use anyhow::{bail, Result};
use loopgrad_autograd::Tape;
use loopgrad_models::step::{act_loss, Batch, Carry, SlotStats};
use loopgrad_models::Model;
use loopgrad_nn::ema::Ema;
use loopgrad_nn::optim::{trainable_except, Optimizer, SparseSignSgd};
use loopgrad_puzzles::ExampleSet;
use loopgrad_tensor::Rng;

/// What one optimizer step measured. Accuracies are over the slots that halted at this step (the examples that
/// finished), as TRM logs them; `halted` says how many that was.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepStats {
    pub step: u64,
    pub lr: f64,
    /// The loss that was differentiated (already divided by the batch size).
    pub loss: f64,
    pub lm_loss: f64,
    pub q_halt_loss: f64,
    pub halted: usize,
    /// Among the halted slots: exactly solved, tokens right / tokens asked, and their mean step count.
    pub exact: usize,
    pub tokens_correct: usize,
    pub tokens_valid: usize,
    pub halt_steps: u64,
}

/// A model in training: its tape and parameters, optimizers, EMA, slots and their carry.
pub struct Trainer {
    pub config: TrainConfig,
    pub model: Model,
    pub tape: Tape<f32>,
    pub(crate) dense: Box<dyn Optimizer<f32>>,
    pub(crate) sparse: SparseSignSgd,
    pub(crate) ema: Option<Ema<f32>>,
    pub(crate) step: u64,
    pub(crate) rng: Rng,
    pub(crate) stream: ExampleStream,
    pub(crate) slots: Slots,
    pub(crate) carry: Carry<f32>,
    pub(crate) batch: Batch,
    pub(crate) act: Halting,
    pub(crate) buffers: StepBuffers,
}

/// What a step writes besides the tape and the carry, kept from step to step so that a steady-state step
/// allocates nothing.
#[derive(Debug, Default)]
pub(crate) struct StepBuffers {
    /// Which slots took a fresh example this step (their carry went back to the init vectors).
    reset: Vec<bool>,
    /// Which slots are on their last step whatever the Q-head says (HRM's continue target).
    last_step: Vec<bool>,
    /// The step's per-slot results (`act_loss`).
    slots: Vec<SlotStats>,
}

impl Trainer {
    /// A fresh model drawn from `config.run.seed`, ready to train on `train`.
    pub fn new(config: TrainConfig, train: &ExampleSet) -> Result<Self> {
        config.validate()?;
        check_data(&config, train, "training")?;
        let (model, store) = Model::build::<f32>(&config.model, config.run.seed);
        let table = model.puzzle_emb();
        let dense_params = trainable_except(&store, &[table]);
        let dense = config.optim.dense.build(&store, dense_params.clone());
        let sparse = SparseSignSgd::new(&store, table, config.optim.puzzle_emb);
        let ema = (config.optim.ema > 0.0).then(|| Ema::new(&store, dense_params, config.optim.ema));
        let b = config.run.batch_size;
        let carry = model.initial_carry(&store, b);
        let l = train.seq_len();
        let act = Halting {
            max_steps: config.model.halt_max_steps() as u32,
            exploration_prob: config.model.halt_exploration_prob(),
            use_q_continue: config.model.q_continue(),
            adaptive: config.run.act,
        };
        Ok(Trainer {
            stream: ExampleStream::new(train.len(), stream_seed(&config)),
            rng: Rng::new(config.run.seed ^ 0xac7),
            slots: Slots::new(b),
            batch: Batch { inputs: vec![0; b * l], labels: vec![0; b * l], puzzle_ids: vec![0; b] },
            tape: {
                // The products in `model.forward_dtype` (f32, or bf16 operands with f32 sums).
                let mut tape = Tape::new(store);
                tape.set_precision(config.model.forward_dtype().precision());
                tape
            },
            step: 0,
            model,
            dense,
            sparse,
            ema,
            carry,
            act,
            buffers: StepBuffers::default(),
            config,
        })
    }

    /// Optimizer steps taken so far.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// One optimizer step (see the module doc). A non-finite loss is an error naming the step, and nothing is
    /// updated: the weights stay those of the last good step.
    pub fn train_step(&mut self, train: &ExampleSet) -> Result<StepStats> {
        let buffers = &mut self.buffers;
        self.slots.refill(&mut self.stream, &mut buffers.reset);
        for (slot, _) in buffers.reset.iter().enumerate().filter(|(_, &r)| r) {
            fill_row(&mut self.batch, slot, train, self.slots.example[slot]);
        }
        self.model.reset_carry(&self.tape.params, &mut self.carry, &buffers.reset);

        let mut out = self.model.supervision_step(&mut self.tape, std::mem::take(&mut self.carry), &self.batch);
        let target = self.act.use_q_continue.then(|| {
            self.slots.is_last_step(&self.act, &mut buffers.last_step);
            self.model.q_continue_target(&mut self.tape, &out.carry, &self.batch, &buffers.last_step)
        });
        let loss = act_loss(&mut self.tape, &out, &self.batch, target.as_ref().map(|t| t.data()), &mut buffers.slots);
        let value = self.tape.value(loss.loss).item() as f64;
        if !value.is_finite() {
            self.tape.reset();
            self.carry = out.carry;
            let o = &self.config.optim;
            // Nearly always a learning rate too large for the model: name the fields a user would change.
            bail!(
                "the loss became {value} at step {}; stopping (the last checkpoint is kept). A diverging loss usually \
                 means the learning rate is too large: optim.lr = {:e}, optim.puzzle_emb_lr = {:e}",
                self.step + 1,
                o.lr,
                o.puzzle_emb_lr
            );
        }
        // Through the model, not the tape alone: a full_recompute window reruns earlier recursions here.
        self.model.backward(&mut self.tape, loss.loss, &mut out);

        self.step += 1;
        let o = &self.config.optim;
        let lr = o.schedule.lr(o.lr, self.step, self.config.run.steps);
        let emb_lr = o.schedule.lr(o.puzzle_emb_lr, self.step, self.config.run.steps);
        self.dense.step(&mut self.tape.params, lr);
        self.sparse.step(&mut self.tape.params, emb_lr, &self.batch.puzzle_ids);
        if let Some(ema) = &mut self.ema {
            if self.config.optim.ema_bias_correction {
                ema.update_corrected(&self.tape.params, self.step);
            } else {
                ema.update(&self.tape.params);
            }
        }
        self.tape.reset();
        self.carry = out.carry;

        self.slots.advance(&buffers.slots, &self.act, true, &mut self.rng);

        let b = self.batch.size() as f64;
        let mut stats = StepStats {
            step: self.step,
            lr,
            loss: value,
            lm_loss: loss.lm_loss / b,
            q_halt_loss: loss.q_halt_loss / b,
            ..StepStats::default()
        };
        for (i, s) in buffers.slots.iter().enumerate().filter(|(i, s)| self.slots.halted[*i] && s.valid > 0) {
            stats.halted += 1;
            stats.exact += s.exact as usize;
            stats.tokens_correct += s.correct;
            stats.tokens_valid += s.valid;
            stats.halt_steps += self.slots.steps[i] as u64;
        }
        Ok(stats)
    }

    /// Runs `f` with the EMA weights swapped in (or the live ones when EMA is off), then swaps back.
    pub fn with_eval_weights<R>(&mut self, f: impl FnOnce(&Model, &mut Tape<f32>) -> R) -> R {
        if let Some(ema) = &mut self.ema {
            ema.swap_in(&mut self.tape.params);
        }
        let r = f(&self.model, &mut self.tape);
        if let Some(ema) = &mut self.ema {
            ema.swap_out(&mut self.tape.params);
        }
        r
    }
}

/// The seed of the example order, derived from the run's seed (so that it differs from the init's stream).
pub(crate) fn stream_seed(config: &TrainConfig) -> u64 {
    config.run.seed ^ 0x5eed_da7a
}

/// Copies example `index` of `set` into row `slot` of `batch`.
pub fn fill_row(batch: &mut Batch, slot: usize, set: &ExampleSet, index: usize) {
    let l = set.seq_len();
    for (dst, &src) in batch.inputs[slot * l..(slot + 1) * l].iter_mut().zip(set.inputs(index)) {
        *dst = src as usize;
    }
    for (dst, &src) in batch.labels[slot * l..(slot + 1) * l].iter_mut().zip(set.labels(index)) {
        *dst = src as usize;
    }
    batch.puzzle_ids[slot] = set.puzzle_id(index) as usize;
}

/// The data must fit the model: sequence length, vocabulary and puzzle identifiers.
pub fn check_data(config: &TrainConfig, set: &ExampleSet, what: &str) -> Result<()> {
    let io = config.model.io();
    if set.is_empty() {
        bail!("the {what} set is empty");
    }
    if set.seq_len() != io.seq_len {
        bail!("the {what} set has sequences of {} tokens but model.seq_len is {}", set.seq_len(), io.seq_len);
    }
    if set.vocab_size() > io.vocab_size {
        bail!("the {what} set uses {} token ids but model.vocab_size is {}", set.vocab_size(), io.vocab_size);
    }
    if set.num_identifiers() > io.num_puzzle_identifiers {
        bail!(
            "the {what} set has {} puzzle identifiers but model.num_puzzle_identifiers is {}",
            set.num_identifiers(),
            io.num_puzzle_identifiers
        );
    }
    Ok(())
}
