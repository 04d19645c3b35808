//! # loopgrad-autograd
//!
//! The tape: reverse-mode autodiff tuned for TRM's pattern of T-1 recursions with no tape at all, one recorded
//! recursion through a shared-weight net, backward, detach the carry, reset without reallocating, repeat.
//!
//! - [`tape`]: the Wengert list, values, gradients, no-grad scopes, detach, reset and backward, in one file.
//! - [`params`]: named parameters that live outside the tape, with persistent gradient buffers.
//! - [`op`]: the one `Op` enum and the one backward `match`.
//! - [`ops`]: one module per differentiable op: forward, backward and tests side by side.
//! - [`window`]: the gradient window as one argument, and the recursion driver (with recomputation).
//! - [`gradcheck`]: finite-difference checks in f64.

pub mod gradcheck;
pub mod op;
pub mod ops;
pub mod params;
pub mod tape;
pub mod window;

pub use params::{Param, ParamStore};
pub use tape::{Mark, Tape, Var};
pub use window::{run_recursions, GradWindow, Recurrence, RecursionRun};
