//! The report: a markdown file with the provenance (command, machines, runs), one table per question, the plots,
//! and an "Answer" section of mechanically derived sentences, each pointing to the table rows it reads. Nothing
//! is estimated or filled in: a cell without finished runs shows "—", and its sentences say so.
//!
//! Rows are numbered `QUESTION.N`. The wall-time column comes last in every comparison table, since it is the one
//! column that depends on where and how the runs were scheduled.

use super::collect::{CellResult, Results, Summary};
use super::machine::Machine;
use super::plan::{Budget, Question, QuestionKind};
use super::stats;
use loopgrad_models::model::group_thousands;
use std::fmt::Write;

/// What the report says about how it was made.
pub struct ReportContext {
    /// The exact command line that produced it.
    pub command: String,
    /// The machine that wrote it.
    pub machine: Machine,
    /// The plots, grouped by task.
    pub plots: Vec<TaskPlots>,
    /// How long the local runs took (`loopgrad study --jobs`), when the study directory recorded it.
    pub wall_time: Option<String>,
}

/// A task's plots: (alt text, path relative to the report) of each.
pub struct TaskPlots {
    pub task: String,
    pub plots: Vec<(String, String)>,
}

/// The whole report as markdown.
pub fn markdown(results: &Results, ctx: &ReportContext) -> String {
    let plan = &results.expansion.plan;
    let mut md = String::new();
    let _ = writeln!(md, "# Study results: plan `{}`\n", plan.name);
    if !plan.description.is_empty() {
        let _ = writeln!(md, "{}\n", plan.description);
    }
    let scored = results.scored_set();
    let _ = writeln!(
        md,
        "Written by `loopgrad study` (see `docs/study.md`). Tables and the Answer section are derived mechanically \
         from the run directories; every accuracy is the {scored} exact accuracy of the evaluation weights (EMA \
         when the run keeps one), as mean ± sample standard deviation over the seeds that finished (their count \
         in the seeds column). Token accuracy counts every cell, the givens included; \"changed cells\" counts \
         only the cells the answer changes (a Sudoku's blanks, a maze's route), shown when every finished seed \
         measured it.\n"
    );
    let (finished, failed, missing) = results.counts();
    let _ = writeln!(md, "- command: `{}`", ctx.command);
    let _ = writeln!(md, "- report written on: {}", ctx.machine.describe());
    for (m, n) in &results.machines {
        let _ = writeln!(md, "- runs evaluated on: {} ({n} run{})", m.describe(), if *n == 1 { "" } else { "s" });
    }
    if let Some(t) = &ctx.wall_time {
        let _ = writeln!(md, "- study wall time: {t}");
    }
    let threads = results.expansion.configs.first().map(|c| c.run.threads).unwrap_or(0);
    let _ = writeln!(
        md,
        "- runs: {finished} of {} finished, {failed} failed, {missing} not finished; seeds 0..{}; {threads} thread(s) \
         per run; test-time evaluation at {:?} supervision steps on {}\n",
        results.runs.len(),
        plan.seeds - 1,
        plan.eval_steps,
        test_time_set(plan.test_time_examples, scored)
    );
    tasks_table(&mut md, results);
    for q in &plan.questions {
        match q.kind {
            QuestionKind::Compare => compare_table(&mut md, results, q),
            QuestionKind::TestTime => test_time_table(&mut md, results, q),
        }
    }
    if !ctx.plots.is_empty() {
        let _ = writeln!(md, "## Plots\n");
        for TaskPlots { task, plots } in &ctx.plots {
            let _ = writeln!(md, "### {task}\n");
            for (alt, path) in plots {
                let _ = writeln!(md, "![{alt}]({path})\n");
            }
        }
    }
    super::curves::section(&mut md, results);
    let _ = writeln!(
        md,
        "## Answer\n\nMechanical: one sentence per comparison, differences in percentage points of {} exact \
         accuracy (and token accuracy) between the means of the named rows, each with the two-sided p-value of \
         Welch's t-test over the seeds (`study::stats`). \"no detectable difference\" marks p >= 0.05: not \
         \"the same\", only not told apart by these seeds. Where the report compares conditions more than once, \
         each exact-accuracy p-value is also given Holm-adjusted over all of them (one family: the comparisons \
         between conditions, a test made twice on the same runs counted once), which keeps the chance of any \
         false \"detected\" among those exact-accuracy comparisons at 5%; \"not detectable once corrected\" marks \
         an unadjusted p below 0.05 whose adjusted p is not. The token-accuracy and test-time p-values are per \
         comparison.\n",
        scored
    );
    let family = Holm::of(results);
    for q in &plan.questions {
        let _ = writeln!(md, "### {}: {}\n", q.id, q.title);
        let sentences = match q.kind {
            QuestionKind::Compare => compare_answers(results, q, &family),
            QuestionKind::TestTime => test_time_answers(results, q),
        };
        for s in sentences {
            let _ = writeln!(md, "- {s}");
        }
        md.push('\n');
    }
    md
}

