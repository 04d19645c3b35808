//! `loopgrad trace` on the PyTorch-made checkpoint of `tests/oracle/fixtures/eval/` (see cli_eval_oracle.rs): the
//! answer it draws after supervision steps 1, 3 and 8 has, cell for cell, as many right cells as PyTorch's own
//! evaluation of the same weights found for that puzzle; the SVG has one row per step and one grid per recursion;
//! bad arguments get one clean error line.

mod common;

use common::{assert_clean_error, loopgrad, tmp};
use serde_json::Value;
use std::path::{Path, PathBuf};

const PRESET: &str = "trm-mlp-sudoku6-cpu";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/fixtures/eval").join(name)
}

fn expected() -> Value {
    let text = std::fs::read_to_string(fixture("expected.json")).expect("the committed eval fixture");
    serde_json::from_str(&text).expect("expected.json parses")
}

fn trace_args<'a>(checkpoint: &'a str, data: &'a str, index: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["trace", "--checkpoint", checkpoint, "--preset", PRESET, "--data", data, "--task", "sudoku"];
    args.extend(["--index", index]);
    args.extend_from_slice(extra);
    args
}

#[test]
fn the_traced_answers_have_pytorchs_right_cells_at_1_3_and_8_steps() {
    let dir = tmp("trace", "oracle");
    let (checkpoint, data) = (fixture("trm_mlp_sudoku6.safetensors"), fixture("sudoku6.csv"));
    let (checkpoint, data) = (checkpoint.to_str().unwrap(), data.to_str().unwrap());
    let expected = expected();
    let runs = expected["runs"].as_array().unwrap();
    for index in [0usize, 5, 11] {
        let i = index.to_string();
        let out = loopgrad(&trace_args(checkpoint, data, &i, &["--steps", "8", "--json"]), &dir);
        assert!(out.status.success(), "trace failed: {}", String::from_utf8_lossy(&out.stderr));
        let trace: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
        let labels = trace["labels"].as_array().unwrap();
        let steps = trace["steps"].as_array().unwrap();
        assert_eq!(steps.len(), 8);
        for run in runs {
            let s = run["steps"].as_u64().unwrap() as usize;
            let recursions = steps[s - 1].as_array().unwrap();
            assert_eq!(recursions.len(), 2, "the preset has T = 2 recursions per step");
            let answer = recursions.last().unwrap()["tokens"].as_array().unwrap();
            let right = answer.iter().zip(labels).filter(|(a, l)| a == l).count() as u64;
            let want = run["example_correct_tokens"][index].as_u64().unwrap();
            assert_eq!(right, want, "puzzle {index}, step {s}: right cells");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_svg_has_a_row_per_step_and_a_grid_per_recursion() {
    let dir = tmp("trace", "svg");
    let (checkpoint, data) = (fixture("trm_mlp_sudoku6.safetensors"), fixture("sudoku6.csv"));
    let (checkpoint, data) = (checkpoint.to_str().unwrap(), data.to_str().unwrap());
    let out = loopgrad(&trace_args(checkpoint, data, "3", &["--steps", "4", "--out", "t.svg"]), &dir);
    assert!(out.status.success(), "trace failed: {}", String::from_utf8_lossy(&out.stderr));
    let svg = std::fs::read_to_string(dir.join("t.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    for s in 1..=4 {
        assert!(svg.contains(&format!(">step {s}</text>")), "no row for step {s}");
    }
    assert!(!svg.contains(">step 5</text>"));
    // 4 steps x 2 recursions x 36 cells, each one rect, plus the background.
    assert_eq!(svg.matches("<rect").count(), 4 * 2 * 36 + 1);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("t.svg"), "the path written is printed: {stdout}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_arguments_get_one_clean_error() {
    let dir = tmp("trace", "errors");
    let (checkpoint, data) = (fixture("trm_mlp_sudoku6.safetensors"), fixture("sudoku6.csv"));
    let (checkpoint, data) = (checkpoint.to_str().unwrap(), data.to_str().unwrap());
    assert_clean_error(&loopgrad(&trace_args(checkpoint, data, "16", &[]), &dir), &["--index 16", "16 puzzles"]);
    assert_clean_error(&loopgrad(&trace_args(checkpoint, data, "0", &["--steps", "0"]), &dir), &["--steps 0"]);
    let mut args = trace_args(checkpoint, data, "0", &[]);
    args[8] = "arc";
    assert_clean_error(&loopgrad(&args, &dir), &["--task"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Without `--data`, trace draws a puzzle of the checkpoint's own held-out set, rebuilt from the `config.toml`
/// beside it: the puzzle is the one the run's data config builds (checked against the library), and a checkpoint
/// without a config beside it gets a clean error naming the flags to give.
#[test]
fn without_data_it_draws_the_runs_own_held_out_puzzle() {
    let dir = tmp("trace", "own");
    let train = ["train", "--preset", "smoke", "--out", "run", "--set", "run.steps=3", "--set", "run.threads=1"];
    let out = loopgrad(&train, &dir);
    assert!(out.status.success(), "train failed: {}", String::from_utf8_lossy(&out.stderr));
    let args = ["trace", "--checkpoint", "run/checkpoint.safetensors", "--index", "7", "--steps", "2"];
    let out = loopgrad(&[&args[..], &["--json"]].concat(), &dir);
    assert!(out.status.success(), "trace failed: {}", String::from_utf8_lossy(&out.stderr));
    let trace: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let config = loopgrad_train::TrainConfig::from_file(&dir.join("run/config.toml")).unwrap();
    let held_out = loopgrad_train::data::load(&config.data).unwrap().test;
    let as_bytes = |v: &Value| v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u8).collect::<Vec<_>>();
    assert_eq!(as_bytes(&trace["inputs"]), held_out.inputs(7), "the run's held-out puzzle 7");
    assert_eq!(as_bytes(&trace["labels"]), held_out.labels(7));

    let out = loopgrad(&[&args[..], &["--out", "t.svg"]].concat(), &dir);
    assert!(out.status.success(), "trace failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("held-out puzzles of run/config.toml #7"));

    std::fs::copy(dir.join("run/checkpoint.safetensors"), dir.join("alone.safetensors")).unwrap();
    let alone = ["trace", "--checkpoint", "alone.safetensors"];
    assert_clean_error(&loopgrad(&alone, &dir), &["no --data", "config.toml", "--config"]);
    let wrong_task = [&args[..], &["--task", "maze"]].concat();
    assert_clean_error(&loopgrad(&wrong_task, &dir), &["--task maze", "sudoku"]);
    std::fs::remove_dir_all(&dir).unwrap();
}
