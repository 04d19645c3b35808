//! # loopgrad-train
//!
//! The reference training recipe of TRM/HRM (deep supervision with a per-slot carry, ACT halting with
//! exploration, EMA weights for evaluation), evaluation, configs with presets and `--set` overrides, and run
//! directories that are never half-written, and the run loop that trains in one (`run`).

pub mod arc;
pub mod bench;
pub mod config;
pub mod data;
pub mod eval;
pub mod lock;
pub mod memory;
pub mod overrides;
pub mod presets;
pub mod run;
pub mod rundir;
pub mod slots;
pub mod state;
pub mod study;
pub mod trace;
pub mod trainer;

pub use config::TrainConfig;
pub use eval::{evaluate, evaluate_batch, BatchScores, EvalResult, Predictions};
pub use trainer::{StepStats, Trainer};
