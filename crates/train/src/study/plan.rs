//! A study plan: the tasks (a training preset plus the data and budget overrides every run of the task shares),
//! the conditions (a name and `--set` overrides on the task), the questions (which conditions answer what, at which
//! budgets, against which reference), the seeds and the test-time evaluation steps.
//!
//! Plans are TOML (`plans/*.toml`, built into the binary by name, or any file). The format is documented with
//! examples in `docs/study.md`; every field is checked here, naming the plan file and the field on failure.

use crate::config::MAX_SUPERVISION_STEPS;
use crate::overrides::one_line;
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::Path;

/// The built-in plans, by name: the text of `plans/NAME.toml`.
const BUILT_IN: [(&str, &str); 13] = [
    ("default", include_str!("../../../../plans/default.toml")),
    ("generalisation", include_str!("../../../../plans/generalisation.toml")),
    ("generalisation-direct-lr", include_str!("../../../../plans/generalisation-direct-lr.toml")),
    ("generalisation-hierarchy-lr", include_str!("../../../../plans/generalisation-hierarchy-lr.toml")),
    ("generalisation-hierarchy-plateau", include_str!("../../../../plans/generalisation-hierarchy-plateau.toml")),
    ("generalisation-lr", include_str!("../../../../plans/generalisation-lr.toml")),
    ("generalisation-maze-lr", include_str!("../../../../plans/generalisation-maze-lr.toml")),
    ("generalisation-params", include_str!("../../../../plans/generalisation-params.toml")),
    ("generalisation-params-lr", include_str!("../../../../plans/generalisation-params-lr.toml")),
    ("generalisation-plateau", include_str!("../../../../plans/generalisation-plateau.toml")),
    ("generalisation-size", include_str!("../../../../plans/generalisation-size.toml")),
    ("quick", include_str!("../../../../plans/quick.toml")),
    ("smoke", include_str!("../../../../plans/smoke.toml")),
];

/// The most seeds per cell: expanding 10^8 seeds alone takes gigabytes.
pub const MAX_SEEDS: usize = 1000;

/// A whole plan. Seeds are `0..seeds` (each run's `run.seed`); the data seed stays that of the task, so every
/// seed of every condition trains on the same puzzles and is scored on the same held-out set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Seeds per cell.
    pub seeds: usize,
    /// `run.threads` of every run: part of a run's identity, since a fixed seed reproduces a run on the same
    /// thread count. 0 = the cores divided by `--jobs`.
    #[serde(default)]
    pub threads: usize,
    /// Supervision steps at which every trained model is evaluated afterwards (test-time recursion).
    pub eval_steps: Vec<usize>,
    /// Held-out examples of the test-time evaluation (0 = the whole held-out set).
    #[serde(default)]
    pub test_time_examples: usize,
    /// Vary the data with the seed: run seed s also sets `data.seed = s + 1` (other training puzzles, other
    /// held-out puzzles), so that the spread over seeds includes the data's. Off: every seed trains on the task's
    /// puzzles.
    #[serde(default)]
    pub vary_data_seed: bool,
    #[serde(rename = "task")]
    pub tasks: Vec<Task>,
    #[serde(rename = "condition")]
    pub conditions: Vec<Condition>,
    #[serde(rename = "question")]
    pub questions: Vec<Question>,
}

/// The puzzles and the shared recipe: a training preset, overrides every run of the task gets, and the budgets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    pub name: String,
    #[serde(default)]
    pub title: String,
    /// A training preset (`loopgrad info --list`).
    pub preset: String,
    /// `key=value` overrides on the preset, applied before each condition's.
    #[serde(default)]
    pub set: Vec<String>,
    /// The equal-steps budget: optimizer steps of every run at budget "steps".
    pub steps: u64,
    /// The equal-compute budget in training FLOPs (forward + backward matrix multiplies, see
    /// `loopgrad_models::cost`) ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flops: Option<f64>,
    /// ... or that of this condition trained for `steps` (the usual choice: the reference model's cost).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flops_of: Option<String>,
}

