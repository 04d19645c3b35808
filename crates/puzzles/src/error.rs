//! The one error type of every loader and reader: it names the file, then the row or task, then what is wrong,
//! on one line, so that the command line can print it as is.

use std::fmt;
use std::path::Path;

/// Where in an input a problem was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// The file as a whole (empty, unreadable, not UTF-8 before any row, ...).
    File,
    /// A CSV data row: `row` counts data rows from 1 (the header is not a row), `line` is the 1-based line of the
    /// file where the record starts.
    Row { row: usize, line: usize },
    /// A line of a text file that is not (yet) a data row, such as the header or a line with invalid UTF-8.
    Line(usize),
    /// An ARC task, by id.
    Task(String),
}

/// A malformed input: which file, where in it, and what is wrong (one line, no trailing period).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataError {
    pub file: String,
    pub location: Location,
    pub message: String,
}

impl DataError {
    pub fn new(file: impl Into<String>, location: Location, message: impl Into<String>) -> Self {
        // Messages are printed as one line: never let a newline from a quoted field through.
        let message: String = message.into().chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        DataError { file: file.into(), location, message }
    }

    pub fn file(path: &Path, message: impl Into<String>) -> Self {
        DataError::new(path.display().to_string(), Location::File, message)
    }

    pub fn row(file: &str, row: usize, line: usize, message: impl Into<String>) -> Self {
        DataError::new(file, Location::Row { row, line }, message)
    }

    pub fn task(file: &str, task: &str, message: impl Into<String>) -> Self {
        DataError::new(file, Location::Task(task.to_string()), message)
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Location::File => write!(f, "{}: {}", self.file, self.message),
            Location::Row { row, line } => write!(f, "{}: row {row} (line {line}): {}", self.file, self.message),
            Location::Line(line) => write!(f, "{}: line {line}: {}", self.file, self.message),
            Location::Task(id) => write!(f, "{}: task {id}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for DataError {}

/// A short, printable excerpt of user input for error messages (at most `max` characters).
pub(crate) fn excerpt(text: &str, max: usize) -> String {
    let mut out: String = text.chars().take(max).map(|c| if c.is_control() { ' ' } else { c }).collect();
    if text.chars().count() > max {
        out.push_str("...");
    }
    out
}

pub use loopgrad_tensor::atomic_file::special_file_kind;

/// Read a whole file, mapping I/O failures to a `DataError` naming it.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, DataError> {
    if let Some(kind) = special_file_kind(path) {
        return Err(DataError::file(path, format!("cannot read {kind}; give a regular file")));
    }
    std::fs::read(path).map_err(|e| DataError::file(path, format!("cannot read: {e}")))
}

/// Decode UTF-8, naming the line of the first invalid byte.
pub(crate) fn decode_utf8<'a>(file: &str, bytes: &'a [u8]) -> Result<&'a str, DataError> {
    std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        let line = 1 + bytes[..at].iter().filter(|&&b| b == b'\n').count();
        DataError::new(file, Location::Line(line), format!("invalid UTF-8 at byte {at}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_file_and_place_on_one_line() {
        let e = DataError::row("a.csv", 3, 4, "bad\ncharacter");
        assert_eq!(e.to_string(), "a.csv: row 3 (line 4): bad character");
        let e = DataError::task("dir", "007bbfb7", "missing key \"train\"");
        assert_eq!(e.to_string(), "dir: task 007bbfb7: missing key \"train\"");
    }

    #[cfg(unix)]
    #[test]
    fn a_device_is_refused_by_name_before_it_is_read() {
        // Was: reading /dev/zero to the end (gigabytes, then an allocation failure).
        assert_eq!(special_file_kind(Path::new("/dev/zero")), Some("a device"));
        let e = read_file(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(e.to_string(), "/dev/zero: cannot read a device; give a regular file");
        assert_eq!(special_file_kind(Path::new(env!("CARGO_MANIFEST_DIR"))), None);
        assert_eq!(special_file_kind(Path::new("no such file")), None);
    }

    #[test]
    fn utf8_error_names_the_line() {
        let e = decode_utf8("f", b"ok\nok\n\xff").unwrap_err();
        assert_eq!(e.to_string(), "f: line 3: invalid UTF-8 at byte 6");
    }
}
