//! Subcommands of the `loopgrad` binary, one module each.

pub mod bench;
pub mod data;
pub mod eval;
pub mod eval_arc;
pub mod info;
pub mod plot;
pub mod study;
pub mod trace;
pub mod train;

use anyhow::{bail, Result};
use std::path::Path;

/// Applies the thread rule at a command's start (`loopgrad_tensor::parallel::use_threads`, docs/config.md):
/// `requested` when positive (`--threads`), else `LOOPGRAD_THREADS`, else every core; sizes rayon's pool and the
/// team, and returns the count.
pub fn use_threads(requested: usize) -> Result<usize> {
    loopgrad_tensor::parallel::use_threads(requested).map_err(anyhow::Error::msg)
}

/// Refuses an input path of `flag` that names a FIFO, a device or a socket, before anything opens it: opening a
/// FIFO with no writer blocks forever, and reading `/dev/zero` to the end never ends (10 GB in 4 s).
pub fn check_input_file(flag: &str, path: &Path) -> Result<()> {
    if let Some(kind) = loopgrad_puzzles::error::special_file_kind(path) {
        bail!("{flag} {}: cannot read {kind}; give a regular file", path.display());
    }
    Ok(())
}

/// Refuses an output path of `flag` that names a FIFO, a device or a socket: writing a FIFO blocks until a reader
/// opens it, and the atomic writers' rename would replace a device (`--out /dev/null`, run as root, replaced the
/// machine's /dev/null with a regular file).
pub fn check_output_file(flag: &str, path: &Path) -> Result<()> {
    if let Some(kind) = loopgrad_puzzles::error::special_file_kind(path) {
        bail!("{flag} {}: cannot write over {kind}; give a regular file", path.display());
    }
    Ok(())
}
