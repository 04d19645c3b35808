//! # loopgrad
//!
//! A from-scratch tensor and tape-based autodiff framework in Rust, specialised for recursion, with the Tiny
//! Recursive Model (TRM) and the Hierarchical Reasoning Model (HRM) built on it and trained on the CPU.
//!
//! This crate is a facade: it re-exports the workspace crates under short names.

pub use loopgrad_autograd as autograd;
pub use loopgrad_models as models;
pub use loopgrad_nn as nn;
pub use loopgrad_puzzles as puzzles;
pub use loopgrad_tensor as tensor;
pub use loopgrad_train as train;
