//! [`CheckpointReader`]: a safetensors file whose header is read and checked first, and whose tensors are then
//! read by name, each straight from its byte range, into existing buffers.
//!
//! Opening reads the 8-byte length and the header only (bounded by the format's 100 MB, and by the file's
//! size before anything is allocated); a tensor's bytes are read when it is asked for, in chunks of
//! [`CHUNK_BYTES`], so memory never follows what a header claims, and a tensor nobody asks for is never read.
//! The reader strips the `_orig_mod.`/`model.` prefixes that `torch.compile`d and wrapped PyTorch models put
//! on their names, converts F16/BF16/F32/F64 to the store's element type, and remembers which tensors were
//! taken so that [`CheckpointReader::finish`] can report the ones nothing asked for. No file content makes it
//! panic: every problem is a [`CheckpointError`].

use super::error::CheckpointError;
use super::header::{self, TensorEntry};
use super::{Policy, FORMAT_VERSION};
use loopgrad_autograd::ParamStore;
use loopgrad_tensor::{Float, Tensor};
use safetensors::Dtype;
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// How many bytes of a tensor are read (and converted) at a time: a multiple of every dtype's size.
const CHUNK_BYTES: usize = 1 << 20;

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
    start: u64,
    end: u64,
    taken: bool,
}

/// Where the tensors' bytes come from: the open file, or bytes already in memory ([`CheckpointReader::from_bytes`]).
enum Source {
    File(File),
    Memory(Vec<u8>),
}

/// A safetensors file whose header has been read and checked; tensors are read from it by name.
pub struct CheckpointReader {
    path: PathBuf,
    source: Source,
    /// By name with the wrapper prefixes stripped; a BTreeMap so that reports list names in order.
    entries: BTreeMap<String, Entry>,
    metadata: HashMap<String, String>,
}

impl CheckpointReader {
    /// Opens `path` and reads its header (not its tensors).
    pub fn open(path: &Path) -> Result<Self, CheckpointError> {
        let io = |source| CheckpointError::Io { path: path.to_path_buf(), action: "read", source };
        // Checked before the open, which would block on a FIFO until a writer came.
        let meta = std::fs::metadata(path).map_err(io)?;
        if !meta.is_file() {
            return Err(CheckpointError::Corrupt {
                path: path.to_path_buf(),
                reason: "it is not a regular file (a directory, FIFO or device)".into(),
            });
        }
        let mut file = File::open(path).map_err(io)?;
        let file_len = file.metadata().map_err(io)?.len();
        let mut first8 = Vec::with_capacity(8);
        (&mut file).take(8).read_to_end(&mut first8).map_err(io)?;
        let n = header::header_len(path, &first8, file_len)?;
        // `n` is at most the format's bound and at most what the file holds, so this allocation is bounded.
        let mut header_bytes = vec![0u8; n as usize];
        file.read_exact(&mut header_bytes).map_err(io)?;
        Self::build(path.to_path_buf(), Source::File(file), file_len, &header_bytes)
    }

    /// Parses the bytes of a safetensors file; `path` only names the file in error messages.
    pub fn from_bytes(path: impl Into<PathBuf>, bytes: Vec<u8>) -> Result<Self, CheckpointError> {
        let path = path.into();
        let file_len = bytes.len() as u64;
        let n = header::header_len(&path, &bytes[..bytes.len().min(8)], file_len)?;
        let header_bytes = bytes[8..8 + n as usize].to_vec();
        Self::build(path, Source::Memory(bytes), file_len, &header_bytes)
    }

