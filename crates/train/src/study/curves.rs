//! Learning curves: held-out exact accuracy along training, read from the periodic evaluation records of each
//! run's `metrics.jsonl` (written every `run.eval_every` steps on the first `run.eval_examples` held-out puzzles),
//! as the mean over seeds at each evaluated step with its 95% t interval, against optimizer steps and training
//! FLOPs. The report gets a table per task ("accuracy along training"); the CLI draws the same points.
//!
//! A curve is a cell's runs (one condition at one step budget). Two cells of a condition at different step counts
//! are distinct runs and distinct curves: the learning-rate schedule (warmup fraction, decay) depends on the
//! run's length, so the longer run at the shorter budget's step is not the shorter run.

use super::collect::{Results, Summary};
use super::expand::Cell;
use super::plan::{Budget, QuestionKind};
use super::report::sci;
use super::stats::{self, Interval};
use crate::run::record::{read_records_lenient, Record};
use crate::rundir::METRICS_FILE;
use loopgrad_models::model::group_thousands;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::Path;

/// Columns of the "accuracy along training" tables: at most this many evaluated steps, evenly spaced.
const TABLE_COLUMNS: usize = 6;

/// One run's evaluations along training.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunCurve {
    /// Held-out exact accuracy (a fraction) at each evaluated step.
    pub exact: BTreeMap<u64, f64>,
    /// Puzzles the periodic evaluations scored (their `examples`); None without any.
    pub examples: Option<usize>,
    /// The final evaluation scored another number of puzzles (all held-out ones) than the periodic ones, so it is
    /// not a point of the curve.
    pub final_apart: bool,
}

/// Reads a run's curve from its `metrics.jsonl`, leniently: a missing file or a line cut short by a kill gives
/// fewer points, never an error. A resumed run redoes the steps after its last checkpoint, so a later record of a
/// step replaces an earlier one. The final evaluation is a point when it scored as many puzzles as the periodic
/// ones (the first N of the same held-out list, so the same puzzles).
pub fn read_curve(dir: &Path) -> RunCurve {
    let mut curve = RunCurve::default();
    let mut last = None;
    for record in read_records_lenient(&dir.join(METRICS_FILE)) {
        match record {
            Record::Eval(r) if r.last => last = Some(r),
            Record::Eval(r) if r.exact_accuracy.is_finite() => {
                curve.exact.insert(r.step, r.exact_accuracy);
                curve.examples = Some(r.examples);
            }
            _ => {}
        }
    }
    if let Some(r) = last.filter(|r| r.exact_accuracy.is_finite()) {
        if curve.examples == Some(r.examples) {
            curve.exact.insert(r.step, r.exact_accuracy);
        } else {
            curve.final_apart = curve.examples.is_some();
        }
    }
    curve
}

/// The mean curve of one cell's runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub condition: String,
    /// The condition, with its step budget when the task has the condition at two step counts.
    pub label: String,
    /// The runs' step budget.
    pub steps: u64,
    pub flops_per_step: f64,
    pub points: Vec<Point>,
}

/// Exact accuracy (fractions) over the seeds that have an evaluation at `step`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub step: u64,
    /// Training FLOPs up to `step`: the run's FLOPs per optimizer step times `step`.
    pub flops: f64,
    pub exact: Summary,
    /// The 95% Student t interval of the mean; None below 2 seeds.
    pub interval: Option<Interval>,
}

/// A task's curves, and what the report says about the runs that gave none or stopped early.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskCurves {
    pub task: String,
    pub series: Vec<Series>,
    /// Puzzles the periodic evaluations scored, over the task's runs (one value unless a condition changed it).
    pub examples: BTreeSet<usize>,
    /// Whether the held-out set is the validation split carved from the training puzzles.
    pub validation: bool,
    /// Some run's final evaluation scored more puzzles and is left off its curve.
    pub final_apart: bool,
    pub notes: Vec<String>,
}

