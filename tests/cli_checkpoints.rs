//! Checkpoint files through the binary: identical runs write identical bytes, and a checkpoint's header cannot
//! make `eval` or `train --resume` allocate what its config claims before its tensors are checked.

mod common;

use common::{assert_clean_error, loopgrad};
use loopgrad_nn::checkpoint::CheckpointWriter;
use loopgrad_train::TrainConfig;
use std::path::{Path, PathBuf};
use std::process::Command;

fn tmp(name: &str) -> PathBuf {
    common::tmp("cli-checkpoints", name)
}

#[test]
fn two_identical_runs_write_byte_identical_checkpoints() {
    // Was: the metadata keys came out in HashMap order, so the files differed from byte 33 on.
    let d = tmp("reproducible");
    for out in ["a", "b"] {
        let run = loopgrad(&["train", "--preset", "smoke", "--set", "run.steps=3", "--out", out], &d);
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    }
    let a = std::fs::read(d.join("a/checkpoint.safetensors")).unwrap();
    let b = std::fs::read(d.join("b/checkpoint.safetensors")).unwrap();
    let first_difference = a.iter().zip(&b).position(|(x, y)| x != y);
    assert!(a == b, "{} and {} bytes, first difference at byte {first_difference:?}", a.len(), b.len());
}

#[test]
fn a_tiny_checkpoint_claiming_a_huge_model_is_refused_before_allocating_it() {
    // Was: `eval` and `train --resume` built the 8192-wide model first (2-4 GB), then aborted on allocation
    // (exit 134, a backtrace).
    let d = tmp("huge-claim");
    // Within the ranges, so that the file is refused for its tensors (an 8192-wide smoke model needs 31 GiB,
    // which `validate` refuses on most machines, but only after the tensors are checked).
    let mut config = TrainConfig::preset("smoke").unwrap();
    if let loopgrad_models::config::ModelConfig::Trm(m) = &mut config.model {
        m.hidden_size = 8192;
    }
    config.validate_limits().unwrap();
    std::fs::create_dir_all(d.join("r")).unwrap();
    let mut w = CheckpointWriter::<f32>::new();
    w.set_json("config", &config);
    w.write(&d.join("r/checkpoint.safetensors")).unwrap();
    let len = std::fs::metadata(d.join("r/checkpoint.safetensors")).unwrap().len();
    assert!(len < 2048, "a small file: {len} bytes");
    std::fs::write(d.join("x.csv"), "").unwrap();
    let missing = "tensor `inner.embed_tokens.embedding_weight` is missing";
    let eval = "eval --checkpoint r/checkpoint.safetensors --data x.csv --task sudoku";
    assert_clean_error(&within_1_gib(eval, &d), &["checkpoint.safetensors", missing]);
    assert_clean_error(&within_1_gib("train --resume r", &d), &["checkpoint.safetensors", missing]);
}

/// Runs `loopgrad ARGS` (split at spaces) with its address space limited to 1 GiB (`ulimit -v`), so that an
/// allocation of the claimed model's size fails here whatever the machine's memory.
fn within_1_gib(args: &str, cwd: &Path) -> std::process::Output {
    let script = format!("ulimit -v 1048576 && exec '{}' {args}", env!("CARGO_BIN_EXE_loopgrad"));
    let out = Command::new("sh").arg("-c").arg(&script).current_dir(cwd).output().expect("run sh");
    out
}
