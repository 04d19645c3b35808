//! [`CheckpointReader`]: a parsed safetensors file from which tensors are read by name into existing buffers.
//!
//! The reader keeps the file's bytes and the header, strips the `_orig_mod.`/`model.` prefixes that
//! `torch.compile`d and wrapped PyTorch models put on their names, converts F16/BF16/F32/F64 to the store's
//! element type, and remembers which tensors were taken so that [`CheckpointReader::finish`] can report the ones
//! nothing asked for. No file content makes it panic: every problem is a [`CheckpointError`].

use super::error::CheckpointError;
use super::{header, Policy, FORMAT_VERSION};
use loopgrad_autograd::ParamStore;
use loopgrad_tensor::{Float, Tensor};
use safetensors::{Dtype, SafeTensors};
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// The prefixes PyTorch wrappers add to parameter names: `torch.compile` (`_orig_mod.`) and loss-head or
/// DDP-style wrappers (`model.`). They are stripped, in any order and any number of times, when a file is read.
pub const STRIPPED_PREFIXES: [&str; 2] = ["_orig_mod.", "model."];

/// A file that says which loopgrad layout it has must have one this build reads: a later layout could store
/// the same names with another meaning. Files without the key (PyTorch's, Hugging Face's) are read as plain
/// safetensors.
fn check_version(path: &Path, metadata: &HashMap<String, String>) -> Result<(), CheckpointError> {
    const KEY: &str = "loopgrad.version";
    let Some(v) = metadata.get(KEY) else { return Ok(()) };
    let newest: u32 = FORMAT_VERSION.parse().expect("FORMAT_VERSION is a whole number");
    let reason = match v.parse::<u32>() {
        Ok(n) if (1..=newest).contains(&n) => return Ok(()),
        Ok(n) if n > newest => {
            format!("layout {n} comes from a newer loopgrad; this build reads layouts 1 to {newest}")
        }
        _ => format!("`{v}` is not a layout version (1 to {newest})"),
    };
    Err(CheckpointError::Metadata { path: path.to_path_buf(), key: KEY.to_string(), reason })
}

/// `name` without the wrapper prefixes of [`STRIPPED_PREFIXES`].
pub fn strip_prefixes(mut name: &str) -> &str {
    while let Some(rest) = STRIPPED_PREFIXES.iter().find_map(|p| name.strip_prefix(p)) {
        name = rest;
    }
    name
}

/// One tensor of the file: where its bytes are and what they hold.
struct Entry {
    /// The name as written in the file (before prefix stripping), for messages.
    file_name: String,
    dtype: Dtype,
    shape: Vec<usize>,
    /// Byte range in the file (already offset past the header).
    start: usize,
    end: usize,
    taken: bool,
}

/// A safetensors file held in memory, read tensor by tensor.
pub struct CheckpointReader {
    path: PathBuf,
    bytes: Vec<u8>,
    /// By name with the wrapper prefixes stripped; a BTreeMap so that reports list names in order.
    entries: BTreeMap<String, Entry>,
    metadata: HashMap<String, String>,
}

