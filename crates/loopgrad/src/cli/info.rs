//! `loopgrad info`: a preset's architecture and exact parameter count, and for a training preset or config the
//! memory a run needs (`loopgrad_train::memory`).

use anyhow::{anyhow, bail, Result};
use loopgrad_models::config::ModelConfig;
use serde_json::json;

#[derive(clap::Args)]
pub struct InfoArgs {
    /// A model preset (e.g. trm-mlp-sudoku) or a training preset (e.g. default).
    #[arg(long, default_value = "default", conflicts_with = "config")]
    pub preset: String,
    /// A training config as TOML (its model, and the memory its run needs).
    #[arg(long)]
    pub config: Option<std::path::PathBuf>,
    /// Override one field of the training preset or config by dotted path, as `train --set` does (e.g.
    /// `--set run.batch_size=4`); the estimate is printed even when it is more than this machine has.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Print one JSON object (with a `params` field) instead of text.
    #[arg(long)]
    pub json: bool,
    /// List every preset.
    #[arg(long)]
    pub list: bool,
}

/// A model config from a model preset or a training preset's model.
pub fn model_preset(name: &str) -> Result<ModelConfig> {
    if let Some(c) = loopgrad_train::presets::get(name) {
        return Ok(c.model);
    }
    loopgrad_models::presets::get(name).map_err(|_| {
        anyhow!(
            "unknown preset {name:?}; model presets: {}; training presets: {}",
            loopgrad_models::presets::names().join(", "),
            loopgrad_train::presets::names().join(", ")
        )
    })
}

pub fn run(args: InfoArgs) -> Result<()> {
    if args.list {
        let models = loopgrad_models::presets::names();
        let trains = loopgrad_train::presets::names();
        if args.json {
            println!("{}", json!({"model_presets": models, "training_presets": trains}));
        } else {
            println!("model presets:    {}", models.join(", "));
            println!("training presets: {}", trains.join(", "));
        }
        return Ok(());
    }
    // A training preset or config has a run (batch, data) to estimate the memory of; a model preset alone not.
    let (name, mut model, mut training) = match &args.config {
        Some(path) => {
            // Its ranges are checked on reading; the memory check is not: an estimate beyond this machine is fine.
            let c = loopgrad_train::TrainConfig::from_file(path)?;
            (path.display().to_string(), c.model.clone(), Some(c))
        }
        None => (args.preset.clone(), model_preset(&args.preset)?, loopgrad_train::presets::get(&args.preset)),
    };
    if !args.sets.is_empty() {
        let Some(c) = &training else {
            bail!("--set: {name} is a model preset; overrides need a training preset or --config");
        };
        // The limits only, not the memory check: printing an estimate beyond this machine is the point.
        let c = loopgrad_train::overrides::apply(c, &args.sets)?;
        c.validate_limits().map_err(|e| anyhow!("with {}: {e}", args.sets.join(", ")))?;
        model = c.model.clone();
        training = Some(c);
    }
    let memory = training.as_ref().map(|c| c.memory_estimate());
    let params = model.param_count();
    if args.json {
        let record = json!({
            "preset": name, "arch": model.arch(), "params": params,
            "effective_depth": model.effective_depth(), "config": model,
            "memory_bytes": memory.map(|m| m.total()), "memory": memory,
        });
        println!("{record}");
    } else {
        println!("{name}: {}", model.summary());
        match memory {
            Some(m) => {
                println!("memory to train: about {}", m.summary());
                if training.as_ref().is_some_and(|c| c.data.task == "arc") {
                    println!("  (ARC: the puzzle table and examples are sized from the tasks and checked at load)");
                }
            }
            None => println!("memory to train: depends on the run (batch, data); see a training preset or --config"),
        }
    }
    Ok(())
}
