//! Gathering finished runs into per-cell statistics, from run directories alone (`OUT/runs/NAME/`), wherever the
//! runs were trained: the final evaluation line of `metrics.jsonl`, the training time, `test_time.json`, and the
//! evaluations along training (`curves`).
//! Unfinished runs are counted, never filled in.

use super::curves::{read_curve, RunCurve};
use super::expand::{Cell, Expansion};
use super::machine::Machine;
use super::plan::Budget;
use super::runner::{read_log, read_test_time, status, RunStatus};
use std::collections::BTreeMap;
use std::path::Path;

/// Mean and sample standard deviation over seeds (`sd` is None for a single seed).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub mean: f64,
    pub sd: Option<f64>,
}

impl Summary {
    /// None for no values.
    pub fn of(values: &[f64]) -> Option<Summary> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let sd = (n > 1).then(|| (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt());
        Some(Summary { n, mean, sd })
    }
}

/// One run's measured outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct RunResult {
    pub status: RunStatus,
    /// Held-out exact and token accuracy at the trained N_sup (the final evaluation line).
    pub exact: Option<f64>,
    pub token: Option<f64>,
    /// Token accuracy over the cells the answer changes (a Sudoku's blanks, a maze's route); None for runs
    /// evaluated before it was measured.
    pub changed: Option<f64>,
    /// Exact accuracy on the training puzzles (each once, unaugmented) at the trained N_sup, from
    /// `test_time.json`; None for files written before it was measured.
    pub train_exact: Option<f64>,
    pub train_seconds: Option<f64>,
    /// Training examples that halted during the run ([`super::runner::RunLog::examples_trained`]).
    pub examples_trained: Option<f64>,
    /// Exact accuracy at each test-time step count.
    pub test_time: BTreeMap<usize, f64>,
    pub machine: Option<Machine>,
    /// Held-out exact accuracy along training (any status: a run stopped early has its points so far).
    pub curve: RunCurve,
}

/// A cell with the statistics of its runs.
#[derive(Clone, Debug, PartialEq)]
pub struct CellResult {
    pub cell: Cell,
    pub exact: Option<Summary>,
    pub token: Option<Summary>,
    /// Over every finished run, or None: a mean over the runs that happen to have it would be another sample.
    pub changed: Option<Summary>,
    /// Training-set exact accuracy, and the generalisation gap (training minus held-out exact) of each run that
    /// has both.
    pub train_exact: Option<Summary>,
    pub gap: Option<Summary>,
    pub train_seconds: Option<Summary>,
    pub examples_trained: Option<Summary>,
    /// Exact accuracy per test-time step count, over the runs that have it.
    pub test_time: BTreeMap<usize, Summary>,
    pub finished: usize,
    pub failed: usize,
}

/// Everything the report needs.
pub struct Results {
    pub expansion: Expansion,
    pub runs: Vec<RunResult>,
    /// Machines the runs were evaluated on, with how many runs each.
    pub machines: BTreeMap<Machine, usize>,
}

/// Reads every run of `expansion` from `runs_dir/NAME`.
pub fn collect(expansion: &Expansion, runs_dir: &Path) -> Results {
    let mut machines = BTreeMap::new();
    let runs = expansion
        .runs
        .iter()
        .map(|spec| {
            let dir = runs_dir.join(&spec.name);
            let status = status(&dir, spec);
            let finished = status == RunStatus::Finished;
            let log = read_log(&dir);
            let final_eval = log.final_eval.as_ref().filter(|_| finished);
            let test_time = read_test_time(&dir).filter(|_| finished);
            if let Some(t) = &test_time {
                *machines.entry(t.machine.clone()).or_insert(0) += 1;
            }
            RunResult {
                exact: final_eval.map(|r| r.exact_accuracy),
                token: final_eval.map(|r| r.token_accuracy),
                changed: final_eval.and_then(|r| r.changed_token_accuracy),
                train_exact: test_time.as_ref().and_then(|t| t.train.as_ref()).map(|r| r.exact_accuracy),
                train_seconds: finished.then_some(log.train_seconds),
                examples_trained: finished.then_some(log.examples_trained as f64),
                test_time: test_time.iter().flat_map(|t| &t.results).map(|r| (r.steps, r.exact_accuracy)).collect(),
                machine: test_time.map(|t| t.machine),
                curve: read_curve(&dir),
                status,
            }
        })
        .collect();
    Results { expansion: expansion.clone(), runs, machines }
}

impl Results {
    /// What the runs are scored on ([`crate::run::scored_set`] of each): "validation" when every run scores a
    /// validation split carved from its training stream (the learning-rate plans), "held-out" when none does, and
    /// both, named per task, in a plan that mixes them.
    pub fn scored_set(&self) -> &'static str {
        one_set(self.expansion.configs.iter())
    }

    /// [`Self::scored_set`] of one task's runs.
    pub fn task_scored_set(&self, task: &str) -> &'static str {
        let runs = self.expansion.runs.iter().zip(&self.expansion.configs);
        one_set(runs.filter(|(r, _)| r.task == task).map(|(_, c)| c))
    }

    /// The statistics of a condition at a budget.
    pub fn cell(&self, condition: &str, budget: Budget) -> CellResult {
        let cell = self.expansion.cell(condition, budget).clone();
        let runs: Vec<&RunResult> = cell.runs.iter().map(|&i| &self.runs[i]).collect();
        let over =
            |f: &dyn Fn(&RunResult) -> Option<f64>| Summary::of(&runs.iter().filter_map(|r| f(r)).collect::<Vec<_>>());
        let mut test_time = BTreeMap::new();
        for &steps in &self.expansion.plan.eval_steps {
            if let Some(s) = over(&|r| r.test_time.get(&steps).copied()) {
                test_time.insert(steps, s);
            }
        }
        let finished = runs.iter().filter(|r| r.status == RunStatus::Finished).count();
        CellResult {
            exact: over(&|r| r.exact),
            token: over(&|r| r.token),
            changed: over(&|r| r.changed).filter(|s| s.n == finished),
            train_exact: over(&|r| r.train_exact),
            gap: over(&|r| Some(r.train_exact? - r.exact?)),
            train_seconds: over(&|r| r.train_seconds),
            examples_trained: over(&|r| r.examples_trained),
            test_time,
            finished,
            failed: runs.iter().filter(|r| matches!(r.status, RunStatus::Failed(_))).count(),
            cell,
        }
    }

    /// Runs finished, failed, and neither.
    pub fn counts(&self) -> (usize, usize, usize) {
        let finished = self.runs.iter().filter(|r| r.status == RunStatus::Finished).count();
        let failed = self.runs.iter().filter(|r| matches!(r.status, RunStatus::Failed(_))).count();
        (finished, failed, self.runs.len() - finished - failed)
    }
}

/// The set a group of runs is scored on, named once when they agree.
fn one_set<'a>(configs: impl Iterator<Item = &'a crate::TrainConfig>) -> &'static str {
    let sets: std::collections::BTreeSet<&str> = configs.map(crate::run::scored_set).collect();
    match sets.len() {
        2 => "held-out or validation (the tasks that set `data.validation_count`)",
        _ => sets.first().copied().unwrap_or("held-out"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_is_the_mean_and_sample_standard_deviation() {
        let s = Summary::of(&[0.5, 0.7, 0.9]).unwrap();
        assert_eq!(s.n, 3);
        assert!((s.mean - 0.7).abs() < 1e-12);
        assert!((s.sd.unwrap() - 0.2).abs() < 1e-12);
        assert_eq!(Summary::of(&[0.25]).unwrap().sd, None);
        assert_eq!(Summary::of(&[]), None);
    }
}
