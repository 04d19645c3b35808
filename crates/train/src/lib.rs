//! # loopgrad-train
//!
//! The reference training recipe of TRM/HRM (deep supervision with a per-slot carry, ACT halting with
//! exploration, EMA weights for evaluation), evaluation, configs with presets and `--set` overrides, and run
//! directories that are never half-written.

pub mod overrides;
pub mod rundir;