/// One arm of the study: overrides on its task's recipe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// Unique in the plan; part of the run directory names, so letters, digits, `-`, `_` and `.` only.
    pub name: String,
    pub task: String,
    /// A training preset other than the task's, for another architecture (the task's overrides still apply, so
    /// they should touch `data.*` and `run.*` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    /// What it is, in a few words, for the tables.
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub set: Vec<String>,
    /// Seeds of this condition when fewer than the plan's (learning-rate selection runs on fewer seeds than
    /// the cells the answer rests on): seeds 0..this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seeds: Option<usize>,
}

/// How runs of a question are sized.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Budget {
    /// The task's `steps` optimizer steps.
    Steps,
    /// The task's FLOP budget: steps = budget / (FLOPs of one optimizer step).
    Flops,
}

/// A comparison table, or a test-time recursion table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuestionKind {
    /// Held-out accuracy of each condition at each budget, compared with the reference.
    #[default]
    Compare,
    /// Held-out accuracy of each condition (trained at the steps budget) at each of the plan's `eval_steps`.
    TestTime,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    /// Short and unique; the tables number their rows `id.1`, `id.2`, ...
    pub id: String,
    pub title: String,
    /// The question in a sentence.
    #[serde(default)]
    pub question: String,
    #[serde(default)]
    pub kind: QuestionKind,
    pub conditions: Vec<String>,
    /// Budgets of a comparison (default: equal steps only). Test-time questions use the steps budget.
    #[serde(default = "steps_only")]
    pub budgets: Vec<Budget>,
    /// The condition every other one is compared with (comparisons only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

fn steps_only() -> Vec<Budget> {
    vec![Budget::Steps]
}

impl Condition {
    /// The training preset this condition starts from.
    pub fn preset<'a>(&'a self, plan: &'a Plan) -> &'a str {
        self.preset.as_deref().unwrap_or_else(|| &plan.task(&self.task).expect("a validated plan").preset)
    }
}

impl Plan {
    /// A built-in plan by name, or an error listing them.
    pub fn built_in(name: &str) -> Result<Plan> {
        let (_, text) = BUILT_IN
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| anyhow!("unknown plan {name:?}; built-in plans: {}", BUILT_IN.map(|(n, _)| n).join(", ")))?;
        Plan::parse(text, &format!("built-in plan {name}"))
    }

    /// The names of the built-in plans.
    pub fn built_in_names() -> Vec<&'static str> {
        BUILT_IN.iter().map(|(n, _)| *n).collect()
    }

    /// Reads and checks a plan file, naming it in every error.
    pub fn from_file(path: &Path) -> Result<Plan> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("{}: cannot read the plan", path.display()))?;
        Plan::parse(&text, &path.display().to_string())
    }

    /// Parses and checks plan text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Plan> {
        let plan: Plan =
            toml::from_str(text).map_err(|e| anyhow!("{origin}: invalid plan: {}", one_line(&e.to_string())))?;
        plan.validate().map_err(|e| anyhow!("{origin}: {e}"))?;
        Ok(plan)
    }

    /// The plan as TOML (written to a study directory as `plan.toml`, which `--collect` reads).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a Plan always serialises")
    }

    pub fn task(&self, name: &str) -> Option<&Task> {
        self.tasks.iter().find(|t| t.name == name)
    }

    pub fn condition(&self, name: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.name == name)
    }

    /// Checks names, references and ranges (config keys and values are checked when the runs are expanded).
    pub fn validate(&self) -> Result<()> {
        if self.seeds == 0 {
            bail!("seeds must be at least 1");
        }
        if self.seeds > MAX_SEEDS {
            bail!("plan {}: seeds {} is more than {MAX_SEEDS}", self.name, self.seeds);
        }
        if self.threads > crate::config::MAX_THREADS {
            bail!("plan {}: threads {} is more than {}", self.name, self.threads, crate::config::MAX_THREADS);
        }
        if self.eval_steps.is_empty() || self.eval_steps.contains(&0) {
            bail!("eval_steps must be a non-empty list of positive step counts, got {:?}", self.eval_steps);
        }
        if let Some(n) = self.eval_steps.iter().find(|&&n| n > MAX_SUPERVISION_STEPS) {
            bail!("plan {}: eval_steps {n} is more than {MAX_SUPERVISION_STEPS} (as for `eval --steps`)", self.name);
        }
        unique("task", self.tasks.iter().map(|t| t.name.as_str()))?;
        unique("condition", self.conditions.iter().map(|c| c.name.as_str()))?;
        unique("question", self.questions.iter().map(|q| q.id.as_str()))?;
        for t in &self.tasks {
            check_name("task", &t.name)?;
            if t.steps == 0 {
                bail!("task {}: steps must be positive", t.name);
            }
            match (t.flops, &t.flops_of) {
                (Some(_), Some(_)) => bail!("task {}: give flops or flops_of, not both", t.name),
                (Some(f), None) if !(f > 0.0 && f.is_finite()) => bail!("task {}: flops must be positive", t.name),
                (None, Some(c)) if self.condition(c).map(|c| c.task != t.name).unwrap_or(true) => {
                    bail!("task {}: flops_of names {c:?}, which is not a condition of this task", t.name)
                }
                _ => {}
            }
        }
        for c in &self.conditions {
            check_name("condition", &c.name)?;
            if c.seeds.is_some_and(|k| k == 0 || k > self.seeds) {
                bail!("condition {}: seeds must be from 1 to the plan's {}", c.name, self.seeds);
            }
            if self.task(&c.task).is_none() {
                bail!("condition {}: unknown task {:?}", c.name, c.task);
            }
        }
        for q in &self.questions {
            if q.conditions.is_empty() {
                bail!("question {}: no conditions", q.id);
            }
            for name in q.conditions.iter().chain(&q.reference) {
                if self.condition(name).is_none() {
                    bail!("question {}: unknown condition {name:?}", q.id);
                }
            }
            if q.budgets.is_empty() {
                bail!("question {}: budgets must not be empty", q.id);
            }
            for c in &q.conditions {
                let task = &self.condition(c).expect("checked above").task;
                if q.budgets.contains(&Budget::Flops)
                    && self.task(task).is_some_and(|t| t.flops.is_none() && t.flops_of.is_none())
                {
                    bail!("question {}: budget \"flops\" but task {task} has neither flops nor flops_of", q.id);
                }
            }
            match (q.kind, &q.reference) {
                (QuestionKind::Compare, Some(r)) if !q.conditions.contains(r) => {
                    bail!("question {}: the reference {r:?} is not among its conditions", q.id)
                }
                (QuestionKind::TestTime, Some(_)) => bail!("question {}: a test_time question has no reference", q.id),
                _ => {}
            }
        }
        Ok(())
    }
}

