//! Named parameters, outside the tape, with persistent gradient buffers.
//!
//! A weight used 2(n+1)L times in a supervision step appears on the tape as the same [`crate::Var::Param`]
//! every time; each backward kernel *adds* into its gradient buffer here, so fan-out needs no special case.

use loopgrad_tensor::{Float, PackedWeight, Shape, Tensor};
use std::collections::HashMap;

/// The id of a parameter in a [`ParamStore`]. `Copy`, cheap, stable for the life of the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Param(pub u32);

/// Parameters by dotted name (`inner.L_level.layers.0.mlp.down_proj.weight`), their values and gradients.
///
/// Each value is a [`PackedWeight`]: a weight that is B in 2(n+1)L products between two optimizer steps (x W^T,
/// dY W, the untaped SwiGLU's gate/up pairs) is packed for the GEMM once, and whatever changes a value
/// (optimizers, EMA swaps, checkpoint loads, gradient checks) does so through `PackedWeight::tensor_mut`, which
/// makes its packed forms stale. Nothing here has to remember that.
pub struct ParamStore<E: Float> {
    names: Vec<String>,
    index: HashMap<String, Param>,
    values: Vec<PackedWeight<E>>,
    grads: Vec<Tensor<E>>,
    trainable: Vec<bool>,
}

/// [`ParamStore::split`]: values (with their packed forms), gradients (writable) and trainable flags.
pub(crate) type Split<'a, E> = (&'a [PackedWeight<E>], &'a mut [Tensor<E>], &'a [bool]);

impl<E: Float> ParamStore<E> {
    pub fn new() -> Self {
        ParamStore {
            names: Vec::new(),
            index: HashMap::new(),
            values: Vec::new(),
            grads: Vec::new(),
            trainable: Vec::new(),
        }
    }

    /// Adds a trainable parameter. Panics if the name is taken (a model-construction bug).
    pub fn add(&mut self, name: &str, value: Tensor<E>) -> Param {
        self.insert(name, value, true)
    }

    /// Adds a parameter that is saved and loaded but never receives a gradient (e.g. the carry init vectors).
    pub fn add_frozen(&mut self, name: &str, value: Tensor<E>) -> Param {
        self.insert(name, value, false)
    }

    fn insert(&mut self, name: &str, value: Tensor<E>, trainable: bool) -> Param {
        assert!(!self.index.contains_key(name), "ParamStore::add: parameter {name} already exists");
        let id = Param(self.names.len() as u32);
        self.grads.push(Tensor::zeros(value.shape()));
        self.values.push(PackedWeight::new(value));
        self.names.push(name.to_string());
        self.index.insert(name.to_string(), id);
        self.trainable.push(trainable);
        id
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
    pub fn ids(&self) -> impl Iterator<Item = Param> {
        (0..self.names.len() as u32).map(Param)
    }
    pub fn get(&self, name: &str) -> Option<Param> {
        self.index.get(name).copied()
    }
    pub fn name(&self, p: Param) -> &str {
        &self.names[p.0 as usize]
    }
    pub fn shape(&self, p: Param) -> Shape {
        self.value(p).shape()
    }
    pub fn value(&self, p: Param) -> &Tensor<E> {
        self.values[p.0 as usize].tensor()
    }
    pub fn value_mut(&mut self, p: Param) -> &mut Tensor<E> {
        self.values[p.0 as usize].tensor_mut()
    }
    pub fn grad(&self, p: Param) -> &Tensor<E> {
        &self.grads[p.0 as usize]
    }
    pub fn grad_mut(&mut self, p: Param) -> &mut Tensor<E> {
        &mut self.grads[p.0 as usize]
    }
    /// The value and the gradient of one parameter at once (for optimizers).
    pub fn value_and_grad_mut(&mut self, p: Param) -> (&mut Tensor<E>, &mut Tensor<E>) {
        (self.values[p.0 as usize].tensor_mut(), &mut self.grads[p.0 as usize])
    }
    /// `p`'s value as a [`PackedWeight`], for products that take it as their right operand.
    pub fn packed_weight(&self, p: Param) -> &PackedWeight<E> {
        &self.values[p.0 as usize]
    }
    pub fn is_trainable(&self, p: Param) -> bool {
        self.trainable[p.0 as usize]
    }
    pub fn set_trainable(&mut self, p: Param, trainable: bool) {
        self.trainable[p.0 as usize] = trainable;
    }

    /// Sets every gradient to zero (keeps the buffers).
    pub fn zero_grad(&mut self) {
        for g in &mut self.grads {
            g.data_mut().fill(E::ZERO);
        }
    }

    /// Total number of elements over the parameters whose name passes `keep`.
    pub fn count(&self, keep: impl Fn(&str) -> bool) -> usize {
        self.names.iter().zip(&self.values).filter(|(n, _)| keep(n)).map(|(_, v)| v.tensor().numel()).sum()
    }

    /// Split borrows for the backward pass: values read-only, gradients writable.
    pub(crate) fn split(&mut self) -> Split<'_, E> {
        (&self.values, &mut self.grads, &self.trainable)
    }

    /// A copy of the whole store in another element type (gradient checks run f32 models in f64).
    pub fn cast<F: Float>(&self) -> ParamStore<F> {
        let mut out = ParamStore::new();
        for p in self.ids() {
            out.insert(self.name(p), self.value(p).cast(), self.is_trainable(p));
        }
        out
    }
}

impl<E: Float> Default for ParamStore<E> {
    fn default() -> Self {
        Self::new()
    }
}
