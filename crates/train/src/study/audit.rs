//! What `--collect` refuses: run files that exist but cannot be what a run wrote. The readers of a running study
//! are lenient on purpose (a run being trained may have half a line at the end of `metrics.jsonl`, and a file
//! that does not parse counts as not there yet), so a corrupted or hand-edited file would otherwise turn a
//! finished run into "not finished" without a word, or put an accuracy of -500% into a report. The report is
//! written only once every file that is there reads as a run's own: each problem names the file, and the line.

use super::expand::Expansion;
use super::testtime::{TestTime, TEST_TIME_FILE};
use crate::run::record::Record;
use crate::rundir::{read_text, METRICS_FILE};
use std::path::Path;

/// Every problem with the run files under `runs_dir` that `expansion` plans, as "FILE[ line N]: what".
pub fn audit(expansion: &Expansion, runs_dir: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    for spec in &expansion.runs {
        let dir = runs_dir.join(&spec.name);
        metrics(&dir.join(METRICS_FILE), &mut problems);
        test_time(&dir.join(TEST_TIME_FILE), &mut problems);
    }
    problems
}

/// A file that is there (a broken link or a directory counts) but cannot be read as text.
fn text(path: &Path, problems: &mut Vec<String>) -> Option<String> {
    path.symlink_metadata().ok()?;
    read_text(path).map_err(|e| problems.push(format!("{e:#}"))).ok()
}

fn metrics(path: &Path, problems: &mut Vec<String>) {
    let Some(text) = text(path, problems) else { return };
    let lines: Vec<(usize, &str)> = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).collect();
    for (k, &(i, line)) in lines.iter().enumerate() {
        let at = format!("{} line {}", path.display(), i + 1);
        match serde_json::from_str::<Record>(line) {
            // The last line of a run being written may be cut short.
            Err(_) if k + 1 == lines.len() => {}
            Err(e) => problems.push(format!("{at}: not a metrics record ({e})")),
            Ok(Record::Eval(r)) => {
                // A periodic evaluation of no example is NaN (null), which the curves skip; the final one scores.
                for (name, v) in fractions(r.exact_accuracy, r.token_accuracy, r.changed_token_accuracy) {
                    if !(0.0..=1.0).contains(&v) && (r.last || !v.is_nan()) {
                        problems.push(format!("{at}: {name} {v} is not in [0, 1]"));
                    }
                }
            }
            Ok(_) => {}
        }
    }
}

fn test_time(path: &Path, problems: &mut Vec<String>) {
    let Some(text) = text(path, problems) else { return };
    let t: TestTime = match serde_json::from_str(&text) {
        Ok(t) => t,
        Err(e) => return problems.push(format!("{}: not a test-time file ({e})", path.display())),
    };
    let named = t.results.iter().map(|r| (format!("at {} steps", r.steps), r));
    for (what, r) in named.chain(t.train.iter().map(|r| ("on the training puzzles".to_string(), r))) {
        for (name, v) in fractions(r.exact_accuracy, r.token_accuracy, r.changed_token_accuracy) {
            if !(0.0..=1.0).contains(&v) {
                problems.push(format!("{}: {name} {what} is {v}, not in [0, 1]", path.display()));
            }
        }
    }
}

/// The accuracies of an evaluation, by field name (the changed cells' when measured): each must lie in [0, 1].
fn fractions(exact: f64, token: f64, changed: Option<f64>) -> impl Iterator<Item = (&'static str, f64)> {
    [("exact_accuracy", Some(exact)), ("token_accuracy", Some(token)), ("changed_token_accuracy", changed)]
        .into_iter()
        .filter_map(|(name, v)| Some((name, v?)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::study::Plan;

    /// The committed plateau probe reads clean; each corruption of a copy is named with its file and line.
    #[test]
    fn corrupt_run_files_are_named_and_clean_ones_pass() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/results/generalisation-plateau");
        let expansion = Expansion::new(&Plan::from_file(&root.join("plan.toml")).unwrap(), 1).unwrap();
        assert_eq!(audit(&expansion, &root.join("runs")), Vec::<String>::new());

        let tmp = std::env::temp_dir().join(format!("loopgrad-audit-{}", std::process::id()));
        let run = &expansion.runs[0].name;
        let copy = |name: &str| {
            let dir = tmp.join(name).join(run);
            std::fs::create_dir_all(&dir).unwrap();
            for f in [METRICS_FILE, TEST_TIME_FILE] {
                std::fs::copy(root.join("runs").join(run).join(f), dir.join(f)).unwrap();
            }
            dir
        };
        let edit = |dir: &Path, file: &str, f: &dyn Fn(&str) -> String| {
            let text = std::fs::read_to_string(dir.join(file)).unwrap();
            std::fs::write(dir.join(file), f(&text)).unwrap();
        };
        let problems_of = |name: &str| audit(&expansion, &tmp.join(name));
        // The first `"key": NUMBER` (spaces or not) with its number replaced.
        let set_first = |text: &str, key: &str, value: &str| {
            let at = text.find(&format!("\"{key}\":")).unwrap() + key.len() + 3;
            let start = at + text[at..].len() - text[at..].trim_start().len();
            let end = start + text[start..].find([',', '}', '\n']).unwrap();
            format!("{}{value}{}", &text[..start], &text[end..])
        };

        // A half-written last line is a run in progress, not a problem.
        let dir = copy("cut");
        edit(&dir, METRICS_FILE, &|t| format!("{t}{{\"kind\":\"tra"));
        assert_eq!(problems_of("cut"), Vec::<String>::new());
        // The same garbage on the first line is.
        let dir = copy("garbage");
        edit(&dir, METRICS_FILE, &|t| format!("{{\"kind\":\"tra\n{t}"));
        let p = problems_of("garbage");
        assert!(p.len() == 1 && p[0].contains("metrics.jsonl line 1: not a metrics record"), "{p:?}");
        // An impossible accuracy in the final evaluation, and in test_time.json.
        let dir = copy("range");
        edit(&dir, METRICS_FILE, &|t| {
            let last = t.lines().rfind(|l| l.contains("\"final\":true")).unwrap();
            t.replace(last, &set_first(last, "exact_accuracy", "-5"))
        });
        edit(&dir, TEST_TIME_FILE, &|t| set_first(t, "token_accuracy", "7"));
        let p = problems_of("range");
        assert!(p.len() == 2, "{p:?}");
        assert!(p[0].contains("metrics.jsonl line") && p[0].contains("exact_accuracy -5 is not in [0, 1]"), "{p:?}");
        assert!(p[1].contains("test_time.json: token_accuracy at") && p[1].contains("is 7, not in [0, 1]"), "{p:?}");
        // A truncated test_time.json, and a directory in place of metrics.jsonl.
        let dir = copy("truncated");
        edit(&dir, TEST_TIME_FILE, &|t| t[..t.len() / 2].to_string());
        std::fs::remove_file(dir.join(METRICS_FILE)).unwrap();
        std::fs::create_dir(dir.join(METRICS_FILE)).unwrap();
        let p = problems_of("truncated");
        assert!(p.len() == 2 && p[0].contains("metrics.jsonl") && p[1].contains("not a test-time file"), "{p:?}");
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
