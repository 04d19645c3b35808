//! The tape: an arena Wengert list tuned for truncated backprop through recursion.
//!
//! Values live in `values`, indexed by [`Var::Value`]; parameters live outside, in the [`ParamStore`], and
//! appear as [`Var::Param`]. An op always produces a value; it records a [`Node`] only when recording is on and
//! some input needs a gradient. Backward is one reverse loop over `nodes`: no recursion, no hash map, no sort,
//! so a graph of any depth works. Gradient kernels *add* into gradient buffers, so a weight used many times,
//! or an input used n times, needs no special case.
//!
//! TRM's step in these terms (the [`crate::window`] driver does the loop for any gradient window):
//! ```text
//! let floor = tape.mark();
//! for _ in 0..T-1 { tape.no_grad_update(floor, &mut carry, latent_recursion) } // no nodes; one carry alive
//! latent_recursion(&mut tape, &mut carry)                                        // recorded: n+1 net calls
//! tape.backward(loss)                                                            // param grads += ...
//! let (y, z) = (tape.take(carry[0]), tape.take(carry[1]));                       // detach the carry
//! tape.reset()                                                                   // capacities kept
//! ```
//!
//! Every vector here keeps its capacity across [`Tape::reset`], and every tensor comes from and returns to the
//! thread's buffer pool, so a supervision step after the first allocates nothing on the tape's side.

use crate::op::{self, Op};
use crate::params::{Param, ParamStore};
use loopgrad_tensor::{kernels, Float, PackedWeight, Precision, Tensor};
use std::ops::Range;

/// A handle to a tensor the tape knows: an op's output or leaf (`Value`), or a parameter (`Param`). `Copy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Var {
    Value(u32),
    Param(u32),
}

impl From<Param> for Var {
    fn from(p: Param) -> Var {
        Var::Param(p.0)
    }
}

/// Up to this many inputs per op.
pub const MAX_INPUTS: usize = 4;

/// One recorded op: what it was, where its inputs and output are, and what it saved for backward.
#[derive(Clone, Debug)]
pub struct Node {
    pub op: Op,
    pub out: u32,
    pub inputs: [Var; MAX_INPUTS],
    pub n_inputs: u8,
    /// Tensors saved for backward, as a range into the tape's `saved` arena.
    pub saved: Range<u32>,
    /// Integers saved for backward (labels, token ids), as a range into the tape's `ints` arena.
    pub ints: Range<u32>,
}

/// A position on the tape: the ends of the value, node, saved-tensor and integer arenas at one moment. Scopes
/// release values created after a mark ([`Tape::release_from`]); recomputation records a recursion after a
/// mark, backprops through just those nodes ([`Tape::backward_from`]) and cuts the tape back
/// ([`Tape::truncate`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    values: u32,
    nodes: u32,
    saved: u32,
    ints: u32,
}

impl Mark {
    /// The end of the value arena at the mark: values at or after it were created since.
    pub(crate) fn values(self) -> usize {
        self.values as usize
    }
}

/// The tape. Owns the parameter store (outside the Wengert list) so that ops can read weights by id.
pub struct Tape<E: Float> {
    pub params: ParamStore<E>,
    values: Vec<Option<Tensor<E>>>,
    needs_grad: Vec<bool>,
    grads: Vec<Option<Tensor<E>>>,
    nodes: Vec<Node>,
    saved: Vec<Tensor<E>>,
    ints: Vec<usize>,
    recording: bool,
    /// The operand precision of every product (GEMM and attention), forward and backward: f32, or bf16 operands
    /// with f32 sums as the TRM reference trains (`model.forward_dtype`). Kept across [`Tape::reset`].
    precision: Precision,
}

impl<E: Float> Tape<E> {
    pub fn new(params: ParamStore<E>) -> Self {
        Tape {
            params,
            values: Vec::new(),
            needs_grad: Vec::new(),
            grads: Vec::new(),
            nodes: Vec::new(),
            saved: Vec::new(),
            ints: Vec::new(),
            recording: true,
            precision: Precision::F32,
        }
    }

    /// Sets the operand precision of the products from now on (see the field's doc); values, gradients and
    /// everything else stay in `E`.
    pub fn set_precision(&mut self, precision: Precision) {
        self.precision = precision;
    }

    /// The operand precision of the products.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    // ---- leaves -------------------------------------------------------------------------------------------

    /// A leaf that needs no gradient (data, a detached carry).
    pub fn constant(&mut self, t: Tensor<E>) -> Var {
        self.push_value(t, false)
    }