/// Every task's curves, a series per distinct (condition, steps) of the plan's questions, in question order.
pub fn task_curves(results: &Results) -> Vec<TaskCurves> {
    let plan = &results.expansion.plan;
    let mut out = Vec::new();
    for task in &plan.tasks {
        let mut cells = Vec::new();
        let mut seen = BTreeSet::new();
        for q in &plan.questions {
            let budgets = if q.kind == QuestionKind::TestTime { vec![Budget::Steps] } else { q.budgets.clone() };
            for c in q.conditions.iter().filter(|c| plan.condition(c).is_some_and(|c| c.task == task.name)) {
                for &b in &budgets {
                    let cell = results.expansion.cell(c, b);
                    if seen.insert((c.clone(), cell.steps)) {
                        cells.push(cell.clone());
                    }
                }
            }
        }
        let mut curves = TaskCurves {
            task: task.name.clone(),
            series: Vec::new(),
            examples: BTreeSet::new(),
            validation: false,
            final_apart: false,
            notes: Vec::new(),
        };
        for cell in &cells {
            let two_budgets = cells.iter().filter(|c| c.condition == cell.condition).count() > 1;
            if let Some(series) = series_of(results, cell, two_budgets, &mut curves) {
                curves.series.push(series);
            }
        }
        if curves.series.is_empty() {
            // Every cell would say so: one line instead.
            let every = task_config(results, &task.name).map_or(0, |c| c.run.eval_every);
            curves.notes = vec![format!(
                "no run of this task has evaluated along training yet (`run.eval_every` = {every}; 0 evaluates only \
                 at the end)"
            )];
        }
        out.push(curves);
    }
    out
}

/// The mean curve of a cell's runs (None when no run has a point), noting in `task` the runs without
/// evaluations or not evaluated to the end of their budget.
fn series_of(results: &Results, cell: &Cell, two_budgets: bool, task: &mut TaskCurves) -> Option<Series> {
    let mut at: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    let (mut empty, mut short) = (Vec::new(), Vec::new());
    for &i in &cell.runs {
        let (spec, curve) = (&results.expansion.runs[i], &results.runs[i].curve);
        task.validation |= results.expansion.configs[i].data.validation_count > 0;
        task.final_apart |= curve.final_apart;
        task.examples.extend(curve.examples);
        for (&step, &exact) in &curve.exact {
            at.entry(step).or_default().push(exact);
        }
        match curve.exact.keys().next_back() {
            None => empty.push(spec.name.clone()),
            // A run whose final evaluation is off the curve ends it at its last periodic evaluation.
            Some(&s) if s < spec.steps && !curve.final_apart => {
                short.push(format!("{} (last evaluated at step {})", spec.name, group_thousands(s as usize)))
            }
            Some(_) => {}
        }
    }
    if !cell.runs.is_empty() && empty.len() == cell.runs.len() {
        task.notes.push(format!("{}: no run evaluated along training yet", cell.condition));
    } else if !empty.is_empty() {
        task.notes.push(format!("no evaluation along training yet: {}", empty.join(", ")));
    }
    if !short.is_empty() {
        task.notes.push(format!("not evaluated to the end of the budget: {}", short.join(", ")));
    }
    let points: Vec<Point> = at
        .iter()
        .filter_map(|(&step, xs)| {
            Some(Point {
                step,
                flops: cell.flops_per_step * step as f64,
                exact: Summary::of(xs)?,
                interval: stats::t_interval(xs, 0.95),
            })
        })
        .collect();
    if points.is_empty() {
        return None;
    }
    let label = if two_budgets {
        format!("{}, {} steps", cell.condition, group_thousands(cell.steps as usize))
    } else {
        cell.condition.clone()
    };
    let (condition, steps, flops_per_step) = (cell.condition.clone(), cell.steps, cell.flops_per_step);
    Some(Series { condition, label, steps, flops_per_step, points })
}

/// The resolved config of the task's first run.
fn task_config<'a>(results: &'a Results, task: &str) -> Option<&'a crate::TrainConfig> {
    results.expansion.runs.iter().position(|r| r.task == task).map(|i| &results.expansion.configs[i])
}

