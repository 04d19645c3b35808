//! Regression tests of the adversarial input sweep: each input here once made the `loopgrad` binary panic, hang,
//! abort on a failed allocation, or fail with a message that did not name the file or field at fault. Every
//! command runs under a deadline, so a hang fails the test instead of stalling the suite.

mod common;

use common::assert_clean_error;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

/// Every command here runs under a one-minute deadline: these inputs once hung the binary.
fn loopgrad(args: &[&str], cwd: &Path) -> Output {
    common::loopgrad_within(Duration::from_secs(60), args, cwd)
}

fn tmp(name: &str) -> PathBuf {
    common::tmp("cli-fuzz", name)
}

/// Replaces the JSON text of metadata entry `key` in a safetensors file (the header is rewritten, the tensor
/// bytes after it are kept: offsets are relative to the end of the header).
fn rewrite_metadata(path: &Path, key: &str, edit: impl FnOnce(&mut serde_json::Value)) {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let mut value: serde_json::Value = serde_json::from_str(header["__metadata__"][key].as_str().unwrap()).unwrap();
    edit(&mut value);
    header["__metadata__"][key] = serde_json::Value::String(value.to_string());
    let text = header.to_string();
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&bytes[8 + n..]);
    std::fs::write(path, out).unwrap();
}

