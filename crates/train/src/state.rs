//! Training checkpoints: the weights under their reference names plus everything a resumed run needs to
//! continue bit for bit (optimizer moments, EMA shadow, every slot's carry, example and step count, the
//! example stream's position, the RNG), in one safetensors file written atomically (see `docs/checkpoints.md`).

use crate::config::TrainConfig;
use crate::slots::{ExampleStream, Slots};
use crate::trainer::{stream_seed, Trainer};
use anyhow::{anyhow, Context, Result};
use loopgrad_models::io::PUZZLE_EMB;
use loopgrad_nn::checkpoint::{CheckpointError, CheckpointReader, CheckpointWriter, Policy};
use loopgrad_tensor::Rng;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The non-tensor training state, stored as JSON in the file's metadata under `train.state`.
#[derive(Serialize, Deserialize)]
struct State {
    step: u64,
    rng: [u64; 4],
    stream_epoch: u64,
    stream_offset: usize,
    slots: Slots,
    inputs: Vec<usize>,
    labels: Vec<usize>,
    puzzle_ids: Vec<usize>,
}

impl State {
    /// What serde cannot check: every per-slot list has one entry per slot and every token, label and puzzle id
    /// fits the model, so that a hand-edited or foreign `train.state` is an error here, not a panic in the step.
    fn check(&self, config: &TrainConfig, b: usize) -> Result<(), String> {
        let io = config.model.io();
        let l = io.seq_len;
        let s = &self.slots;
        if s.steps.len() != b || s.halted.len() != b {
            return Err(format!(
                "slots hold {} steps and {} halted flags for {b} slots",
                s.steps.len(),
                s.halted.len()
            ));
        }
        if self.inputs.len() != b * l || self.labels.len() != b * l {
            return Err(format!(
                "{} inputs and {} labels, expected {} ({b} slots of {l} tokens)",
                self.inputs.len(),
                self.labels.len(),
                b * l
            ));
        }
        let bad = |what: &str, list: &[usize], limit: usize| {
            list.iter().position(|&v| v >= limit).map(|i| format!("{what} {i} is {}, not below {limit}", list[i]))
        };
        // A slot halts at N_sup steps, so a saved count is at most N_sup; a larger one overflows the count.
        let max_steps = config.model.halt_max_steps();
        if let Some(i) = s.steps.iter().position(|&v| v as usize > max_steps) {
            return Err(format!("slot {i} has taken {} steps, more than N_sup = {max_steps}", s.steps[i]));
        }
        // The stream moves to the next epoch after this one: there must be one.
        if self.stream_epoch == u64::MAX {
            return Err(format!("stream_epoch {} leaves no next epoch", self.stream_epoch));
        }
        // xoshiro never leaves the all-zero state: `Rng::below` would then loop forever (a hang at the first
        // exploration draw of a resumed run).
        if self.rng == [0; 4] {
            return Err("rng is all zeros, a state the generator never leaves".into());
        }
        let first = bad("input token", &self.inputs, io.vocab_size)
            .or_else(|| bad("label", &self.labels, io.vocab_size))
            .or_else(|| bad("puzzle id", &self.puzzle_ids, io.num_puzzle_identifiers));
        first.map_or(Ok(()), Err)
    }
}

const OPTIM: &str = "train.optim.";
const EMA: &str = "train.ema.";
const CARRY: &str = "train.carry.";

impl Trainer {
    /// Writes a training checkpoint to `path` (atomically: a fresh temporary file, fsync, rename).
    pub fn save_checkpoint(&self, path: &Path) -> Result<()> {
        let store = &self.tape.params;
        let mut w = CheckpointWriter::with_params(store);
        self.dense.save_state(store, OPTIM, &mut w);
        if let Some(ema) = &self.ema {
            ema.save_state(store, EMA, &mut w);
        }
        let names: Vec<String> = (0..self.carry.states.len()).map(|i| format!("{CARRY}{i}")).collect();
        for (name, t) in names.iter().zip(&self.carry.states) {
            w.add_tensor(name.clone(), t);
        }
        w.set_json(
            "train.state",
            &State {
                step: self.step,
                rng: self.rng.state(),
                stream_epoch: self.stream.epoch,
                stream_offset: self.stream.offset,
                slots: self.slots.clone(),
                inputs: self.batch.inputs.clone(),
                labels: self.batch.labels.clone(),
                puzzle_ids: self.batch.puzzle_ids.clone(),
            },
        );
        w.set_json("config", &self.config);
        // Through the one atomic writer: a fresh temporary file that never follows a link (docs/run-directories.md).
        loopgrad_tensor::atomic_file::write_atomically_with(path, |file| {
            let mut out = std::io::BufWriter::new(file);
            w.write_to(&mut out)?;
            std::io::Write::flush(&mut out)
        })
        .with_context(|| format!("{}: cannot write", path.display()))
    }

    /// The config a training checkpoint was written with.
    pub fn checkpoint_config(path: &Path) -> Result<TrainConfig> {
        let r = CheckpointReader::open(path).map_err(|e| anyhow!("{e}"))?;
        r.json("config").map_err(|e| anyhow!("{e}"))
    }

