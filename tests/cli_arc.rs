//! ARC through the binary: `train` on a directory of small synthetic tasks (TRM's split on a 4x4 canvas, a task
//! too large for it skipped and counted), `eval --task arc` on the run's checkpoint with its identifier table
//! (pass@K, the submission file), the same evaluation split in 3 shards run by GNU parallel and merged with
//! `--collect` (equal to the unsharded one), and bad ARC input on the whole path: one clean error naming the file
//! or task, never a panic.

mod common;

use common::{assert_clean_error, loopgrad};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn tmp(name: &str) -> PathBuf {
    common::tmp("cli-arc", name)
}

/// A task whose rule is "swap colours 1 and 2, then mirror left-right", on `rows` x `cols` grids.
fn task_json(seed: u64, rows: usize, cols: usize, test_output: bool) -> String {
    let grid = |k: u64| -> Vec<Vec<u8>> {
        (0..rows)
            .map(|r| (0..cols).map(|c| ((seed * 7 + k * 3 + (r * cols + c) as u64 * 5) % 4) as u8).collect())
            .collect()
    };
    let rule = |g: &Vec<Vec<u8>>| -> Vec<Vec<u8>> {
        g.iter().map(|row| row.iter().rev().map(|&c| [0, 2, 1, 3][c as usize]).collect()).collect()
    };
    let pair = |k: u64, out: bool| {
        let g = grid(k);
        if out {
            serde_json::json!({"input": g, "output": rule(&g)})
        } else {
            serde_json::json!({"input": g})
        }
    };
    serde_json::json!({"train": [pair(1, true), pair(2, true)], "test": [pair(3, test_output)]}).to_string()
}

/// `training/` (3 tasks, one of them 5x5) and `evaluation/` (4 tasks, one with two test inputs).
fn write_tasks(d: &Path) {
    for (dir, tasks) in [
        ("training", vec![("a0", 2, 3), ("a1", 3, 3), ("big", 5, 5)]),
        ("evaluation", vec![("e0", 2, 2), ("e1", 3, 2), ("e2", 1, 4), ("e3", 3, 3)]),
    ] {
        std::fs::create_dir_all(d.join(dir)).unwrap();
        for (i, (id, r, c)) in tasks.into_iter().enumerate() {
            std::fs::write(d.join(dir).join(format!("{id}.json")), task_json(i as u64 + 10, r, c, true)).unwrap();
        }
    }
    // A second test input for e3.
    let mut e3: Value = serde_json::from_str(&std::fs::read_to_string(d.join("evaluation/e3.json")).unwrap()).unwrap();
    let second = e3["test"][0].clone();
    let mut second_flipped = second.clone();
    second_flipped["input"] = second["output"].clone();
    second_flipped["output"] = second["input"].clone();
    e3["test"].as_array_mut().unwrap().push(second_flipped);
    std::fs::write(d.join("evaluation/e3.json"), e3.to_string()).unwrap();
}

const TRAIN: &[&str] = &[
    "train",
    "--preset",
    "arc10",
    "--set",
    "data.arc_path=[\"training\"]",
    "--set",
    "data.test_path=evaluation",
    "--set",
    "data.arc_canvas=4",
    "--set",
    "model.seq_len=16",
    "--set",
    "model.hidden_size=16",
    "--set",
    "model.num_heads=2",
    "--set",
    "model.halt_max_steps=2",
    "--set",
    "data.augmentations=3",
    "--set",
    "run.steps=8",
    "--set",
    "run.batch_size=8",
    "--set",
    "run.eval_every=0",
    "--set",
    "run.checkpoint_every=0",
];

fn stdout_json(out: &std::process::Output) -> Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "failed: {stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// Trains the tiny model in `d` (tasks written first).
fn trained(d: &Path) {
    write_tasks(d);
    let out = loopgrad(&[TRAIN, &["--out", "run"]].concat(), d);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "train failed: {stderr}");
    assert!(stderr.contains("2 training tasks + 4 evaluation tasks on a 4x4 canvas"), "{stderr}");
    assert!(stderr.contains("1 tasks skipped"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("held-out ARC score, votes over the versions: pass@2 "), "{stdout}");
    assert!(stdout.contains("of 5 test inputs), pass@1 "), "{stdout}");
}