    /// A leaf whose gradient backward computes (read it with [`Tape::grad`]).
    pub fn leaf(&mut self, t: Tensor<E>) -> Var {
        self.push_value(t, true)
    }

    /// A parameter as a tape variable (no copy).
    pub fn param(&self, p: Param) -> Var {
        Var::from(p)
    }

    /// A copy of `v`'s value as a new constant: later ops see the same numbers, backward stops here.
    pub fn detach(&mut self, v: Var) -> Var {
        let t = self.value(v).clone();
        self.constant(t)
    }

    // ---- reading ------------------------------------------------------------------------------------------

    /// The value of `v`. Panics if it was released by a scope or a reset.
    pub fn value(&self, v: Var) -> &Tensor<E> {
        match v {
            Var::Param(p) => self.params.value(Param(p)),
            Var::Value(i) => self.values[i as usize]
                .as_ref()
                .unwrap_or_else(|| panic!("tape: value {i} was released (used after its scope or a reset)")),
        }
    }

    /// Moves `v`'s value out of the tape (the slot is released). For parameters, a copy.
    pub fn take(&mut self, v: Var) -> Tensor<E> {
        match v {
            Var::Param(p) => self.params.value(Param(p)).clone(),
            Var::Value(i) => self.values[i as usize]
                .take()
                .unwrap_or_else(|| panic!("tape: value {i} was released (used after its scope or a reset)")),
        }
    }

    /// The gradient of a leaf after backward (`None` if nothing flowed to it). Intermediate gradients are freed
    /// during backward as soon as they have been propagated. For parameters, see [`ParamStore::grad`].
    pub fn grad(&self, v: Var) -> Option<&Tensor<E>> {
        match v {
            Var::Param(p) => Some(self.params.grad(Param(p))),
            Var::Value(i) => self.grads.get(i as usize).and_then(|g| g.as_ref()),
        }
    }

    /// Moves a value's gradient out of the tape (`None` for parameters, whose gradients live in the store).
    pub fn take_grad(&mut self, v: Var) -> Option<Tensor<E>> {
        match v {
            Var::Param(_) => None,
            Var::Value(i) => self.grads.get_mut(i as usize).and_then(Option::take),
        }
    }

    /// Whether a gradient would flow to `v`.
    pub fn needs_grad(&self, v: Var) -> bool {
        match v {
            Var::Param(p) => self.params.is_trainable(Param(p)),
            Var::Value(i) => self.needs_grad[i as usize],
        }
    }

    /// Turns a value into a leaf that collects its gradient (`true`) or into a constant (`false`). Ops recorded
    /// before the change keep what they recorded. Recomputation uses it to make a checkpointed carry a leaf.
    pub fn set_needs_grad(&mut self, v: Var, needs_grad: bool) {
        match v {
            Var::Param(p) => panic!("tape: set_needs_grad on parameter {p} (use ParamStore::set_trainable)"),
            Var::Value(i) => self.needs_grad[i as usize] = needs_grad,
        }
    }

    pub fn is_recording(&self) -> bool {
        self.recording
    }
    /// Number of recorded nodes.
    pub fn num_nodes(&self) -> usize {
        self.nodes.len()
    }
    /// Number of value slots in use (live or released within the current arena).
    pub fn num_values(&self) -> usize {
        self.values.len()
    }
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    // ---- recording ----------------------------------------------------------------------------------------

    /// Whether an op on `inputs` would be recorded now. Ops check this before computing what backward needs.
    pub fn should_record(&self, inputs: &[Var]) -> bool {
        self.recording && inputs.iter().any(|&v| self.needs_grad(v))
    }

    /// Adds an op's output. If [`Tape::should_record`] holds, also records a node with its inputs and the
    /// tensors and integers backward needs; otherwise those are dropped (back to the pool) at once.
    pub fn push_op(
        &mut self,
        op: Op,
        inputs: &[Var],
        out: Tensor<E>,
        saved: impl IntoIterator<Item = Tensor<E>>,
        ints: &[usize],
    ) -> Var {
        assert!(inputs.len() <= MAX_INPUTS, "tape: op {op:?} has {} inputs (max {MAX_INPUTS})", inputs.len());
        let record = self.should_record(inputs);
        let v = self.push_value(out, record);
        if record {
            let Var::Value(out_idx) = v else { unreachable!() };
            let s0 = self.saved.len() as u32;
            self.saved.extend(saved);
            let i0 = self.ints.len() as u32;
            self.ints.extend_from_slice(ints);
            let mut ins = [Var::Value(u32::MAX); MAX_INPUTS];
            ins[..inputs.len()].copy_from_slice(inputs);
            self.nodes.push(Node {
                op,
                out: out_idx,
                inputs: ins,
                n_inputs: inputs.len() as u8,
                saved: s0..self.saved.len() as u32,
                ints: i0..self.ints.len() as u32,
            });
        }
        v
    }

