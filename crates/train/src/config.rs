//! The training config: model, data, optimizer, schedule, EMA and run settings, all serde, so that a preset,
//! a TOML file and `--set key=value` overrides are the same thing. Every field is documented in
//! `docs/config.md`.

use crate::overrides;
use anyhow::{anyhow, bail, Context, Result};
use loopgrad_models::config::ModelConfig;
use loopgrad_nn::optim::{OptimizerConfig, SignSgdConfig};
use loopgrad_nn::schedule::LrSchedule;
use loopgrad_puzzles::maze::MazeConfig;
use loopgrad_puzzles::sudoku::BoxShape;
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
    #[serde(deserialize_with = "min_max")]
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
    /// How generated held-out puzzles are kept apart from the training puzzles: "symmetry" (none is a transform of
    /// a training puzzle, by canonical form: a Sudoku's relabellings and band/stack permutations, a maze's 8
    /// dihedral images) or "exact" (none is identical to one; for 4x4 grids, whose few symmetry classes a few
    /// hundred training puzzles use up). Absent from older config files, which read as "symmetry".
    #[serde(default = "symmetry")]
    pub heldout_disjoint: String,
    /// ARC: the sources whose every pair trains (TRM's training and concept subsets), each a directory of task
    /// JSON, a task file or a Kaggle `*_challenges.json`. The held-out source is `test_path` (its tasks'
    /// demonstrations train, their test pairs are held out).
    #[serde(default)]
    pub arc_path: Vec<String>,
    /// ARC: the canvas side (TRM: 30); `model.seq_len` must be its square. Tasks with a larger grid are skipped.
    #[serde(default = "default_arc_canvas")]
    pub arc_canvas: usize,
    /// Sudoku and Maze: when above 0, evaluate on this many puzzles carved from the *training* stream (those after
    /// the first `train_count`, which are not trained on) instead of the held-out set, which is then not built:
    /// the validation split on which a study chooses its learning rate, never on the test set.
    #[serde(default)]
    pub validation_count: usize,
}

fn symmetry() -> String {
    "symmetry".into()
}