const EVAL: &[&str] = &[
    "eval",
    "--task",
    "arc",
    "--checkpoint",
    "run/checkpoint.safetensors",
    "--data",
    "evaluation",
    "--pass-k",
    "1,2,8",
];

#[test]
fn train_then_evaluate_then_shard_with_gnu_parallel() {
    let d = tmp("shards");
    trained(&d);
    let ids: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(d.join("run/identifiers.json")).unwrap()).unwrap();
    // Identity + 3 augmentations of 6 tasks (the 5x5 one skipped), and <blank>.
    assert!(ids.len() > 6 && ids.len() <= 1 + 6 * 4, "{}", ids.len());
    let mut args = EVAL.to_vec();
    args.extend(["--json", "--predictions", "whole.json", "--votes", "whole-votes.json"]);
    let whole = stdout_json(&loopgrad(&args, &d));
    assert_eq!(whole["tasks_scored"], 4);
    assert_eq!(whole["test_inputs_scored"], 5);
    let submission: Value = serde_json::from_str(&std::fs::read_to_string(d.join("whole.json")).unwrap()).unwrap();
    assert_eq!(submission["e3"].as_array().unwrap().len(), 2);
    assert!(submission["e0"][0]["attempt_2"].is_array());
    // pass@8 with at most 4 versions: every candidate counts, so it is at least pass@2.
    assert!(whole["overall"]["pass@8"].as_f64() >= whole["overall"]["pass@2"].as_f64());
    // The score `train` printed and logged is this evaluation's: the same predictions (one batch), the same votes.
    let metrics = std::fs::read_to_string(d.join("run/metrics.jsonl")).unwrap();
    let last: Value = serde_json::from_str(metrics.lines().last().unwrap()).unwrap();
    let arc = &last["arc"];
    assert_eq!((arc["tasks"].as_u64(), arc["test_inputs"].as_u64()), (Some(4), Some(5)), "{last}");
    for k in [1, 2] {
        assert_eq!(arc[format!("pass_at_{k}")], whole["overall"][format!("pass@{k}")], "{last}");
        assert_eq!(arc[format!("solved_at_{k}")], whole["test_inputs_solved"][format!("pass@{k}")], "{last}");
    }

    if Command::new("parallel").arg("--version").output().is_err() {
        eprintln!("skipped: GNU parallel is not installed (Debian package `parallel`)");
        return;
    }
    let mut emit = EVAL.to_vec();
    emit.extend(["--emit-jobs", "jobs.txt", "--shards", "3"]);
    let out = loopgrad(&emit, &d);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let jobs = std::fs::read_to_string(d.join("jobs.txt")).unwrap();
    assert_eq!(jobs.lines().count(), 3);
    let ran = Command::new("parallel")
        .args(["--halt", "now,fail=1", "-j", "3"])
        .stdin(std::fs::File::open(d.join("jobs.txt")).unwrap())
        .current_dir(&d)
        .output()
        .unwrap();
    assert!(ran.status.success(), "parallel: {}", String::from_utf8_lossy(&ran.stderr));
    let mut collect = vec![
        "eval",
        "--task",
        "arc",
        "--data",
        "evaluation",
        "--pass-k",
        "1,2,8",
        "--json",
        "--predictions",
        "merged.json",
    ];
    let votes: Vec<String> = (0..3).map(|i| format!("jobs.txt.votes-{i}-of-3.json")).collect();
    for v in &votes {
        collect.extend(["--collect", v.as_str()]);
    }
    let merged = stdout_json(&loopgrad(&collect, &d));
    assert_eq!(merged["overall"], whole["overall"]);
    assert_eq!(merged["per_task"], whole["per_task"]);
    assert_eq!(
        std::fs::read_to_string(d.join("merged.json")).unwrap(),
        std::fs::read_to_string(d.join("whole.json")).unwrap()
    );
}

