//! `loopgrad data` end to end, through the real binary: generation writes valid files, `inspect` accepts valid
//! inputs (exit 0) and rejects every malformed fixture in `tests/fixtures/puzzles/` with one line naming the file
//! and the row or task (non-zero exit, no panic).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/puzzles")
}

fn loopgrad(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loopgrad")).args(args).output().expect("the loopgrad binary runs")
}

fn inspect(task: &str, path: &Path) -> Output {
    loopgrad(&["data", "inspect", "--task", task, path.to_str().unwrap()])
}

/// Assert a clean failure: non-zero exit, exactly one line on stderr, naming `file` and containing `place` and
/// `problem`, and no panic.
fn assert_rejected(task: &str, fixture: &str, file: &str, place: &str, problem: &str) {
    let out = inspect(task, &fixtures().join(fixture));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{fixture}: accepted");
    assert_eq!(out.status.code(), Some(1), "{fixture}: exit code, stderr: {stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"), "{fixture}: panic: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{fixture}: not one line: {stderr}");
    let line = lines[0];
    assert!(line.starts_with("error: "), "{fixture}: {line}");
    for part in [file, place, problem] {
        assert!(line.contains(part), "{fixture}: `{line}` lacks `{part}`");
    }
}

#[test]
fn malformed_sudoku_files_are_rejected_with_the_row() {
    let cases = [
        ("sudoku_wrong_length.csv", "row 2 (line 3)", "question has 80 characters"),
        ("sudoku_bad_char.csv", "row 3 (line 4)", "bad character 'x'"),
        ("sudoku_contradicts_question.csv", "row 2 (line 3)", "where the question gives"),
        ("sudoku_breaks_rules.csv", "row 1 (line 2)", "appears twice in row 1"),
        ("sudoku_not_unique.csv", "row 1 (line 2)", "more than one solution"),
        ("sudoku_invalid_utf8.csv", "line 2", "invalid UTF-8"),
        ("sudoku_bad_header.csv", "line 1", "expected the header"),
        ("sudoku_empty.csv", "sudoku_empty.csv", "file is empty"),
    ];
    for (fixture, place, problem) in cases {
        assert_rejected("sudoku", fixture, fixture, place, problem);
    }
}

#[test]
fn malformed_maze_files_are_rejected_with_the_row() {
    let cases = [
        ("maze_wrong_length.csv", "row 2 (line 3)", "question has 101 characters, expected 100"),
        ("maze_bad_char.csv", "row 3 (line 4)", "bad character 'X'"),
        ("maze_not_a_path.csv", "row 1 (line 2)", "not one shortest path"),
    ];
    for (fixture, place, problem) in cases {
        assert_rejected("maze", fixture, fixture, place, problem);
    }
    assert_rejected("maze", "sudoku_empty.csv", "sudoku_empty.csv", "sudoku_empty.csv", "file is empty");
    assert_rejected("maze", "sudoku_valid.csv", "sudoku_valid.csv", "row 1 (line 2)", "bad character '2'");
}

#[test]
fn malformed_arc_inputs_are_rejected_with_the_task() {
    let cases = [
        ("arc_ragged", "badtask1.json", "task badtask1", "ragged"),
        ("arc_oversized", "badtask1.json", "task badtask1", "31 cells, expected 1..=30"),
        ("arc_colour_out_of_range", "badtask1.json", "task badtask1", "is 10, colours are integers 0..=9"),
        ("arc_missing_key", "badtask1.json", "task badtask1", "missing key \"output\""),
        ("arc_invalid_utf8", "badtask2.json", "task badtask2", "invalid UTF-8"),
        ("arc_empty", "badtask3.json", "task badtask3", "file is empty"),
        ("kaggle_mismatch_challenges.json", "kaggle_mismatch_solutions.json", "task cafe0001", "1 solutions for 2"),
    ];
    for (fixture, file, place, problem) in cases {
        assert_rejected("arc", fixture, file, place, problem);
    }
}

#[test]
fn valid_inputs_pass_and_show_a_grid() {
    for (task, fixture, expect) in [
        ("sudoku", "sudoku_valid.csv", "3 valid 3x3 Sudoku puzzles"),
        ("maze", "maze_valid.csv", "3 valid 10x10 mazes"),
        ("arc", "arc_valid", "2 valid ARC tasks"),
    ] {
        let out = inspect(task, &fixtures().join(fixture));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{fixture}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains(expect), "{fixture}: {stdout}");
        assert!(stdout.lines().count() > 5, "{fixture}: no histogram or grid: {stdout}");
    }
    assert_rejected("sudoku", "no_such_file.csv", "no_such_file.csv", "cannot read", "");
}

