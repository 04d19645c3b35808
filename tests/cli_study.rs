//! `loopgrad study` end to end with the smoke plan (4x4 Sudoku, 6 tiny runs): a local study writes the report; the
//! same plan emitted as one command per run, run one by one, then collected, writes the same report and plots; a
//! run retrained from its study.json reproduces its numbers; a study with a lost final line and a lost run resumes,
//! skipping the finished runs, and writes the same report again; another plan reuses its runs. Plus one-line errors
//! on bad input.

mod common;

use common::{assert_clean_error, loopgrad};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn tmp(name: &str) -> PathBuf {
    common::tmp("cli-study", name)
}

fn ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "failed: {stderr}\nstdout: {}", String::from_utf8_lossy(&out.stdout));
    stderr
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The report without what legitimately differs between two studies of the same plan: the command line, the
/// study's wall time, and the wall-time column (the last column of every table that has one).
fn comparable(report: &str) -> String {
    let mut strip = false;
    let mut out = Vec::new();
    for line in report.lines() {
        if line.starts_with("- command:") || line.starts_with("- study wall time:") {
            continue;
        }
        if line.contains("| wall time (s) |") {
            strip = true;
        }
        if !line.starts_with('|') {
            strip = false;
        }
        if strip {
            let (kept, _) = line.trim_end_matches('|').rsplit_once('|').expect("a table row");
            out.push(format!("{kept}|"));
        } else {
            out.push(line.to_string());
        }
    }
    out.join("\n")
}

/// The final evaluation line of a run and the results of its test-time evaluation.
fn numbers(run: &Path) -> (serde_json::Value, serde_json::Value) {
    let metrics = read(&run.join("metrics.jsonl"));
    let last: serde_json::Value = serde_json::from_str(metrics.lines().last().unwrap()).unwrap();
    assert_eq!(last["final"], true, "{}", run.display());
    let test_time: serde_json::Value = serde_json::from_str(&read(&run.join("test_time.json"))).unwrap();
    (last, test_time["results"].clone())
}

fn assert_same_plots(a: &Path, b: &Path) {
    let plots = ["depth", "flops", "eval-steps", "curve-flops", "curve-steps"];
    for name in plots.map(|p| format!("sudoku4-{p}.svg")) {
        assert_eq!(read(&a.join(&name)), read(&b.join(&name)), "{name} differs");
    }
}

