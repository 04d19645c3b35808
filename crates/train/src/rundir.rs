//! Run directories: the resolved config, `metrics.jsonl`, checkpoints, and the guarantees of
//! `docs/run-directories.md`. Nothing is ever half-written: every file but the append-only metrics log is written
//! by the one atomic writer (`loopgrad_tensor::atomic_file`), and the log is cut back to whole records. One
//! process at a time works in a directory ([`crate::lock`]).

use crate::lock::DirLock;
use crate::run::record::Record;
use anyhow::{bail, Context, Result};
use loopgrad_tensor::atomic_file::{is_temporary_name, write_atomically};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The training checkpoint: weights and the whole training state (`docs/checkpoints.md`).
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
/// The resolved config the run started with, as TOML (a `--config` for another run).
pub const CONFIG_FILE: &str = "config.toml";
/// The run's log, one [`Record`] per line.
pub const METRICS_FILE: &str = "metrics.jsonl";
/// ARC: the puzzle identifiers' names in id order, a JSON list (TRM's `identifiers.json`); evaluation reads it to
/// know which task and augmentation each row of the puzzle-embedding table is.
pub const IDENTIFIERS_FILE: &str = "identifiers.json";

/// Writes `bytes` to `path` atomically (a fresh temporary file, fsync, rename), naming `path` in an error.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomically(path, bytes).with_context(|| format!("{}: cannot write", path.display()))
}

/// A run directory, locked for this process, and its metrics log.
pub struct RunDir {
    path: PathBuf,
    metrics: File,
    /// The log's length: where the next record starts, and where a failed append is cut back to.
    metrics_len: u64,
    _lock: DirLock,
}

impl RunDir {
    /// Creates (or reopens, for `--resume`) the directory, takes its lock (refusing if another process holds it),
    /// removes temporary files a killed writer left, and opens `metrics.jsonl` for appending.
    pub fn open(path: &Path) -> Result<Self> {
        fs::create_dir_all(path).with_context(|| format!("{}: cannot create the run directory", path.display()))?;
        let lock = DirLock::acquire(path)?;
        remove_temporaries(path);
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
        let metrics_len = metrics.metadata().with_context(|| format!("{}: cannot open", mpath.display()))?.len();
        Ok(RunDir { path: path.to_path_buf(), metrics, metrics_len, _lock: lock })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `self.path / name`.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Appends one record to `metrics.jsonl` (a killed run keeps every record it logged). A failed append (a full
    /// disk) is cut back off the file, so the log never holds half a record, and the error names the file.
    pub fn log(&mut self, record: &Record) -> Result<()> {
        let mut line = serde_json::to_string(record)?;
        line.push('\n');
        let written = self.metrics.write_all(line.as_bytes()).and_then(|()| self.metrics.flush());
        if let Err(e) = written {
            let _ = self.metrics.set_len(self.metrics_len);
            return Err(e).with_context(|| format!("{}: cannot append a record", self.file(METRICS_FILE).display()));
        }
        self.metrics_len += line.len() as u64;
        Ok(())
    }

    /// Empties `metrics.jsonl` for a fresh run (a run killed before its first checkpoint may have left records).
    pub fn clear_metrics(&mut self) -> Result<()> {
        self.cut_metrics(0)
    }

    /// Cuts `metrics.jsonl` back to the whole records up to and including optimizer step `step` (the checkpoint a
    /// run resumes from), so that the resumed run's records follow them and the file reads as one run's history:
    /// records of steps redone after the checkpoint, a record cut short by a kill or a full disk, and anything
    /// after it go. With `keep_final` false, a final evaluation at the end goes too (a run that stopped at its time
    /// limit and now trains on). Returns the records kept.
    pub fn cut_metrics_to_step(&mut self, step: u64, keep_final: bool) -> Result<Vec<Record>> {
        let mpath = self.file(METRICS_FILE);
        let text = fs::read(&mpath).with_context(|| format!("{}: cannot read", mpath.display()))?;
        let (mut kept, mut ends) = (Vec::new(), vec![0u64]);
        let mut start = 0;
        while let Some(len) = text[start..].iter().position(|&b| b == b'\n') {
            let line = &text[start..start + len];
            match serde_json::from_slice::<Record>(line) {
                Ok(record)
                    if record.step() <= step && kept.last().is_none_or(|r: &Record| r.step() <= record.step()) =>
                {
                    kept.push(record)
                }
                _ => break,
            }
            start += len + 1;
            ends.push(start as u64);
        }
        if !keep_final && matches!(kept.last(), Some(Record::Eval(e)) if e.last) {
            kept.pop();
            ends.pop();
        }
        self.cut_metrics(*ends.last().expect("at least the empty prefix"))?;
        Ok(kept)
    }

    fn cut_metrics(&mut self, len: u64) -> Result<()> {
        self.metrics.set_len(len).with_context(|| format!("{}: cannot truncate", self.file(METRICS_FILE).display()))?;
        self.metrics_len = len;
        Ok(())
    }

    /// Writes a file in the run directory atomically.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<()> {
        write_atomic(&self.file(name), bytes)
    }
}

/// Removes the temporary files of the atomic writer that a killed process left in `dir`. Only called with the
/// directory's lock held, when no writer of ours can be at work there.
fn remove_temporaries(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        if entry.file_name().to_str().is_some_and(is_temporary_name) {
            let _ = fs::remove_file(entry.path());
        }
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
    use crate::run::record::{read_records, ErrorRecord, EvalRecord};
    use crate::EvalResult;

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("loopgrad-rundir-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
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
        let made = std::process::Command::new("mkfifo").arg(d.join(METRICS_FILE)).status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("skipping: mkfifo is not available");
            return;
        }
        let dir = d.clone();
        let err = within_deadline(move || RunDir::open(&dir).err().map(|e| e.to_string())).unwrap();
        assert_eq!(err, format!("{}: cannot append to a FIFO; give a regular file", d.join(METRICS_FILE).display()));
        fs::remove_dir_all(&d).unwrap();
    }