#[test]
fn a_tampered_checkpoint_state_or_config_is_an_error_naming_the_checkpoint() {
    let d = tmp("resume");
    let out = loopgrad(&["train", "--preset", "smoke", "--set", "run.steps=2", "--out", "run"], &d);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ckpt = d.join("run/checkpoint.safetensors");
    let pristine = std::fs::read(&ckpt).unwrap();
    // Was: a panic in the training step (index out of range, embedding id out of range).
    rewrite_metadata(&ckpt, "train.state", |s| s["inputs"] = serde_json::json!([]));
    let out = loopgrad(&["train", "--resume", "run", "--set", "run.steps=4"], &d);
    assert_clean_error(&out, &["checkpoint.safetensors", "`train.state`", "0 inputs"]);
    std::fs::write(&ckpt, &pristine).unwrap();
    rewrite_metadata(&ckpt, "train.state", |s| {
        s["slots"]["halted"] = serde_json::json!(vec![false; 8]);
        s["puzzle_ids"] = serde_json::json!(vec![7; 8]);
    });
    let out = loopgrad(&["train", "--resume", "run", "--set", "run.steps=4"], &d);
    assert_clean_error(&out, &["checkpoint.safetensors", "puzzle id 0 is 7"]);
    // Was: a hang spawning 100,000 threads; and an invalid config that did not name the checkpoint.
    std::fs::write(&ckpt, &pristine).unwrap();
    rewrite_metadata(&ckpt, "config", |c| c["run"]["threads"] = serde_json::json!(100_000));
    let out = loopgrad(&["train", "--resume", "run"], &d);
    assert_clean_error(&out, &["checkpoint.safetensors: metadata `config`", "run.threads 100000"]);
    // The same value from --set is blamed on the override, not on the checkpoint's config.
    std::fs::write(&ckpt, &pristine).unwrap();
    let out = loopgrad(&["train", "--resume", "run", "--set", "run.threads=100000"], &d);
    assert_clean_error(&out, &["error: with run.threads=100000: run.threads 100000 is more than 1024"]);
    std::fs::write(&ckpt, &pristine).unwrap();
    rewrite_metadata(&ckpt, "config", |c| c["model"]["vocab_size"] = serde_json::json!(0));
    let out =
        loopgrad(&["eval", "--checkpoint", "run/checkpoint.safetensors", "--data", "x.csv", "--task", "sudoku"], &d);
    assert_clean_error(&out, &["checkpoint.safetensors: metadata `config`", "model.vocab_size"]);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn degenerate_flags_are_refused_by_name() {
    let d = tmp("flags");
    let bench = ["bench", "--hidden", "16", "--seq", "16", "--vocab", "6", "--steps", "1"];
    let cases: [(Vec<&str>, &[&str]); 16] = [
        ([&bench[..], &["--batch", "2", "--prefix", "0"]].concat(), &["--prefix"]),
        // usize::MAX steps panicked on "capacity overflow" reserving the step times.
        (
            [&bench[..7], &["--batch", "2", "--steps", "18446744073709551615"]].concat(),
            &["--steps 18446744073709551615 is more than 1000000"],
        ),
        ([&bench[..], &["--batch", "2", "--warmup", "1000001"]].concat(), &["--warmup 1000001 is more than 1000000"]),
        ([&bench[..], &["--batch", "2", "--threads", "100000"]].concat(), &["--threads 100000"]),
        ([&bench[..], &["--batch", "2", "--expansion", "0.001"]].concat(), &["--expansion 0.001 leaves"]),
        ([&bench[..], &["--batch", "100000000"]].concat(), &["--batch 100000000"]),
        // Training examples hold tokens as bytes (the benchmark trains on an example set).
        ([&bench[..5], &["--vocab", "300", "--batch", "2"]].concat(), &["--vocab 300 is more than 256"]),
        (vec!["train", "--preset", "smoke", "--set", "model.num_heads=0", "--out", "r"], &["model.num_heads"]),
        (
            vec!["train", "--preset", "smoke", "--set", "model.expansion=nan", "--out", "r"],
            &["--set model.expansion=nan"],
        ),
        (vec!["data", "sudoku", "--box", "2x2", "--count", "0", "--out", "a.csv"], &["--count"]),
        // The next two failed without naming the flag ("box shape `0x0` is not ...", "no minimal 2x2 puzzle ...").
        (vec!["data", "sudoku", "--box", "0x0", "--count", "1", "--out", "a.csv"], &["--box: box shape `0x0`"]),
        // Was: "attempt to multiply with overflow" in BoxShape::parse (with overflow checks).
        (
            vec!["data", "sudoku", "--box", "18446744073709551615x2", "--count", "1", "--out", "a.csv"],
            &["--box: box shape `18446744073709551615x2`"],
        ),
        (
            vec!["data", "sudoku", "--box", "2x2", "--givens", "1-1", "--count", "1", "--out", "a.csv"],
            &["--givens 1-1: no minimal 2x2 puzzle"],
        ),
        // Was: `2 * k` steps wrapped to 0 (a debug build panics on the overflow), then a child train failed on a
        // run.steps TOML cannot hold, with an error naming the child's command line instead of the flag.
        (
            vec!["study", "--plan", "smoke", "--estimate", "9223372036854775808"],
            &["--estimate 9223372036854775808 is more than 1000000"],
        ),
        (
            vec!["data", "maze", "--size", "64", "--min-route", "5000", "--count", "1", "--out", "m.csv"],
            &["--min-route 5000"],
        ),
        // Was: "attempt to multiply with overflow" squaring the side before bounding it (with overflow checks).
        (
            vec!["data", "maze", "--size", "4294967296", "--count", "1", "--out", "m.csv"],
            &["--size 4294967296 must be"],
        ),
    ];
    for (args, needles) in cases {
        assert_clean_error(&loopgrad(&args, &d), needles);
    }
    let out = loopgrad(&["study", "--plan", "smoke", "--seeds", "100000000", "--dry-run"], &d);
    assert_clean_error(&out, &["seeds 100000000"]);
    std::fs::remove_dir_all(&d).unwrap();
}

#[cfg(unix)]
#[test]
fn fifos_and_devices_are_refused_by_name_before_they_are_opened() {
    let d = tmp("special");
    let out = loopgrad(&["train", "--preset", "smoke", "--set", "run.steps=1", "--out", "run"], &d);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let eval = |checkpoint: &str, data: &str| {
        loopgrad(&["eval", "--checkpoint", checkpoint, "--data", data, "--task", "sudoku", "--steps", "1"], &d)
    };
    // Was: reading /dev/zero to the end (10 GB in 4 s, then the deadline or an allocation failure).
    let zero = "/dev/zero";
    assert_clean_error(&eval(zero, "x.csv"), &["--checkpoint /dev/zero: cannot read a device"]);
    assert_clean_error(&eval("run/checkpoint.safetensors", zero), &["/dev/zero: cannot read a device"]);
    assert_clean_error(&loopgrad(&["train", "--config", zero], &d), &["/dev/zero: cannot read a device as a config"]);
    let out = loopgrad(&["study", "--plan-file", zero, "--dry-run"], &d);
    assert_clean_error(&out, &["--plan-file /dev/zero: cannot read a device"]);
    assert_clean_error(&loopgrad(&["data", "inspect", "--task", "arc", zero], &d), &["/dev/zero: cannot read"]);
    // Was: the atomic writers' rename replaced the device with a regular file (as root, the machine's /dev/null).
    // A link to it stands in for it here, so that a regression replaces the link, not the device.
    std::os::unix::fs::symlink("/dev/null", d.join("null")).unwrap();
    let out = loopgrad(&["data", "sudoku", "--box", "2x2", "--count", "1", "--out", "null"], &d);
    assert_clean_error(&out, &["--out null: cannot write over a device"]);
    assert_clean_error(&loopgrad(&["plot", "run", "--out", "null"], &d), &["--out null: cannot write over a device"]);
    assert!(std::fs::symlink_metadata(d.join("null")).unwrap().file_type().is_symlink());
    // Was: a hang opening the FIFO, for reading or for writing (no other end ever comes).
    let made = std::process::Command::new("mkfifo").arg(d.join("fifo")).status().is_ok_and(|s| s.success());
    if made {
        assert_clean_error(&eval("fifo", "x.csv"), &["--checkpoint fifo: cannot read a FIFO"]);
        assert_clean_error(&eval("run/checkpoint.safetensors", "fifo"), &["fifo: cannot read a FIFO"]);
        let out = loopgrad(&["study", "--plan", "smoke", "--seeds", "1", "--emit-jobs", "fifo", "--out", "s"], &d);
        assert_clean_error(&out, &["--emit-jobs fifo: cannot write over a FIFO"]);
        // A run directory's own files: a FIFO for study.json (study --run-cell) or metrics.jsonl (plot).
        std::fs::create_dir(d.join("cell")).unwrap();
        std::fs::rename(d.join("fifo"), d.join("cell/study.json")).unwrap();
        assert_clean_error(&loopgrad(&["study", "--run-cell", "cell"], &d), &["study.json: cannot read a FIFO"]);
        std::fs::rename(d.join("cell/study.json"), d.join("cell/metrics.jsonl")).unwrap();
        assert_clean_error(&loopgrad(&["plot", "cell", "--out", "c.svg"], &d), &["metrics.jsonl: cannot read a FIFO"]);
    } else {
        eprintln!("skipping the FIFO cases: mkfifo is not available");
    }
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn plot_draws_a_metrics_file_with_extreme_numbers() {
    // Was: a hang in the axis mesh (a loss of 1.8e308 times the 5% headroom is infinite).
    let d = tmp("plot");
    // Whole train records (what `plot` reads), with only the step and the loss extreme.
    let record = |step: &str, loss: &str| {
        format!(
            "{{\"kind\":\"train\",\"step\":{step},\"loss\":{loss},\"lm_loss\":0.5,\"q_halt_loss\":0.0,\"lr\":0.0001,\
             \"halted\":0,\"exact_accuracy\":0.0,\"token_accuracy\":0.0,\"halt_steps\":0.0,\"samples_per_s\":1.0,\
             \"elapsed_s\":1.0}}\n"
        )
    };
    let lines = [
        record("18446744073709551615", "1.7976931348623157e308"),
        record("1", "-1.7976931348623157e308"),
        record("2", "0.5"),
    ];
    std::fs::write(d.join("metrics.jsonl"), lines.concat()).unwrap();
    let out = loopgrad(&["plot", ".", "--out", "c.svg"], &d);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn arc_inspect_survives_symlink_loops_and_names_empty_kaggle_files() {
    let d = tmp("arc");
    let task = r#"{"train":[{"input":[[1]],"output":[[2]]}],"test":[{"input":[[1]],"output":[[2]]}]}"#;
    std::fs::create_dir_all(d.join("tasks/sub")).unwrap();
    std::fs::write(d.join("tasks/a.json"), task).unwrap();
    #[cfg(unix)]
    {
        // Was: unbounded recursion through the loops (gigabytes, then a timeout).
        std::os::unix::fs::symlink("..", d.join("tasks/sub/up")).unwrap();
        std::os::unix::fs::symlink(".", d.join("tasks/self")).unwrap();
    }
    let out = loopgrad(&["data", "inspect", "--task", "arc", "tasks"], &d);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 valid ARC tasks"));
    // Was: a panic (index out of bounds) on a challenges file without tasks.
    std::fs::write(d.join("x_challenges.json"), "{}").unwrap();
    let out = loopgrad(&["data", "inspect", "--task", "arc", "x_challenges.json"], &d);
    assert_clean_error(&out, &["x_challenges.json: no tasks"]);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn too_few_unseen_puzzles_for_the_held_out_set_names_both_counts() {
    let d = tmp("unseen");
    let out = loopgrad(&["train", "--preset", "smoke", "--set", "data.train_count=65537", "--out", "r"], &d);
    assert_clean_error(&out, &["data.test_count 50: could only generate", "data.train_count 65537"]);
    std::fs::remove_dir_all(&d).unwrap();
}
