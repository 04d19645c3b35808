//! The step every model shares, and [`Model`], the one type the trainer drives.
//!
//! ```text
//! x = input_embeddings(batch)                  recorded (the embeddings get gradients)
//! state = carry                                constants: no gradient crosses supervision steps
//! state = deep_recursion(x, state)             T recursions of the model's net calls, under its gradient window
//! logits, q_halt, q_continue = heads(answer(state))
//! new carry = a copy of state
//! ```

use crate::baseline::Baseline;
use crate::config::ModelConfig;
use crate::hrm::Hrm;
use crate::io::{broadcast_init, reset_slots, InputOutput, PUZZLE_EMB};
use crate::step::{Batch, Carry, CarryVars, PendingBackward, StepOutput};
use crate::trm::Trm;
use loopgrad_autograd::window::{run_recursions, GradWindow, Recurrence, RecursionRun};
use loopgrad_autograd::{Param, ParamStore, Tape, Var};
use loopgrad_nn::checkpoint::{CheckpointError, CheckpointReader};
use loopgrad_nn::layers::{BlockStack, Builder, Manifest, ParamSink};
use loopgrad_tensor::{kernels, Float, Rng, Tensor};

/// One net call: net(sum(h), sum(inj)) = blocks(h + inj), each sum taken left to right as in the reference
/// (`z_L + (z_H + x)`).
pub fn net_call<E: Float>(
    tape: &mut Tape<E>,
    net: &BlockStack,
    h: &[Var],
    inj: &[Var],
    rope: Option<(Var, Var)>,
) -> Var {
    let h = sum(tape, h).expect("net_call: no hidden state");
    let inj = sum(tape, inj);
    net.forward(tape, h, inj, rope)
}

/// a_0 + a_1 + ... (left to right), or None for no terms.
fn sum<E: Float>(tape: &mut Tape<E>, terms: &[Var]) -> Option<Var> {
    let (&first, rest) = terms.split_first()?;
    Some(rest.iter().fold(first, |acc, &t| tape.add(acc, t)))
}