    fn push_value(&mut self, t: Tensor<E>, needs_grad: bool) -> Var {
        let i = self.values.len() as u32;
        self.values.push(Some(t));
        self.needs_grad.push(needs_grad);
        Var::Value(i)
    }

    // ---- scopes -------------------------------------------------------------------------------------------

    /// Runs `f` with recording off. Nothing is recorded or saved; values it creates stay until a reset
    /// (use [`Tape::no_grad_scope`] or [`Tape::no_grad_update`] to free them at the end).
    pub fn no_grad<R>(&mut self, f: impl FnOnce(&mut Self) -> R) -> R {
        let was = std::mem::replace(&mut self.recording, false);
        let r = f(self);
        self.recording = was;
        r
    }

    /// Runs `f` with recording off and then releases every value it created except the ones it returns, which
    /// are moved down to the scope's start (their `Var`s are rewritten). Intermediates go back to the pool at
    /// the end of the scope. The scope's *inputs* stay alive; to run a loop that replaces a carry, use
    /// [`Tape::no_grad_update`], which also releases the carry each update replaces.
    pub fn no_grad_scope<const N: usize>(&mut self, f: impl FnOnce(&mut Self) -> [Var; N]) -> [Var; N] {
        let mark = self.mark();
        let mut keep = self.no_grad(f);
        self.release_from(mark, &mut keep);
        keep
    }

    /// One no-grad update of a carry: `f` replaces the entries of `carry` with recording off; then every value
    /// created since `floor` except the new carry is released and the carry moves down to `floor`. Called in a
    /// loop with one `floor` taken before the first update, each update also frees the carry it replaced, so a
    /// no-grad recursion of any length holds one carry and one call's intermediates, in the same arena slots.
    pub fn no_grad_update(&mut self, floor: Mark, carry: &mut [Var], f: impl FnOnce(&mut Self, &mut [Var])) {
        self.no_grad(|t| f(t, carry));
        self.release_from(floor, carry);
    }

    /// The current ends of the arenas.
    pub fn mark(&self) -> Mark {
        Mark {
            values: self.values.len() as u32,
            nodes: self.nodes.len() as u32,
            saved: self.saved.len() as u32,
            ints: self.ints.len() as u32,
        }
    }

    /// Releases every value created since `mark` except those in `keep`, which move down to `mark` in the order
    /// of their positions (and are rewritten in place; duplicates allowed). Only legal when nothing since `mark`
    /// was recorded.
    pub fn release_from(&mut self, mark: Mark, keep: &mut [Var]) {
        let m = mark.values;
        assert!(m as usize <= self.values.len(), "tape: release_from a mark beyond the tape (taken before a reset?)");
        assert!(
            self.nodes.last().is_none_or(|n| n.out < m),
            "tape: release_from would free values that recorded nodes use"
        );
        // Visit the kept values in increasing position, so a value only ever moves down into a slot that is
        // free or holds a value that is released anyway.
        let mut next = m;
        let mut done: Option<u32> = None;
        while let Some(i) = keep
            .iter()
            .filter_map(|v| match *v {
                Var::Value(i) if i >= m && done.is_none_or(|d| i > d) => Some(i),
                _ => None,
            })
            .min()
        {
            if i != next {
                let (src, dst) = (i as usize, next as usize);
                self.values[dst] = self.values[src].take();
                self.needs_grad[dst] = self.needs_grad[src];
                if src < self.grads.len() {
                    self.grads[dst] = self.grads[src].take();
                }
            }
            keep.iter_mut().filter(|v| **v == Var::Value(i)).for_each(|v| *v = Var::Value(next));
            done = Some(i);
            next += 1;
        }
        // Dropping the tail returns its buffers to the pool.
        self.values.truncate(next as usize);
        self.needs_grad.truncate(next as usize);
        self.grads.truncate(self.grads.len().min(next as usize));
    }

