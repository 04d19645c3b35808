//! The `loopgrad` binary's train, eval, info and plot commands on bad input and on a tiny run: exit codes and
//! one-line messages, never a panic or a backtrace.

mod common;

use common::{assert_clean_error, loopgrad};
use std::path::PathBuf;

fn tmp(name: &str) -> PathBuf {
    common::tmp("cli-train", name)
}

#[test]
fn unknown_preset_and_config_key_list_the_valid_ones() {
    let d = tmp("names");
    assert_clean_error(&loopgrad(&["train", "--preset", "nope"], &d), &["unknown preset \"nope\"", "default"]);
    assert_clean_error(
        &loopgrad(&["train", "--preset", "smoke", "--set", "run.stepz=3"], &d),
        &["run.stepz", "valid keys are", "run.steps"],
    );
    assert_clean_error(&loopgrad(&["info", "--preset", "nope"], &d), &["unknown preset", "trm-mlp-sudoku"]);
}

#[test]
fn missing_and_malformed_files_are_one_line_errors_naming_them() {
    let d = tmp("files");
    assert_clean_error(&loopgrad(&["train", "--config", "absent.toml"], &d), &["absent.toml"]);
    std::fs::write(d.join("bad.toml"), "model = 3\n[[[").unwrap();
    assert_clean_error(&loopgrad(&["train", "--config", "bad.toml"], &d), &["bad.toml", "invalid config"]);
    assert_clean_error(
        &loopgrad(&["train", "--preset", "smoke", "--set", "data.train_path=absent.csv"], &d),
        &["absent.csv"],
    );
    std::fs::write(d.join("junk.safetensors"), b"\x10\x00\x00\x00\x00\x00\x00\x00{not json").unwrap();
    assert_clean_error(
        &loopgrad(&["eval", "--checkpoint", "junk.safetensors", "--data", "x.csv", "--task", "sudoku"], &d),
        &["junk.safetensors"],
    );
    assert_clean_error(
        &loopgrad(&["eval", "--checkpoint", "absent.safetensors", "--data", "x.csv", "--task", "sudoku"], &d),
        &["absent.safetensors"],
    );
    assert_clean_error(&loopgrad(&["train", "--resume", "nowhere"], &d), &["nowhere"]);
    assert_clean_error(&loopgrad(&["plot", "nowhere"], &d), &["nowhere", "metrics.jsonl"]);
}

#[test]
fn a_tiny_run_trains_resumes_evaluates_and_plots() {
    let d = tmp("run");
    let out = loopgrad(&["train", "--preset", "smoke", "--out", "r"], &d);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("held-out exact accuracy:") && stdout.contains("on 50 puzzles"), "{stdout}");
    for f in ["config.toml", "metrics.jsonl", "checkpoint.safetensors"] {
        assert!(d.join("r").join(f).exists(), "{f} missing");
    }
    // A run directory that holds a run is not overwritten.
    assert_clean_error(&loopgrad(&["train", "--preset", "smoke", "--out", "r"], &d), &["already holds a run"]);
    // Scored on a validation split instead of the held-out set, it says so.
    let out = loopgrad(&["train", "--preset", "smoke", "--set", "data.validation_count=10", "--out", "v"], &d);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("validation exact accuracy:") && stdout.contains("on 10 puzzles"), "{stdout}");
    assert!(!stdout.contains("held-out"), "{stdout}");
    // Resume it for more steps.
    let out = loopgrad(&["train", "--resume", "r", "--set", "run.steps=8"], &d);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("trained 8 steps"));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("note:"), "{}", String::from_utf8_lossy(&out.stderr));
    // An edited config.toml is not read on resume, and the run says so.
    let toml = std::fs::read_to_string(d.join("r/config.toml")).unwrap();
    std::fs::write(d.join("r/config.toml"), toml.replace("steps = 6", "steps = 10")).unwrap();
    let out = loopgrad(&["train", "--resume", "r", "--set", "run.steps=9"], &d);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("trained 9 steps"), "{stderr}");
    assert!(stderr.contains("config.toml differs from the config saved in the checkpoint"), "{stderr}");
    // Evaluate the checkpoint on a CSV of 4x4 puzzles it writes itself.
    let csv = "source,question,answer,rating\n\
               a,12.434.221.343.1,1234341221434321,0\n";
    std::fs::write(d.join("p.csv"), csv).unwrap();
    let out = loopgrad(
        &["eval", "--checkpoint", "r/checkpoint.safetensors", "--data", "p.csv", "--task", "sudoku", "--json"],
        &d,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    for key in ["examples", "exact_accuracy", "token_accuracy", "loss"] {
        assert!(v.get(key).is_some(), "{key} missing from {stdout}");
    }
    assert_eq!(v["examples"], 1);
    let out = loopgrad(&["plot", "r"], &d);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let svg = std::fs::read_to_string(d.join("r/curves.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("accuracy"));
}

#[test]
fn a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint() {
    let d = tmp("nan");
    let out = loopgrad(
        &[
            "train",
            "--preset",
            "smoke",
            "--out",
            "r",
            "--set",
            "optim.lr=1e30",
            "--set",
            "optim.schedule.warmup_steps=0",
            "--set",
            "run.steps=40",
            "--set",
            "run.checkpoint_every=1",
        ],
        &d,
    );
    assert_clean_error(&out, &["at step"]);
    let metrics = std::fs::read_to_string(d.join("r/metrics.jsonl")).unwrap();
    assert!(metrics.contains("\"kind\":\"error\""), "{metrics}");
    assert!(d.join("r/checkpoint.safetensors").exists(), "the last good checkpoint is kept");
}

#[test]
fn run_final_eval_examples_bounds_the_final_evaluation() {
    // A paper-size run of a few steps cannot afford its whole held-out set at the end (docs/arc.md).
    let d = tmp("final-eval");
    let out = loopgrad(&["train", "--preset", "smoke", "--out", "r", "--set", "run.final_eval_examples=7"], &d);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("held-out exact accuracy:") && stdout.contains("on 7 puzzles"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("final evaluation: 7 held-out puzzles"), "{stderr}");
}