#[test]
fn smoke_study_local_emitted_rerun_and_resumed_agree() {
    let d = tmp("smoke");
    // 1. A local study, two runs at a time.
    let stderr = ok(&loopgrad(&["study", "--plan", "smoke", "--jobs", "2", "--out", "local"], &d));
    assert!(stderr.contains("6 runs, 0 finished already, 6 to run"), "{stderr}");
    let report = read(&d.join("local/report.md"));
    let needles =
        ["## recursion:", "| recursion.4 |", "## test-time:", "## Answer", "T1n1 vs T2n2 at equal steps (30)"];
    // The learning curves: T1n1 trained at two step budgets is two rows, evaluated every 10 steps on 20 puzzles.
    let curves = ["| along-sudoku4.1 | T1n1, 30 steps | 30 |", "| along-sudoku4.3 | T2n2 | 30 |", "first 20 held-out"];
    for needle in needles.iter().chain(&curves) {
        assert!(report.contains(needle), "{needle:?} not in the report:\n{report}");
    }
    assert!(report.contains("- command: `loopgrad study --plan smoke --jobs 2 --out local`"), "{report}");
    assert!(report.contains("6 of 6 finished"), "{report}");
    assert!(report.contains("- study wall time: ") && report.contains("for 6 runs with --jobs 2, in 1 invocation"));

    // 2. The same plan emitted as one command per run, run one by one, then collected.
    let out = loopgrad(&["study", "--plan", "smoke", "--out", "emitted", "--emit-jobs", "jobs.txt"], &d);
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("sbatch --array=1-6"));
    let jobs = read(&d.join("jobs.txt"));
    assert_eq!(jobs.lines().count(), 6, "{jobs}");
    for line in jobs.lines() {
        assert!(line.contains(" study --run-cell emitted/runs/"), "{line}");
        ok(&Command::new("bash").arg("-c").arg(line).current_dir(&d).output().unwrap());
    }
    ok(&loopgrad(&["study", "--collect", "emitted"], &d));
    let collected = read(&d.join("emitted/report.md"));
    assert!(collected.contains("- command: `loopgrad study --collect emitted`"), "{collected}");
    assert_eq!(comparable(&collected), comparable(&report));
    assert_same_plots(&d.join("local/report"), &d.join("emitted/report"));
    // Every smoke net has the same parameters, so no plot against them.
    assert!(!d.join("local/report/sudoku4-params.svg").exists());
    // The plain-language answer: a number read off the row it cites passes; one that is not stops the report.
    let row1 = collected.lines().find(|l| l.starts_with("| recursion.1 |")).expect("row recursion.1");
    let exact = row1.split('|').nth(10).unwrap().split_whitespace().next().unwrap().to_string();
    std::fs::write(d.join("answer.md"), format!("T1n1 reached {exact}% (recursion.1).\n")).unwrap();
    ok(&loopgrad(&["study", "--collect", "emitted", "--report", "answered.md", "--answer", "answer.md"], &d));
    let answered = read(&d.join("answered.md"));
    assert!(answered.contains(&format!("## In plain language\n\nT1n1 reached {exact}% (recursion.1).")), "{answered}");
    std::fs::write(d.join("wrong.md"), "T1n1 reached 123.4% (recursion.1).\n").unwrap();
    let out = loopgrad(&["study", "--collect", "emitted", "--report", "wrong-report.md", "--answer", "wrong.md"], &d);
    assert_clean_error(&out, &["wrong.md", "not read off a cited row"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 1: 123.4 is not in row recursion.1"));
    assert!(!d.join("wrong-report.md").exists() && !d.join("wrong-report").exists());

    // 3. A run retrained from its study.json alone gives the same numbers.
    let original = d.join("local/runs/T2n2-30st-s1");
    std::fs::create_dir_all(d.join("again")).unwrap();
    std::fs::copy(original.join("study.json"), d.join("again/study.json")).unwrap();
    let out = loopgrad(&["study", "--run-cell", "again"], &d);
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("T2n2-30st-s1: trained"));
    assert_eq!(numbers(&d.join("again")), numbers(&original));

    // 4. A killed study: one run lost its final line (it has its checkpoint), another its whole directory.
    let metrics = original.join("metrics.jsonl");
    let text = read(&metrics);
    let cut: Vec<&str> = text.lines().collect();
    std::fs::write(&metrics, cut[..cut.len() - 1].join("\n") + "\n").unwrap();
    std::fs::remove_dir_all(d.join("local/runs/T1n1-60st-s0")).unwrap();
    let stderr = ok(&loopgrad(&["study", "--plan", "smoke", "--jobs", "2", "--out", "local"], &d));
    assert!(stderr.contains("6 runs, 4 finished already, 2 to run"), "{stderr}");
    assert!(stderr.contains("T2n2-30st-s1: resumed"), "{stderr}");
    assert_eq!(comparable(&read(&d.join("local/report.md"))), comparable(&report));
    assert_eq!(numbers(&original), numbers(&d.join("again")));
    // Nothing left to do: a third invocation only rewrites the report.
    let stderr = ok(&loopgrad(&["study", "--plan", "smoke", "--out", "local"], &d));
    assert!(stderr.contains("6 finished already, 0 to run"), "{stderr}");

    // 5. Another plan with the same conditions reuses these runs once they are copied into its directory.
    let smoke = read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/smoke.toml"));
    assert!(smoke.contains("name = \"smoke\"\n"));
    std::fs::write(d.join("shared.toml"), smoke.replacen("name = \"smoke\"\n", "name = \"shared\"\n", 1)).unwrap();
    for run in std::fs::read_dir(d.join("local/runs")).unwrap().map(|e| e.unwrap().path()) {
        let to = d.join("shared/runs").join(run.file_name().unwrap());
        std::fs::create_dir_all(&to).unwrap();
        for file in ["study.json", "config.toml", "metrics.jsonl", "test_time.json"] {
            std::fs::copy(run.join(file), to.join(file)).unwrap();
        }
    }
    let stderr = ok(&loopgrad(&["study", "--plan-file", "shared.toml", "--out", "shared"], &d));
    assert!(stderr.contains("6 finished already, 0 to run"), "{stderr}");
    assert!(read(&d.join("shared/runs/T1n1-30st-s0/study.json")).contains("\"plan\": \"smoke\""));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn bad_plans_and_directories_are_one_line_errors() {
    let d = tmp("errors");
    assert_clean_error(&loopgrad(&["study"], &d), &["--plan", "smoke"]);
    assert_clean_error(
        &loopgrad(&["study", "--plan", "nope"], &d),
        &[
            "unknown plan \"nope\"",
            "default, generalisation, generalisation-direct-lr, generalisation-hierarchy-lr, generalisation-hierarchy-plateau, generalisation-lr, generalisation-maze-lr, generalisation-params, generalisation-params-lr, generalisation-plateau, generalisation-size, quick, smoke",
        ],
    );
    assert_clean_error(&loopgrad(&["study", "--plan-file", "absent.toml"], &d), &["absent.toml"]);
    std::fs::write(d.join("bad.toml"), "name = \"x\"\nseeds = 0\n").unwrap();
    assert_clean_error(&loopgrad(&["study", "--plan-file", "bad.toml"], &d), &["bad.toml", "invalid plan"]);
    assert_clean_error(&loopgrad(&["study", "--collect", "nowhere"], &d), &["nowhere", "plan.toml"]);
    assert_clean_error(&loopgrad(&["study", "--run-cell", "nowhere"], &d), &["nowhere", "study.json"]);
    // A study directory keeps its plan: other seeds are another study.
    ok(&loopgrad(&["study", "--plan", "smoke", "--out", "s", "--emit-jobs", "jobs.txt"], &d));
    assert_clean_error(
        &loopgrad(&["study", "--plan", "smoke", "--seeds", "3", "--out", "s", "--emit-jobs", "jobs.txt"], &d),
        &["another plan"],
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// The committed quick plan, collected from its small files: nets of different sizes get a plot of held-out accuracy
/// against parameters, the 12-layer net at its 959,618 (log axis), linked from the report.
#[test]
fn a_report_plots_accuracy_against_parameters_where_the_nets_differ_in_them() {
    let d = tmp("params-plot");
    let quick = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/results/quick");
    ok(&loopgrad(&["study", "--collect", quick.to_str().unwrap(), "--report", "report.md"], &d));
    let svg = read(&d.join("report/sudoku6-params.svg"));
    assert!(svg.contains("vs parameters") && svg.contains("stack12") && svg.contains("T2n2"), "{svg}");
    assert!(svg.contains("1.0e6"), "a log axis reaching the 12-layer net's 9.6e5");
    assert!(read(&d.join("report.md")).contains("report/sudoku6-params.svg"));
}

/// A corrupted run file stops `--collect` with the file named, and no report is written: a truncated
/// `test_time.json` would otherwise count its run as not finished without a word.
#[test]
fn a_corrupted_run_file_stops_the_report_and_is_named() {
    let d = tmp("audit");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/results/generalisation-plateau");
    let copy = d.join("plateau");
    for entry in std::fs::read_dir(source.join("runs")).unwrap() {
        let run = entry.unwrap().path();
        let to = copy.join("runs").join(run.file_name().unwrap());
        std::fs::create_dir_all(&to).unwrap();
        for f in std::fs::read_dir(&run).unwrap() {
            let f = f.unwrap().path();
            std::fs::copy(&f, to.join(f.file_name().unwrap())).unwrap();
        }
    }
    std::fs::copy(source.join("plan.toml"), copy.join("plan.toml")).unwrap();
    ok(&loopgrad(&["study", "--collect", "plateau", "--report", "clean.md"], &d));
    let victim = std::fs::read_dir(copy.join("runs")).unwrap().next().unwrap().unwrap().path().join("test_time.json");
    let text = read(&victim);
    std::fs::write(&victim, &text[..text.len() / 2]).unwrap();
    let out = loopgrad(&["study", "--collect", "plateau", "--report", "report.md"], &d);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("error: plateau: 1 run file(s) cannot be what a run wrote"), "{stderr}");
    assert!(
        stderr.contains(&format!("{}: not a test-time file", victim.strip_prefix(&d).unwrap().display())),
        "{stderr}"
    );
    assert!(!d.join("report.md").exists());
    let _ = std::fs::remove_dir_all(&d);
}