impl CheckpointReader {
    /// Reads and parses `path`.
    pub fn open(path: &Path) -> Result<Self, CheckpointError> {
        let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io {
            path: path.to_path_buf(),
            action: "read",
            source,
        })?;
        Self::from_bytes(path, bytes)
    }

    /// Parses the bytes of a safetensors file; `path` only names the file in error messages.
    pub fn from_bytes(path: impl Into<PathBuf>, bytes: Vec<u8>) -> Result<Self, CheckpointError> {
        let path = path.into();
        header::precheck(&path, &bytes)?;
        let (header_len, meta) = match SafeTensors::read_metadata(&bytes) {
            Ok(ok) => ok,
            Err(e) => return Err(header::describe(&path, &bytes, e)),
        };
        let data_start = 8 + header_len;
        let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
        // Sorted by file name, so that which of two clashing names is "first" does not depend on hashing.
        let mut infos: Vec<_> = meta.tensors().into_iter().collect();
        infos.sort_by(|a, b| a.0.cmp(&b.0));
        for (file_name, info) in infos {
            let name = strip_prefixes(&file_name).to_string();
            if let Some(prev) = entries.get(&name) {
                return Err(CheckpointError::Duplicate {
                    path,
                    tensor: name,
                    first: prev.file_name.clone(),
                    second: file_name,
                });
            }
            let (start, end) = info.data_offsets;
            entries.insert(
                name,
                Entry {
                    file_name,
                    dtype: info.dtype,
                    shape: info.shape.clone(),
                    start: data_start + start,
                    end: data_start + end,
                    taken: false,
                },
            );
        }
        let metadata = meta.metadata().clone().unwrap_or_default();
        check_version(&path, &metadata)?;
        Ok(CheckpointReader { path, bytes, entries, metadata })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The tensor names, prefixes stripped, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// The shape of a tensor in the file, if present.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.entries.get(name).map(|e| e.shape.as_slice())
    }

    /// The `__metadata__` string map of the file (empty if it has none).
    pub fn metadata(&self) -> &HashMap<String, String> {
        &self.metadata
    }

    /// One metadata entry; a missing key is an error naming it.
    pub fn meta(&self, key: &str) -> Result<&str, CheckpointError> {
        self.metadata.get(key).map(String::as_str).ok_or_else(|| self.meta_error(key, "missing".into()))
    }

    /// One metadata entry parsed as JSON (numbers, RNG states and configs are stored as JSON text).
    pub fn json<T: DeserializeOwned>(&self, key: &str) -> Result<T, CheckpointError> {
        serde_json::from_str(self.meta(key)?).map_err(|e| self.meta_error(key, format!("cannot parse: {e}")))
    }

    fn meta_error(&self, key: &str, reason: String) -> CheckpointError {
        CheckpointError::Metadata { path: self.path.clone(), key: key.to_string(), reason }
    }

    /// Checks that `name` is present with `expected` shape, a loadable dtype and finite values, without writing
    /// anything.
    pub fn check(&self, name: &str, expected: &[usize]) -> Result<(), CheckpointError> {
        let entry = self
            .entries
            .get(name)
            .ok_or_else(|| CheckpointError::Missing { path: self.path.clone(), tensor: name.to_string() })?;
        if entry.shape != expected {
            return Err(CheckpointError::Shape {
                path: self.path.clone(),
                tensor: entry.file_name.clone(),
                in_file: entry.shape.clone(),
                expected: expected.to_vec(),
            });
        }
        if !matches!(entry.dtype, Dtype::F32 | Dtype::F64 | Dtype::F16 | Dtype::BF16) {
            return Err(CheckpointError::UnsupportedDtype {
                path: self.path.clone(),
                tensor: entry.file_name.clone(),
                dtype: format!("{:?}", entry.dtype),
            });
        }
        if let Some((index, value)) = first_non_finite(entry.dtype, &self.bytes[entry.start..entry.end]) {
            return Err(CheckpointError::NonFinite {
                path: self.path.clone(),
                tensor: entry.file_name.clone(),
                index,
                value,
            });
        }
        Ok(())
    }

    /// Reads tensor `name` into `dst`, whose shape it must have, converting to `E`. Marks it as taken.
    pub fn read_into<E: Float>(&mut self, name: &str, dst: &mut Tensor<E>) -> Result<(), CheckpointError> {
        self.check(name, dst.dims())?;
        let entry = self.entries.get_mut(name).expect("read_into: present, checked above");
        decode(entry.dtype, &self.bytes[entry.start..entry.end], dst.data_mut());
        entry.taken = true;
        Ok(())
    }

    /// Loads every parameter of `store` by name. Everything is checked before anything is written, so a failed
    /// load leaves the store as it was. With [`Policy::Ignore`] for `missing`, parameters absent from the file
    /// keep their values and are returned.
    pub fn load_params<E: Float>(
        &mut self,
        store: &mut ParamStore<E>,
        missing: Policy,
    ) -> Result<Vec<String>, CheckpointError> {
        let mut absent = Vec::new();
        for p in store.ids() {
            let name = store.name(p);
            match self.check(name, store.shape(p).dims()) {
                Err(CheckpointError::Missing { .. }) if missing == Policy::Ignore => absent.push(name.to_string()),
                other => other?,
            }
        }
        for p in store.ids() {
            let name = store.name(p).to_string();
            if self.contains(&name) {
                self.read_into(&name, store.value_mut(p))?;
            }
        }
        Ok(absent)
    }

    /// The names no read has taken yet, in order.
    pub fn untaken(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().filter(|(_, e)| !e.taken).map(|(n, _)| n.as_str())
    }

    /// Marks every tensor whose name starts with `prefix` as taken (e.g. skip the training state when only the
    /// weights are wanted).
    pub fn skip_prefix(&mut self, prefix: &str) {
        for (_, e) in self.entries.iter_mut().filter(|(n, _)| n.starts_with(prefix)) {
            e.taken = true;
        }
    }

    /// Ends the read. Tensors nothing took are an error with [`Policy::Error`]; with [`Policy::Ignore`] their
    /// names are returned.
    pub fn finish(self, unexpected: Policy) -> Result<Vec<String>, CheckpointError> {
        let left: Vec<String> = self.untaken().map(str::to_string).collect();
        if left.is_empty() || unexpected == Policy::Ignore {
            Ok(left)
        } else {
            Err(CheckpointError::Unexpected { path: self.path, tensors: left })
        }
    }
}

/// The first NaN or infinity among the little-endian `bytes` of a float `dtype`, with its element index.
fn first_non_finite(dtype: Dtype, bytes: &[u8]) -> Option<(usize, f64)> {
    let values: Box<dyn Iterator<Item = f64> + '_> = match dtype {
        Dtype::F32 => Box::new(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)),
        Dtype::F64 => Box::new(bytes.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))),
        Dtype::F16 => Box::new(bytes.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f64())),
        Dtype::BF16 => Box::new(bytes.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f64())),
        _ => return None,
    };
    values.enumerate().find(|(_, v)| !v.is_finite())
}

/// Little-endian `bytes` of `dtype` into `out` (lengths were checked against the shape by the caller and the
/// crate). F32 -> f32 and F64 -> f64 are exact; F64 -> f32 rounds to nearest.
fn decode<E: Float>(dtype: Dtype, bytes: &[u8], out: &mut [E]) {
    match dtype {
        Dtype::F32 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = E::from_f64(f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64);
            }
        }
        Dtype::F64 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(8)) {
                *o = E::from_f64(f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]));
            }
        }
        Dtype::F16 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = E::from_f64(half::f16::from_le_bytes([c[0], c[1]]).to_f64());
            }
        }
        Dtype::BF16 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = E::from_f64(half::bf16::from_le_bytes([c[0], c[1]]).to_f64());
            }
        }
        other => unreachable!("decode: dtype {other:?} was rejected by check()"),
    }
}
