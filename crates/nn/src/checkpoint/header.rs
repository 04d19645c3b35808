//! The safetensors header, parsed and checked by us, with messages that name the tensor at fault.
//!
//! A file is `[8-byte little-endian header length N][N bytes of JSON][data]`. The JSON maps each tensor name to
//! `{"dtype", "shape", "data_offsets": [start, end]}` (offsets relative to the data section) and may hold a
//! `__metadata__` map of strings. The `safetensors` crate's reader needs the whole file in memory, so we read
//! the header alone ([`parse`]) and fetch tensors later by offset: a sparse 3 GB file with a tiny header costs
//! a few kilobytes. Each entry is checked and turned into a compact [`TensorEntry`] as the JSON is read, so a
//! header's memory is its own bytes plus a small record per tensor, and [`MAX_TENSORS`] bounds those.

use super::error::{clip, CheckpointError};
use safetensors::Dtype;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;

/// The dtypes the `safetensors` crate (0.4) knows, with their sizes in bytes.
const KNOWN_DTYPES: [(&str, Dtype, usize); 15] = [
    ("BOOL", Dtype::BOOL, 1),
    ("U8", Dtype::U8, 1),
    ("I8", Dtype::I8, 1),
    ("F8_E5M2", Dtype::F8_E5M2, 1),
    ("F8_E4M3", Dtype::F8_E4M3, 1),
    ("I16", Dtype::I16, 2),
    ("U16", Dtype::U16, 2),
    ("F16", Dtype::F16, 2),
    ("BF16", Dtype::BF16, 2),
    ("I32", Dtype::I32, 4),
    ("U32", Dtype::U32, 4),
    ("F32", Dtype::F32, 4),
    ("F64", Dtype::F64, 8),
    ("I64", Dtype::I64, 8),
    ("U64", Dtype::U64, 8),
];

/// The limit the safetensors format puts on the header (the crate's `MAX_HEADER_SIZE`): the most a header can
/// make loopgrad read before any check of its content.
pub(crate) const MAX_HEADER_BYTES: u64 = 100_000_000;

/// The most tensors a header may list. A loopgrad training checkpoint of the largest preset holds a few hundred
/// (weights, two moments and an EMA copy of each); 65,536 leaves room for any model file while keeping what a
/// header's entries cost bounded (about 100 bytes each).
pub(crate) const MAX_TENSORS: usize = 1 << 16;

/// One tensor of the header, checked: a known dtype, a shape whose byte size equals its data range.
pub(crate) struct TensorEntry {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    /// Byte range within the data section.
    pub start: u64,
    pub end: u64,
}

/// A checked header: its tensors in file order and its metadata.
pub(crate) struct Header {
    pub tensors: Vec<TensorEntry>,
    pub metadata: HashMap<String, String>,
}

/// The header length in the first 8 bytes of a file of `file_len` bytes, checked against the format's bound
/// and against the file's length, before anything of that size is read.
pub(crate) fn header_len(path: &Path, first8: &[u8], file_len: u64) -> Result<u64, CheckpointError> {
    let corrupt = |reason: String| CheckpointError::Corrupt { path: path.to_path_buf(), reason };
    let Ok(bytes) = <[u8; 8]>::try_from(first8) else {
        return Err(corrupt(format!("the file is {file_len} bytes long, too short for the 8-byte header length")));
    };
    let n = u64::from_le_bytes(bytes);
    let after_len = file_len - 8;
    if n > MAX_HEADER_BYTES {
        return Err(corrupt(format!("the header length field says {n} bytes, more than safetensors allows")));
    }
    if n > after_len {
        return Err(corrupt(format!(
            "the header length field says {n} bytes but only {after_len} follow (truncated file?)"
        )));
    }
    Ok(n)
}

/// Parses and checks the header JSON: UTF-8, an object, string metadata, per tensor a known dtype, a shape whose
/// byte size matches its data offsets, and offsets that tile the `data_len` bytes of the data section exactly.
/// All arithmetic is checked, so no header (a tensor of `usize::MAX` bytes, say) can overflow anything later.
pub(crate) fn parse(path: &Path, header: &[u8], data_len: u64) -> Result<Header, CheckpointError> {
    let corrupt = |reason: String| CheckpointError::Corrupt { path: path.to_path_buf(), reason };
    let Ok(text) = std::str::from_utf8(header) else {
        return Err(corrupt("the header is not UTF-8 text".into()));
    };
    if !text.trim_start().starts_with('{') {
        return Err(match serde_json::from_str::<de::IgnoredAny>(text) {
            Ok(_) => corrupt("the header is JSON but not an object".into()),
            Err(e) => corrupt(format!("the header is not valid JSON ({e})")),
        });
    }
    let mut visitor = HeaderVisitor { path, found: None };
    let mut json = serde_json::Deserializer::from_str(text);
    let parsed = json.deserialize_map(&mut visitor).and_then(|h| json.end().map(|()| h));
    let header = match (visitor.found, parsed) {
        (Some(e), _) => return Err(e),
        (None, Err(e)) => return Err(corrupt(format!("the header is not valid JSON ({e})"))),
        (None, Ok(h)) => h,
    };
    check_tiling(path, &header.tensors, data_len)?;
    Ok(header)
}