    fn error(step: u64) -> Record {
        Record::Error(ErrorRecord { step, message: "m".into() })
    }

    fn eval(step: u64, last: bool) -> Record {
        Record::Eval(EvalRecord::new(step, &EvalResult::default(), last))
    }

    #[test]
    fn metrics_append_and_read_back() {
        let d = tempdir("metrics");
        {
            let mut r = RunDir::open(&d).unwrap();
            r.log(&error(1)).unwrap();
        }
        let mut r = RunDir::open(&d).unwrap();
        r.log(&error(2)).unwrap();
        assert_eq!(read_records(&d.join(METRICS_FILE)).unwrap(), [error(1), error(2)]);
        drop(r);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn resume_cuts_the_log_back_to_whole_records_of_the_checkpoints_steps() {
        // Was: a resume appended after whatever was there: the redone steps twice, a record cut by a kill glued
        // to the next one, and every resume of a finished run another final evaluation.
        let d = tempdir("cut");
        let mut r = RunDir::open(&d).unwrap();
        for record in [error(10), eval(10, false), error(20), error(30)] {
            r.log(&record).unwrap();
        }
        let mut f = OpenOptions::new().append(true).open(d.join(METRICS_FILE)).unwrap();
        f.write_all(br#"{"kind":"error","st"#).unwrap();
        assert_eq!(r.cut_metrics_to_step(20, true).unwrap(), [error(10), eval(10, false), error(20)]);
        r.log(&error(21)).unwrap();
        assert_eq!(read_records(&d.join(METRICS_FILE)).unwrap(), [error(10), eval(10, false), error(20), error(21)]);
        // A cut record at the end (a kill mid-append) goes, whole records stay.
        f.write_all(br#"{"kind":"eval","st"#).unwrap();
        assert_eq!(r.cut_metrics_to_step(30, true).unwrap().len(), 4);
        // A finished run keeps its final evaluation when nothing is left to train, and drops it otherwise.
        r.log(&eval(21, true)).unwrap();
        assert_eq!(r.cut_metrics_to_step(21, true).unwrap().last(), Some(&eval(21, true)));
        assert_eq!(r.cut_metrics_to_step(21, false).unwrap().last(), Some(&error(21)));
        // A dead run's records out of order (another run's) end the history.
        r.log(&error(5)).unwrap();
        assert_eq!(r.cut_metrics_to_step(30, true).unwrap().last(), Some(&error(21)));
        r.clear_metrics().unwrap();
        assert_eq!(read_records(&d.join(METRICS_FILE)).unwrap(), []);
        drop(r);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn temporaries_of_a_killed_writer_are_removed_when_the_directory_is_opened() {
        let d = tempdir("leftovers");
        fs::create_dir_all(&d).unwrap();
        let leftover = d.join(".checkpoint.safetensors.4242.0.tmp");
        fs::write(&leftover, b"half").unwrap();
        fs::write(d.join("notes.tmp"), b"a user's file").unwrap();
        let r = RunDir::open(&d).unwrap();
        assert!(!leftover.exists());
        assert!(d.join("notes.tmp").exists());
        drop(r);
        fs::remove_dir_all(&d).unwrap();
    }

    /// A small tmpfs mounted at a fresh directory, unmounted on drop; None (with a message) where this process
    /// cannot mount one (not root, no `mount`, a container without the capability).
    pub(crate) struct SmallTmpfs(pub PathBuf);

    impl SmallTmpfs {
        pub(crate) fn mount(name: &str, kib: usize) -> Option<SmallTmpfs> {
            let d = tempdir(name);
            fs::create_dir_all(&d).ok()?;
            let size = format!("size={kib}k");
            let mounted =
                std::process::Command::new("mount").args(["-t", "tmpfs", "-o", &size, "tmpfs"]).arg(&d).output();
            if !mounted.as_ref().is_ok_and(|o| o.status.success()) {
                eprintln!("skipping the disk-full case: cannot mount a tmpfs here (needs root and mount)");
                let _ = fs::remove_dir(&d);
                return None;
            }
            Some(SmallTmpfs(d))
        }

        /// Fills the file system to the last byte with `fill`.
        pub(crate) fn fill(&self) {
            let mut f = File::create(self.0.join("fill")).unwrap();
            let block = vec![0u8; 1024];
            while f.write_all(&block).is_ok() {}
            while f.write_all(&block[..1]).is_ok() {}
        }
    }

    impl Drop for SmallTmpfs {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
            let _ = fs::remove_dir(&self.0);
        }
    }

    #[test]
    fn a_full_disk_mid_record_names_the_log_and_leaves_whole_records() {
        // Was: `No space left on device (os error 28)` naming no file, and the log cut at 4096 bytes mid-record,
        // which the next append glued onto (then `plot`: "line 16: not a JSON record").
        let Some(fs_) = SmallTmpfs::mount("full", 64) else { return };
        let dir = fs_.0.join("run");
        let mut r = RunDir::open(&dir).unwrap();
        // Fill the log's first page nearly to its end, so that the next record must start a page the disk lacks.
        let line_len = |n| serde_json::to_string(&error(n)).unwrap().len() as u64 + 1;
        let (mut n, mut len) = (0, 0);
        while len + line_len(n) <= 4096 {
            r.log(&error(n)).unwrap();
            (len, n) = (len + line_len(n), n + 1);
        }
        let before = fs::read(dir.join(METRICS_FILE)).unwrap();
        fs_.fill();
        let err = format!("{:#}", r.log(&error(n)).unwrap_err());
        assert!(err.starts_with(&format!("{}: cannot append a record: ", dir.join(METRICS_FILE).display())), "{err}");
        assert_eq!(fs::read(dir.join(METRICS_FILE)).unwrap(), before, "no part of the failed record stays");
        fs::remove_file(fs_.0.join("fill")).unwrap();
        r.log(&error(n)).unwrap();
        assert_eq!(read_records(&dir.join(METRICS_FILE)).unwrap().len() as u64, n + 1);
        drop(r);
    }
}
