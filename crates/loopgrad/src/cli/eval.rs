//! `loopgrad eval`: scores any checkpoint (a loopgrad run's, or weights saved by the PyTorch reference) on a
//! puzzle file, running every example exactly `--steps` supervision steps. ARC (voting, pass@K, submission files,
//! shards) is in [`super::eval_arc`].

use crate::cli::info::model_preset;
use anyhow::{anyhow, bail, Result};
use loopgrad_autograd::Tape;
use loopgrad_models::config::ModelConfig;
use loopgrad_models::Model;
use loopgrad_nn::checkpoint::{CheckpointReader, Policy, STATE_PREFIX};
use loopgrad_train::config::MAX_SUPERVISION_STEPS;
use loopgrad_train::{data, evaluate, TrainConfig};
use serde_json::json;
use std::path::{Path, PathBuf};

/// Where a model comes from: a checkpoint, and its architecture (from the checkpoint, a preset or a config).
#[derive(clap::Args)]
pub struct ModelSource {
    /// A safetensors checkpoint: a run's checkpoint.safetensors, or reference-named weights from PyTorch.
    /// Required, except by `eval --collect` (which merges votes and loads no model).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// The architecture, as a model or training preset (needed when the checkpoint carries no config).
    #[arg(long, conflicts_with = "config")]
    pub preset: Option<String>,
    /// The architecture, as a TOML training config.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Override a model field of the architecture, e.g. `--set model.hidden_size=16` (as `train --set`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Use the live weights even when the checkpoint holds an EMA of them.
    #[arg(long)]
    pub live_weights: bool,
}

#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("checkpoint_or_collect").args(["checkpoint", "collect"]).multiple(true).required(true))]
pub struct EvalArgs {
    #[command(flatten)]
    pub model: ModelSource,
    /// Puzzles to evaluate on: a Sudoku or Maze CSV (the format of `loopgrad data`); for ARC the evaluation
    /// tasks (a directory of task JSON, a task file, or a Kaggle `*_challenges.json`).
    #[arg(long)]
    pub data: PathBuf,
    /// sudoku, maze or arc.
    #[arg(long)]
    pub task: String,
    /// Supervision steps per example (default: the model's halt_max_steps).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Evaluate only the first N examples.
    #[arg(long, default_value_t = 0)]
    pub limit: usize,
    /// Examples per batch.
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub arc: super::eval_arc::ArcArgs,
}

/// A model with its weights loaded.
pub struct Loaded {
    pub config: ModelConfig,
    pub model: Model,
    pub tape: Tape<f32>,
    /// Whether the weights are the checkpoint's EMA (else its live weights).
    pub ema: bool,
}

impl Loaded {
    /// A training config around the model, for [`loopgrad_train::trainer::check_data`].
    pub fn train_config(&self) -> TrainConfig {
        TrainConfig { model: self.config.clone(), ..loopgrad_train::presets::get("default").expect("default preset") }
    }
}

/// Reads the architecture and the weights (the EMA where the checkpoint has one, unless `--live-weights`).
pub fn load_model(source: &ModelSource) -> Result<Loaded> {
    load_model_sized(source, None)
}

/// [`load_model`], with `puzzle_rows` (ARC: the identifier table's length) sizing the puzzle-embedding table,
/// which presets leave at 1.
pub fn load_model_sized(source: &ModelSource, puzzle_rows: Option<usize>) -> Result<Loaded> {
    let err = |e: loopgrad_nn::checkpoint::CheckpointError| anyhow!("{e}");
    let checkpoint = source.checkpoint.as_deref().ok_or_else(|| anyhow!("--checkpoint is required"))?;
    crate::cli::check_input_file("--checkpoint", checkpoint)?;
    let mut reader = CheckpointReader::open(checkpoint).map_err(err)?;
    let (mut config, origin) = architecture(source, &reader)?;
    if !source.sets.is_empty() {
        let whole = TrainConfig { model: config, ..loopgrad_train::presets::get("default").expect("default preset") };
        let sets = &source.sets;
        if let Some(bad) = sets.iter().find(|s| !s.starts_with("model.")) {
            bail!("--set {bad}: eval takes model fields only (model.KEY=VALUE)");
        }
        config = loopgrad_train::overrides::apply(&whole, sets)?.model;
    }
    if let Some(rows) = puzzle_rows {
        match &mut config {
            ModelConfig::Trm(m) => m.num_puzzle_identifiers = rows,
            ModelConfig::Hrm(m) => m.num_puzzle_identifiers = rows,
            ModelConfig::Baseline(m) => m.num_puzzle_identifiers = rows,
        }
    }
    config.validate().map_err(|e| anyhow!("{origin}: {e}"))?;
    // From the header alone, before the model (whose size the file's own config may give) is allocated.
    config.check_weights(&reader).map_err(err)?;
    let (model, store) = Model::build::<f32>(&config, 0);
    let mut tape = Tape::new(store);
    // Evaluated in the precision the model trained in (`model.forward_dtype`), as the reference evaluates.
    tape.set_precision(config.forward_dtype().precision());
    reader.load_params(&mut tape.params, Policy::Error).map_err(err)?;
    let mut ema = false;
    if !source.live_weights {
        for p in tape.params.ids().collect::<Vec<_>>() {
            let name = format!("{STATE_PREFIX}ema.{}", tape.params.name(p));
            if reader.contains(&name) {
                reader.read_into(&name, tape.params.value_mut(p)).map_err(err)?;
                ema = true;
            }
        }
    }
    reader.skip_prefix(STATE_PREFIX);
    let unexpected = reader.finish(Policy::Ignore).map_err(err)?;
    if !unexpected.is_empty() {
        eprintln!(
            "note: {} ignored tensors in {}: {}",
            unexpected.len(),
            checkpoint.display(),
            loopgrad_nn::checkpoint::summarize_names(&unexpected)
        );
    }
    Ok(Loaded { config, model, tape, ema })
}

