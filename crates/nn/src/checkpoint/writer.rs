//! [`CheckpointWriter`]: collects borrowed tensors and metadata, then writes one safetensors file atomically.

use super::error::CheckpointError;
use loopgrad_autograd::ParamStore;
use loopgrad_tensor::{Float, Tensor};
use safetensors::{Dtype, View};
use serde::Serialize;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

/// The metadata every loopgrad file carries: `format = pt` (what Hugging Face tools expect of PyTorch-layout
/// tensors) and the version of loopgrad's layout.
pub const FORMAT_VERSION: &str = "1";

/// Tensors (borrowed from the store, the optimizers and the EMA, so saving copies nothing up front) and text
/// metadata for one safetensors file. Tensors are written in `E`'s dtype: F32 for `f32`, F64 for `f64`.
pub struct CheckpointWriter<'a, E: Float> {
    tensors: Vec<(String, &'a Tensor<E>)>,
    names: HashSet<String>,
    metadata: BTreeMap<String, String>,
}

impl<'a, E: Float> Default for CheckpointWriter<'a, E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a, E: Float> CheckpointWriter<'a, E> {
    pub fn new() -> Self {
        let mut metadata = BTreeMap::new();
        metadata.insert("format".to_string(), "pt".to_string());
        metadata.insert("loopgrad.version".to_string(), FORMAT_VERSION.to_string());
        CheckpointWriter { tensors: Vec::new(), names: HashSet::new(), metadata }
    }

    /// A writer holding every parameter of `store` under its own name.
    pub fn with_params(store: &'a ParamStore<E>) -> Self {
        let mut w = Self::new();
        w.add_params(store);
        w
    }

    /// Adds every parameter of `store` (trainable or not: the carry init vectors are saved too).
    pub fn add_params(&mut self, store: &'a ParamStore<E>) {
        for p in store.ids() {
            self.add_tensor(store.name(p), store.value(p));
        }
    }

    /// Adds one tensor. Panics on a name already added (two writers of the same name is a bug in the caller).
    pub fn add_tensor(&mut self, name: impl Into<String>, tensor: &'a Tensor<E>) {
        let name = name.into();
        assert!(self.names.insert(name.clone()), "CheckpointWriter::add_tensor: tensor `{name}` added twice");
        self.tensors.push((name, tensor));
    }

    /// Sets a metadata entry (replacing an earlier value of the same key).
    pub fn set_meta(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.metadata.insert(key.into(), value.into());
    }

    /// Sets a metadata entry to the JSON text of `value` (read back with `CheckpointReader::json`).
    pub fn set_json<T: Serialize + ?Sized>(&mut self, key: impl Into<String>, value: &T) {
        let text = serde_json::to_string(value).expect("CheckpointWriter::set_json: value is not serializable");
        self.set_meta(key, text);
    }

    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// The whole file as bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, safetensors::SafeTensorError> {
        safetensors::serialize(self.views(), &Some(self.metadata_map()))
    }

    /// Writes the file to `path` atomically: to `path.tmp` in the same directory, fsync, rename over `path`,
    /// fsync the directory. A crash at any point leaves the previous file at `path` intact (a stale `.tmp` may
    /// remain; the next write replaces it).
    pub fn write(&self, path: &Path) -> Result<(), CheckpointError> {
        let metadata = Some(self.metadata_map());
        write_atomic(path, |tmp| {
            safetensors::serialize_to_file(self.views(), &metadata, tmp).map_err(|e| match e {
                safetensors::SafeTensorError::IoError(source) => {
                    CheckpointError::Io { path: tmp.to_path_buf(), action: "write", source }
                }
                other => {
                    CheckpointError::Corrupt { path: tmp.to_path_buf(), reason: format!("cannot serialize: {other}") }
                }
            })
        })
    }

    fn views(&self) -> impl Iterator<Item = (&str, LeView<'_, E>)> {
        self.tensors.iter().map(|(n, t)| (n.as_str(), LeView(t)))
    }

    fn metadata_map(&self) -> HashMap<String, String> {
        self.metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// A tensor seen by the `safetensors` crate: its dtype, shape and little-endian bytes.
struct LeView<'t, E: Float>(&'t Tensor<E>);

/// The safetensors dtype of `E`.
fn dtype_of<E: Float>() -> Dtype {
    match E::NAME {
        "f32" => Dtype::F32,
        "f64" => Dtype::F64,
        other => unreachable!("Float is implemented for f32 and f64 only, not {other}"),
    }
}

impl<E: Float> View for LeView<'_, E> {
    fn dtype(&self) -> Dtype {
        dtype_of::<E>()
    }
    fn shape(&self) -> &[usize] {
        self.0.dims()
    }
    fn data(&self) -> Cow<'_, [u8]> {
        let mut out = Vec::with_capacity(self.data_len());
        match dtype_of::<E>() {
            // `as f32` is exact: the value is an f32 widened to f64 by `to_f64`.
            Dtype::F32 => self.0.data().iter().for_each(|x| out.extend_from_slice(&(x.to_f64() as f32).to_le_bytes())),
            _ => self.0.data().iter().for_each(|x| out.extend_from_slice(&x.to_f64().to_le_bytes())),
        }
        Cow::Owned(out)
    }
    fn data_len(&self) -> usize {
        self.0.numel() * dtype_of::<E>().size()
    }
}

/// `NAME.tmp` next to `path`.
pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Runs `fill` on `path.tmp`, fsyncs it and renames it over `path`. On any error the temporary file is removed
/// and `path` is untouched.
pub(crate) fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&Path) -> Result<(), CheckpointError>,
) -> Result<(), CheckpointError> {
    let tmp = tmp_path(path);
    let io = |action: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |source| CheckpointError::Io { path: p, action, source }
    };
    let result = fill(&tmp)
        .and_then(|()| {
            // `serialize_to_file` closes its handle; reopen for writing (needed by fsync on some systems).
            let f = OpenOptions::new().write(true).open(&tmp).map_err(io("reopen for fsync", &tmp))?;
            f.sync_all().map_err(io("fsync", &tmp))
        })
        .and_then(|()| fs::rename(&tmp, path).map_err(io("rename into place", path)));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    // Make the rename itself durable. Best effort: not every file system lets a directory be fsynced.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}
