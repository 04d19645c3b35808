//! The memory estimate (`loopgrad_train::memory`) against what `loopgrad train` really uses, and the refusal of a
//! config the machine cannot hold, through the binary.

mod common;

use common::{assert_clean_error, loopgrad};
use loopgrad_train::TrainConfig;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn tmp(name: &str) -> PathBuf {
    common::tmp("cli-memory", name)
}

/// Runs `loopgrad ARGS` in `cwd` to the end and returns its peak resident memory in bytes (`ru_maxrss` of
/// `wait4`, the figure `/usr/bin/time -v` prints).
#[cfg(target_os = "linux")]
#[allow(clippy::zombie_processes)] // reaped by the wait4 below, which `Child::wait` cannot stand in for
fn peak_rss(args: &[&str], cwd: &Path) -> u64 {
    let child = Command::new(env!("CARGO_BIN_EXE_loopgrad"))
        .args(args)
        .current_dir(cwd)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run loopgrad");
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct, which wait4 fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pid is our own child, not yet waited for; status and usage are valid for writes.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t, "wait4 failed");
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "loopgrad {args:?} failed: {status}");
    usage.ru_maxrss as u64 * 1024 // kilobytes on Linux
}

#[cfg(target_os = "linux")]
#[test]
fn the_estimate_is_within_a_quarter_of_the_measured_peak() {
    let d = tmp("peak");
    // Three steps each, on fewer puzzles (the data is a small term of these presets), no evaluation until the end.
    let sets = ["run.steps=3", "data.train_count=200", "data.test_count=50", "run.eval_every=0"];
    for preset in ["smoke", "default"] {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        let estimate = TrainConfig::preset(preset).unwrap().with_overrides(&sets).unwrap().memory_estimate().total();
        let mut args = vec!["train", "--preset", preset, "--out", preset];
        for s in &sets {
            args.extend(["--set", s.as_str()]);
        }
        let measured = peak_rss(&args, &d);
        let ratio = estimate as f64 / measured as f64;
        eprintln!("{preset}: estimate {estimate} bytes, peak resident {measured} bytes, ratio {ratio:.2}");
        assert!((0.75..=1.25).contains(&ratio), "{preset}: estimate {estimate} vs measured {measured} ({ratio:.2})");
    }
}

#[test]
fn info_prints_the_estimate_and_train_refuses_a_config_beyond_the_machine() {
    let d = tmp("refuse");
    let out = loopgrad(&["info", "--preset", "default"], &d);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("memory to train: about "), "{stdout}");
    std::fs::write(d.join("c.toml"), TrainConfig::preset("smoke").unwrap().to_toml()).unwrap();
    let out = loopgrad(&["info", "--config", "c.toml", "--json"], &d);
    let record: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert!(record["memory_bytes"].as_u64().is_some_and(|b| b > 1 << 20), "{record}");
    // Was: validation passed, then the run aborted on allocation. 600,000 slots need about 700 GiB.
    let out = loopgrad(&["train", "--preset", "smoke", "--set", "run.batch_size=600000", "--out", "r"], &d);
    assert_clean_error(&out, &["with run.batch_size=600000", "this config needs about", "run.batch_size 600000"]);
}

#[test]
fn info_set_overrides_a_training_preset_and_prints_an_estimate_beyond_the_machine() {
    let d = tmp("info-set");
    let estimate = |sets: &[&str]| -> u64 {
        let mut args = vec!["info", "--preset", "smoke", "--json"];
        for s in sets {
            args.extend(["--set", s]);
        }
        let out = loopgrad(&args, &d);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let record: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
        record["memory_bytes"].as_u64().expect("memory_bytes")
    };
    let (small, big) = (estimate(&[]), estimate(&["run.batch_size=600000"]));
    // train refuses this config (above); info prints what it would need.
    assert!(big > 100 * small && big > 100 << 30, "{small} {big}");
    assert_clean_error(&loopgrad(&["info", "--preset", "smoke", "--set", "run.stepz=3"], &d), &["run.stepz"]);
    assert_clean_error(
        &loopgrad(&["info", "--preset", "smoke", "--set", "model.hidden_size=0"], &d),
        &["with model.hidden_size=0"],
    );
    assert_clean_error(
        &loopgrad(&["info", "--preset", "trm-mlp-sudoku", "--set", "run.steps=3"], &d),
        &["--set", "model preset"],
    );
}
