//! How much memory a training config needs, estimated from its sizes before anything is allocated, so that
//! `validate()` can refuse a config the machine cannot hold (instead of an allocation abort minutes in), and
//! `loopgrad info` can print it.
//!
//! With P the parameters (all f32, 4 bytes each), P_d the ones the dense optimizer trains (all but the puzzle
//! table), B the batch, L' = P_len + L the positions, D the width, I = SwiGLU width(D), R the recorded net calls
//! of a step (the gradient window), N_layer the blocks per call:
//! ```text
//! weights       4 P                 every tensor of the model (weights, carry init vectors), puzzle table excluded
//! gradients     4 P                 one gradient buffer per tensor
//! packed        4 P_d   x 2         PackedWeight's packed GEMM forms of the matrices (W^T and W), kept between
//!                                   optimizer steps; the SwiGLU gate/up matrices' third form (their gate/up
//!                                   pairs, for the untaped recursions) is left out: the estimate runs high anyway
//! optimizer     4 P_d   x 2         Adam's two moments
//! ema           4 P_d               the EMA shadow (optim.ema > 0)
//! puzzle table  4 N_id D x 2        the puzzle-embedding table and its gradient (ARC: N_id is set from the
//!                                   tasks once they are loaded, and the estimate is checked again then)
//! activations   4 B R N_layer A     what a recorded block keeps for backward, A elements per example (below)
//!             + 4 B L' D x 4        the input embeddings, the carry and its copy
//!             + 4 B L V x 3         logits, their softmax and gradient
//! data          (N_train + N_test + N_val) (2 L + 4)   input and label tokens (1 byte each) and a puzzle index, L of
//!                                   the generated puzzles' own size
//! runtime       RUNTIME_BYTES       the binary, thread stacks, the allocator's own
//! ```
//! with A per example of one block:
//! ```text
//! attention block   10 L' D + 2 H L'^2 + 3 L' I      (q, k, v, rotated q and k, scores, softmax, output, norms)
//! token-MLP block    6 L' D + 3 D I_t  + 3 L' I      (the transposes, the token MLP at width I_t = I(L'), norms)
//! ```
//! The backward pass allocates each value's gradient as it goes and the buffer pool keeps freed tensors for the
//! next step, so the activations are counted [`BACKWARD_FACTOR`] times. `tests/cli_memory.rs` checks the
//! estimate against the measured peak resident memory of `loopgrad train` for two presets.

use crate::config::{augmented_copies, TrainConfig};
use anyhow::{bail, Result};
use loopgrad_models::config::ModelConfig;
use loopgrad_models::io::PUZZLE_EMB;
use loopgrad_nn::layers::swiglu_width;
use serde::Serialize;

/// The binary, its threads' stacks and the allocator's overhead: most of the resident memory of a run whose
/// tensors are all tiny (`loopgrad train --preset smoke` peaks at 32 MiB).
pub const RUNTIME_BYTES: u64 = 20 << 20;

/// The values a recorded block keeps for backward, times this: the gradients the backward pass allocates as it
/// goes (then returns to the buffer pool) add most of another copy. Fitted to the peak resident memory of
/// `loopgrad train` on the presets default, sudoku9, sudoku6-hrm and smoke (3 steps each; estimate / measured
/// 1.09, 1.02, 0.91, 0.97 with this factor, see `tests/cli_memory.rs`).
pub const BACKWARD_FACTOR: f64 = 1.7;

/// The estimate, term by term, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct MemoryEstimate {
    pub weights: u64,
    pub gradients: u64,
    pub packed: u64,
    pub optimizer: u64,
    pub ema: u64,
    pub puzzle_table: u64,
    pub activations: u64,
    pub data: u64,
    pub runtime: u64,
}

impl MemoryEstimate {
    pub fn total(&self) -> u64 {
        let t = [
            self.weights,
            self.gradients,
            self.packed,
            self.optimizer,
            self.ema,
            self.puzzle_table,
            self.activations,
            self.data,
            self.runtime,
        ];
        t.iter().fold(0u64, |a, &b| a.saturating_add(b))
    }

    /// One line: the total and its three largest terms.
    pub fn summary(&self) -> String {
        let mut terms = [
            ("weights", self.weights),
            ("gradients", self.gradients),
            ("packed weights", self.packed),
            ("optimizer", self.optimizer),
            ("EMA", self.ema),
            ("puzzle table", self.puzzle_table),
            ("activations", self.activations),
            ("data", self.data),
            ("runtime", self.runtime),
        ];
        terms.sort_by_key(|t| std::cmp::Reverse(t.1));
        let top: Vec<String> = terms.iter().take(3).map(|(n, b)| format!("{n} {}", mib(*b))).collect();
        format!("{} ({})", mib(self.total()), top.join(", "))
    }
}

