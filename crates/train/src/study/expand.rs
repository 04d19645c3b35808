//! From a plan to runs: each (condition, budget) pair a question asks for is a *cell* (a table row); each cell is
//! one run per seed. A run is an ordinary `loopgrad train` run directory named `CONDITION-STEPSst-sSEED`, so two
//! cells that come to the same number of steps (the reference condition at equal steps and at its own FLOP
//! budget, or the same condition in two questions) share their runs instead of training twice.

use super::plan::{Budget, Plan, QuestionKind};
use crate::TrainConfig;
use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a run is, as written to its directory (`study.json`): enough to train it and evaluate it anywhere, with
/// no other file of the study.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    /// The run directory's name under `OUT/runs/`.
    pub name: String,
    pub plan: String,
    pub task: String,
    pub condition: String,
    pub steps: u64,
    pub seed: u64,
    /// The arguments of `loopgrad train` after the subcommand, without `--out`.
    pub train_args: Vec<String>,
    /// Test-time evaluation: supervision step counts and held-out examples (0 = all).
    pub eval_steps: Vec<usize>,
    pub test_time_examples: usize,
}

/// One table row: a condition at a budget, and the runs (one per seed) that measure it.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    pub condition: String,
    pub budget: Budget,
    pub steps: u64,
    /// Parameters as the papers count them (no puzzle embeddings), and blocks per supervision step.
    pub params: usize,
    pub effective_depth: usize,
    /// N_sup, the supervision steps the model trains (and is scored) with.
    pub n_sup: usize,
    /// FLOPs of one optimizer step (one supervision step of the whole batch, forward and backward).
    pub flops_per_step: f64,
    /// Indices into [`Expansion::runs`], one per seed.
    pub runs: Vec<usize>,
}

impl Cell {
    /// Training FLOPs of each of the cell's runs.
    pub fn train_flops(&self) -> f64 {
        self.flops_per_step * self.steps as f64
    }
}

/// Every run of a plan and every cell its questions ask for.
#[derive(Clone, Debug)]
pub struct Expansion {
    pub plan: Plan,
    pub runs: Vec<RunSpec>,
    /// The resolved training config of each run (same order as `runs`).
    pub configs: Vec<TrainConfig>,
    cells: BTreeMap<(String, Budget), Cell>,
    /// Each task's FLOP budget, when it has one.
    pub flop_budgets: BTreeMap<String, f64>,
}

impl Expansion {
    /// Resolves every condition's config (preset + task overrides + condition overrides), sizes its budgets and
    /// lists the runs, seed 0 of every cell first (so a study stopped half-way has seen every cell). `threads` is
    /// every run's `run.threads`.
    pub fn new(plan: &Plan, threads: usize) -> Result<Self> {
        let mut per_condition: BTreeMap<String, TrainConfig> = BTreeMap::new();
        for c in &plan.conditions {
            let task = plan.task(&c.task).expect("a validated plan");
            let sets: Vec<String> = task.set.iter().chain(&c.set).cloned().collect();
            let config = TrainConfig::preset(c.preset(plan))
                .and_then(|base| base.with_overrides(&sets))
                .map_err(|e| anyhow!("plan {}: condition {}: {e:#}", plan.name, c.name))?;
            per_condition.insert(c.name.clone(), config);
        }
        let step_flops = |name: &str| {
            let c = &per_condition[name];
            c.model.step_cost().total_flops() * c.run.batch_size as f64
        };
        let mut flop_budgets = BTreeMap::new();
        for t in &plan.tasks {
            let budget = match (&t.flops, &t.flops_of) {
                (Some(f), _) => Some(*f),
                (None, Some(c)) => Some(step_flops(c) * t.steps as f64),
                (None, None) => None,
            };
            if let Some(b) = budget {
                flop_budgets.insert(t.name.clone(), b);
            }
        }

        let mut cells: BTreeMap<(String, Budget), Cell> = BTreeMap::new();
        let mut order: Vec<(String, Budget)> = Vec::new();
        for q in &plan.questions {
            let budgets = if q.kind == QuestionKind::TestTime { vec![Budget::Steps] } else { q.budgets.clone() };
            for name in &q.conditions {
                for &budget in &budgets {
                    let key = (name.clone(), budget);
                    if cells.contains_key(&key) {
                        continue;
                    }
                    let config = &per_condition[name];
                    let task = plan.task(&plan.condition(name).expect("validated").task).expect("validated");
                    let per_step = step_flops(name);
                    let steps = match budget {
                        Budget::Steps => task.steps,
                        Budget::Flops => {
                            let steps = (flop_budgets[&task.name] / per_step).round();
                            // A run's config is TOML, whose integers stop at i64::MAX.
                            if steps.is_nan() || steps >= i64::MAX as f64 {
                                bail!(
                                    "condition {name}: task {}'s FLOP budget comes to {steps:e} steps of it, more \
                                     than a run can hold ({})",
                                    task.name,
                                    i64::MAX
                                );
                            }
                            (steps as u64).max(1)
                        }
                    };
                    let cell = Cell {
                        condition: name.clone(),
                        budget,
                        steps,
                        params: config.model.param_count(),
                        effective_depth: config.model.effective_depth(),
                        n_sup: config.model.halt_max_steps(),
                        flops_per_step: per_step,
                        runs: Vec::new(),
                    };
                    cells.insert(key.clone(), cell);
                    order.push(key);
                }
            }
        }

        let mut runs: Vec<RunSpec> = Vec::new();
        let mut configs = Vec::new();
        let mut index: BTreeMap<String, usize> = BTreeMap::new();
        for seed in 0..plan.seeds as u64 {
            for key in &order {
                let cell = cells.get_mut(key).expect("listed above");
                let condition = plan.condition(&cell.condition).expect("validated");
                if condition.seeds.is_some_and(|k| seed >= k as u64) {
                    continue;
                }
                let name = format!("{}-{}st-s{seed}", cell.condition, cell.steps);
                if let Some(&i) = index.get(&name) {
                    cell.runs.push(i);
                    continue;
                }
                let task = plan.task(&condition.task).expect("validated");
                let mut train_args = vec!["--preset".to_string(), condition.preset(plan).to_string()];
                let mut derived = vec![
                    format!("run.steps={}", cell.steps),
                    format!("run.seed={seed}"),
                    format!("run.threads={threads}"),
                ];
                if plan.vary_data_seed {
                    derived.push(format!("data.seed={}", seed + 1));
                }
                for set in task.set.iter().chain(&condition.set).chain(&derived) {
                    train_args.push("--set".into());
                    train_args.push(set.clone());
                }
                let config = per_condition[&cell.condition].with_overrides(&derived)?;
                index.insert(name.clone(), runs.len());
                cell.runs.push(runs.len());
                runs.push(RunSpec {
                    name,
                    plan: plan.name.clone(),
                    task: task.name.clone(),
                    condition: cell.condition.clone(),
                    steps: cell.steps,
                    seed,
                    train_args,
                    eval_steps: plan.eval_steps.clone(),
                    test_time_examples: plan.test_time_examples,
                });
                configs.push(config);
            }
        }
        Ok(Expansion { plan: plan.clone(), runs, configs, cells, flop_budgets })
    }

