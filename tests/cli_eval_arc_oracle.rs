//! `loopgrad eval --task arc` against PyTorch: `tests/oracle/fixtures/arc/` comes from
//! `python tests/oracle/arc_reference.py --out tests/oracle/fixtures/arc` (an independent PyTorch version of TRM's
//! ARC evaluation on a small ARC-shaped TRM-Att: 4x4 canvas, vocabulary 12, D 16, briefly trained there). The
//! checkpoint has TRM's names (`_orig_mod.model.inner.*`), bfloat16 tensors and no loopgrad config. Every test
//! input runs under the 4 versions its identifiers name for 3 supervision steps; the binary must submit the same
//! two attempts per test input and report the same pass@1, @2 and @3, per task and overall, exactly (the script
//! checked that no argmax and no confidence-decided ranking is within f32's reach).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/fixtures/arc").join(name)
}

#[test]
fn arc_eval_matches_the_pytorch_reference_exactly() {
    let text = std::fs::read_to_string(fixture("expected.json")).expect("the fixture is committed");
    let expected: Value = serde_json::from_str(&text).unwrap();
    let out_dir = std::env::temp_dir().join(format!("loopgrad-arc-oracle-{}", std::process::id()));
    std::fs::create_dir_all(&out_dir).unwrap();
    let predictions = out_dir.join("predictions.json");
    let path = |p: PathBuf| p.to_str().unwrap().to_string();
    let steps = expected["steps"].to_string();
    let ks: Vec<String> = expected["pass_k"].as_array().unwrap().iter().map(|k| k.to_string()).collect();
    let mut args: Vec<String> = ["eval", "--task", "arc", "--preset", expected["preset"].as_str().unwrap()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for set in expected["sets"].as_array().unwrap() {
        args.extend(["--set".to_string(), set.as_str().unwrap().to_string()]);
    }
    args.extend([
        "--checkpoint".into(),
        path(fixture("trm_att_arc.safetensors")),
        "--identifiers".into(),
        path(fixture("identifiers.json")),
        "--data".into(),
        path(fixture("tasks")),
        "--steps".into(),
        steps,
        "--pass-k".into(),
        ks.join(","),
        "--predictions".into(),
        path(predictions.clone()),
        "--json".into(),
    ]);
    let out = Command::new(env!("CARGO_BIN_EXE_loopgrad")).args(&args).output().expect("run loopgrad");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "loopgrad {args:?} failed: {stderr}");
    assert!(stderr.trim().is_empty(), "loopgrad wrote to stderr (an ignored tensor?): {stderr}");
    let report: Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    assert_eq!(report["overall"], expected["overall"]);
    assert_eq!(report["per_task"], expected["per_task"]);
    assert_eq!(report["tasks_left_out"], serde_json::json!([]));
    let submitted: Value = serde_json::from_str(&std::fs::read_to_string(&predictions).unwrap()).unwrap();
    assert_eq!(submitted, expected["submission"]);
    // Not trivially zero: some test inputs are solved, some are not.
    let pass1 = expected["overall"]["pass@1"].as_f64().unwrap();
    assert!(pass1 > 0.0 && pass1 < 1.0, "{pass1}");
    std::fs::remove_dir_all(&out_dir).unwrap();
}
