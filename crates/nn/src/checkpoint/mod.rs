//! Checkpoints in safetensors that move to and from PyTorch.
//!
//! Two kinds of file, both plain safetensors (see `docs/checkpoints.md` for the full layout):
//!
//! - **weights** ([`save_weights`]): every parameter of the store under its reference name
//!   (`inner.L_level.layers.0.mlp.down_proj.weight`, `inner.H_init`, `inner.puzzle_emb.weights`, ...), nothing
//!   else. `model.load_state_dict(load_file(path))` loads it into the PyTorch reference model with `strict=True`.
//! - **training checkpoint**: the same weights plus the training state under the reserved prefix
//!   [`STATE_PREFIX`] (`train.`): optimizer moments, the EMA shadow, and in the metadata the step, the RNG
//!   states and the config. One file, so one atomic rename publishes all of it: a resumed run can never pair
//!   new weights with old moments. PyTorch loads its weights with `strict=False` (or after dropping the
//!   `train.` keys), and [`load_weights`] reads the weights out of it too.
//!
//! The training loop assembles a checkpoint with a [`CheckpointWriter`] (`with_params`, then each optimizer's and
//! the EMA's `save_state`, then `set_json` for the step, the RNG and the config) and resumes with a
//! [`CheckpointReader`] (`load_params`, each `load_state`, `json`, then `finish`).
//!
//! Reading accepts names prefixed by `_orig_mod.` and/or `model.` (stripped), and F32, F64, F16 and BF16
//! tensors (converted to the store's type). Every failure is a [`CheckpointError`] naming the file and the
//! tensor; no file content panics.

mod error;
mod header;
mod reader;
mod writer;

pub use error::{summarize_names, CheckpointError};
pub use reader::{strip_prefixes, CheckpointReader, STRIPPED_PREFIXES};
pub use writer::{CheckpointWriter, FORMAT_VERSION};

use loopgrad_autograd::ParamStore;
use loopgrad_tensor::Float;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// Names under this prefix hold training state (optimizer moments, EMA, ...), never model weights.
pub const STATE_PREFIX: &str = "train.";

/// What to do about tensors that are missing from a file, or present but not asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Fail with a [`CheckpointError`] naming the tensors.
    Error,
    /// Go on, and list the tensors in the [`LoadReport`].
    Ignore,
}

/// How strict [`load_weights`] is. The default is strict both ways, like PyTorch's `strict=True`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadOptions {
    /// Parameters of the store that the file lacks ([`Policy::Ignore`] keeps their current values).
    pub missing: Policy,
    /// Tensors of the file that the store lacks (training state under [`STATE_PREFIX`] never counts).
    pub unexpected: Policy,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { missing: Policy::Error, unexpected: Policy::Error }
    }
}

/// What [`load_weights`] did besides loading.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadReport {
    /// Parameters absent from the file, left as they were (only with `missing: Policy::Ignore`).
    pub missing: Vec<String>,
    /// Tensors of the file that were skipped (only with `unexpected: Policy::Ignore`).
    pub unexpected: Vec<String>,
    /// The file's `__metadata__` (e.g. `config`, the JSON of the model config).
    pub metadata: HashMap<String, String>,
}

/// Saves every parameter of `store` (and nothing else) to `path` atomically, with `metadata` entries added to
/// the file's `__metadata__` (e.g. `("config", json)`).
pub fn save_weights<E: Float>(
    path: &Path,
    store: &ParamStore<E>,
    metadata: &[(&str, &str)],
) -> Result<(), CheckpointError> {
    let mut w = CheckpointWriter::with_params(store);
    for (k, v) in metadata {
        w.set_meta(*k, *v);
    }
    w.write(path)
}

/// Loads the parameters of `store` from a weights file or a training checkpoint (whose `train.` state is
/// skipped). Nothing is written into the store unless every tensor it needs is present with the right shape
/// and a float dtype.
pub fn load_weights<E: Float>(
    path: &Path,
    store: &mut ParamStore<E>,
    options: LoadOptions,
) -> Result<LoadReport, CheckpointError> {
    let mut reader = CheckpointReader::open(path)?;
    // Unexpected tensors are looked for before anything is loaded, so that this error too leaves the store as
    // it was.
    let unexpected: Vec<String> =
        reader.names().filter(|n| store.get(n).is_none() && !n.starts_with(STATE_PREFIX)).map(str::to_string).collect();
    if !unexpected.is_empty() && options.unexpected == Policy::Error {
        return Err(CheckpointError::Unexpected { path: path.to_path_buf(), tensors: unexpected });
    }
    let missing = reader.load_params(store, options.missing)?;
    Ok(LoadReport { missing, unexpected, metadata: reader.metadata().clone() })
}

/// The `__metadata__` of a file without loading its tensors (e.g. to read the config and build the model
/// before loading its weights).
pub fn read_metadata(path: &Path) -> Result<HashMap<String, String>, CheckpointError> {
    Ok(CheckpointReader::open(path)?.metadata().clone())
}