fn unique<'a>(what: &str, names: impl Iterator<Item = &'a str>) -> Result<()> {
    let mut seen = HashSet::new();
    for n in names {
        if !seen.insert(n) {
            bail!("two {what}s are named {n:?}");
        }
    }
    Ok(())
}

/// Names become parts of directory names: keep them portable.
fn check_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !ok {
        bail!("{what} name {name:?}: use letters, digits, '-', '_' and '.' only");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_plans_parse_and_round_trip() {
        for name in Plan::built_in_names() {
            let plan = Plan::built_in(name).unwrap_or_else(|e| panic!("{e:#}"));
            let back = Plan::parse(&plan.to_toml(), "round trip").unwrap();
            assert_eq!(back, plan, "{name}");
        }
        let err = Plan::built_in("nope").unwrap_err().to_string();
        assert!(err.contains("smoke") && err.contains("default"), "{err}");
    }

    #[test]
    fn bad_plans_name_the_problem() {
        let smoke = include_str!("../../../../plans/smoke.toml");
        let cases = [
            ("seeds = 2", "seeds = 0", "seeds must be at least 1"),
            ("reference = \"T2n2\"", "reference = \"T9\"", "unknown condition \"T9\""),
            ("task = \"sudoku4\"", "task = \"nope\"", "unknown task \"nope\""),
            ("name = \"T1n1\"", "name = \"T 1\"", "letters, digits"),
            ("eval_steps = [1, 2, 4]", "eval_steps = [1, 10001]", "eval_steps 10001 is more than 10000"),
        ];
        for (from, to, expected) in cases {
            assert!(smoke.contains(from), "the smoke plan no longer contains {from:?}");
            let err = Plan::parse(&smoke.replacen(from, to, 1), "smoke.toml").unwrap_err().to_string();
            assert!(err.starts_with("smoke.toml: ") && err.contains(expected), "{from} -> {to}: {err}");
        }
        let err = Plan::parse("name = 3", "x.toml").unwrap_err().to_string();
        assert!(err.contains("x.toml: invalid plan"), "{err}");
    }
}