/// The table's evaluated steps: up to [`TABLE_COLUMNS`] evenly spaced over the steps every curve reached (up to
/// where the shortest one with two or more points ends), where the conditions are read side by side and where their
/// differences lie; up to half as many over the steps past that, for the longer curves; and each curve's last
/// evaluated step, so that a condition at two step budgets is read where its shorter curve ends on both of its
/// curves (runs evaluate at the same multiples of `run.eval_every`). The plots draw every step.
fn columns(series: &[Series]) -> Vec<u64> {
    let all: BTreeSet<u64> = series.iter().flat_map(|s| s.points.iter().map(|p| p.step)).collect();
    if all.len() <= TABLE_COLUMNS {
        return all.into_iter().collect();
    }
    let ends: Vec<u64> = series.iter().filter_map(|s| s.points.last()).map(|p| p.step).collect();
    // A one-point curve (a run shorter than two evaluation intervals) would leave nothing to share.
    let curves = series.iter().filter(|s| s.points.len() >= 2).filter_map(|s| s.points.last());
    let shared_end = curves.map(|p| p.step).min().unwrap_or(u64::MAX);
    let (shared, rest): (Vec<u64>, Vec<u64>) = all.into_iter().partition(|&s| s <= shared_end);
    let mut picked: BTreeSet<u64> = spread(&shared, TABLE_COLUMNS).chain(spread(&rest, TABLE_COLUMNS / 2)).collect();
    picked.extend(ends);
    picked.into_iter().collect()
}

/// Up to `k` of `steps`, evenly spaced, the first and last included.
fn spread(steps: &[u64], k: usize) -> impl Iterator<Item = u64> + '_ {
    let last = steps.len().saturating_sub(1) as f64;
    let k = k.min(steps.len());
    (0..k).map(move |i| steps[(i as f64 * last / (k.max(2) - 1) as f64).round() as usize])
}

