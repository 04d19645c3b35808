//! `loopgrad info`: a preset's architecture and exact parameter count.

use anyhow::{anyhow, Result};
use loopgrad_models::config::ModelConfig;
use serde_json::json;

#[derive(clap::Args)]
pub struct InfoArgs {
    /// A model preset (e.g. trm-mlp-sudoku) or a training preset (e.g. default).
    #[arg(long, default_value = "default")]
    pub preset: String,
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
    let model = model_preset(&args.preset)?;
    let params = model.param_count();
    if args.json {
        let record = json!({
            "preset": args.preset, "arch": model.arch(), "params": params,
            "effective_depth": model.effective_depth(), "config": model,
        });
        println!("{record}");
    } else {
        println!("{}: {}", args.preset, model.summary());
    }
    Ok(())
}