    fn build(path: PathBuf, source: Source, file_len: u64, header_bytes: &[u8]) -> Result<Self, CheckpointError> {
        let data_start = 8 + header_bytes.len() as u64;
        let parsed = header::parse(&path, header_bytes, file_len - data_start)?;
        let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
        // Sorted by file name, so that which of two clashing names is "first" does not depend on the file's order.
        let mut tensors = parsed.tensors;
        tensors.sort_by(|a, b| a.name.cmp(&b.name));
        for TensorEntry { name: file_name, dtype, shape, start, end } in tensors {
            let name = strip_prefixes(&file_name).to_string();
            if let Some(prev) = entries.get(&name) {
                return Err(CheckpointError::Duplicate {
                    path,
                    tensor: name,
                    first: prev.file_name.clone(),
                    second: file_name,
                });
            }
            let (start, end) = (data_start + start, data_start + end);
            entries.insert(name, Entry { file_name, dtype, shape, start, end, taken: false });
        }
        check_version(&path, &parsed.metadata)?;
        Ok(CheckpointReader { path, source, entries, metadata: parsed.metadata })
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

    /// Checks that `name` is present with `expected` shape and a loadable dtype, from the header alone (nothing
    /// is read: e.g. to check a file against a model before allocating the model).
    pub fn check_layout(&self, name: &str, expected: &[usize]) -> Result<(), CheckpointError> {
        self.entry(name, expected).map(|_| ())
    }

    fn entry(&self, name: &str, expected: &[usize]) -> Result<&Entry, CheckpointError> {
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
        Ok(entry)
    }

    /// Checks that `name` is present with `expected` shape, a loadable dtype and finite values, without writing
    /// anything (its bytes are read, a chunk at a time).
    pub fn check(&self, name: &str, expected: &[usize]) -> Result<(), CheckpointError> {
        let entry = self.entry(name, expected)?;
        let mut index = 0;
        let mut found = None;
        self.chunks(entry, |bytes| {
            if found.is_none() {
                found = first_non_finite(entry.dtype, bytes).map(|(i, v)| (index + i, v));
                index += bytes.len() / entry.dtype.size();
            }
        })?;
        match found {
            Some((index, value)) => Err(self.non_finite(entry, index, value)),
            None => Ok(()),
        }
    }

    /// Reads tensor `name` into `dst`, whose shape it must have, converting to `E`, and marks it as taken. A
    /// NaN or infinity is an error naming the element; `dst` may then hold part of the tensor (read into a
    /// fresh buffer, or [`CheckpointReader::check`] first, where that matters).
    pub fn read_into<E: Float>(&mut self, name: &str, dst: &mut Tensor<E>) -> Result<(), CheckpointError> {
        let entry = self.entry(name, dst.dims())?;
        let size = entry.dtype.size();
        let out = dst.data_mut();
        let mut at = 0;
        let mut found = None;
        self.chunks(entry, |bytes| {
            let n = bytes.len() / size;
            if found.is_none() {
                found = first_non_finite(entry.dtype, bytes).map(|(i, v)| (at + i, v));
            }
            decode(entry.dtype, bytes, &mut out[at..at + n]);
            at += n;
        })?;
        if let Some((index, value)) = found {
            return Err(self.non_finite(entry, index, value));
        }
        self.entries.get_mut(name).expect("read_into: present, checked above").taken = true;
        Ok(())
    }

    fn non_finite(&self, entry: &Entry, index: usize, value: f64) -> CheckpointError {
        CheckpointError::NonFinite { path: self.path.clone(), tensor: entry.file_name.clone(), index, value }
    }

    /// Hands the bytes of `entry` to `each` in consecutive chunks of at most [`CHUNK_BYTES`] (whole elements).
    fn chunks(&self, entry: &Entry, mut each: impl FnMut(&[u8])) -> Result<(), CheckpointError> {
        match &self.source {
            Source::Memory(bytes) => {
                // In range: the header's offsets were checked to tile the data section exactly.
                bytes[entry.start as usize..entry.end as usize].chunks(CHUNK_BYTES).for_each(each);
                Ok(())
            }
            Source::File(file) => {
                let io = |source| CheckpointError::Io { path: self.path.clone(), action: "read", source };
                let mut file = file;
                file.seek(SeekFrom::Start(entry.start)).map_err(io)?;
                let total = entry.end - entry.start;
                let mut buf = vec![0u8; total.min(CHUNK_BYTES as u64) as usize];
                let mut left = total;
                while left > 0 {
                    let n = left.min(CHUNK_BYTES as u64) as usize;
                    // A file cut short since it was opened is an "unexpected end of file" here, not a panic.
                    file.read_exact(&mut buf[..n]).map_err(io)?;
                    each(&buf[..n]);
                    left -= n as u64;
                }
                Ok(())
            }
        }
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
