//! The tape: an arena Wengert list tuned for truncated backprop through recursion.
//!
//! Values live in `values`, indexed by [`Var::Value`]; parameters live outside, in the [`ParamStore`], and
//! appear as [`Var::Param`]. An op always produces a value; it records a [`Node`] only when recording is on and
//! some input needs a gradient. Backward is one reverse loop over `nodes`: no recursion, no hash map, no sort,
//! so a graph of any depth works. Gradient kernels *add* into gradient buffers, so a weight used many times,
//! or an input used n times, needs no special case.
//!
//! TRM's step in these terms:
//! ```text
//! for _ in 0..T-1 { tape.no_grad_scope(|t| latent_recursion(t, ..)) }   // no nodes, intermediates freed per scope
//! latent_recursion(&mut tape, ..)                                        // recorded: n+1 net calls
//! tape.backward(loss)                                                    // param grads += ...
//! let (y, z) = (tape.take(y), tape.take(z));                             // detach the carry
//! tape.reset()                                                           // capacities kept, buffers to the pool
//! ```

use crate::op::{self, Op};
use crate::params::{Param, ParamStore};
use loopgrad_tensor::{Float, Tensor};
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

/// A position in the value arena, for scopes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark(u32);

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
        }
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

    /// Whether a gradient would flow to `v`.
    pub fn needs_grad(&self, v: Var) -> bool {
        match v {
            Var::Param(p) => self.params.is_trainable(Param(p)),
            Var::Value(i) => self.needs_grad[i as usize],
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
    /// (use [`Tape::no_grad_scope`] to free them at the end).
    pub fn no_grad<R>(&mut self, f: impl FnOnce(&mut Self) -> R) -> R {
        let was = std::mem::replace(&mut self.recording, false);
        let r = f(self);
        self.recording = was;
        r
    }

    /// Runs `f` with recording off and then releases every value it created except the ones it returns, which
    /// are moved down to the scope's start (their `Var`s are rewritten). Intermediates go back to the pool at
    /// the end of the scope, so a no-grad recursion holds one scope's buffers at a time.
    pub fn no_grad_scope<const N: usize>(&mut self, f: impl FnOnce(&mut Self) -> [Var; N]) -> [Var; N] {
        let mark = self.mark();
        let mut keep = self.no_grad(f);
        self.release_from(mark, &mut keep);
        keep
    }

    /// The current end of the value arena.
    pub fn mark(&self) -> Mark {
        Mark(self.values.len() as u32)
    }

    /// Releases every value created since `mark` except those in `keep`, which move down to `mark` (and are
    /// rewritten in place). Only legal when nothing since `mark` was recorded.
    pub fn release_from(&mut self, mark: Mark, keep: &mut [Var]) {
        let m = mark.0;
        assert!(
            self.nodes.last().is_none_or(|n| n.out < m),
            "tape: release_from would free values that recorded nodes use"
        );
        let mut next = m;
        for k in keep.iter_mut() {
            if let Var::Value(i) = *k {
                if i >= m {
                    if i != next {
                        let t = self.values[i as usize].take();
                        let ng = self.needs_grad[i as usize];
                        self.values[next as usize] = t;
                        self.needs_grad[next as usize] = ng;
                    }
                    *k = Var::Value(next);
                    next += 1;
                }
            }
        }
        // Dropping the tail returns its buffers to the pool.
        self.values.truncate(next as usize);
        self.needs_grad.truncate(next as usize);
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

    /// Backward from several outputs at once, each seeded with its own gradient (taken from the slice). Used by
    /// recomputation: a recursion's outputs receive the gradients that flowed back from the next one.
    pub fn backward_with(&mut self, seeds: &mut [(Var, Tensor<E>)]) {
        self.grads.clear();
        self.grads.resize_with(self.values.len(), || None);
        for (v, g) in seeds.iter_mut() {
            let g = std::mem::replace(g, Tensor::from_vec(Vec::new(), [0]));
            assert_eq!(g.shape(), self.value(*v).shape(), "backward_with: seed shape vs value shape");
            let (params_ref, grads) = (&mut self.params, &mut self.grads);
            accumulate(params_ref, grads, *v, g);
        }
        for ni in (0..self.nodes.len()).rev() {
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
                    Var::Param(p) => &pvals[p as usize],
                    Var::Value(i) => self.values[i as usize].as_ref().expect("backward: input value released"),
                });
                wants[k] = match v {
                    Var::Param(p) => ptrain[p as usize],
                    Var::Value(i) => self.needs_grad[i as usize],
                };
            }
            let mut ctx = Ctx {
                gout: &gout,
                out: self.values[out].as_ref().expect("backward: output value released"),
                inputs,
                wants,
                input_vars: node.inputs,
                saved: &self.saved[node.saved.start as usize..node.saved.end as usize],
                ints: &self.ints[node.ints.start as usize..node.ints.end as usize],
                grads: &mut self.grads,
                param_grads: pgrads,
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
                loopgrad_tensor::kernels::add_assign(params.grad_mut(Param(p)).data_mut(), g.data());
            }
        }
        Var::Value(i) => match &mut grads[i as usize] {
            Some(acc) => loopgrad_tensor::kernels::add_assign(acc.data_mut(), g.data()),
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
    param_grads: &'a mut [Tensor<E>],
}

impl<'a, E: Float> Ctx<'a, E> {
    /// The value of input `k`.
    pub fn input(&self, k: usize) -> &'a Tensor<E> {
        self.inputs[k].expect("backward: no such input")
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

    /// Whether input `k`'s gradient buffer already holds something (lets an op overwrite instead of adding
    /// into a fresh zero buffer). Always true for parameters.
    pub fn grad_is_fresh(&self, k: usize) -> bool {
        match self.input_vars[k] {
            Var::Param(_) => false,
            Var::Value(i) => self.grads[i as usize].is_none(),
        }
    }
}