fn tasks_table(md: &mut String, results: &Results) {
    let plan = &results.expansion.plan;
    let _ = writeln!(
        md,
        "## Tasks\n\n| task | what | preset | overrides | steps budget | FLOP budget |\n|---|---|---|---|---|---|"
    );
    for t in &plan.tasks {
        let flops = match (results.expansion.flop_budgets.get(&t.name), &t.flops_of) {
            (Some(f), Some(of)) => format!("{} ({of} for {} steps)", sci(*f), t.steps),
            (Some(f), None) => sci(*f),
            (None, _) => "—".to_string(),
        };
        let sets = if t.set.is_empty() {
            "—".to_string()
        } else {
            t.set.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(" ")
        };
        let _ = writeln!(md, "| {} | {} | `{}` | {sets} | {} | {flops} |", t.name, t.title, t.preset, t.steps);
    }
    md.push('\n');
}

/// Row ids of a comparison question, in table order: budgets outer, conditions inner.
fn compare_rows(q: &Question) -> Vec<(String, &str, Budget)> {
    let mut rows = Vec::new();
    for &b in &q.budgets {
        for c in &q.conditions {
            rows.push((format!("{}.{}", q.id, rows.len() + 1), c.as_str(), b));
        }
    }
    rows
}

fn compare_table(md: &mut String, results: &Results, q: &Question) {
    let _ = writeln!(md, "## {}: {}\n", q.id, q.title);
    if !q.question.is_empty() {
        let _ = writeln!(md, "{}\n", q.question);
    }
    let _ = writeln!(
        md,
        "| row | condition | budget | steps | params | eff. depth | N_sup | train FLOPs | examples trained | exact acc. (%) \
         | 95% CI (%) | token acc. (%) | changed cells (%) | seeds | train exact (%) | gap (points) | wall time (s) |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for (row, condition, budget) in compare_rows(q) {
        let r = results.cell(condition, budget);
        let c = &r.cell;
        let _ = writeln!(
            md,
            "| {row} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            label(results, condition),
            budget_name(budget),
            group_thousands(c.steps as usize),
            group_thousands(c.params),
            c.effective_depth,
            c.n_sup,
            sci(c.train_flops()),
            r.examples_trained.map(|s| group_thousands(s.mean.round() as usize)).unwrap_or_else(|| "—".into()),
            percent(r.exact),
            interval(r.exact),
            percent(r.token),
            percent(r.changed),
            seeds(&r),
            percent(r.train_exact),
            points(r.gap),
            r.train_seconds.map(|s| format!("{:.0}", s.mean)).unwrap_or_else(|| "—".into()),
        );
    }
    md.push('\n');
}

/// Which `scored` ("held-out" or "validation") puzzles the test-time evaluation scores. When they are fewer than
/// all, its figures differ from the other tables' (which score every one) even at the same step count.
fn test_time_set(examples: usize, scored: &str) -> String {
    match examples {
        0 => format!("every {scored} puzzle"),
        n => format!("the first {n} {scored} puzzles of each run (the other tables score all of them)"),
    }
}