/// Reads the header's top-level map one entry at a time, converting each to a [`TensorEntry`] at once. A
/// problem we can name is kept in `found` (the JSON error that stops the parse is then only the way out).
struct HeaderVisitor<'p> {
    path: &'p Path,
    found: Option<CheckpointError>,
}

impl<'de> Visitor<'de> for &mut HeaderVisitor<'_> {
    type Value = Header;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a safetensors header object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Header, A::Error> {
        let mut tensors = Vec::new();
        let mut seen = HashSet::new();
        let mut metadata = None;
        while let Some(key) = map.next_key::<String>()? {
            let value: Value = map.next_value()?;
            let problem = if key == "__metadata__" {
                match (metadata.is_some(), strings(value)) {
                    (true, _) => Some(self.corrupt("`__metadata__` is given twice".into())),
                    (false, None) => Some(self.corrupt("`__metadata__` must map strings to strings".into())),
                    (false, Some(m)) => {
                        metadata = Some(m);
                        None
                    }
                }
            } else if tensors.len() == MAX_TENSORS {
                Some(self.corrupt(format!("the header lists more than {MAX_TENSORS} tensors")))
            } else if !seen.insert(key.clone()) {
                Some(self.corrupt(format!("tensor `{}` is listed twice", clip(&key))))
            } else {
                match entry(self.path, key, &value) {
                    Ok(t) => {
                        tensors.push(t);
                        None
                    }
                    Err(e) => Some(e),
                }
            };
            if let Some(e) = problem {
                self.found = Some(e);
                return Err(de::Error::custom("stopped at a bad entry"));
            }
        }
        Ok(Header { tensors, metadata: metadata.unwrap_or_default() })
    }
}

impl HeaderVisitor<'_> {
    fn corrupt(&self, reason: String) -> CheckpointError {
        CheckpointError::Corrupt { path: self.path.to_path_buf(), reason }
    }
}

/// A JSON object of strings as a map, or `None` if it is anything else.
fn strings(value: Value) -> Option<HashMap<String, String>> {
    let Value::Object(m) = value else { return None };
    m.into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Some((k, s)),
            _ => None,
        })
        .collect()
}

/// One tensor entry of the header, checked on its own.
fn entry(path: &Path, name: String, entry: &Value) -> Result<TensorEntry, CheckpointError> {
    let bad = |what: String| CheckpointError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("tensor `{}`: {what}", clip(&name)),
    };
    let Some(entry) = entry.as_object() else { return Err(bad("the entry is not an object".into())) };
    let Some(dtype_name) = entry.get("dtype").and_then(Value::as_str) else {
        return Err(bad("no `dtype` string".into()));
    };
    let Some(&(_, dtype, size)) = KNOWN_DTYPES.iter().find(|(d, _, _)| *d == dtype_name) else {
        return Err(CheckpointError::UnknownDtype {
            path: path.to_path_buf(),
            tensor: name.clone(),
            dtype: dtype_name.to_string(),
        });
    };
    // Sizes are u64 in JSON; each must also fit a usize, which on 64-bit targets they always do.
    let shape: Option<Vec<usize>> = entry
        .get("shape")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok())).collect());
    let Some(shape) = shape else { return Err(bad("`shape` is not a list of sizes".into())) };
    let offsets: Option<Vec<u64>> =
        entry.get("data_offsets").and_then(Value::as_array).and_then(|a| a.iter().map(Value::as_u64).collect());
    let (start, end) = match offsets.as_deref() {
        Some(&[s, e]) => (s, e),
        _ => return Err(bad("`data_offsets` is not a pair of byte offsets".into())),
    };
    if end < start {
        return Err(bad(format!("data offsets [{start}, {end}] run backwards")));
    }
    let nbytes = shape.iter().try_fold(size as u64, |acc, &d| acc.checked_mul(d as u64));
    let Some(nbytes) = nbytes else { return Err(bad("the shape's byte size overflows".into())) };
    if nbytes != end - start {
        return Err(bad(format!(
            "shape {shape:?} of {dtype_name} needs {nbytes} bytes but its data offsets span {}",
            end - start
        )));
    }
    Ok(TensorEntry { name, dtype, shape, start, end })
}

/// The data ranges must cover the data section exactly, without gaps or overlaps.
fn check_tiling(path: &Path, tensors: &[TensorEntry], data_len: u64) -> Result<(), CheckpointError> {
    let mut ranges: Vec<(u64, u64, usize)> = tensors.iter().enumerate().map(|(i, t)| (t.start, t.end, i)).collect();
    ranges.sort_unstable();
    let mut expected_start = 0;
    for &(start, end, i) in &ranges {
        if start != expected_start {
            return Err(CheckpointError::Corrupt {
                path: path.to_path_buf(),
                reason: format!(
                    "tensor `{}`: data offsets [{start}, {end}] leave a gap or overlap (the previous tensor ends at \
                     {expected_start})",
                    clip(&tensors[i].name)
                ),
            });
        }
        expected_start = end;
    }
    if expected_start != data_len {
        return Err(CheckpointError::Corrupt {
            path: path.to_path_buf(),
            reason: format!(
                "the header describes {expected_start} data bytes but {data_len} follow it (truncated or padded file?)"
            ),
        });
    }
    Ok(())
}
