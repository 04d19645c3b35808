//! The training config: model, data, optimizer, schedule, EMA and run settings, all serde, so that a preset,
//! a TOML file and `--set key=value` overrides are the same thing. Every field is documented in
//! `docs/config.md`.

use crate::overrides;
use anyhow::{anyhow, Result};
use loopgrad_models::config::ModelConfig;
use loopgrad_nn::optim::{OptimizerConfig, SignSgdConfig};
use loopgrad_nn::schedule::LrSchedule;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Everything a training run needs. Written to the run directory as `config.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub model: ModelConfig,
    pub data: DataConfig,
    pub optim: OptimConfig,
    pub run: RunConfig,
}

/// Which puzzles to train and evaluate on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// "sudoku", "maze" or "arc".
    pub task: String,
    /// A training file (Sudoku/Maze CSV) or directory (ARC); empty = generate puzzles.
    pub train_path: String,
    /// A held-out file or directory; empty = generate (Sudoku/Maze) or the evaluation split (ARC).
    pub test_path: String,
    /// Sudoku box shape "RxC": 2x2 (4x4 grid), 2x3 (6x6), 3x3 (9x9).
    pub sudoku_box: String,
    /// Generated Sudoku: the fewest and most givens ([0, 0] = minimal puzzles, whatever their givens).
    pub sudoku_givens: [usize; 2],
    /// Generated mazes: side length and the shortest route length to accept.
    pub maze_size: usize,
    pub maze_min_route: usize,
    /// Generated training puzzles (or the first N of a file; 0 = all).
    pub train_count: usize,
    /// Held-out puzzles (or the first N of a file; 0 = all).
    pub test_count: usize,
    /// Random validity-preserving transforms added per training puzzle (TRM's Sudoku set uses 1000): each is
    /// its own example, in the same group as the original.
    pub augmentations: usize,
    /// Seed of the generated puzzles (independent of the training seed, so runs compare on the same data).
    pub seed: u64,
}

/// Optimizers: AdamATan2 (or AdamW) for the dense weights, sign-SGD for the puzzle-embedding rows, one
/// schedule scaling both, and the EMA of the weights used for evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimConfig {
    /// Base learning rate of the dense optimizer.
    pub lr: f64,
    /// The dense optimizer and its hyper-parameters (`kind = "adam_atan2"` or `"adamw"`).
    pub dense: OptimizerConfig,
    /// Base learning rate of the sparse puzzle-embedding rows.
    pub puzzle_emb_lr: f64,
    pub puzzle_emb: SignSgdConfig,
    pub schedule: LrSchedule,
    /// EMA decay of the weights used for evaluation; 0 disables EMA (evaluate the live weights).
    pub ema: f64,
}

/// How long, how big, how often.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Slots: examples carried in parallel across supervision steps.
    pub batch_size: usize,
    /// Optimizer steps (one supervision step each).
    pub steps: u64,
    /// Adaptive halting: a slot may stop before N_sup when its Q-head says so. Off: every example trains for
    /// exactly N_sup supervision steps (the Q-head is still trained).
    pub act: bool,
    /// Stop early after this many seconds of training (0 = no limit). Not reproducible: prefer `steps`.
    pub time_limit_s: f64,
    /// Evaluate on (at most `eval_examples` of) the held-out set every this many steps (0 = only at the end).
    pub eval_every: u64,
    pub eval_examples: usize,
    /// Supervision steps at evaluation (0 = the model's halt_max_steps).
    pub eval_steps: usize,
    /// Write a metrics line every this many steps.
    pub log_every: u64,
    /// Save a checkpoint every this many steps (0 = only at the end).
    pub checkpoint_every: u64,
    /// Seed of initialisation, sampling and exploration.
    pub seed: u64,
    /// Worker threads (0 = all cores).
    pub threads: usize,
}

impl TrainConfig {
    /// A named preset, or an error listing them.
    pub fn preset(name: &str) -> Result<Self> {
        crate::presets::get(name)
            .ok_or_else(|| anyhow!("unknown preset {name:?}; valid: {}", crate::presets::names().join(", ")))
    }

    /// Reads a TOML file (a whole config).
    pub fn from_file(path: &Path) -> Result<Self> {
        overrides::from_toml_file(path)
    }

    /// Applies `--set key=value` overrides and validates the result.
    pub fn with_overrides(&self, sets: &[String]) -> Result<Self> {
        let c = overrides::apply(self, sets)?;
        c.validate()?;
        Ok(c)
    }

    /// The config as TOML, the form written to a run directory.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a TrainConfig always serialises")
    }

    /// Checks what serde cannot: ranges and names. Messages name the field.
    pub fn validate(&self) -> Result<()> {
        self.model.validate().map_err(|e| anyhow!(e))?;
        overrides::check_name("data.task", &self.data.task, ["sudoku", "maze", "arc"])?;
        if self.run.batch_size == 0 {
            return Err(anyhow!("run.batch_size must be positive"));
        }
        if !(0.0..1.0).contains(&self.optim.ema) {
            return Err(anyhow!("optim.ema must be in [0, 1), got {}", self.optim.ema));
        }
        if !(self.optim.lr > 0.0 && self.optim.lr.is_finite()) {
            return Err(anyhow!("optim.lr must be positive, got {}", self.optim.lr));
        }
        Ok(())
    }
}