fn test_time_table(md: &mut String, results: &Results, q: &Question) {
    let steps = &results.expansion.plan.eval_steps;
    let _ = writeln!(md, "## {}: {}\n", q.id, q.title);
    if !q.question.is_empty() {
        let _ = writeln!(md, "{}\n", q.question);
    }
    let _ = writeln!(
        md,
        "Exact accuracy (%) after each number of supervision steps at evaluation, on {}; models trained at equal \
         steps.\n",
        test_time_set(results.expansion.plan.test_time_examples, results.scored_set())
    );
    let head: Vec<String> = steps.iter().map(|s| format!("@{s}")).collect();
    let _ = writeln!(md, "| row | condition | N_sup | {} | seeds |", head.join(" | "));
    let _ = writeln!(md, "|---|---|---|{}---|", "---|".repeat(steps.len()));
    for (i, condition) in q.conditions.iter().enumerate() {
        let r = results.cell(condition, Budget::Steps);
        let cols: Vec<String> = steps.iter().map(|s| percent(r.test_time.get(s).copied())).collect();
        let _ = writeln!(
            md,
            "| {}.{} | {} | {} | {} | {} |",
            q.id,
            i + 1,
            label(results, condition),
            r.cell.n_sup,
            cols.join(" | "),
            seeds(&r)
        );
    }
    md.push('\n');
}

/// The comparisons of a question, in answer order: (budget, condition, reference) for every budget and every
/// condition but the reference.
fn comparisons(q: &Question) -> Vec<(Budget, &str, &str)> {
    let reference = q.reference.as_deref().unwrap_or(&q.conditions[0]);
    let others = || q.conditions.iter().map(String::as_str).filter(move |c| *c != reference);
    q.budgets.iter().flat_map(|&b| others().map(move |c| (b, c, reference))).collect()
}

/// The runs of two compared cells.
type RunPair = (Vec<usize>, Vec<usize>);

/// Holm's adjustment of the exact-accuracy Welch p-values of every comparison question of a report, as one
/// family: (question id, budget, condition) -> the adjusted p. Empty when there are fewer than two tests.
struct Holm {
    adjusted: std::collections::HashMap<(String, Budget, String), f64>,
    family: usize,
}

impl Holm {
    /// A test that two questions (or two budgets of one condition that costs what the reference costs) make on
    /// the same runs counts once.
    fn of(results: &Results) -> Holm {
        // (the runs of the two cells, the test's p)
        let mut tests: Vec<(RunPair, f64)> = Vec::new();
        let mut keys = Vec::new();
        for q in results.expansion.plan.questions.iter().filter(|q| q.kind == QuestionKind::Compare) {
            for (budget, c, reference) in comparisons(q) {
                let (a, b) = (results.cell(c, budget), results.cell(reference, budget));
                if let Some(t) = a.exact.zip(b.exact).and_then(|(x, y)| welch(x, y)) {
                    let runs = (a.cell.runs.clone(), b.cell.runs.clone());
                    let index = tests.iter().position(|(r, _)| *r == runs).unwrap_or_else(|| {
                        tests.push((runs, t.p));
                        tests.len() - 1
                    });
                    keys.push(((q.id.clone(), budget, c.to_string()), index));
                }
            }
        }
        let family = tests.len();
        let ps: Vec<f64> = tests.iter().map(|(_, p)| *p).collect();
        let holm = stats::holm(&ps);
        let adjusted =
            if family < 2 { Default::default() } else { keys.into_iter().map(|(k, i)| (k, holm[i])).collect() };
        Holm { adjusted, family }
    }

    fn get(&self, q: &Question, budget: Budget, condition: &str) -> Option<(f64, usize)> {
        let p = self.adjusted.get(&(q.id.clone(), budget, condition.to_string()))?;
        Some((*p, self.family))
    }
}