fn default_arc_canvas() -> usize {
    loopgrad_puzzles::arc::MAX_SIDE
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
    /// Bias-correct the EMA as Adam corrects its moments (`loopgrad_nn::ema`): the average of the weights after
    /// each step so far, the initial weights left out. Off (the reference's EMA, and absent from older files).
    #[serde(default)]
    pub ema_bias_correction: bool,
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
    /// Score only the first this many held-out examples in the evaluation at the end of the run (0 = all of
    /// them). At paper size a whole ARC held-out set is hours of compute per batch: a run of a few steps (to
    /// measure one) bounds it here. Absent from older files: 0.
    #[serde(default)]
    pub final_eval_examples: usize,
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

    /// Reads a TOML config and checks its ranges and names ([`TrainConfig::validate_limits`]), so that every
    /// reader of a run's `config.toml` (`trace`, the study's test-time evaluation, `eval`) refuses what `train`
    /// would, naming the file, instead of failing inside data generation.
    pub fn from_file(path: &Path) -> Result<Self> {
        let c: TrainConfig = overrides::from_toml_file(path).map_err(|e| match model_field_at_fault(path) {
            Some(why) => anyhow!("{}: invalid config: {why}", path.display()),
            None => e,
        })?;
        c.validate_limits().map_err(|e| anyhow!("{}: {e}", path.display()))?;
        Ok(c)
    }

    /// Applies `--set key=value` overrides and validates the result. A range error after overrides names them
    /// ("with run.threads=100000: run.threads 100000 is more than 1024"): validate the config they apply to first,
    /// so that an error it already had is blamed on its own source, not on the overrides.
    pub fn with_overrides(&self, sets: &[String]) -> Result<Self> {
        let c = overrides::apply(self, sets)?;
        if sets.is_empty() {
            c.validate()?;
        } else {
            c.validate().with_context(|| format!("with {}", sets.join(", ")))?;
        }
        Ok(c)
    }

    /// The config as TOML, the form written to a run directory.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a TrainConfig always serialises")
    }

    /// Checks what serde cannot: ranges and names ([`TrainConfig::validate_limits`]), then that the memory the
    /// config needs (`crate::memory`) fits what this machine has available. Messages name the field. A config that
    /// passes builds, trains and evaluates without a panic and without an allocation far beyond what its sizes
    /// say.
    pub fn validate(&self) -> Result<()> {
        self.validate_limits()?;
        self.validate_memory()
    }

    /// The ranges and names alone, whatever machine the config is for (e.g. the paper's presets, which need more
    /// memory than a workstation has at the paper's batch sizes).
    pub fn validate_limits(&self) -> Result<()> {
        self.model.validate().map_err(|e| anyhow!(e))?;
        overrides::check_name("data.task", &self.data.task, ["sudoku", "maze", "arc"])?;
        overrides::check_name("data.heldout_disjoint", &self.data.heldout_disjoint, ["symmetry", "exact"])?;
        self.validate_optim()?;
        self.validate_run()?;
        self.validate_data()
    }

    fn validate_optim(&self) -> Result<()> {
        let o = &self.optim;
        if !(0.0..1.0).contains(&o.ema) {
            bail!("optim.ema must be in [0, 1), got {}", o.ema);
        }
        if !(o.lr > 0.0 && o.lr.is_finite()) {
            bail!("optim.lr must be positive, got {}", o.lr);
        }
        at_least_zero("optim.puzzle_emb_lr", o.puzzle_emb_lr)?;
        at_least_zero("optim.puzzle_emb.weight_decay", o.puzzle_emb.weight_decay)?;
        let (beta1, beta2, weight_decay, eps) = match &o.dense {
            OptimizerConfig::AdamAtan2(c) => (c.beta1, c.beta2, c.weight_decay, None),
            OptimizerConfig::AdamW(c) => (c.beta1, c.beta2, c.weight_decay, Some(c.eps)),
        };
        for (name, beta) in [("optim.dense.beta1", beta1), ("optim.dense.beta2", beta2)] {
            if !(0.0..1.0).contains(&beta) {
                bail!("{name} must be in [0, 1), got {beta}");
            }
        }
        at_least_zero("optim.dense.weight_decay", weight_decay)?;
        if let Some(eps) = eps.filter(|e| !(*e > 0.0 && e.is_finite())) {
            bail!("optim.dense.eps must be positive, got {eps}");
        }
        if !(0.0..1.0).contains(&o.schedule.warmup_fraction) {
            bail!("optim.schedule.warmup_fraction must be in [0, 1), got {}", o.schedule.warmup_fraction);
        }
        if !(0.0..=1.0).contains(&o.schedule.min_ratio) {
            bail!("optim.schedule.min_ratio must be in [0, 1], got {}", o.schedule.min_ratio);
        }
        Ok(())
    }

    fn validate_run(&self) -> Result<()> {
        let r = &self.run;
        if r.batch_size == 0 {
            bail!("run.batch_size must be positive");
        }
        at_least_zero("run.time_limit_s", r.time_limit_s)?;
        if r.threads > MAX_THREADS {
            bail!("run.threads {} is more than {MAX_THREADS} (0 means every core)", r.threads);
        }
        if r.eval_steps > MAX_SUPERVISION_STEPS {
            bail!("run.eval_steps {} is more than {MAX_SUPERVISION_STEPS}", r.eval_steps);
        }
        check_batch("run.batch_size", r.batch_size, &self.model)
    }

    /// The generator settings of generated sets, and the size of the training set in memory.
    fn validate_data(&self) -> Result<()> {
        let d = &self.data;
        let generated = d.train_path.is_empty() || d.test_path.is_empty();
        if d.task == "sudoku" && generated {
            let shape = BoxShape::parse(&d.sudoku_box).map_err(|e| anyhow!("data.sudoku_box: {e}"))?;
            let [min, max] = d.sudoku_givens;
            if [min, max] != [0, 0] && !(min <= max && max <= shape.cells()) {
                bail!(
                    "data.sudoku_givens [{min}, {max}] must be [0, 0] (minimal puzzles) or a range MIN <= MAX <= {} \
                     (the cells of a {shape} Sudoku)",
                    shape.cells()
                );
            }
        }
        if d.task == "maze" && generated {
            let generator = MazeConfig::new(d.maze_size, d.maze_min_route);
            generator.check("data.maze_size", "data.maze_min_route").map_err(|e| anyhow!(e))?;
        }
        if d.validation_count > 0 && (d.task == "arc" || d.train_count == 0) {
            bail!("data.validation_count needs data.task = \"sudoku\" or \"maze\" and a positive data.train_count");
        }
        // Before generating: a mismatch was found only once the set was built (a maze config generated for 50 s).
        let tokens = self.tokens_per_example();
        if (d.task == "maze" || d.task == "sudoku") && generated && tokens != self.model.io().seq_len {
            let field = if d.task == "maze" { "data.maze_size" } else { "data.sudoku_box" };
            bail!(
                "{field} gives puzzles of {tokens} tokens but model.seq_len is {}; set them to match",
                self.model.io().seq_len
            );
        }
        if d.task == "arc" {
            self.validate_arc()?;
        }
        if d.augmentations > MAX_AUGMENTATIONS {
            bail!("data.augmentations {} is more than {MAX_AUGMENTATIONS}", d.augmentations);
        }
        // Counts of 0 mean "all of a file", checked once read (`data::load`); generated counts are bounded here.
        let copies = augmented_copies(&d.task, d.augmentations) as u128;
        let examples = (d.train_count as u128) * copies + d.test_count as u128 + d.validation_count as u128;
        let tokens = examples * self.tokens_per_example() as u128;
        if tokens > MAX_DATA_TOKENS as u128 {
            bail!(
                "data.train_count {} x {copies} copies (data.augmentations {}) + data.test_count {} + \
                 data.validation_count {} examples of {} tokens is {tokens} tokens, more than {MAX_DATA_TOKENS}",
                d.train_count,
                d.augmentations,
                d.test_count,
                d.validation_count,
                self.tokens_per_example()
            );
        }
        Ok(())
    }

    /// Tokens of one example: a generated set's own size (a maze's `maze_size`^2, a Sudoku's cells), which
    /// `model.seq_len` must then match (`check_data`), else the model's `seq_len`.
    pub(crate) fn tokens_per_example(&self) -> usize {
        let d = &self.data;
        let generated = d.train_path.is_empty() || d.test_path.is_empty();
        match d.task.as_str() {
            "maze" if generated => d.maze_size * d.maze_size,
            "sudoku" if generated => BoxShape::parse(&d.sudoku_box).map_or(0, |s| s.cells()),
            _ => self.model.io().seq_len,
        }
    }
}

