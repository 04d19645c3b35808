//! What the CLI test files share: running the binary under a deadline, a scratch directory per test, and the
//! check that a failure is one clean `error:` line.
#![allow(dead_code)] // each test file is its own crate and uses a part of this

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs the binary in `cwd`, killing it after `deadline` (a hang is a failure, not a stuck suite). Its output
/// goes to files, not pipes: a pipe nobody reads until the end would block a chatty child and look like a hang.
pub fn loopgrad_within(deadline: Duration, args: &[&str], cwd: &Path) -> Output {
    let (out_path, err_path) = (cwd.join(".stdout"), cwd.join(".stderr"));
    let file = |p: &Path| std::fs::File::create(p).expect("create an output file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_loopgrad"))
        .args(args)
        .current_dir(cwd)
        .stdout(Stdio::from(file(&out_path)))
        .stderr(Stdio::from(file(&err_path)))
        .spawn()
        .expect("run loopgrad");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for loopgrad") {
            break status;
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("loopgrad {args:?} still runs after {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |p: &Path| std::fs::read(p).expect("read an output file");
    Output { status, stdout: read(&out_path), stderr: read(&err_path) }
}

/// [`loopgrad_within`] 10 minutes: every command of these tests takes seconds.
pub fn loopgrad(args: &[&str], cwd: &Path) -> Output {
    loopgrad_within(Duration::from_secs(600), args, cwd)
}

/// A fresh, empty scratch directory for test `name` of `group` (one per process, so parallel runs do not clash).
pub fn tmp(group: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("loopgrad-{group}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Fails unless the command failed with exit code 1 and exactly one `error:` line (progress lines may come before
/// it, and the lines an error lists after it), containing every `needle`, and no panic or backtrace.
pub fn assert_clean_error(out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "expected exit 1; stderr: {stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"), "a panic: {stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "expected one error line, got: {stderr}");
    for n in needles {
        assert!(errors[0].contains(n), "{n:?} not in: {}", errors[0]);
    }
}