/// `bytes` as MiB (or GiB above 10 GiB), for messages.
pub fn mib(bytes: u64) -> String {
    if bytes >= 10 << 30 {
        format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
    } else {
        format!("{:.0} MiB", bytes as f64 / (1u64 << 20) as f64)
    }
}

/// Elements one example keeps in one recorded block (the `A` of the module doc).
fn block_elements(model: &ModelConfig, mlp_t: bool, heads: usize, expansion: f64) -> f64 {
    let io = model.io();
    let (l, d) = (io.positions() as f64, io.hidden_size as f64);
    let i = swiglu_width(io.hidden_size, expansion) as f64;
    if mlp_t {
        let i_t = swiglu_width(io.positions(), expansion) as f64;
        6.0 * l * d + 3.0 * d * i_t + 3.0 * l * i
    } else {
        10.0 * l * d + 2.0 * heads as f64 * l * l + 3.0 * l * i
    }
}

/// Elements one example keeps over the recorded net calls of a step.
fn recorded_elements(model: &ModelConfig) -> f64 {
    let recorded = model.step_cost().recorded_calls as f64;
    match model {
        ModelConfig::Trm(c) => {
            recorded * c.num_layers as f64 * block_elements(model, c.mlp_t, c.num_heads, c.expansion)
        }
        ModelConfig::Hrm(c) => {
            // L and H calls alternate l_cycles : 1; their mean depth stands for each recorded call.
            let mean_layers = (c.l_cycles * c.l_layers + c.h_layers) as f64 / (c.l_cycles + 1) as f64;
            recorded * mean_layers * block_elements(model, false, c.num_heads, c.expansion)
        }
        ModelConfig::Baseline(c) => c.num_layers as f64 * block_elements(model, c.mlp_t, c.num_heads, c.expansion),
    }
}

/// Saturating f64 bytes -> u64.
fn bytes(x: f64) -> u64 {
    if x >= u64::MAX as f64 {
        u64::MAX
    } else {
        x as u64
    }
}

impl TrainConfig {
    /// The memory a run of this config needs, term by term (see the module doc).
    pub fn memory_estimate(&self) -> MemoryEstimate {
        const F32: f64 = 4.0;
        let model = &self.model;
        let io = model.io();
        let manifest = model.manifest();
        let all = manifest.count(|e| e.name != PUZZLE_EMB) as f64;
        let dense = manifest.count(|e| e.trainable && e.name != PUZZLE_EMB) as f64;
        let table = manifest.count(|e| e.name == PUZZLE_EMB) as f64;
        let b = self.run.batch_size as f64;
        let (l, lp, d, v) = (io.seq_len as f64, io.positions() as f64, io.hidden_size as f64, io.vocab_size as f64);
        // Training at batch B with the tape; evaluation at max(B, 64) without it (one call's values at a time).
        let train = BACKWARD_FACTOR * b * recorded_elements(model) + b * (4.0 * lp * d + 3.0 * l * v);
        let eval_b = b.max(64.0);
        let eval = eval_b * (4.0 * lp * d + 3.0 * l * v);
        let d_ = &self.data;
        let copies = augmented_copies(&d_.task, d_.augmentations) as f64;
        let examples = d_.train_count as f64 * copies + d_.test_count as f64 + d_.validation_count as f64;
        MemoryEstimate {
            weights: bytes(F32 * all),
            gradients: bytes(F32 * all),
            packed: bytes(F32 * dense * 2.0),
            optimizer: bytes(F32 * dense * 2.0),
            ema: if self.optim.ema > 0.0 { bytes(F32 * dense) } else { 0 },
            puzzle_table: bytes(F32 * table * 2.0),
            activations: bytes(F32 * train.max(eval)),
            data: bytes(examples * (2.0 * self.tokens_per_example() as f64 + 4.0)),
            runtime: RUNTIME_BYTES,
        }
    }

    /// [`TrainConfig::memory_estimate`] once the data is built, with its `examples` (training and held-out):
    /// ARC's example count, like its puzzle-table rows, is known only from the tasks, not from the config.
    pub fn memory_estimate_with_examples(&self, examples: usize) -> MemoryEstimate {
        MemoryEstimate {
            data: bytes(examples as f64 * (2.0 * self.tokens_per_example() as f64 + 4.0)),
            ..self.memory_estimate()
        }
    }

    /// Refuses a config whose estimate exceeds the memory this machine has available, naming the fields that
    /// drive it and the estimate. Where the available memory is unknown, nothing is refused for its size.
    pub(crate) fn validate_memory(&self) -> Result<()> {
        match available_memory() {
            Some(have) => self.check_memory(have),
            None => Ok(()),
        }
    }

