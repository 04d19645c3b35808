//! [`CheckpointWriter`]: collects borrowed tensors and metadata, then writes one safetensors file atomically.

use super::error::CheckpointError;
use loopgrad_autograd::ParamStore;
use loopgrad_tensor::atomic_file::write_atomically_with;
use loopgrad_tensor::{Float, Tensor};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::io::{BufWriter, Write};
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
    pub fn to_bytes(&self) -> Result<Vec<u8>, CheckpointError> {
        let mut out = Vec::new();
        self.write_to(&mut out).map_err(|source| CheckpointError::Io {
            path: PathBuf::new(),
            action: "write",
            source,
        })?;
        Ok(out)
    }

    /// Writes the file to `path` by loopgrad's one atomic writer ([`loopgrad_tensor::atomic_file`]): a fresh
    /// temporary beside it (`O_EXCL | O_NOFOLLOW`, so a link or FIFO planted there is never followed or opened),
    /// fsync, rename over `path`, fsync the directory. A crash at any point leaves the previous file intact.
    pub fn write(&self, path: &Path) -> Result<(), CheckpointError> {
        write_atomically_with(path, |file| {
            let mut out = BufWriter::new(file);
            self.write_to(&mut out)?;
            out.flush()
        })
        .map_err(|source| CheckpointError::Io { path: path.to_path_buf(), action: "write", source })
    }

    /// The safetensors bytes: the 8-byte header length, the header JSON padded with spaces to a multiple of 8
    /// (as the `safetensors` crate pads it), then each tensor's little-endian data.
    ///
    /// Everything is in a fixed order, so identical contents give identical bytes (`sha256sum` is a user's first
    /// reproducibility check): `__metadata__` first with its keys sorted, then the tensors sorted by name, their
    /// data in the same order. (The crate writes the metadata from a `HashMap`, in a different order each run.)
    pub fn write_to(&self, out: &mut impl Write) -> std::io::Result<()> {
        let mut order: Vec<&(String, &Tensor<E>)> = self.tensors.iter().collect();
        order.sort_by(|a, b| a.0.cmp(&b.0));
        let size = dtype_size::<E>();
        let mut header = serde_json::Map::new();
        header.insert("__metadata__".into(), serde_json::to_value(&self.metadata).expect("strings serialize"));
        let mut offset = 0usize;
        for (name, t) in &order {
            let end = offset + t.numel() * size;
            let entry =
                serde_json::json!({ "dtype": dtype_name::<E>(), "shape": t.dims(), "data_offsets": [offset, end] });
            header.insert(name.clone(), entry);
            offset = end;
        }
        let mut header = serde_json::to_vec(&header).expect("a JSON map serializes");
        header.resize(header.len().div_ceil(8) * 8, b' ');
        out.write_all(&(header.len() as u64).to_le_bytes())?;
        out.write_all(&header)?;
        let mut buf = Vec::with_capacity(1 << 16);
        for (_, t) in order {
            for chunk in t.data().chunks((1 << 16) / size) {
                buf.clear();
                match size {
                    // `as f32` is exact: the value is an f32 widened to f64 by `to_f64`.
                    4 => chunk.iter().for_each(|x| buf.extend_from_slice(&(x.to_f64() as f32).to_le_bytes())),
                    _ => chunk.iter().for_each(|x| buf.extend_from_slice(&x.to_f64().to_le_bytes())),
                }
                out.write_all(&buf)?;
            }
        }
        Ok(())
    }
}

/// The safetensors dtype name of `E`: F32 for `f32`, F64 for `f64`.
fn dtype_name<E: Float>() -> &'static str {
    match E::NAME {
        "f32" => "F32",
        "f64" => "F64",
        other => unreachable!("Float is implemented for f32 and f64 only, not {other}"),
    }
}

/// Bytes per element of `E` in a file.
fn dtype_size<E: Float>() -> usize {
    match dtype_name::<E>() {
        "F32" => 4,
        _ => 8,
    }
}