    /// Cuts the tape back to `mark`: drops every node, saved tensor, integer, value and gradient created since.
    /// Recomputation uses it to free one recursion's graph before rebuilding the next.
    pub fn truncate(&mut self, mark: Mark) {
        assert!(
            mark.values as usize <= self.values.len() && mark.nodes as usize <= self.nodes.len(),
            "tape: truncate to a mark beyond the tape (taken before a reset?)"
        );
        self.nodes.truncate(mark.nodes as usize);
        self.saved.truncate(mark.saved as usize);
        self.ints.truncate(mark.ints as usize);
        self.values.truncate(mark.values as usize);
        self.needs_grad.truncate(mark.values as usize);
        self.grads.truncate(self.grads.len().min(mark.values as usize));
    }

    /// Clears nodes, values, saved tensors and gradients; every capacity is kept and every buffer goes back to
    /// the pool. Parameter gradients are untouched (the optimizer zeroes them).
    pub fn reset(&mut self) {
        self.nodes.clear();
        self.values.clear();
        self.needs_grad.clear();
        self.grads.clear();
        self.saved.clear();
        self.ints.clear();
        self.recording = true;
    }

    // ---- backward -----------------------------------------------------------------------------------------

    /// Backward from a one-element output, seeded with 1.
    pub fn backward(&mut self, loss: Var) {
        let shape = self.value(loss).shape();
        assert_eq!(shape.numel(), 1, "backward: loss has shape {shape}, expected one element (use backward_with)");
        self.backward_with(&mut [(loss, Tensor::full(shape, E::ONE))]);
    }

    /// Backward from several outputs at once, each seeded with its own gradient (taken from the slice).
    /// Clears every value gradient first; parameter gradients accumulate.
    pub fn backward_with(&mut self, seeds: &mut [(Var, Tensor<E>)]) {
        self.grads.clear();
        self.backward_range(0..self.nodes.len(), seeds);
    }

    /// Backward through the nodes recorded since `mark` only, seeded by `seeds`, *adding* into the gradients
    /// that values from before the mark already hold (and into parameter gradients). Recomputation calls it
    /// once per rebuilt recursion; the gradients that reach values before the mark (the recursion's input
    /// carry, the embedded input) are then read with [`Tape::take_grad`] or propagated by a later call.
    pub fn backward_from(&mut self, mark: Mark, seeds: &mut [(Var, Tensor<E>)]) {
        assert!(mark.nodes as usize <= self.nodes.len(), "backward_from: mark beyond the tape");
        self.backward_range(mark.nodes as usize..self.nodes.len(), seeds);
    }

    /// Backward through the nodes recorded *before* `mark`, seeded by the gradients values already hold (none
    /// are cleared). After a recomputed backward this pushes what the rebuilt recursions left on their inputs
    /// (the embedded x) through the graph that produced them. Only gradients that arrived after those nodes
    /// last ran are in the slots (backward frees a node's output gradient once it has propagated it), so
    /// nothing is counted twice.
    pub fn backward_until(&mut self, mark: Mark) {
        assert!(mark.nodes as usize <= self.nodes.len(), "backward_until: mark beyond the tape");
        self.backward_range(0..mark.nodes as usize, &mut []);
    }

    /// Seeds, then runs backward over `nodes[range]` in reverse.
    fn backward_range(&mut self, range: Range<usize>, seeds: &mut [(Var, Tensor<E>)]) {
        self.grads.resize_with(self.values.len(), || None);
        for (v, g) in seeds.iter_mut() {
            let g = std::mem::replace(g, Tensor::from_vec(Vec::new(), [0]));
            assert_eq!(g.shape(), self.value(*v).shape(), "backward: seed shape vs value shape");
            accumulate(&mut self.params, &mut self.grads, *v, g);
        }
        for ni in range.rev() {
            let out = self.nodes[ni].out as usize;
            let Some(gout) = self.grads[out].take() else {
                continue;
            };
            let node = &self.nodes[ni];
            let n_in = node.n_inputs as usize;
            let (pvals, pgrads, ptrain) = self.params.split();
            let mut inputs: [Option<&Tensor<E>>; MAX_INPUTS] = [None; MAX_INPUTS];
            let mut wants = [false; MAX_INPUTS];
            for k in 0..n_in {
                let v = node.inputs[k];
                inputs[k] = Some(match v {
                    Var::Param(p) => pvals[p as usize].tensor(),
                    Var::Value(i) => self.values[i as usize]
                        .as_ref()
                        .unwrap_or_else(|| panic!("backward: input {k} of {:?} (value {i}) was released", node.op)),
                });
                wants[k] = match v {
                    Var::Param(p) => ptrain[p as usize],
                    Var::Value(i) => self.needs_grad[i as usize],
                };
            }
            let mut ctx = Ctx {
                gout: &gout,
                out: self.values[out].as_ref().unwrap_or_else(|| panic!("backward: output of {:?} released", node.op)),
                inputs,
                wants,
                input_vars: node.inputs,
                saved: &self.saved[node.saved.start as usize..node.saved.end as usize],
                ints: &self.ints[node.ints.start as usize..node.ints.end as usize],
                grads: &mut self.grads,
                param_values: pvals,
                param_grads: pgrads,
                precision: self.precision,
            };
            op::backward(&node.op, &mut ctx);
            // The output's gradient has been propagated: back to the pool.
            drop(gout);
        }
    }
}

