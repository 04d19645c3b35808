//! # loopgrad-nn
//!
//! Everything between the tape and a model: layers, initialisation, optimizers, learning-rate schedules, the
//! EMA of the weights and safetensors checkpoints, all built on the named
//! [`ParamStore`](loopgrad_autograd::ParamStore) of the autograd crate.
//!
//! | module | what | reference |
//! |---|---|---|
//! | [`layers`] | Linear, Embedding, SwiGLU, attention with RoPE, the token-mixing MLP, post-norm blocks | TRM/HRM `layers.py` |
//! | [`init`] | truncated-normal LeCun init, embedding init, zeros | `trunc_normal_init_` |
//! | [`optim`] | AdamATan2, AdamW, sparse sign-SGD for the puzzle embeddings | `adam-atan2`, `torch.optim.AdamW`, `sparse_embedding.py` |
//! | [`schedule`] | linear warmup, then constant or cosine to a floor ratio | `cosine_schedule_with_warmup_lr_lambda` |
//! | [`ema`] | EMA of the weights, swapped in for evaluation | `ema.py` (`EMAHelper`) |
//! | [`checkpoint`] | safetensors files that load in PyTorch, resumable training state | `safetensors.torch` |
//!
//! A training step in this crate's terms (the loop itself lives in the train crate):
//!
//! ```text
//! lr  = schedule.lr(base_lr, step, total_steps)          step counts from 1
//! backward(loss)                                         gradients accumulate in the ParamStore
//! adam.step(store, lr)                                   dense params; zeroes their gradients
//! sign_sgd.step(store, lr_emb, puzzle_ids_of_batch)      puzzle-embedding rows of the batch only
//! ema.update(store)
//! ```

pub mod checkpoint;
pub mod ema;
pub mod init;
pub mod layers;
pub mod optim;
pub mod schedule;

pub use checkpoint::{CheckpointError, CheckpointReader, CheckpointWriter};
pub use ema::Ema;
pub use optim::{AdamAtan2, AdamW, Optimizer, SparseSignSgd};
pub use schedule::LrSchedule;
