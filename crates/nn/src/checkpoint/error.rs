//! [`CheckpointError`]: every way reading or writing a checkpoint can fail, each a one-line message that names
//! the file and, where there is one, the tensor or metadata key.

use std::fmt;
use std::path::PathBuf;

/// Why a checkpoint could not be read or written. The `Display` form is one line that starts with the file.
#[derive(Debug)]
pub enum CheckpointError {
    /// The operating system refused (`action` is e.g. "read", "write", "rename into place").
    Io { path: PathBuf, action: &'static str, source: std::io::Error },
    /// The bytes are not a valid safetensors file (truncated, bad header length, bad JSON, bad offsets, ...).
    Corrupt { path: PathBuf, reason: String },
    /// The header names a dtype that safetensors does not know.
    UnknownDtype { path: PathBuf, tensor: String, dtype: String },
    /// A known dtype that cannot hold weights (integers, booleans, 8-bit floats).
    UnsupportedDtype { path: PathBuf, tensor: String, dtype: String },
    /// A tensor the model (or the training state) needs is not in the file.
    Missing { path: PathBuf, tensor: String },
    /// A tensor is in the file with another shape than the model's.
    Shape { path: PathBuf, tensor: String, in_file: Vec<usize>, expected: Vec<usize> },
    /// Tensors in the file that nothing asked for (when unexpected tensors are an error).
    Unexpected { path: PathBuf, tensors: Vec<String> },
    /// Two tensors of the file load under the same name once the `_orig_mod.`/`model.` prefixes are stripped.
    Duplicate { path: PathBuf, tensor: String, first: String, second: String },
    /// A metadata entry is missing or cannot be parsed.
    Metadata { path: PathBuf, key: String, reason: String },
    /// A tensor holds a NaN or an infinity (element `index` in row-major order), which no trained weight or
    /// optimizer state has: loaded, it would turn every output into NaN without an error.
    NonFinite { path: PathBuf, tensor: String, index: usize, value: f64 },
    /// A tensor holds a value its meaning rules out (element `index`), e.g. a negative second moment of Adam.
    OutOfRange { path: PathBuf, tensor: String, index: usize, value: f64, why: &'static str },
}

/// A name or value from a file, as shown in a message: a header may hold names of megabytes, and a message
/// stays one short line.
pub(crate) fn clip(text: &str) -> String {
    const MAX_CHARS: usize = 120;
    match text.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}... ({} bytes)", &text[..cut], text.len()),
        None => text.to_string(),
    }
}

/// `count` names as one short line: the first few (clipped) and how many more, e.g.
/// "`a`, `b`, `c`, `d`, `e` and 1699995 more".
pub fn summarize_names(names: &[String]) -> String {
    const SHOWN: usize = 5;
    let shown: Vec<String> = names.iter().take(SHOWN).map(|t| format!("`{}`", clip(t))).collect();
    let more = if names.len() > SHOWN { format!(" and {} more", names.len() - SHOWN) } else { String::new() };
    format!("{}{more}", shown.join(", "))
}

/// `[a, b, c]`, the way PyTorch users read shapes.
pub(crate) fn fmt_shape(dims: &[usize]) -> String {
    let inner: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
    format!("[{}]", inner.join(", "))
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use CheckpointError::*;
        match self {
            Io { path, action, source } => write!(f, "{}: cannot {action}: {source}", path.display()),
            Corrupt { path, reason } => write!(f, "{}: not a valid safetensors file: {reason}", path.display()),
            UnknownDtype { path, tensor, dtype } => {
                write!(f, "{}: tensor `{}` has unknown dtype `{}`", path.display(), clip(tensor), clip(dtype))
            }
            UnsupportedDtype { path, tensor, dtype } => write!(
                f,
                "{}: tensor `{}` has dtype {dtype}; only F32, F64, F16 and BF16 tensors can be loaded",
                path.display(),
                clip(tensor)
            ),
            Missing { path, tensor } => write!(f, "{}: tensor `{tensor}` is missing", path.display()),
            Shape { path, tensor, in_file, expected } => write!(
                f,
                "{}: tensor `{}` has shape {} in the file, expected {}",
                path.display(),
                clip(tensor),
                fmt_shape(in_file),
                fmt_shape(expected)
            ),
            Unexpected { path, tensors } => write!(
                f,
                "{}: {} unexpected tensor(s): {} (load with unexpected tensors ignored to skip them)",
                path.display(),
                tensors.len(),
                summarize_names(tensors)
            ),
            Duplicate { path, tensor, first, second } => write!(
                f,
                "{}: tensors `{}` and `{}` both load as `{}` once the `_orig_mod.`/`model.` prefixes are stripped",
                path.display(),
                clip(first),
                clip(second),
                clip(tensor)
            ),
            Metadata { path, key, reason } => write!(f, "{}: metadata `{key}`: {reason}", path.display()),
            NonFinite { path, tensor, index, value } => {
                write!(f, "{}: tensor `{}` holds {value} at element {index}", path.display(), clip(tensor))
            }
            OutOfRange { path, tensor, index, value, why } => {
                write!(f, "{}: tensor `{}` holds {value} at element {index}: {why}", path.display(), clip(tensor))
            }
        }
    }
}

impl std::error::Error for CheckpointError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CheckpointError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