/// What distinguishes the models: their nets, carry and recursion. The step around them is shared.
pub trait Reasoner {
    fn io(&self) -> &InputOutput;
    /// The carry init vectors, in carry order.
    fn carry_inits(&self) -> &[Param];
    /// Recursions per supervision step (T, H_cycles, 1).
    fn recursions(&self) -> usize;
    fn window(&self) -> GradWindow;
    /// The net calls of one recursion, reading x and the rotary tables besides the carry (a small struct of
    /// handles, returned by value: building it allocates nothing).
    fn calls<'a, E: Float>(&'a self, x: Var, rope: Option<(Var, Var)>) -> impl Recurrence<E> + 'a;
    /// The state the heads read (y, z_H, or TRM's single z): every model puts it first in its carry.
    fn answer(&self, state: &[Var]) -> Var {
        state[0]
    }

    /// The paper's `deep_recursion` for every model: [`Reasoner::recursions`] recursions of the net calls
    /// ([`Reasoner::calls`]; one recursion is TRM's `latent_recursion`) on the carry `state`, updated in place,
    /// with the calls outside [`Reasoner::window`] run without a tape ([`run_recursions`]). Hand the returned
    /// run to [`Reasoner::backward`] (through [`StepOutput`]).
    fn deep_recursion<E: Float>(
        &self,
        tape: &mut Tape<E>,
        x: Var,
        rope: Option<(Var, Var)>,
        state: &mut [Var],
    ) -> RecursionRun {
        run_recursions(tape, &self.calls::<E>(x, rope), state, self.recursions(), self.window())
    }

    /// Every slot at the init vectors.
    fn initial_carry<E: Float>(&self, store: &ParamStore<E>, batch: usize) -> Carry<E> {
        let mut carry = Carry::default();
        self.restart_carry(store, batch, &mut carry);
        carry
    }

    /// `carry` becomes `batch` slots at the init vectors, in place: its `Vec` and (through the pool) its buffers
    /// are reused, so restarting an evaluation batch allocates nothing.
    fn restart_carry<E: Float>(&self, store: &ParamStore<E>, batch: usize, carry: &mut Carry<E>) {
        let positions = self.io().spec.positions();
        carry.states.clear();
        carry.states.extend(self.carry_inits().iter().map(|&p| broadcast_init(store, p, batch, positions)));
    }

    /// Slots where `reset` holds go back to the init vectors (halted slots that take a fresh example).
    fn reset_carry<E: Float>(&self, store: &ParamStore<E>, carry: &mut Carry<E>, reset: &[bool]) {
        for (state, &init) in carry.states.iter_mut().zip(self.carry_inits()) {
            reset_slots(store, init, state, reset);
        }
    }

    /// One supervision step from `carry` on `batch` (see the module doc). Then compute a loss of the outputs
    /// (e.g. [`crate::step::act_loss`]), call [`Reasoner::backward`] on it, and `tape.reset()`. The new carry
    /// reuses the old one's `Vec`, and its tensors come from the pool: a steady-state step allocates nothing.
    fn supervision_step<E: Float>(&self, tape: &mut Tape<E>, carry: Carry<E>, batch: &Batch) -> StepOutput<E> {
        check_carry(self, &carry, batch);
        // The carry's tensors move onto the tape; its emptied Vec then takes copies of the final states.
        let mut states = carry.states;
        let step = forward(self, tape, states.drain(..), batch);
        states.extend(step.state.iter().map(|&v| tape.value(v).clone()));
        let Forward { logits, q_halt, q_continue, pending, .. } = step;
        StepOutput { logits, q_halt, q_continue, carry: Carry { states }, recursion: Some(pending) }
    }

    /// Backward from `loss` through the step `out`, including the recomputed recursions of
    /// `full_recompute` (plain `tape.backward(loss)` misses those).
    fn backward<E: Float>(&self, tape: &mut Tape<E>, loss: Var, out: &mut StepOutput<E>) {
        tape.backward(loss);
        if let Some(p) = out.recursion.take() {
            p.run.finish_backward(tape, &self.calls::<E>(p.x, p.rope));
        }
    }

    /// HRM's bootstrapped continue target `[B]`: one more step from the new `carry` without a tape, then
    /// sigmoid(q_halt') on a slot's last step and sigmoid(max(q_halt', q_continue')) otherwise. Nothing it
    /// creates outlives the call but the target (a pooled tensor).
    fn q_continue_target<E: Float>(
        &self,
        tape: &mut Tape<E>,
        carry: &Carry<E>,
        batch: &Batch,
        is_last_step: &[bool],
    ) -> Tensor<E> {
        check_carry(self, carry, batch);
        assert_eq!(is_last_step.len(), batch.size(), "q_continue_target: one is_last_step flag per slot");
        let mark = tape.mark();
        let target = tape.no_grad(|t| {
            let step = forward(self, t, carry.states.iter().cloned(), batch);
            let (halt, cont) = (t.value(step.q_halt).data(), t.value(step.q_continue).data());
            let mut target = Tensor::uninit([batch.size()]);
            for (i, y) in target.data_mut().iter_mut().enumerate() {
                *y = kernels::sigmoid_scalar(if is_last_step[i] { halt[i] } else { halt[i].max(cont[i]) });
            }
            target
        });
        tape.release_from(mark, &mut []);
        target
    }
}

/// One supervision step without a tape that also reads the heads after every recursion: what `loopgrad trace`
/// draws. `readouts` gets one `(logits [B, L, V], q_halt [B, 1, 1])` per recursion (T for TRM, H_cycles for
/// HRM, 1 for the baseline); the last one is the step's output, and the returned carry the step's new carry,
/// bit for bit what [`Reasoner::supervision_step`] gives under `no_grad` (the same calls in the same order).
/// Call `tape.reset()` afterwards, as after any step.
pub fn traced_step<E: Float, R: Reasoner + ?Sized>(
    model: &R,
    tape: &mut Tape<E>,
    carry: Carry<E>,
    batch: &Batch,
    readouts: &mut Vec<(Tensor<E>, Tensor<E>)>,
) -> Carry<E> {
    check_carry(model, &carry, batch);
    tape.no_grad(|t| {
        let x = model.io().input_embeddings(t, batch);
        let rope = model.io().rope_constants(t);
        let mut state = CarryVars::constants(t, carry.states.into_iter());
        let calls = model.calls::<E>(x, rope);
        for _ in 0..model.recursions() {
            calls.recursion(t, &mut state);
            let (logits, q_halt, _) = model.io().heads(t, model.answer(&state));
            readouts.push((t.value(logits).clone(), t.value(q_halt).clone()));
        }
        Carry { states: state.iter().map(|&v| t.value(v).clone()).collect() }
    })
}

/// What [`forward`] recorded: the new carry on the tape, the heads' outputs, and what backward needs.
struct Forward {
    state: CarryVars,
    logits: Var,
    q_halt: Var,
    q_continue: Var,
    pending: PendingBackward,
}

