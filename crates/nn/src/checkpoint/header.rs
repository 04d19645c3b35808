//! Our own check of a safetensors header, with messages that name the tensor at fault.
//!
//! The crate says *that* a header is bad (`InvalidHeaderDeserialization`, `TensorInvalidInfo`, ...) but not which
//! tensor is at fault, and one adversarial header overflows inside it. So we check the header JSON ourselves
//! first ([`precheck`]), name the first bad entry, and only hand files that pass to the crate, which remains
//! a second judge: if it still refuses, its own message is reported.

use super::error::CheckpointError;
use safetensors::SafeTensorError;
use serde_json::{Map, Value};
use std::path::Path;

/// The dtypes the `safetensors` crate (0.4) knows, with their sizes in bytes.
const KNOWN_DTYPES: [(&str, usize); 15] = [
    ("BOOL", 1),
    ("U8", 1),
    ("I8", 1),
    ("F8_E5M2", 1),
    ("F8_E4M3", 1),
    ("I16", 2),
    ("U16", 2),
    ("F16", 2),
    ("BF16", 2),
    ("I32", 4),
    ("U32", 4),
    ("F32", 4),
    ("F64", 8),
    ("I64", 8),
    ("U64", 8),
];

/// The limit the crate puts on the header (`MAX_HEADER_SIZE`).
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// A [`CheckpointError`] for a file that `SafeTensors::read_metadata` refused with `err`.
pub(crate) fn describe(path: &Path, bytes: &[u8], err: SafeTensorError) -> CheckpointError {
    match precheck(path, bytes) {
        Err(e) => e,
        Ok(()) => CheckpointError::Corrupt { path: path.to_path_buf(), reason: format!("{err}") },
    }
}

/// Our own structural check of the header, run *before* the crate parses it: header length within the file,
/// UTF-8 JSON object, string metadata, and per tensor a known dtype, a shape whose byte size matches its data
/// offsets, offsets that tile the data section exactly. All arithmetic is checked. The crate (0.4.5) adds the
/// last data offset to the header length unchecked, so a header claiming a tensor of `usize::MAX` bytes
/// overflows inside it (a panic in debug builds); this check refuses such files first.
pub(crate) fn precheck(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    let corrupt = |reason: String| CheckpointError::Corrupt { path: path.to_path_buf(), reason };
    if bytes.len() < 8 {
        return Err(corrupt(format!("the file is {} bytes long, too short for the 8-byte header length", bytes.len())));
    }
    let header_len =
        u64::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7]]);
    let after_len = (bytes.len() - 8) as u64;
    if header_len > MAX_HEADER_BYTES {
        return Err(corrupt(format!("the header length field says {header_len} bytes, more than safetensors allows")));
    }
    if header_len > after_len {
        return Err(corrupt(format!(
            "the header length field says {header_len} bytes but only {after_len} follow (truncated file?)"
        )));
    }
    let header = &bytes[8..8 + header_len as usize];
    let Ok(text) = std::str::from_utf8(header) else {
        return Err(corrupt("the header is not UTF-8 text".into()));
    };
    let map = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err(corrupt("the header is JSON but not an object".into())),
        Err(e) => return Err(corrupt(format!("the header is not valid JSON ({e})"))),
    };
    match diagnose_entries(path, &map, after_len - header_len) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The first problem with the tensor entries of a parsed header, if we can name one.
fn diagnose_entries(path: &Path, map: &Map<String, Value>, data_len: u64) -> Option<CheckpointError> {
    let bad = |tensor: &str, what: String| CheckpointError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("tensor `{tensor}`: {what}"),
    };
    if let Some(meta) = map.get("__metadata__") {
        let all_strings = meta.as_object().is_some_and(|m| m.values().all(Value::is_string));
        if !all_strings {
            return Some(CheckpointError::Corrupt {
                path: path.to_path_buf(),
                reason: "`__metadata__` must map strings to strings".into(),
            });
        }
    }
    // (start, end, name) of every well-formed entry, to check that the data ranges tile the data section.
    let mut ranges: Vec<(u64, u64, &str)> = Vec::new();
    for (name, entry) in map.iter().filter(|(k, _)| k.as_str() != "__metadata__") {
        let Some(entry) = entry.as_object() else { return Some(bad(name, "the entry is not an object".into())) };
        let Some(dtype) = entry.get("dtype").and_then(Value::as_str) else {
            return Some(bad(name, "no `dtype` string".into()));
        };
        let Some(&(_, size)) = KNOWN_DTYPES.iter().find(|(d, _)| *d == dtype) else {
            return Some(CheckpointError::UnknownDtype {
                path: path.to_path_buf(),
                tensor: name.clone(),
                dtype: dtype.to_string(),
            });
        };
        let shape: Option<Vec<u64>> =
            entry.get("shape").and_then(Value::as_array).and_then(|a| a.iter().map(Value::as_u64).collect());
        let Some(shape) = shape else { return Some(bad(name, "`shape` is not a list of sizes".into())) };
        let offsets: Option<Vec<u64>> =
            entry.get("data_offsets").and_then(Value::as_array).and_then(|a| a.iter().map(Value::as_u64).collect());
        let (start, end) = match offsets.as_deref() {
            Some(&[s, e]) => (s, e),
            _ => return Some(bad(name, "`data_offsets` is not a pair of byte offsets".into())),
        };
        if end < start {
            return Some(bad(name, format!("data offsets [{start}, {end}] run backwards")));
        }
        let nbytes = shape.iter().try_fold(size as u64, |acc, &d| acc.checked_mul(d));
        let Some(nbytes) = nbytes else { return Some(bad(name, "the shape's byte size overflows".into())) };
        if nbytes != end - start {
            return Some(bad(
                name,
                format!("shape {shape:?} of {dtype} needs {nbytes} bytes but its data offsets span {}", end - start),
            ));
        }
        ranges.push((start, end, name));
    }
    ranges.sort_unstable();
    let mut expected_start = 0;
    for &(start, end, name) in &ranges {
        if start != expected_start {
            return Some(bad(
                name,
                format!("data offsets [{start}, {end}] leave a gap or overlap (the previous tensor ends at {expected_start})"),
            ));
        }
        expected_start = end;
    }
    if expected_start != data_len {
        return Some(CheckpointError::Corrupt {
            path: path.to_path_buf(),
            reason: format!(
                "the header describes {expected_start} data bytes but {data_len} follow it (truncated or padded file?)"
            ),
        });
    }
    None
}