#[test]
fn bad_arc_input_is_one_clean_error_naming_it() {
    let d = tmp("bad");
    trained(&d);
    let eval = |data: &str, extra: &[&str]| {
        let mut args = vec!["eval", "--task", "arc", "--checkpoint", "run/checkpoint.safetensors", "--data", data];
        args.extend_from_slice(extra);
        loopgrad(&args, &d)
    };
    std::fs::create_dir_all(d.join("bad")).unwrap();
    let pair = r#"{"input":[[1]],"output":[[1]]}"#;
    for (file, body, needles) in [
        (
            "ragged.json",
            format!(r#"{{"train":[{{"input":[[1,2],[3]],"output":[[1]]}}],"test":[{pair}]}}"#),
            vec!["ragged.json", "task ragged", "ragged"],
        ),
        (
            "colour.json",
            format!(r#"{{"train":[{{"input":[[10]],"output":[[1]]}}],"test":[{pair}]}}"#),
            vec!["colour.json", "is 10"],
        ),
        ("malformed.json", "{\"train\": [".to_string(), vec!["malformed.json", "invalid JSON"]),
        (
            "huge.json",
            format!(r#"{{"train":[{{"input":[{}],"output":[[1]]}}],"test":[{pair}]}}"#, vec!["[0]"; 31].join(",")),
            vec!["huge.json", "31 rows"],
        ),
    ] {
        let path = d.join("bad").join(file);
        std::fs::write(&path, body).unwrap();
        assert_clean_error(&eval(path.to_str().unwrap(), &[]), &needles);
        std::fs::remove_file(&path).unwrap();
    }
    // A task the canvas cannot hold, or one the model never trained on: nothing to evaluate, said so by name.
    std::fs::write(d.join("bad/wide.json"), task_json(1, 2, 6, true)).unwrap();
    assert_clean_error(
        &eval("bad/wide.json", &[]),
        &["none of the 1 tasks", "wide: a grid is larger than the 4x4 canvas"],
    );
    std::fs::copy(d.join("evaluation/e0.json"), d.join("bad/stranger.json")).unwrap();
    assert_clean_error(&eval("bad/stranger.json", &[]), &["stranger: no puzzle identifier names it"]);
    // Left out, but the others are evaluated; --verbose names it.
    std::fs::copy(d.join("bad/wide.json"), d.join("evaluation/wide.json")).unwrap();
    let out = eval("evaluation", &["--verbose"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 tasks left out:") && stdout.contains("wide: a grid is larger"),
        "{stdout}"
    );
    // A Kaggle file without solutions: predicted and written, not scored, and said so.
    let mut challenges = serde_json::Map::new();
    for id in ["e0", "e1"] {
        let mut t: Value =
            serde_json::from_str(&std::fs::read_to_string(d.join(format!("evaluation/{id}.json"))).unwrap()).unwrap();
        t["test"][0].as_object_mut().unwrap().remove("output");
        challenges.insert(id.into(), t);
    }
    std::fs::write(d.join("bad/x_challenges.json"), Value::Object(challenges).to_string()).unwrap();
    let out = eval("bad/x_challenges.json", &["--predictions", "unscored.json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("2 tasks have no test outputs"), "{stdout}");
    let sub: Value = serde_json::from_str(&std::fs::read_to_string(d.join("unscored.json")).unwrap()).unwrap();
    assert!(sub["e0"][0]["attempt_1"].is_array() && sub["e1"][0]["attempt_2"].is_array());
    // Flags and side files.
    assert_clean_error(&eval("evaluation", &["--shard", "3/3"]), &["--shard \"3/3\""]);
    let tasks = std::fs::read_dir(d.join("evaluation")).unwrap().count().to_string();
    let more = (tasks.parse::<usize>().unwrap() + 1).to_string();
    assert_clean_error(
        &eval("evaluation", &["--emit-jobs", "jobs.txt", "--shards", &more]),
        &[&format!("--shards {more}: more than the {tasks} tasks")],
    );
    // Votes: the same file twice, and votes for tasks the data does not hold.
    let out = eval("evaluation", &["--votes", "votes.json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let collect = |data: &str, files: &[&str]| {
        let mut args = vec!["eval", "--task", "arc", "--data", data];
        files.iter().for_each(|f| args.extend(["--collect", *f]));
        loopgrad(&args, &d)
    };
    std::fs::copy(d.join("votes.json"), d.join("copy.json")).unwrap();
    for twice in [["votes.json", "votes.json"], ["votes.json", "copy.json"]] {
        assert_clean_error(&collect("evaluation", &twice), &[twice[1], "that votes.json also holds"]);
    }
    // The task no shard could evaluate (`wide`) is left out by name, as the unsharded evaluation leaves it out,
    // not scored 0%.
    let out = loopgrad(&["eval", "--task", "arc", "--data", "evaluation", "--collect", "votes.json", "--verbose"], &d);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("4 tasks scored"), "{stdout}");
    assert!(
        stdout.contains("1 tasks left out:") && stdout.contains("wide: no votes in the --collect files"),
        "{stdout}"
    );
    assert_clean_error(&collect("bad/x_challenges.json", &["votes.json"]), &["votes.json", "no such task in the data"]);
    assert_clean_error(&eval("evaluation", &["--pass-k", "0"]), &["--pass-k"]);
    assert_clean_error(&eval("evaluation", &["--batch-size", "0"]), &["--batch-size must be at least 1"]);
    assert_clean_error(&eval("evaluation", &["--identifiers", "absent.json"]), &["absent.json", "identifier table"]);
    std::fs::write(d.join("ids.json"), r#"["a", "b"]"#).unwrap();
    assert_clean_error(&eval("evaluation", &["--identifiers", "ids.json"]), &["ids.json", "identifier 0 must be"]);
    std::fs::write(d.join("ids.json"), r#"["<blank>", "e0", "e1|||t4"]"#).unwrap();
    assert_clean_error(
        &eval("evaluation", &["--identifiers", "ids.json"]),
        &["ids.json", "identifier 2 (\"e1|||t4\") is not a task's augmentation"],
    );
    std::fs::write(d.join("votes.json"), r#"[{"task":"e0","input":[[1,2],[3]],"candidates":[]}]"#).unwrap();
    assert_clean_error(
        &loopgrad(&["eval", "--task", "arc", "--data", "evaluation", "--collect", "votes.json"], &d),
        &["votes.json", "ballot 1 (task e0)"],
    );
    assert_clean_error(
        &loopgrad(
            &[
                "eval",
                "--task",
                "sudoku",
                "--checkpoint",
                "run/checkpoint.safetensors",
                "--data",
                "x.csv",
                "--votes",
                "v.json",
            ],
            &d,
        ),
        &["--votes is for --task arc"],
    );
    // Training: a canvas that fits none of the evaluation tasks, a canvas the model does not match.
    let mut small = TRAIN.to_vec();
    small.extend(["--set", "data.arc_canvas=1", "--set", "model.seq_len=1", "--out", "run-small"]);
    assert_clean_error(
        &loopgrad(&small, &d),
        &["none of the 5 evaluation tasks", "fits the 1x1 canvas (data.arc_canvas)"],
    );
    let mut mismatch = TRAIN.to_vec();
    mismatch.extend(["--set", "data.arc_canvas=5", "--out", "run-mismatch"]);
    assert_clean_error(&loopgrad(&mismatch, &d), &["model.seq_len 16 must be data.arc_canvas squared"]);
    let mut absent = TRAIN.to_vec();
    absent.extend(["--set", "data.test_path=absent-dir", "--out", "run-absent"]);
    assert_clean_error(&loopgrad(&absent, &d), &["absent-dir"]);
}