/// The "Accuracy along training" section: what the points are, then per task a table with rows
/// `along-TASK.N`, one per curve, and the notes on runs without (full) curves.
pub fn section(md: &mut String, results: &Results) {
    let tasks = task_curves(results);
    let _ = writeln!(
        md,
        "## Accuracy along training\n\nExact accuracy (%) of the evaluation weights (EMA when the run keeps one) at \
         the evaluations every `run.eval_every` steps during training, each on the first `run.eval_examples` \
         held-out puzzles (the validation split when the task sets `data.validation_count`), as the mean over the \
         seeds evaluated at that step (their count in brackets); the plots draw every evaluated step with the 95% t \
         interval of the mean as a band. The trainer takes nothing from these evaluations: no early stopping, no \
         choice of checkpoint. FLOPs at a step are the run's training FLOPs per optimizer step times the step. A \
         condition trained at two step budgets has two curves: the learning-rate schedule depends on the run's \
         length, so the longer run at the shorter budget's step is not the shorter run.\n"
    );
    for t in &tasks {
        let _ = writeln!(md, "### {}\n", t.task);
        let set = if t.validation { "validation puzzles" } else { "held-out puzzles" };
        let counts: Vec<String> = t.examples.iter().map(|n| group_thousands(*n)).collect();
        if !counts.is_empty() {
            let apart = if t.final_apart {
                " The end-of-run evaluation, which scores every puzzle of that set, is in the tables above and not \
                 on the curves."
            } else {
                ""
            };
            let _ = writeln!(md, "Each point scores the first {} {set}.{apart}\n", counts.join(" or "));
        }
        let cols = columns(&t.series);
        if !cols.is_empty() {
            let head: Vec<String> = cols.iter().map(|s| format!("@{}", group_thousands(*s as usize))).collect();
            let _ = writeln!(md, "| row | curve | steps | FLOPs per step | {} |", head.join(" | "));
            let _ = writeln!(md, "|---|---|---|---|{}", "---|".repeat(cols.len()));
            for (i, s) in t.series.iter().enumerate() {
                let cells: Vec<String> = cols
                    .iter()
                    .map(|c| match s.points.iter().find(|p| p.step == *c) {
                        Some(p) => format!("{:.1} ({})", 100.0 * p.exact.mean, p.exact.n),
                        None => "—".into(),
                    })
                    .collect();
                let _ = writeln!(
                    md,
                    "| along-{}.{} | {} | {} | {} | {} |",
                    t.task,
                    i + 1,
                    s.label,
                    group_thousands(s.steps as usize),
                    sci(s.flops_per_step),
                    cells.join(" | ")
                );
            }
            md.push('\n');
        }
        for n in &t.notes {
            let _ = writeln!(md, "- {n}");
        }
        if !t.notes.is_empty() {
            md.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::answer;
    use super::super::collect::RunResult;
    use super::super::runner::RunStatus;
    use super::super::{Expansion, Plan};
    use super::*;

    fn eval(step: u64, last: bool, examples: usize, exact: &str) -> String {
        format!(
            r#"{{"kind":"eval","step":{step},"final":{last},"examples":{examples},"exact_accuracy":{exact},"token_accuracy":0.5,"loss":1.0,"eval_steps":8}}"#
        )
    }

    fn write_log(name: &str, lines: &[String], tail: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("loopgrad-curves-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(METRICS_FILE), format!("{}\n{tail}", lines.join("\n"))).unwrap();
        d
    }

    #[test]
    fn a_curve_reads_periodic_evaluations_leniently() {
        let train = r#"{"kind":"train","step":10,"loss":2.5,"lm_loss":2.0,"q_halt_loss":0.5,"lr":0.0001,"halted":3,"exact_accuracy":0.0,"token_accuracy":0.25,"halt_steps":4.0,"samples_per_s":100.0,"elapsed_s":1.5}"#;
        // Step 20 logged twice (resumed from the checkpoint at 10: the later record counts), a NaN score at 30
        // (written as null) skipped, the final evaluation on the same 50 puzzles a point, a line cut short ignored.
        let lines = [
            train.to_string(),
            eval(10, false, 50, "0.1"),
            eval(20, false, 50, "0.9"),
            eval(20, false, 50, "0.2"),
            eval(30, false, 50, "null"),
            eval(40, true, 50, "0.4"),
        ];
        let lenient = write_log("lenient", &lines, r#"{"kind":"eval","st"#);
        let c = read_curve(&lenient);
        assert_eq!(c.exact, [(10, 0.1), (20, 0.2), (40, 0.4)].into());
        assert_eq!((c.examples, c.final_apart), (Some(50), false));
        // A final evaluation of every held-out puzzle (500) is another set: not a point, and said so.
        let apart = write_log("apart", &[eval(10, false, 50, "0.1"), eval(40, true, 500, "0.4")], "");
        let c = read_curve(&apart);
        assert_eq!((c.exact, c.final_apart), ([(10, 0.1)].into(), true));
        // Only a final evaluation: no curve, and nothing left apart.
        let d = write_log("final-only", &[eval(40, true, 500, "0.4")], "");
        assert_eq!(read_curve(&d), RunCurve::default());
        assert_eq!(read_curve(&d.join("no such run")), RunCurve::default());
        for dir in [lenient, apart, d] {
            std::fs::remove_dir_all(dir).unwrap();
        }
    }

    /// The smoke plan (T1n1 at 30 steps and at T2n2's FLOPs, which are more steps; T2n2 at 30) with made-up
    /// curves: runs 0 and 3 (T1n1, 30 steps, seeds 0 and 1) stop at different steps; run 4 (T1n1 at its FLOP
    /// budget, seed 1) has no evaluation.
    fn fabricated() -> Results {
        let expansion = Expansion::new(&Plan::built_in("smoke").unwrap(), 1).unwrap();
        let curves: [&[(u64, f64)]; 6] = [
            &[(10, 0.1), (20, 0.3), (30, 0.5)],
            &[(10, 0.2), (40, 0.6)],
            &[(10, 0.0), (20, 0.2), (30, 0.4)],
            &[(10, 0.3), (20, 0.5)],
            &[],
            &[(10, 0.0), (20, 0.4), (30, 0.6)],
        ];
        assert_eq!(expansion.runs.len(), curves.len());
        let runs = curves
            .iter()
            .map(|c| RunResult {
                status: RunStatus::Finished,
                exact: None,
                token: None,
                changed: None,
                train_exact: None,
                train_seconds: None,
                examples_trained: None,
                test_time: Default::default(),
                machine: None,
                curve: RunCurve {
                    exact: c.iter().copied().collect(),
                    examples: (!c.is_empty()).then_some(50),
                    final_apart: false,
                },
            })
            .collect();
        Results { expansion, runs, machines: Default::default() }
    }

    #[test]
    fn points_are_means_over_the_seeds_evaluated_at_each_step() {
        let results = fabricated();
        let tasks = task_curves(&results);
        assert_eq!(tasks.len(), 1);
        let t = &tasks[0];
        let flop_steps = results.expansion.cell("T1n1", Budget::Flops).steps;
        assert!(flop_steps > 40, "T1n1's FLOP budget is more steps than T2n2's 30, and than its curve here");
        let labels: Vec<&str> = t.series.iter().map(|s| s.label.as_str()).collect();
        let long = format!("T1n1, {flop_steps} steps");
        assert_eq!(labels, ["T1n1, 30 steps", long.as_str(), "T2n2"]);
        let short = &t.series[0];
        let at = |s: &Series, step| *s.points.iter().find(|p| p.step == step).unwrap();
        // Step 10: both seeds (0.1 and 0.3), with the t interval of the two; step 30: seed 0 only, no interval.
        let p = at(short, 10);
        assert_eq!((p.exact.n, p.exact.mean), (2, 0.2));
        assert_eq!(p.interval, stats::t_interval(&[0.1, 0.3], 0.95));
        assert!((p.flops - 10.0 * short.flops_per_step).abs() < 1e-6 * p.flops);
        let p = at(short, 30);
        assert_eq!((p.exact.n, p.exact.mean, p.interval), (1, 0.5, None));
        assert!((at(&t.series[2], 20).exact.mean - 0.3).abs() < 1e-12);
        assert_eq!(t.examples, [50].into());
        let names = &results.expansion.runs;
        assert_eq!(
            t.notes,
            [
                format!("not evaluated to the end of the budget: {} (last evaluated at step 20)", names[3].name),
                format!("no evaluation along training yet: {}", names[4].name),
                format!("not evaluated to the end of the budget: {} (last evaluated at step 40)", names[1].name),
            ]
        );
    }

    #[test]
    fn the_table_reads_evenly_spaced_steps_and_notes_the_gaps() {
        let mut md = String::new();
        section(&mut md, &fabricated());
        let row = |id: &str| md.lines().find(|l| l.starts_with(&format!("| {id} |"))).unwrap().to_string();
        // Columns: the union of evaluated steps, 10, 20, 30, 40 (no more than six, so all of them).
        assert!(md.contains("| row | curve | steps | FLOPs per step | @10 | @20 | @30 | @40 |"), "{md}");
        assert!(row("along-sudoku4.1").ends_with("| 20.0 (2) | 40.0 (2) | 50.0 (1) | — |"), "{md}");
        assert!(row("along-sudoku4.2").ends_with("| 20.0 (1) | — | — | 60.0 (1) |"), "{md}");
        assert!(row("along-sudoku4.3").starts_with("| along-sudoku4.3 | T2n2 | 30 |"), "{md}");
        assert!(md.contains("Each point scores the first 50 held-out puzzles.\n"), "{md}");
        assert!(md.contains("- no evaluation along training yet: "), "{md}");
        // The rows are citable in a plain-language answer, like the comparison rows.
        assert_eq!(answer::check("T2n2 reached 30.0% at step 20 (along-sudoku4.3).", &md), Ok(()));
        assert!(answer::check("T2n2 reached 31.0% at step 20 (along-sudoku4.3).", &md).is_err());
        let many: Vec<Series> = vec![Series {
            condition: "c".into(),
            label: "c".into(),
            steps: 8000,
            flops_per_step: 1.0,
            points: (1..=16)
                .map(|k| Point {
                    step: 500 * k,
                    flops: 0.0,
                    exact: Summary { n: 1, mean: 0.5, sd: None },
                    interval: None,
                })
                .collect(),
        }];
        assert_eq!(columns(&many), [500, 2000, 3500, 5000, 6500, 8000]);
        // Beside a shorter curve (4,000 steps), six columns spread over the steps both reached and three over the
        // longer curve's remaining steps, its end included.
        let short = Series { steps: 4000, points: many[0].points[..8].to_vec(), ..many[0].clone() };
        assert_eq!(columns(&[many[0].clone(), short]), [500, 1000, 2000, 2500, 3500, 4000, 4500, 6500, 8000]);
        // A one-point curve (evaluated once, at 250) does not shrink the shared range to its one step.
        let mut point = Series { steps: 291, points: many[0].points[..1].to_vec(), ..many[0].clone() };
        point.points[0].step = 250;
        assert_eq!(columns(&[many[0].clone(), point]), [250, 1500, 3000, 5000, 6500, 8000]);
    }

    #[test]
    fn a_study_without_evaluations_along_training_says_so_in_one_line() {
        let mut results = fabricated();
        for r in &mut results.runs {
            r.curve = RunCurve::default();
        }
        let mut md = String::new();
        section(&mut md, &results);
        assert!(md.contains("### sudoku4\n\n- no run of this task has evaluated along training yet"), "{md}");
        assert!(!md.contains("| row |"), "{md}");
    }
}