#[test]
fn generated_files_pass_inspection() {
    let dir = std::env::temp_dir().join(format!("loopgrad-cli-data-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sudoku = dir.join("s.csv");
    let out = loopgrad(&[
        "data",
        "sudoku",
        "--box",
        "2x3",
        "--count",
        "40",
        "--out",
        sudoku.to_str().unwrap(),
        "--seed",
        "3",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let check = inspect("sudoku", &sudoku);
    assert!(String::from_utf8_lossy(&check.stdout).contains("40 valid 2x3 Sudoku puzzles"));
    // Other box shapes read back without being told (they used to fail inspection with a wrong claim).
    for shape in ["3x2", "2x4"] {
        let other = dir.join(format!("{shape}.csv"));
        let args = ["data", "sudoku", "--box", shape, "--count", "3", "--out", other.to_str().unwrap()];
        assert!(loopgrad(&args).status.success());
        let check = inspect("sudoku", &other);
        assert!(String::from_utf8_lossy(&check.stdout).contains(&format!("3 valid {shape} Sudoku puzzles")), "{shape}");
    }
    let hard = dir.join("h.csv");
    let out = loopgrad(&["data", "sudoku", "--count", "2", "--min-rating", "1", "--out", hard.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(inspect("sudoku", &hard).status.success());
    let maze = dir.join("m.csv");
    let args = ["data", "maze", "--size", "12", "--min-route", "24", "--count", "5", "--out", maze.to_str().unwrap()];
    assert!(loopgrad(&args).status.success());
    let check = inspect("maze", &maze);
    assert!(String::from_utf8_lossy(&check.stdout).contains("5 valid 12x12 mazes"));
    // Bad arguments fail cleanly too.
    let bad = loopgrad(&["data", "sudoku", "--box", "4x4", "--count", "1", "--out", sudoku.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("box shape `4x4`"));
    let bad = loopgrad(&["data", "sudoku", "--box", "1x9", "--count", "1", "--out", sudoku.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--box 1x9: a box needs 2 rows and 2 columns"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The thread rule through the binary: `LOOPGRAD_THREADS` sets `loopgrad data`'s threads (as its report says),
/// the files do not depend on it, and a value that is no thread count is a one-line error naming the variable.
#[test]
fn loopgrad_threads_sets_the_count_but_not_the_file() {
    let dir = std::env::temp_dir().join(format!("loopgrad-cli-data-threads-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let generate = |threads: &str, kind: &str| {
        let out_file = dir.join(format!("{kind}-{threads}.csv"));
        let out = out_file.to_str().unwrap();
        let args: Vec<&str> = match kind {
            "sudoku" => vec!["data", "sudoku", "--box", "2x3", "--count", "300", "--seed", "5", "--out", out],
            _ => {
                vec!["data", "maze", "--size", "10", "--min-route", "14", "--count", "40", "--seed", "5", "--out", out]
            }
        };
        let run = Command::new(env!("CARGO_BIN_EXE_loopgrad")).args(&args).env("LOOPGRAD_THREADS", threads).output();
        let run = run.expect("the loopgrad binary runs");
        (run, out_file)
    };
    for kind in ["sudoku", "maze"] {
        let (one, one_file) = generate("1", kind);
        let (two, two_file) = generate("2", kind);
        for (run, n) in [(&one, 1), (&two, 2)] {
            let stdout = String::from_utf8_lossy(&run.stdout);
            assert!(run.status.success(), "{kind}: {}", String::from_utf8_lossy(&run.stderr));
            assert!(stdout.contains(&format!(" on {n} threads)")), "{kind}, LOOPGRAD_THREADS={n}: {stdout}");
        }
        assert_eq!(std::fs::read(one_file).unwrap(), std::fs::read(two_file).unwrap(), "{kind}: 1 and 2 threads");
    }
    let (bad, _) = generate("many", "sudoku");
    assert_eq!(bad.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(stderr.trim(), "error: LOOPGRAD_THREADS=many is not a thread count in 0..=1024 (0 = every core)");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn arc_inspect_counts_a_known_test_output_in_the_largest_grid_side() {
    // Was: the histogram of the largest grid side per task left out test outputs, so a task whose test output
    // is its largest grid looked smaller than the model must fit.
    let dir = std::env::temp_dir().join(format!("loopgrad-arc-inspect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let big: Vec<Vec<u8>> = vec![vec![1; 12]; 12];
    let task = serde_json::json!({
        "train": [{"input": [[1, 2], [3, 4]], "output": [[4, 3], [2, 1]]}],
        "test": [{"input": [[5, 6], [7, 8]], "output": big}],
    });
    std::fs::write(dir.join("t.json"), task.to_string()).unwrap();
    let out = inspect("arc", &dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("largest grid side per task: min 12.00 / mean 12.00 / max 12.00"), "{stdout}");
    std::fs::remove_dir_all(&dir).unwrap();
}