    /// [`TrainConfig::validate_memory`] against `available` bytes.
    pub fn check_memory(&self, available: u64) -> Result<()> {
        let need = self.memory_estimate();
        if need.total() > available {
            let io = self.model.io();
            bail!(
                "this config needs about {} of memory, more than the {} available; the estimate grows with \
                 model.hidden_size {} (squared in the weights), run.batch_size {}, the layers and recorded calls \
                 (model.grad_window) and model.seq_len {} (see `loopgrad info`)",
                need.summary(),
                mib(available),
                io.hidden_size,
                self.run.batch_size,
                io.seq_len
            );
        }
        Ok(())
    }
}

/// The memory this machine can give a new run: `MemAvailable` of `/proc/meminfo` (Linux), else its `MemTotal`;
/// `None` where there is no such file (then no config is refused for its size; the other bounds still hold).
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kib| kib * 1024)
    };
    field("MemAvailable:").or_else(|| field("MemTotal:"))
}

#[cfg(test)]
mod tests {
    use crate::TrainConfig;

    fn preset_with(name: &str, sets: &[&str]) -> TrainConfig {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        crate::overrides::apply(&TrainConfig::preset(name).unwrap(), &sets).unwrap()
    }

    #[test]
    fn configs_that_aborted_on_allocation_are_refused_naming_the_fields_and_the_estimate() {
        // Both passed validation, then aborted: 2-4 GB of weights, optimizer state and packed copies, and the
        // activations of 6 million slots.
        const HAVE: u64 = 16 << 30;
        for sets in [&["model.hidden_size=8192", "model.num_heads=8"][..], &["run.batch_size=600000"]] {
            let c = preset_with("smoke", sets);
            c.validate_limits().unwrap_or_else(|e| panic!("{sets:?} is within the ranges: {e}"));
            let err = c.check_memory(HAVE).unwrap_err().to_string();
            assert!(
                err.starts_with("this config needs about ") && err.contains("more than the 16.0 GiB available"),
                "{err}"
            );
            assert!(err.contains("model.hidden_size") && err.contains("run.batch_size"), "{err}");
        }
        // The main job and every CPU preset fit in 1 GiB; the paper's presets at the paper's batch sizes need tens
        // of GiB, which is why `validate_limits` (not `validate`) is what every preset must pass.
        for name in ["default", "sudoku6-att", "sudoku6-hrm", "sudoku6-baseline", "sudoku9", "smoke"] {
            TrainConfig::preset(name).unwrap().check_memory(1 << 30).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let paper = TrainConfig::preset("paper-trm-mlp-sudoku").unwrap().memory_estimate();
        assert!(paper.total() > 40 << 30, "{}", paper.summary());
    }

    #[test]
    fn the_terms_follow_the_formula() {
        let c = TrainConfig::preset("default").unwrap();
        let m = c.memory_estimate();
        let manifest = c.model.manifest();
        let dense = manifest.count(|e| e.trainable && e.name != loopgrad_models::io::PUZZLE_EMB) as u64;
        assert_eq!((m.optimizer, m.packed), (8 * dense, 8 * dense));
        assert_eq!(m.ema, if c.optim.ema > 0.0 { 4 * dense } else { 0 });
        // Doubling the batch doubles the activations (training at B >= 64 is larger than evaluation).
        let double = preset_with("default", &[&format!("run.batch_size={}", 2 * c.run.batch_size)]).memory_estimate();
        assert!((double.activations as f64 / m.activations as f64 - 2.0).abs() < 1e-6);
        // The validation split is held too: 2 L + 4 bytes per puzzle.
        let val = preset_with("default", &["data.validation_count=1000"]).memory_estimate();
        assert_eq!(val.data - m.data, super::bytes(1000.0 * (2.0 * c.tokens_per_example() as f64 + 4.0)));
        assert_eq!(
            m.total(),
            [m.weights, m.gradients, m.packed, m.optimizer, m.ema, m.puzzle_table, m.activations, m.data, m.runtime]
                .iter()
                .sum::<u64>()
        );
    }

    #[test]
    fn a_maze_config_counts_the_grid_not_the_models_seq_len() {
        // Was: the token bound used model.seq_len (36 for this preset) before the 64 x 64 grid was known; the
        // run generated for 50 s, then aborted.
        let c = preset_with("default", &["data.task=maze", "data.maze_size=64", "data.maze_min_route=1"]);
        assert_eq!(c.tokens_per_example(), 4096);
        let err = c.validate_limits().unwrap_err().to_string();
        assert_eq!(err, "data.maze_size gives puzzles of 4096 tokens but model.seq_len is 36; set them to match");
        let many = preset_with(
            "paper-trm-att-maze",
            &["data.maze_size=30", "data.train_count=400000", "data.augmentations=8", "data.test_count=0"],
        );
        let err = many.validate_limits().unwrap_err().to_string();
        assert!(err.contains("examples of 900 tokens is 2880000000 tokens"), "{err}");
    }
}