fn accumulate<E: Float>(params: &mut ParamStore<E>, grads: &mut [Option<Tensor<E>>], v: Var, g: Tensor<E>) {
    match v {
        Var::Param(p) => {
            if params.is_trainable(Param(p)) {
                kernels::add_assign(params.grad_mut(Param(p)).data_mut(), g.data());
            }
        }
        Var::Value(i) => match &mut grads[i as usize] {
            Some(acc) => kernels::add_assign(acc.data_mut(), g.data()),
            slot @ None => *slot = Some(g),
        },
    }
}

/// What an op's backward sees: the output gradient, the output and input values, what forward saved, and
/// write access to the inputs' gradient buffers (which it must *add* into).
pub struct Ctx<'a, E: Float> {
    pub gout: &'a Tensor<E>,
    pub out: &'a Tensor<E>,
    inputs: [Option<&'a Tensor<E>>; MAX_INPUTS],
    wants: [bool; MAX_INPUTS],
    input_vars: [Var; MAX_INPUTS],
    pub saved: &'a [Tensor<E>],
    pub ints: &'a [usize],
    grads: &'a mut [Option<Tensor<E>>],
    param_values: &'a [PackedWeight<E>],
    param_grads: &'a mut [Tensor<E>],
    /// The tape's product precision: backward products use it too.
    pub precision: Precision,
}

impl<'a, E: Float> Ctx<'a, E> {
    /// The value of input `k`.
    pub fn input(&self, k: usize) -> &'a Tensor<E> {
        self.inputs[k].expect("backward: no such input")
    }

    /// Input `k`'s value as a [`PackedWeight`], if it is a parameter.
    pub(crate) fn packed_weight(&self, k: usize) -> Option<&'a PackedWeight<E>> {
        match self.input_vars[k] {
            Var::Param(p) => Some(&self.param_values[p as usize]),
            Var::Value(_) => None,
        }
    }

    /// Whether input `k` wants a gradient (skip the work if not).
    pub fn wants(&self, k: usize) -> bool {
        self.wants[k]
    }

    /// The gradient buffer of input `k` to add into, zero-filled from the pool on first use; `None` if the
    /// input needs no gradient. For a parameter this is its persistent buffer.
    pub fn grad(&mut self, k: usize) -> Option<&mut [E]> {
        if !self.wants[k] {
            return None;
        }
        match self.input_vars[k] {
            Var::Param(p) => Some(self.param_grads[p as usize].data_mut()),
            Var::Value(i) => {
                let shape = self.inputs[k].unwrap().shape();
                let slot = &mut self.grads[i as usize];
                Some(slot.get_or_insert_with(|| Tensor::zeros(shape)).data_mut())
            }
        }
    }

    /// Like [`Ctx::grad`] for kernels that take a `beta` (GEMM): the buffer and the beta to use with it. A
    /// fresh buffer is *not* zero-filled and comes with beta = 0, so the kernel must overwrite all of it; an
    /// existing one (always, for parameters) comes with beta = 1, so the kernel adds into it.
    pub fn grad_beta(&mut self, k: usize) -> Option<(&mut [E], E)> {
        if !self.wants[k] {
            return None;
        }
        match self.input_vars[k] {
            Var::Param(p) => Some((self.param_grads[p as usize].data_mut(), E::ONE)),
            Var::Value(i) => {
                let shape = self.inputs[k].unwrap().shape();
                let slot = &mut self.grads[i as usize];
                let beta = if slot.is_some() { E::ONE } else { E::ZERO };
                Some((slot.get_or_insert_with(|| Tensor::uninit(shape)).data_mut(), beta))
            }
        }
    }
}