impl TrainConfig {
    /// ARC needs its sources and a canvas the model's sequence matches.
    fn validate_arc(&self) -> Result<()> {
        let d = &self.data;
        let max = loopgrad_puzzles::arc::MAX_SIDE;
        if !(1..=max).contains(&d.arc_canvas) {
            bail!("data.arc_canvas {} must be 1..={max}", d.arc_canvas);
        }
        let seq_len = self.model.io().seq_len;
        if seq_len != d.arc_canvas * d.arc_canvas {
            bail!(
                "model.seq_len {seq_len} must be data.arc_canvas squared ({0}x{0} = {1} tokens)",
                d.arc_canvas,
                d.arc_canvas * d.arc_canvas
            );
        }
        Ok(())
    }
}

/// The model's sizes are bounded by [`ModelConfig::validate`]; `run.eval_steps` shares its supervision-step bound.
pub use loopgrad_models::config::MAX_SUPERVISION_STEPS;
/// The most worker threads a run or a benchmark may ask for (spawning 100,000 threads hangs the machine): the
/// tensor crate's own bound, which `set_threads` enforces.
pub use loopgrad_tensor::parallel::MAX_THREADS;
/// The most elements of one activation [B, P + L, D] (8 GiB of f32; the paper's ARC batch holds 2^28.4).
pub const MAX_ACTIVATION_ELEMENTS: u128 = 1 << 31;
/// The most augmentations per training puzzle (TRM's Sudoku set uses 1000).
pub const MAX_AUGMENTATIONS: usize = 10_000;
/// The most tokens of generated data (inputs and labels take 2 bytes a token: 4 GiB).
pub const MAX_DATA_TOKENS: u64 = 1 << 31;

