//! The recursion study (`loopgrad study`): a grid of ordinary training runs, several seeds each, evaluated at
//! several test-time step counts, and a report with one table per question.
//!
//! ```text
//! plan.toml ──expand──> runs: OUT/runs/CONDITION-STEPSst-sSEED/study.json       (expand.rs, plan.rs)
//!     each run ──runner──> run::train into DIR; test_time.json                  (runner.rs, testtime.rs)
//!     run directories ──collect──> per-cell mean ± sd ──report──> report.md       (collect.rs, report.rs)
//!     run files that cannot be a run's own ──> no report, the file named           (audit.rs)
//!     eval records of metrics.jsonl ──> accuracy along training, per cell         (curves.rs)
//! ```
//!
//! Every step reads and writes run directories only, so runs can be trained anywhere (a local pool, a Slurm
//! array, GNU parallel) and collected later. See `docs/study.md`.

pub mod answer;
pub mod audit;
pub mod collect;
pub mod curves;
pub mod expand;
pub mod machine;
pub mod plan;
#[cfg(test)]
mod plan_stages;
pub mod report;
pub mod runner;
pub mod stats;
pub mod testtime;

pub use collect::{collect, Results, Summary};
pub use expand::{Cell, Expansion, RunSpec};
pub use plan::{Budget, Plan, QuestionKind};
pub use runner::{RunStatus, SPEC_FILE};