/// The step itself (see the module doc): x, the carry `states` as constants, [`Reasoner::deep_recursion`], the
/// heads on the answer state.
fn forward<E: Float, R: Reasoner + ?Sized>(
    model: &R,
    tape: &mut Tape<E>,
    states: impl ExactSizeIterator<Item = Tensor<E>>,
    batch: &Batch,
) -> Forward {
    let x = model.io().input_embeddings(tape, batch);
    let rope = model.io().rope_constants(tape);
    let mut state = CarryVars::constants(tape, states);
    let run = model.deep_recursion(tape, x, rope, &mut state);
    let (logits, q_halt, q_continue) = model.io().heads(tape, model.answer(&state));
    Forward { state, logits, q_halt, q_continue, pending: PendingBackward { run, x, rope } }
}

/// Panics unless `carry` has the model's arity and one [B, P + L, D] state per latent for `batch`.
fn check_carry<E: Float, R: Reasoner + ?Sized>(model: &R, carry: &Carry<E>, batch: &Batch) {
    let spec = model.io().spec;
    assert_eq!(carry.states.len(), model.carry_inits().len(), "supervision_step: carry has the wrong arity");
    for s in &carry.states {
        assert_eq!(
            s.dims(),
            &[batch.size(), spec.positions(), spec.hidden_size],
            "supervision_step: carry state shape vs a batch of {} examples",
            batch.size()
        );
    }
}

/// TRM, HRM or the baseline: the one type the trainer drives.
#[derive(Clone, Debug)]
pub enum Model {
    Trm(Trm),
    Hrm(Hrm),
    Baseline(Baseline),
}

impl Model {
    /// Declares the model's parameters in `sink` (a [`Builder`] or a [`Manifest`]).
    pub fn new(sink: &mut (impl ParamSink + ?Sized), config: &ModelConfig) -> Self {
        match config {
            ModelConfig::Trm(c) => Model::Trm(Trm::new(sink, c)),
            ModelConfig::Hrm(c) => Model::Hrm(Hrm::new(sink, c)),
            ModelConfig::Baseline(c) => Model::Baseline(Baseline::new(sink, c)),
        }
    }

    /// The model and its freshly initialised parameters, drawn from `seed`.
    pub fn build<E: Float>(config: &ModelConfig, seed: u64) -> (Model, ParamStore<E>) {
        let mut store = ParamStore::new();
        let mut rng = Rng::new(seed);
        let model = Model::new(&mut Builder::new(&mut store, &mut rng), config);
        (model, store)
    }

    pub fn config(&self) -> ModelConfig {
        match self {
            Model::Trm(m) => ModelConfig::Trm(m.config.clone()),
            Model::Hrm(m) => ModelConfig::Hrm(m.config.clone()),
            Model::Baseline(m) => ModelConfig::Baseline(m.config.clone()),
        }
    }

    pub fn io(&self) -> &InputOutput {
        dispatch!(self, m => m.io())
    }

    /// The puzzle-embedding table (trained by sign-SGD on the rows in the batch, not by the dense optimizer).
    pub fn puzzle_emb(&self) -> Param {
        self.io().puzzle_emb.table
    }

    pub fn initial_carry<E: Float>(&self, store: &ParamStore<E>, batch: usize) -> Carry<E> {
        dispatch!(self, m => m.initial_carry(store, batch))
    }

    pub fn restart_carry<E: Float>(&self, store: &ParamStore<E>, batch: usize, carry: &mut Carry<E>) {
        dispatch!(self, m => m.restart_carry(store, batch, carry))
    }

    pub fn reset_carry<E: Float>(&self, store: &ParamStore<E>, carry: &mut Carry<E>, reset: &[bool]) {
        dispatch!(self, m => m.reset_carry(store, carry, reset))
    }

    pub fn supervision_step<E: Float>(&self, tape: &mut Tape<E>, carry: Carry<E>, batch: &Batch) -> StepOutput<E> {
        dispatch!(self, m => m.supervision_step(tape, carry, batch))
    }

    pub fn q_continue_target<E: Float>(
        &self,
        tape: &mut Tape<E>,
        carry: &Carry<E>,
        batch: &Batch,
        is_last_step: &[bool],
    ) -> Tensor<E> {
        dispatch!(self, m => m.q_continue_target(tape, carry, batch, is_last_step))
    }

    pub fn backward<E: Float>(&self, tape: &mut Tape<E>, loss: Var, out: &mut StepOutput<E>) {
        dispatch!(self, m => m.backward(tape, loss, out))
    }

