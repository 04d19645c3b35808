//! Subcommands of the `loopgrad` binary, one module each.

pub mod bench;
pub mod data;
pub mod eval;
pub mod info;
pub mod plot;
pub mod study;
pub mod train;