fn at_least_zero(name: &str, v: f64) -> Result<()> {
    if v >= 0.0 && v.is_finite() {
        Ok(())
    } else {
        bail!("{name} must be a non-negative number, got {v}")
    }
}

/// Training examples per puzzle once augmented: a Sudoku's `augmentations` and itself; for a maze, any
/// augmentation means its 8 dihedral images.
pub(crate) fn augmented_copies(task: &str, augmentations: usize) -> usize {
    match (task, augmentations) {
        ("maze", 0) => 1,
        ("maze", _) => 8,
        (_, a) => a + 1,
    }
}

/// One activation of a batch, [batch, P + L, D], must stay within [`MAX_ACTIVATION_ELEMENTS`]; `what` names
/// the batch-size field or flag.
pub fn check_batch(what: &str, batch: usize, model: &ModelConfig) -> Result<()> {
    let io = model.io();
    let elements = batch as u128 * io.positions() as u128 * io.hidden_size as u128;
    if elements > MAX_ACTIVATION_ELEMENTS {
        bail!(
            "{what} {batch}: one activation [{batch}, {}, {}] would hold {elements} elements, more than \
             {MAX_ACTIVATION_ELEMENTS}",
            io.positions(),
            io.hidden_size
        );
    }
    Ok(())
}

/// A `[MIN, MAX]` pair, refusing a list of another length: serde's fixed-size arrays stop reading after their
/// length, so a TOML file's `[1, 2, 3]` would pass as `[1, 2]`.
fn min_max<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<[usize; 2], D::Error> {
    let list = Vec::<usize>::deserialize(d)?;
    <[usize; 2]>::try_from(list).map_err(|l| serde::de::Error::invalid_length(l.len(), &"two numbers, [MIN, MAX]"))
}