    /// The cell of a condition at a budget (test-time questions use [`Budget::Steps`]).
    pub fn cell(&self, condition: &str, budget: Budget) -> &Cell {
        self.cells
            .get(&(condition.to_string(), budget))
            .unwrap_or_else(|| panic!("Expansion::cell: no cell {condition} at {budget:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flop_budget_past_what_a_run_can_hold_names_the_condition() {
        let smoke = include_str!("../../../../plans/smoke.toml");
        assert!(smoke.contains("steps = 30"), "the smoke plan no longer has steps = 30");
        let plan = Plan::parse(&smoke.replacen("steps = 30", "steps = 9223372036854775807", 1), "big.toml").unwrap();
        let Err(err) = Expansion::new(&plan, 1) else { panic!("T1n1 at T2n2's FLOPs is about 2^64 steps") };
        let err = err.to_string();
        assert!(err.starts_with("condition T1n1: task sudoku4's FLOP budget comes to"), "{err}");
    }

    #[test]
    fn smoke_plan_expands_to_shared_runs_and_matched_flops() {
        let plan = Plan::built_in("smoke").unwrap();
        let e = Expansion::new(&plan, 1).unwrap();
        let reference_steps = e.cell("T2n2", Budget::Steps);
        let reference_flops = e.cell("T2n2", Budget::Flops);
        // The reference at its own FLOP budget is the same runs as at equal steps.
        assert_eq!(reference_steps.runs, reference_flops.runs);
        let cheap = e.cell("T1n1", Budget::Flops);
        assert!(cheap.steps > reference_steps.steps, "T1n1 is cheaper, so it trains longer at equal FLOPs");
        let rel = (cheap.train_flops() - reference_steps.train_flops()).abs() / reference_steps.train_flops();
        assert!(rel < 0.05, "{rel}");
        // 3 distinct (condition, steps) pairs x 2 seeds, seed 0 first.
        assert_eq!(e.runs.len(), 6);
        assert!(e.runs[..3].iter().all(|r| r.seed == 0));
        assert_eq!(e.runs[0].name, "T1n1-30st-s0");
        let r = &e.runs[0];
        assert!(r.train_args.windows(2).any(|w| w == ["--set", "run.seed=0"]), "{:?}", r.train_args);
        assert_eq!(e.configs[0].run.steps, 30);
        assert_eq!(e.configs[0].model.effective_depth(), 4, "T(n+1)L = 1 x 2 x 2");
    }

    #[test]
    fn a_bad_override_names_the_condition() {
        let text = include_str!("../../../../plans/smoke.toml").replace("model.l_cycles=1", "model.l_cyclez=1");
        let plan = Plan::parse(&text, "smoke.toml").unwrap();
        let err = Expansion::new(&plan, 1).unwrap_err().to_string();
        assert!(err.contains("condition T1n1") && err.contains("model.l_cyclez"), "{err}");
    }
}
