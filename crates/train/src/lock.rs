//! One writer per directory: an advisory lock (`flock`, through `File::try_lock`) on a lock file in a run or
//! study directory, held for as long as the process works there. A second `train`, `--resume` or `study` on the
//! same directory refuses at once, naming the holder's PID (written into the lock file), instead of interleaving
//! its checkpoints and metrics with the first's. The kernel drops the lock when the holder exits, however it
//! exits, so a killed run never leaves a stale lock behind; the lock file itself stays (it is empty of meaning
//! without the lock).

use anyhow::{anyhow, bail, Context, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The lock file of a run or study directory.
pub const LOCK_FILE: &str = "loopgrad.lock";

/// A held lock on a directory; dropping it releases the lock.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    path: PathBuf,
}

impl DirLock {
    /// Takes the lock of `dir` (which must exist), or refuses naming the process that holds it.
    pub fn acquire(dir: &Path) -> Result<DirLock> {
        let path = dir.join(LOCK_FILE);
        if let Some(kind) = loopgrad_puzzles::error::special_file_kind(&path) {
            bail!("{}: cannot lock {kind}; remove it", path.display());
        }
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            // A symlink planted at the lock's name is refused, not followed (the PID would be written through it).
            options.custom_flags(libc::O_NOFOLLOW);
        }
        let mut file = options.open(&path).with_context(|| format!("{}: cannot open the lock file", path.display()))?;
        // A lock this process released can stay held for a moment by a child forked meanwhile (it shares the open
        // file description until its exec closes it): when the holder named is this process, wait up to a second.
        let mut attempts = 0;
        let locked = loop {
            match file.try_lock() {
                Err(TryLockError::WouldBlock) if attempts < 50 && holder_pid(&mut file) == Some(std::process::id()) => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                other => break other,
            }
        };
        match locked {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = match holder_pid(&mut file) {
                    Some(pid) => format!("process {pid}"),
                    None => "another process".to_string(),
                };
                bail!(
                    "{} is in use by {holder} (it holds {}); wait for it to finish or stop it, or use another directory",
                    dir.display(),
                    path.display()
                );
            }
            Err(TryLockError::Error(e)) => {
                return Err(anyhow!(e).context(format!("{}: cannot lock", path.display())));
            }
        }
        let pid = format!("{}\n", std::process::id());
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(pid.as_bytes()))
            .with_context(|| format!("{}: cannot write the holder's PID", path.display()))?;
        Ok(DirLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The PID the lock file names (written by its holder), if any.
fn holder_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_until_the_first_is_dropped() {
        let d = std::env::temp_dir().join(format!("loopgrad-lock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let first = DirLock::acquire(&d).unwrap();
        // A second open file description conflicts even within one process: what two processes would see.
        let err = DirLock::acquire(&d).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{} is in use by process {} (it holds {}); wait for it to finish or stop it, or use another directory",
                d.display(),
                std::process::id(),
                d.join(LOCK_FILE).display()
            )
        );
        drop(first);
        DirLock::acquire(&d).unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }
}
