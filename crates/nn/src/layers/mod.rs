//! Layers: Linear, Embedding, SwiGLU, attention with RoPE, the token-mixing MLP and the post-norm blocks.
//!
//! A layer is a plain struct of [`Param`] ids plus its sizes; it is not generic over the element type, so the
//! same model value drives an f32 tape (training) and an f64 tape (gradient checks, after
//! [`ParamStore::cast`](loopgrad_autograd::ParamStore::cast)). `forward(tape, x)` records onto the tape.
//!
//! Layers are built through a [`ParamSink`]: either a [`Builder`] that creates and initialises the tensors in a
//! [`ParamStore`], or a [`Manifest`] that only records names, shapes and inits, so that a 27M-parameter preset
//! can be described and counted without allocating it. Names are the dotted names of the PyTorch reference
//! (`inner.L_level.layers.0.self_attn.qkv_proj.weight`), so checkpoints move between the two unchanged.
//!
//! | layer | parameters | forward |
//! |---|---|---|
//! | [`Linear`] | `weight` [out, in], optional `bias` `[out]` | y = x W^T (+ b) |
//! | [`Embedding`] | `embedding_weight` [V, D] | rows of the table |
//! | [`SwiGlu`] | `gate_up_proj.weight` [2I, W], `down_proj.weight` [W, I] | down(silu(g) * u) |
//! | [`Attention`] | `qkv_proj.weight` [3D, D], `o_proj.weight` [D, D] | o(attn(rope(q), rope(k), v)) |
//! | [`Block`] | `self_attn.*` or `mlp_t.*`, then `mlp.*` | post-norm residual block |
//! | [`BlockStack`] | `layers.{i}.*` | blocks(h + injection) |

mod attention;
mod block;
mod embedding;
mod linear;
mod swiglu;

pub use attention::Attention;
pub use block::{Block, BlockSpec, BlockStack, Mixer};
pub use embedding::Embedding;
pub use linear::Linear;
pub use loopgrad_autograd::ops::rope::rope_tables;
pub use swiglu::{swiglu_width, SwiGlu};

use loopgrad_autograd::{Param, ParamStore};
use loopgrad_tensor::{Float, Rng, Tensor};

/// How a parameter starts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// Normal with this standard deviation, cut at +-2 sigma and rescaled to keep the standard deviation
    /// (the reference `trunc_normal_init_`). LeCun init of a Linear is `TruncNormal(1 / sqrt(fan_in))`.
    TruncNormal(f64),
    /// Every element equal to this value (zero-initialised biases and puzzle embeddings, the q_head's -5).
    Constant(f64),
}

/// Where layers put their parameters: one call per tensor, returning its id.
pub trait ParamSink {
    /// Declares the parameter `name` with `shape`, initialised by `init`. `trainable = false` marks tensors that
    /// are saved and loaded but never receive a gradient (the carry init vectors).
    fn param(&mut self, name: &str, shape: &[usize], init: Init, trainable: bool) -> Param;
}

/// Creates each parameter in a [`ParamStore`], drawing its initial values from `rng` in declaration order.
pub struct Builder<'a, E: Float> {
    pub store: &'a mut ParamStore<E>,
    pub rng: &'a mut Rng,
}

impl<'a, E: Float> Builder<'a, E> {
    pub fn new(store: &'a mut ParamStore<E>, rng: &'a mut Rng) -> Self {
        Builder { store, rng }
    }
}

impl<E: Float> ParamSink for Builder<'_, E> {
    fn param(&mut self, name: &str, shape: &[usize], init: Init, trainable: bool) -> Param {
        let mut t = Tensor::uninit(shape);
        match init {
            Init::TruncNormal(std) => self.rng.fill_trunc_normal(t.data_mut(), std),
            Init::Constant(c) => t.data_mut().fill(E::from_f64(c)),
        }
        if trainable {
            self.store.add(name, t)
        } else {
            self.store.add_frozen(name, t)
        }
    }
}

/// One declared parameter, as a [`Manifest`] records it.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamInfo {
    pub name: String,
    pub shape: Vec<usize>,
    pub init: Init,
    pub trainable: bool,
}

impl ParamInfo {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Records names, shapes and inits without allocating: describes and counts a model of any size. The ids it
/// returns number the entries in order (the same ids a [`Builder`] on an empty store would return).
#[derive(Clone, Debug, Default)]
pub struct Manifest {
    pub entries: Vec<ParamInfo>,
}

impl Manifest {
    pub fn new() -> Self {
        Self::default()
    }

    /// Total elements over the entries whose name passes `keep`.
    pub fn count(&self, keep: impl Fn(&ParamInfo) -> bool) -> usize {
        self.entries.iter().filter(|e| keep(e)).map(ParamInfo::numel).sum()
    }
}

impl ParamSink for Manifest {
    fn param(&mut self, name: &str, shape: &[usize], init: Init, trainable: bool) -> Param {
        assert!(self.entries.iter().all(|e| e.name != name), "Manifest: parameter {name} declared twice");
        self.entries.push(ParamInfo { name: name.to_string(), shape: shape.to_vec(), init, trainable });
        Param(self.entries.len() as u32 - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_and_manifest_agree_on_names_shapes_and_ids() {
        let declare = |sink: &mut dyn ParamSink| {
            let a = sink.param("a.weight", &[3, 4], Init::TruncNormal(0.5), true);
            let b = sink.param("a.bias", &[3], Init::Constant(-5.0), true);
            let c = sink.param("init", &[4], Init::TruncNormal(1.0), false);
            [a, b, c]
        };
        let mut store = ParamStore::<f32>::new();
        let mut rng = Rng::new(1);
        let built = declare(&mut Builder::new(&mut store, &mut rng));
        let mut manifest = Manifest::new();
        let listed = declare(&mut manifest);
        assert_eq!(built, listed);
        for (p, e) in built.iter().zip(&manifest.entries) {
            assert_eq!(store.name(*p), e.name);
            assert_eq!(store.shape(*p).dims(), &e.shape[..]);
            assert_eq!(store.is_trainable(*p), e.trainable);
        }
        assert_eq!(store.value(built[1]).data(), &[-5.0; 3]);
        assert_eq!(manifest.count(|_| true), 19);
        assert_eq!(manifest.count(|e| e.trainable), 15);
    }
}