    /// See [`traced_step`].
    pub fn traced_step<E: Float>(
        &self,
        tape: &mut Tape<E>,
        carry: Carry<E>,
        batch: &Batch,
        readouts: &mut Vec<(Tensor<E>, Tensor<E>)>,
    ) -> Carry<E> {
        dispatch!(self, m => traced_step(m, tape, carry, batch, readouts))
    }

    /// Parameters counted as the papers count them (see [`ModelConfig::param_count`]).
    pub fn param_count<E: Float>(&self, store: &ParamStore<E>) -> usize {
        let counted = |&p: &Param| store.is_trainable(p) && store.name(p) != PUZZLE_EMB;
        store.ids().filter(counted).map(|p| store.shape(p).numel()).sum()
    }
}

impl ModelConfig {
    /// Every tensor the model declares (names, shapes, inits), without allocating any.
    pub fn manifest(&self) -> Manifest {
        let mut m = Manifest::new();
        Model::new(&mut m, self);
        m
    }

    /// Checks that `reader`'s file holds every parameter of this model with its shape and a float dtype, from
    /// the file's header alone: before a model whose size comes from a file's metadata is allocated, so that a
    /// small file whose config claims a huge model is a "tensor missing" error, not a multi-gigabyte allocation.
    pub fn check_weights(&self, reader: &CheckpointReader) -> Result<(), CheckpointError> {
        self.manifest().entries.iter().try_for_each(|e| reader.check_layout(&e.name, &e.shape))
    }

    /// The parameter count the papers publish: every trained tensor except the puzzle-embedding table (whose
    /// size depends on the dataset). The carry init vectors are buffers in the reference, not parameters, so
    /// they are not counted either.
    pub fn param_count(&self) -> usize {
        self.manifest().count(|e| e.trainable && e.name != PUZZLE_EMB)
    }

    /// A few lines describing the architecture, for `loopgrad info`.
    pub fn summary(&self) -> String {
        let io = self.io();
        let manifest = self.manifest();
        let puzzle = manifest.count(|e| e.name == PUZZLE_EMB);
        let buffers = manifest.count(|e| !e.trainable);
        let cost = self.step_cost();
        let head = match self {
            ModelConfig::Trm(c) => format!(
                "TRM ({}, variant {}): D {}, {} layers, T {}, n {}, gradient window {}",
                if c.mlp_t { "token MLP".to_string() } else { format!("attention, {} heads", c.num_heads) },
                serde_name(&c.variant),
                c.hidden_size,
                c.num_layers,
                c.h_cycles,
                c.l_cycles,
                c.grad_window
            ),
            ModelConfig::Hrm(c) => format!(
                "HRM (attention, {} heads): D {}, H {} layers x {} cycles, L {} layers x {} cycles, window {}",
                c.num_heads, c.hidden_size, c.h_layers, c.h_cycles, c.l_layers, c.l_cycles, c.grad_window
            ),
            ModelConfig::Baseline(c) => format!(
                "Baseline (non-recursive, {}): D {}, {} distinct layers",
                if c.mlp_t { "token MLP".to_string() } else { format!("attention, {} heads", c.num_heads) },
                c.hidden_size,
                c.num_layers
            ),
        };
        format!(
            "{head}\n\
             input: {} tokens + {} prefix positions, vocab {}, {} puzzle identifiers\n\
             supervision: up to {} steps, exploration {}, {}\n\
             effective depth: {} blocks per supervision step\n\
             cost per example and supervision step: {:.2} MFLOP forward + {:.2} MFLOP backward \
             ({} of {} net calls recorded)\n\
             parameters: {} (excluded: puzzle embeddings {}, carry init buffers {})",
            io.seq_len,
            io.puzzle_emb_len,
            io.vocab_size,
            io.num_puzzle_identifiers,
            self.halt_max_steps(),
            self.halt_exploration_prob(),
            if self.q_continue() { "halt when q_halt > q_continue" } else { "halt when q_halt > 0" },
            self.effective_depth(),
            cost.forward_flops / 1e6,
            cost.backward_flops / 1e6,
            cost.recorded_calls,
            cost.calls,
            group_thousands(self.param_count()),
            group_thousands(puzzle),
            group_thousands(buffers),
        )
    }
}

/// How a value is spelled in a config file (`"last_recursion"`, `{"last_calls":3}`).
fn serde_name(v: &impl serde::Serialize) -> String {
    let s = serde_json::to_string(v).unwrap_or_default();
    s.trim_matches('"').to_string()
}

/// 27275266 -> "27,275,266".
pub fn group_thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