fn compare_answers(results: &Results, q: &Question, family: &Holm) -> Vec<String> {
    let rows = compare_rows(q);
    let row_of = |c: &str, budget: Budget| {
        rows.iter().find(|(_, rc, b)| *rc == c && *b == budget).map(|r| r.0.clone()).expect("a row")
    };
    comparisons(q)
        .into_iter()
        .map(|(budget, c, reference)| {
            let (other, base) = (results.cell(c, budget), results.cell(reference, budget));
            let what = format!("{c} vs {reference} at {}", budget_phrase(results, &other, budget));
            let rows = format!("rows {} and {}", row_of(c, budget), row_of(reference, budget));
            compare_sentence(&what, &other, &base, &rows, family.get(q, budget, c))
        })
        .collect()
}

fn test_time_answers(results: &Results, q: &Question) -> Vec<String> {
    let mut out = Vec::new();
    for (i, condition) in q.conditions.iter().enumerate() {
        let r = results.cell(condition, Budget::Steps);
        let row = format!("row {}.{}", q.id, i + 1);
        let Some((&most, &at_most)) = r.test_time.iter().next_back() else {
            out.push(format!("{condition}: no finished runs yet ({row})."));
            continue;
        };
        // The fewest steps that reach the highest mean.
        let (best, best_acc) = r
            .test_time
            .iter()
            .fold(None, |best: Option<(usize, Summary)>, (&s, &m)| match best {
                Some((_, b)) if b.mean >= m.mean => best,
                _ => Some((s, m)),
            })
            .expect("non-empty");
        let best = format!("best at {best} steps ({:.1}%)", 100.0 * best_acc.mean);
        match r.test_time.get(&r.cell.n_sup) {
            Some(&trained) if most != r.cell.n_sup => {
                let what = format!("{condition} evaluated at {most} instead of its N_sup = {} steps", r.cell.n_sup);
                // One model scored twice: the runs pair the two figures, so the test is the paired one.
                let (at, base): (Vec<f64>, Vec<f64>) = r
                    .cell
                    .runs
                    .iter()
                    .filter_map(|&i| {
                        Some((*results.runs[i].test_time.get(&most)?, *results.runs[i].test_time.get(&r.cell.n_sup)?))
                    })
                    .unzip();
                let d = 100.0 * (at_most.mean - trained.mean);
                let test = match stats::paired(&at, &base) {
                    Some(t) if t.p >= 0.05 => format!(", paired p = {}, no detectable difference", p_value(t.p)),
                    Some(t) => format!(", paired p = {}", p_value(t.p)),
                    None => String::new(),
                };
                out.push(format!(
                    "{what}: exact {d:+.1} points ({:.1}% vs {:.1}%{test}), means over {} seeds; {row}; {best}.",
                    100.0 * at_most.mean,
                    100.0 * trained.mean,
                    at.len()
                ));
            }
            _ => out.push(format!("{condition}: {best}; {:.1}% at {most} steps ({row}).", 100.0 * at_most.mean)),
        }
    }
    out
}

/// The comparison sentence of two table rows: exact accuracy, then token accuracy (which still separates
/// conditions while exact accuracy is near 0 or 100%).
/// `holm` is the exact-accuracy p adjusted over the report's family of comparisons, and the family's size.
fn compare_sentence(what: &str, a: &CellResult, b: &CellResult, rows: &str, holm: Option<(f64, usize)>) -> String {
    let (Some(exact_a), Some(exact_b)) = (a.exact, b.exact) else {
        return format!("{what}: not available, a row has no finished runs ({rows}).");
    };
    let token = match (a.token, b.token) {
        (Some(ta), Some(tb)) => format!("; token {}", delta(ta, tb, None)),
        _ => String::new(),
    };
    format!(
        "{what}: exact {}{token}; means over {} and {} seeds; {rows}.",
        delta(exact_a, exact_b, holm),
        exact_a.n,
        exact_b.n
    )
}

