//! The one atomic file writer of loopgrad (generated data sets, the data cache, run directories' configs,
//! checkpoints and weights files, study files; it lives in the bottom crate so that every crate above shares
//! it): a fresh temporary file beside the target, fsync, rename over the target, fsync the directory. A crash
//! leaves the old file or the new one, never a mix.
//!
//! The temporary file is created, never reused: a unique name (`.NAME.PID.N.tmp`) opened with `O_CREAT |
//! O_EXCL | O_NOFOLLOW`, so a symlink planted at a temporary name is never followed (its target never
//! overwritten) and a FIFO there is never opened (opening one waits forever for a reader); either is simply
//! skipped for the next name. On any failure the temporary file, which this call created, is removed.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Names tried before giving up (each one already taken by another file).
const ATTEMPTS: u64 = 64;

/// The N of the next temporary name this process tries.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` atomically (see the module's documentation). A `path` naming a FIFO, a device or a
/// socket is refused: the rename would replace it with a regular file (run as root, `--out /dev/null` replaced the
/// machine's /dev/null). Errors name no path; callers add it.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomically_with(path, |file| file.write_all(bytes))
}

/// [`write_atomically`] of what `fill` writes into the (fresh, empty) temporary file: a large file is streamed
/// rather than held in memory.
pub fn write_atomically_with(path: &Path, fill: impl FnOnce(&mut File) -> io::Result<()>) -> io::Result<()> {
    if let Some(kind) = special_file_kind(path) {
        return Err(io::Error::other(format!("{kind}, not a regular file: writing it would replace it")));
    }
    let (tmp, mut file) = create_temporary(path)?;
    let result = fill(&mut file).and_then(|()| file.sync_all()).and_then(|()| fs::rename(&tmp, path));
    drop(file);
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    // Make the rename itself durable. Best effort: not every file system lets a directory be fsynced.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Whether `name` is a temporary name [`write_atomically`] makes (`.NAME.PID.N.tmp`): a leftover of a writer
/// that was killed, safe to delete once no writer can be at work in the directory.
pub fn is_temporary_name(name: &str) -> bool {
    let Some(inner) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else { return false };
    let mut parts = inner.rsplitn(3, '.');
    let numeric = |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    numeric(parts.next()) && numeric(parts.next()) && parts.next().is_some_and(|n| !n.is_empty())
}

/// What `path` is when it is neither a regular file nor a directory (a FIFO, a device, a socket), else `None`.
///
/// Readers refuse these before opening them, and the writer before replacing one: opening a FIFO with no writer blocks forever, and reading
/// `/dev/zero` or `/dev/urandom` to the end grows a buffer without bound (10 GB in 4 s). A path that does not
/// exist is `None` too, so that the open that follows reports it.
pub fn special_file_kind(path: &Path) -> Option<&'static str> {
    let kind = fs::metadata(path).ok()?.file_type();
    if kind.is_file() || kind.is_dir() {
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return Some("a FIFO");
        }
        if kind.is_char_device() || kind.is_block_device() {
            return Some("a device");
        }
        if kind.is_socket() {
            return Some("a socket");
        }
    }
    Some("not a regular file")
}

/// Creates a fresh temporary file beside `path`: `.NAME.PID.N.tmp` for the first N whose name is free.
fn create_temporary(path: &Path) -> io::Result<(PathBuf, File)> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
    let pid = std::process::id();
    let mut last = None;
    for _ in 0..ATTEMPTS {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = path.with_file_name(format!(".{name}.{pid}.{n}.tmp"));
        match create_new(&tmp) {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free temporary name")))
}

/// Opens a new file, failing if anything (a file, a symlink, a FIFO) is already at `path`.
fn create_new(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // create_new is O_CREAT | O_EXCL, which already refuses a symlink in the last component; O_NOFOLLOW
        // says so to a reader of the flags.
        options.custom_flags(libc::O_NOFOLLOW).mode(0o644);
    }
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("loopgrad-atomic-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    /// The names in `dir` other than `keep`.
    fn others(dir: &Path, keep: &[&str]) -> Vec<String> {
        let names = fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned());
        names.filter(|n| !keep.contains(&n.as_str())).collect()
    }

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let d = scratch("replace");
        let p = d.join("config.toml");
        write_atomically(&p, b"one").unwrap();
        write_atomically(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(others(&d, &["config.toml"]), Vec::<String>::new());
        fs::remove_dir_all(&d).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_or_fifo_at_a_temporary_name_is_never_followed_or_opened() {
        // Was: `NAME.tmp` was opened with File::create, which follows a symlink there (its target was
        // overwritten with the checkpoint) and blocks forever on a FIFO there. Every name the writer could pick
        // next is planted, as are the old fixed names.
        let d = scratch("planted");
        let precious = d.join("precious.txt");
        fs::write(&precious, b"precious").unwrap();
        let p = d.join("checkpoint.safetensors");
        let next = COUNTER.load(Ordering::Relaxed);
        let pid = std::process::id();
        for n in next..next + 4 {
            std::os::unix::fs::symlink(&precious, d.join(format!(".checkpoint.safetensors.{pid}.{n}.tmp"))).unwrap();
        }
        std::os::unix::fs::symlink(&precious, d.join("checkpoint.safetensors.tmp")).unwrap();
        let fifo = d.join(format!(".checkpoint.safetensors.{pid}.{}.tmp", next + 4));
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        let (path, planted) = (p.clone(), d.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(write_atomically(&path, b"new checkpoint").map_err(|e| e.to_string())));
        let result = rx.recv_timeout(std::time::Duration::from_secs(20)).expect("hung on the FIFO");
        result.unwrap();
        assert_eq!(fs::read(&precious).unwrap(), b"precious", "the symlink's target must not be written");
        assert_eq!(fs::read(&p).unwrap(), b"new checkpoint");
        assert!(!fs::symlink_metadata(&p).unwrap().file_type().is_symlink());
        assert_eq!(others(&planted, &[]).len(), 2 + 4 + 1 + 1, "only the planted names and the two files");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        // A directory at the target: the rename fails after the temporary file was written.
        let d = scratch("failed");
        fs::create_dir_all(d.join("target")).unwrap();
        assert!(write_atomically(&d.join("target"), b"x").is_err());
        assert_eq!(others(&d, &["target"]), Vec::<String>::new());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn temporary_names_are_recognised_and_others_are_not() {
        assert!(is_temporary_name(".checkpoint.safetensors.123.0.tmp"));
        for name in ["checkpoint.safetensors.tmp", ".x.1.tmp", ".x.a.1.tmp", "x.1.2.tmp", "..1.2.tmp", ".x.1.2.tmpx"] {
            assert!(!is_temporary_name(name), "{name}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn writing_over_a_device_is_refused_and_leaves_it_a_device() {
        let e = write_atomically(Path::new("/dev/null"), b"x").unwrap_err();
        assert_eq!(e.to_string(), "a device, not a regular file: writing it would replace it");
        assert_eq!(special_file_kind(Path::new("/dev/null")), Some("a device"));
    }
}
