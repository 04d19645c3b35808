//! Subcommands of the `loopgrad` binary, one module each.

pub mod data;
pub mod plot;
pub mod train;