pub fn run(args: EvalArgs) -> Result<()> {
    crate::cli::use_threads(0)?;
    loopgrad_train::overrides::check_name("--task", &args.task, ["sudoku", "maze", "arc"])?;
    if let Some(steps) = args.steps.filter(|&s| s > MAX_SUPERVISION_STEPS) {
        bail!("--steps {steps} is more than {MAX_SUPERVISION_STEPS}");
    }
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    if args.task == "arc" {
        return super::eval_arc::run(&args);
    }
    super::eval_arc::refuse_arc_flags(&args.arc)?;
    let loaded = load_model(&args.model)?;
    let set = data::load_test_file(&args.task, &args.data, args.limit)?;
    loopgrad_train::trainer::check_data(
        &loaded.train_config(),
        &set,
        &format!("{} ({})", args.data.display(), args.task),
    )?;
    let Loaded { config, model, mut tape, ema } = loaded;
    let steps = args.steps.unwrap_or(config.halt_max_steps());
    if steps == 0 {
        bail!("--steps must be at least 1");
    }
    let batch_size = args.batch_size.clamp(1, set.len().max(1));
    loopgrad_train::config::check_batch("--batch-size", batch_size, &config)?;
    let (result, predictions) = evaluate(&model, &mut tape, &set, 0, steps, batch_size);
    let valid_shortest = (args.task == "maze").then(|| maze_valid_shortest(&set, &predictions.tokens));
    if args.json {
        let mut record = serde_json::to_value(&result)?;
        if let Some(v) = valid_shortest {
            record["valid_shortest_accuracy"] = json!(v);
        }
        record["checkpoint"] = json!(args.model.checkpoint.as_deref().unwrap_or(Path::new("")).display().to_string());
        record["data"] = json!(args.data.display().to_string());
        record["ema_weights"] = json!(ema);
        println!("{record}");
    } else {
        println!(
            "{}: exact {:.2}%, token {:.2}%, loss {:.6} on {} examples, {} supervision steps ({} weights)",
            args.data.display(),
            100.0 * result.exact_accuracy,
            100.0 * result.token_accuracy,
            result.loss,
            result.examples,
            result.steps,
            if ema { "EMA" } else { "live" }
        );
        if let Some(v) = valid_shortest {
            println!("valid and shortest paths: {:.2}%", 100.0 * v);
        }
    }
    Ok(())
}

/// The fraction of mazes whose predicted path is valid and as short as the shortest one (shortest paths are
/// not unique, so exact match undercounts).
fn maze_valid_shortest(set: &loopgrad_puzzles::ExampleSet, predictions: &[Vec<u8>]) -> f64 {
    use loopgrad_puzzles::maze;
    let size = maze::side_of(set.seq_len()).unwrap_or(0);
    let good = predictions
        .iter()
        .enumerate()
        .filter(|(i, p)| {
            let question = maze::from_tokens(set.inputs(*i));
            maze::valid_shortest_path(&question, &maze::from_tokens(p), size)
        })
        .count();
    good as f64 / predictions.len().max(1) as f64
}

/// --config, else --preset, else the config stored in the checkpoint; with where it came from, for messages.
fn architecture(args: &ModelSource, reader: &CheckpointReader) -> Result<(ModelConfig, String)> {
    if let Some(path) = &args.config {
        return Ok((TrainConfig::from_file(path)?.model, path.display().to_string()));
    }
    if let Some(name) = &args.preset {
        return Ok((model_preset(name)?, format!("--preset {name}")));
    }
    let checkpoint = args.checkpoint.as_deref().unwrap_or(Path::new("")).display();
    if !reader.metadata().contains_key("config") {
        bail!(
            "{checkpoint}: the checkpoint carries no loopgrad config; name the architecture with --preset or --config"
        );
    }
    match reader.json::<TrainConfig>("config") {
        Ok(c) => Ok((c.model, format!("{checkpoint}: metadata `config`"))),
        Err(e) => bail!("{e}; name the architecture with --preset or --config"),
    }
}