    /// Restores a training checkpoint written by [`Trainer::save_checkpoint`] into a trainer built with the
    /// same config and training set size.
    pub fn load_checkpoint(&mut self, path: &Path, train_len: usize) -> Result<()> {
        let err = |e: loopgrad_nn::checkpoint::CheckpointError| anyhow!("{e}");
        let mut r = CheckpointReader::open(path).map_err(err)?;
        check_layout(&r, &self.config).map_err(err)?;
        r.load_params(&mut self.tape.params, Policy::Error).map_err(err)?;
        self.dense.load_state(&self.tape.params, OPTIM, &mut r).map_err(err)?;
        if let Some(ema) = &mut self.ema {
            ema.load_state(&self.tape.params, EMA, &mut r).map_err(err)?;
        }
        let state: State = r.json("train.state").map_err(err)?;
        let b = self.config.run.batch_size;
        if state.slots.len() != b || state.puzzle_ids.len() != b {
            return Err(anyhow!("{}: saved with {} slots, the config asks for {b}", path.display(), state.slots.len()));
        }
        state.check(&self.config, b).map_err(|e| anyhow!("{}: metadata `train.state`: {e}", path.display()))?;
        for (i, t) in self.carry.states.iter_mut().enumerate() {
            r.read_into(&format!("{CARRY}{i}"), t).map_err(err)?;
        }
        r.json::<serde_json::Value>("config").map_err(err)?;
        r.finish(Policy::Error).map_err(err)?;
        self.step = state.step;
        self.rng = Rng::from_state(state.rng);
        self.stream = ExampleStream::at(train_len, stream_seed(&self.config), state.stream_epoch, state.stream_offset);
        self.slots = state.slots;
        self.batch.inputs = state.inputs;
        self.batch.labels = state.labels;
        self.batch.puzzle_ids = state.puzzle_ids;
        Ok(())
    }
}

/// Reads a run directory's newest checkpoint config, naming the file on failure. The checkpoint's tensors are
/// checked against that config from the header alone (see [`check_layout`]), so that a small file whose
/// config claims a huge model is refused before anything of that size is allocated.
pub fn resume_config(run_dir: &Path) -> Result<TrainConfig> {
    let path = run_dir.join(crate::rundir::CHECKPOINT_FILE);
    let read = || -> Result<TrainConfig> {
        let r = CheckpointReader::open(&path).map_err(|e| anyhow!("{e}"))?;
        let config: TrainConfig = r.json("config").map_err(|e| anyhow!("{e}"))?;
        // The model's ranges first: its manifest is listed from them.
        config.model.validate().map_err(|e| anyhow!("{}: metadata `config`: {e}", path.display()))?;
        check_layout(&r, &config).map_err(|e| anyhow!("{e}"))?;
        Ok(config)
    };
    read().with_context(|| format!("cannot resume from {}", run_dir.display()))
}

/// The step a run directory's checkpoint was saved at.
pub fn checkpoint_step(run_dir: &Path) -> Result<u64> {
    #[derive(Deserialize)]
    struct Step {
        step: u64,
    }
    let path = run_dir.join(crate::rundir::CHECKPOINT_FILE);
    let read = || -> Result<u64> {
        let r = CheckpointReader::open(&path).map_err(|e| anyhow!("{e}"))?;
        Ok(r.json::<Step>("train.state").map_err(|e| anyhow!("{e}"))?.step)
    };
    read().with_context(|| format!("cannot resume from {}", run_dir.display()))
}

/// Refuses `--set` overrides that would make a resumed run something other than the continuation of the run it
/// resumes: another training set or data seed (`data.*`), another model (`model.*`, except the products'
/// precision `model.forward_dtype`), another seed for the example stream and RNG (`run.seed`), or an end before
/// the step the checkpoint reached (`run.steps` equal to it only evaluates). Everything else may change: the run's
/// length, the rates, evaluation, threads.
pub fn check_resume_overrides(stored: &TrainConfig, resumed: &TrainConfig, step: u64) -> Result<()> {
    let (before, after) = (serde_json::to_value(stored)?, serde_json::to_value(resumed)?);
    let mut changed = Vec::new();
    changed_leaves(&before, &after, "", &mut changed);
    let fixed = |key: &str| {
        (key.starts_with("data.") || key.starts_with("model.") || key == "run.seed") && key != "model.forward_dtype"
    };
    if let Some((key, old, new)) = changed.into_iter().find(|(key, _, _)| fixed(key)) {
        anyhow::bail!(
            "--set {key}={new}: a resumed run keeps the checkpoint's {key} ({old}): it continues that run, on its \
             data, model and seeds; start a new run (without --resume) to change it"
        );
    }
    if resumed.run.steps < step {
        anyhow::bail!(
            "--set run.steps={}: the checkpoint is at step {step} already; a resumed run continues to a later step \
             (or to the same one, to evaluate again)",
            resumed.run.steps
        );
    }
    Ok(())
}

/// The dotted keys whose leaf values differ between two JSON trees of the same config, with both values.
fn changed_leaves(a: &serde_json::Value, b: &serde_json::Value, prefix: &str, out: &mut Vec<(String, String, String)>) {
    match (a, b) {
        (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
            for key in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                let null = serde_json::Value::Null;
                changed_leaves(x.get(key).unwrap_or(&null), y.get(key).unwrap_or(&null), &path, out);
            }
        }
        _ if a != b => out.push((prefix.to_string(), a.to_string(), b.to_string())),
        _ => {}
    }
}

/// Checks that a training checkpoint holds, with the shapes `config` gives them and a float dtype, every weight
/// and, for each weight the dense optimizer trains, its two moments and (with EMA on) its EMA copy. Reads the
/// header only.
pub fn check_layout(r: &CheckpointReader, config: &TrainConfig) -> Result<(), CheckpointError> {
    config.model.check_weights(r)?;
    let manifest = config.model.manifest();
    for e in manifest.entries.iter().filter(|e| e.trainable && e.name != PUZZLE_EMB) {
        r.check_layout(&format!("{OPTIM}exp_avg.{}", e.name), &e.shape)?;
        r.check_layout(&format!("{OPTIM}exp_avg_sq.{}", e.name), &e.shape)?;
        if config.optim.ema > 0.0 {
            r.check_layout(&format!("{EMA}{}", e.name), &e.shape)?;
        }
    }
    Ok(())
}