/// Which field of a file's `[model]` table a failed read is about, as "model.FIELD: what is wrong". `[model]` is
/// told apart by its `arch` key, and serde reads such a table whole before it reads its fields, so the parser's
/// message points at the table's header and names no field ("invalid type: string \"16\", expected usize").
/// Each of the table's fields is put, alone, into a valid config of the same arch to find the one at fault.
fn model_field_at_fault(path: &Path) -> Option<String> {
    // Through `read_text`, which refuses a FIFO or device: opening a FIFO to read it blocks until a writer comes.
    let file: toml::Table = toml::from_str(&crate::rundir::read_text(path).ok()?).ok()?;
    let model = file.get("model")?.as_table()?;
    let arch = model.get("arch")?.as_str()?;
    let base = ["default", "sudoku6-hrm", "sudoku6-baseline"]
        .into_iter()
        .filter_map(crate::presets::get)
        .find(|c| c.model.arch() == arch)?;
    let tree = serde_json::to_value(&base).ok()?;
    model.iter().filter(|(key, _)| *key != "arch").find_map(|(key, value)| {
        let mut tree = tree.clone();
        tree["model"][key] = serde_json::to_value(value).ok()?;
        serde_json::from_value::<TrainConfig>(tree).err().map(|e| format!("model.{key}: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `smoke` preset with `--set` overrides, validated; the error message, or "" when it is valid.
    fn error_of(sets: &[&str]) -> String {
        let base = TrainConfig::preset("smoke").unwrap();
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        base.with_overrides(&sets).err().map(|e| format!("{e:#}")).unwrap_or_default()
    }

    #[test]
    fn values_that_panicked_hung_or_aborted_are_refused_by_field() {
        let cases = [
            (&["model.num_heads=0"][..], "model.num_heads must be at least 1"),
            (&["model.expansion=0.001"], "model.expansion 0.001 leaves no SwiGLU unit"),
            (&["model.expansion=-1"], "model.expansion must be in (0, 64]"),
            (&["model.hidden_size=99999999999"], "model.hidden_size 99999999999 is more than 65536"),
            (&["model.hidden_size=65536"], "weights"),
            (&["run.threads=100000"], "run.threads 100000 is more than 1024"),
            (&["run.eval_steps=100000000"], "run.eval_steps 100000000 is more than 10000"),
            (&["run.batch_size=100000000"], "run.batch_size 100000000: one activation"),
            (&["data.sudoku_givens=[100, 200]"], "data.sudoku_givens [100, 200] must be"),
            (&["data.task=maze"], "data.maze_size 0 must be 2..=64 to generate mazes"),
            (&["data.task=maze", "data.maze_size=10", "data.maze_min_route=101"], "data.maze_min_route 101"),
            (&["data.augmentations=100000000"], "data.augmentations 100000000 is more than 10000"),
            (&["data.train_count=1000000000"], "tokens, more than"),
            (&["data.train_count=2000000", "data.augmentations=1000"], "x 1001 copies"),
            (&["optim.dense.beta1=1"], "optim.dense.beta1 must be in [0, 1)"),
            (&["optim.dense.beta2=2"], "optim.dense.beta2 must be in [0, 1)"),
            (&["optim.dense.weight_decay=-1"], "optim.dense.weight_decay must be a non-negative number"),
            (&["optim.puzzle_emb_lr=-1"], "optim.puzzle_emb_lr must be a non-negative number"),
            (&["optim.schedule.min_ratio=5"], "optim.schedule.min_ratio must be in [0, 1]"),
            (&["optim.schedule.warmup_fraction=1"], "optim.schedule.warmup_fraction must be in [0, 1)"),
            (&["data.validation_count=10", "data.train_count=0"], "data.validation_count needs"),
            (&["model.halt_exploration_prob=2"], "model.halt_exploration_prob must be in [0, 1]"),
            (&["run.time_limit_s=-1"], "run.time_limit_s must be a non-negative number"),
        ];
        for (sets, expected) in cases {
            let err = error_of(sets);
            assert!(err.contains(expected), "{sets:?}: `{err}` lacks `{expected}`");
            assert!(err.starts_with(&format!("with {}: ", sets.join(", "))), "{sets:?}: `{err}` does not name them");
        }
    }

    /// Maze augmentation is the 8 dihedral images whatever the number: 3000 mazes with augmentations = 1000 are
    /// 24,000 examples, not 3 million.
    #[test]
    fn a_wrong_field_in_a_files_model_table_is_named() {
        let dir = std::env::temp_dir().join(format!("loopgrad-config-model-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (preset, field, bad, want) in [
            ("smoke", "hidden_size", "\"16\"", "model.hidden_size: invalid type: string \"16\", expected usize"),
            ("sudoku6-hrm", "h_cycles", "-1", "model.h_cycles: invalid value: integer `-1`, expected usize"),
        ] {
            let good = TrainConfig::preset(preset).unwrap().to_toml();
            let line = good.lines().find(|l| l.starts_with(&format!("{field} = "))).unwrap();
            let path = dir.join(format!("{preset}.toml"));
            std::fs::write(&path, good.replace(line, &format!("{field} = {bad}"))).unwrap();
            let err = TrainConfig::from_file(&path).unwrap_err().to_string();
            assert!(err.ends_with(&format!("invalid config: {want}")), "{err}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sudoku_givens_takes_exactly_two_numbers() {
        let good = TrainConfig::preset("default").unwrap().to_toml();
        let line = good.lines().find(|l| l.starts_with("sudoku_givens = ")).unwrap();
        for bad in ["[1, 2, 3]", "[1]"] {
            let err = toml::from_str::<TrainConfig>(&good.replace(line, &format!("sudoku_givens = {bad}")));
            assert!(err.unwrap_err().to_string().contains("two numbers, [MIN, MAX]"), "{bad}");
        }
        let c: TrainConfig = toml::from_str(&good.replace(line, "sudoku_givens = [20, 25]")).unwrap();
        assert_eq!(c.data.sudoku_givens, [20, 25]);
    }

    #[test]
    fn maze_augmentations_count_eight_images() {
        let sets = ["data.task=maze", "data.maze_size=30", "data.train_count=3000", "data.augmentations=1000"];
        let base = TrainConfig::preset("paper-trm-att-maze").unwrap();
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        overrides::apply(&base, &sets).unwrap().validate_limits().unwrap();
    }

    #[test]
    fn every_preset_is_within_the_limits() {
        for name in crate::presets::names() {
            let c = TrainConfig::preset(name).unwrap();
            c.validate_limits().unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