/// "+x.x points (a% vs b%, Welch p = 0.012)", with "no detectable difference" for p >= 0.05 and no p-value when
/// a row has a single seed; with `holm` (the adjusted p and its family's size), "; Holm p = 0.036 over the
/// report's 3 comparisons", and "not detectable once corrected" when only the unadjusted p is below 0.05.
fn delta(a: Summary, b: Summary, holm: Option<(f64, usize)>) -> String {
    let d = 100.0 * (a.mean - b.mean);
    let qualifier = match welch(a, b) {
        None => String::new(),
        Some(t) if t.p >= 0.05 => format!(", Welch p = {}, no detectable difference", p_value(t.p)),
        Some(t) => format!(", Welch p = {}", p_value(t.p)),
    };
    let corrected = match holm {
        None => String::new(),
        Some((h, m)) => {
            let lost = welch(a, b).is_some_and(|t| t.p < 0.05) && h >= 0.05;
            let lost = if lost { ", not detectable once corrected" } else { "" };
            format!("; Holm p = {} over the report's {m} comparisons{lost}", p_value(h))
        }
    };
    format!("{d:+.1} points ({:.1}% vs {:.1}%{qualifier}{corrected})", 100.0 * a.mean, 100.0 * b.mean)
}

/// Welch's test of two rows' means from their summaries; None when either has a single seed.
fn welch(a: Summary, b: Summary) -> Option<stats::TTest> {
    let moments = |s: Summary| s.sd.map(|sd| (s.n, s.mean, sd * sd));
    moments(a).zip(moments(b)).and_then(|(x, y)| stats::welch_from_moments(x, y))
}

/// A p-value to two significant digits (two decimals from 0.1 up), "< 0.0001" below that.
fn p_value(p: f64) -> String {
    if p < 1e-4 {
        "< 0.0001".into()
    } else if p >= 0.1 {
        format!("{p:.2}")
    } else {
        format!("{p:.1e}").parse::<f64>().map(|v| format!("{v}")).unwrap_or_else(|_| format!("{p:.4}"))
    }
}

/// "[lo, hi]" in percent: the 95% Student t interval of the mean over seeds; "—" below 2 seeds.
fn interval(s: Option<Summary>) -> String {
    match s.and_then(|s| stats::t_interval_from_moments(s.n, s.mean, s.sd?, 0.95)) {
        Some(ci) => format!("[{:.1}, {:.1}]", 100.0 * ci.lo, 100.0 * ci.hi),
        None => "—".into(),
    }
}

fn label(results: &Results, condition: &str) -> String {
    let c = results.expansion.plan.condition(condition).expect("a planned condition");
    if c.label.is_empty() {
        c.name.clone()
    } else {
        format!("{} ({})", c.name, c.label)
    }
}

fn budget_name(b: Budget) -> &'static str {
    match b {
        Budget::Steps => "equal steps",
        Budget::Flops => "equal FLOPs",
    }
}

fn budget_phrase(results: &Results, cell: &CellResult, b: Budget) -> String {
    let task = &results.expansion.plan.condition(&cell.cell.condition).expect("planned").task;
    match b {
        Budget::Steps => format!("equal steps ({})", group_thousands(cell.cell.steps as usize)),
        Budget::Flops => format!("equal training FLOPs ({})", sci(results.expansion.flop_budgets[task])),
    }
}

fn percent(s: Option<Summary>) -> String {
    match s {
        None => "—".into(),
        Some(Summary { mean, sd: Some(sd), .. }) => format!("{:.1} ± {:.1}", 100.0 * mean, 100.0 * sd),
        Some(Summary { mean, sd: None, .. }) => format!("{:.1}", 100.0 * mean),
    }
}

/// A difference of fractions in percentage points, "+x.x ± s.s".
fn points(s: Option<Summary>) -> String {
    match s {
        None => "—".into(),
        Some(Summary { mean, sd: Some(sd), .. }) => format!("{:+.1} ± {:.1}", 100.0 * mean, 100.0 * sd),
        Some(Summary { mean, sd: None, .. }) => format!("{:+.1}", 100.0 * mean),
    }
}

fn seeds(r: &CellResult) -> String {
    let total = r.cell.runs.len();
    let failed = if r.failed > 0 { format!(", {} failed", r.failed) } else { String::new() };
    format!("{}/{total}{failed}", r.finished)
}

/// 1.23e12.
pub fn sci(x: f64) -> String {
    format!("{x:.2e}")
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
