//! Run directories: the resolved config, `metrics.jsonl`, checkpoints. Nothing is ever half-written: every file
//! but the append-only metrics log is written to a temporary name and renamed into place.

use crate::run::record::Record;
use anyhow::{bail, Context, Result};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The training checkpoint: weights and the whole training state (`docs/checkpoints.md`).
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
/// The resolved config the run started with, as TOML (a `--config` for another run).
pub const CONFIG_FILE: &str = "config.toml";
/// The run's log, one [`Record`] per line.
pub const METRICS_FILE: &str = "metrics.jsonl";

/// Writes `bytes` to `path` atomically: a sibling temporary file, fsync, rename. A crash leaves either the old
/// file or the new one, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_name(path);
    let result = (|| -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("{}: cannot write", path.display()))
}

fn tmp_name(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

/// A run directory and its metrics log.
pub struct RunDir {
    path: PathBuf,
    metrics: File,
}

impl RunDir {
    /// Creates (or reopens, for `--resume`) the directory and opens `metrics.jsonl` for appending.
    pub fn open(path: &Path) -> Result<Self> {
        fs::create_dir_all(path).with_context(|| format!("{}: cannot create the run directory", path.display()))?;
        let mpath = path.join(METRICS_FILE);
        // Opening a FIFO for appending blocks until a reader comes (`train --resume` hung on one).
        if let Some(kind) = loopgrad_puzzles::error::special_file_kind(&mpath) {
            bail!("{}: cannot append to {kind}; give a regular file", mpath.display());
        }
        let metrics = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&mpath)
            .with_context(|| format!("{}: cannot open", mpath.display()))?;
        Ok(RunDir { path: path.to_path_buf(), metrics })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `self.path / name`.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Appends one JSON line to `metrics.jsonl` and flushes it (a killed run keeps every line it logged).
    pub fn log(&mut self, record: &Record) -> Result<()> {
        let mut line = serde_json::to_string(record)?;
        line.push('\n');
        self.metrics.write_all(line.as_bytes())?;
        self.metrics.flush()?;
        Ok(())
    }

    /// Writes a file in the run directory atomically.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<()> {
        write_atomic(&self.file(name), bytes)
    }
}

/// Reads a run directory's text file, naming it in every error. A FIFO, device or socket in its place is refused
/// before it is opened (opening a FIFO with no writer blocks forever).
pub fn read_text(path: &Path) -> Result<String> {
    if let Some(kind) = loopgrad_puzzles::error::special_file_kind(path) {
        bail!("{}: cannot read {kind}; give a regular file", path.display());
    }
    fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("loopgrad-rundir-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temporary() {
        let d = tempdir("atomic");
        fs::create_dir_all(&d).unwrap();
        let p = d.join("config.toml");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert!(!tmp_name(&p).exists());
        fs::remove_dir_all(&d).unwrap();
    }

    /// `f()` on another thread, failing the test if it has not returned after 20 s (the blocked thread is left).
    #[cfg(unix)]
    pub(crate) fn within_deadline<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(f()));
        rx.recv_timeout(std::time::Duration::from_secs(20)).expect("hung (opening a FIFO?)")
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_for_metrics_is_refused_before_it_is_opened() {
        // Was: a hang in `train --resume` (opening a FIFO to append waits for a reader).
        let d = tempdir("fifo");
        fs::create_dir_all(&d).unwrap();
        let made = std::process::Command::new("mkfifo").arg(d.join("metrics.jsonl")).status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("skipping: mkfifo is not available");
            return;
        }
        let dir = d.clone();
        let err = within_deadline(move || RunDir::open(&dir).err().map(|e| e.to_string())).unwrap();
        assert_eq!(err, format!("{}: cannot append to a FIFO; give a regular file", d.join("metrics.jsonl").display()));
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn metrics_append_and_read_back() {
        use crate::run::record::{read_records, ErrorRecord};
        let d = tempdir("metrics");
        let record = |step| Record::Error(ErrorRecord { step, message: "m".into() });
        {
            let mut r = RunDir::open(&d).unwrap();
            r.log(&record(1)).unwrap();
        }
        let mut r = RunDir::open(&d).unwrap();
        r.log(&record(2)).unwrap();
        let recs = read_records(&d.join(METRICS_FILE)).unwrap();
        assert_eq!(recs, [record(1), record(2)]);
        fs::remove_dir_all(&d).unwrap();
    }
}
