//! ARC-AGI for the trainer, as TRM's `build_arc_dataset.py` builds it: the tasks of `data.arc_path` train whole,
//! the demonstrations of `data.test_path`'s tasks train and their test pairs are held out; every task gets the
//! identity and up to `data.augmentations` augmented versions, each its own puzzle identifier; training examples
//! are translated on the canvas, held-out ones are not. The puzzle-embedding table is sized from the data
//! ([`size_puzzle_table`]), after checking that it fits in memory.

use crate::config::{DataConfig, TrainConfig, MAX_DATA_TOKENS};
use crate::data::Datasets;
use anyhow::{anyhow, bail, Result};
use loopgrad_models::config::ModelConfig;
use loopgrad_puzzles::arc::dataset::task_fits;
use loopgrad_puzzles::arc::{build_datasets, load_path, ArcConfig, Task};
use std::collections::HashSet;
use std::path::Path;

/// Loads the ARC sources of `c` and builds the training and held-out sets.
pub fn load(c: &DataConfig) -> Result<Datasets> {
    if c.test_path.is_empty() {
        bail!("data.test_path: ARC needs the evaluation tasks (a directory, task file or Kaggle challenges file)");
    }
    let mut seen = HashSet::new();
    let mut duplicates = 0;
    let mut read = |paths: &[String], count: usize| -> Result<Vec<Task>> {
        let mut tasks = Vec::new();
        for path in paths {
            for task in load_path(Path::new(path)).map_err(|e| anyhow!("{e}"))? {
                // A task in two sources trains once, under its first source's role.
                if seen.insert(task.id.clone()) {
                    tasks.push(task);
                } else {
                    duplicates += 1;
                }
            }
        }
        if count > 0 {
            tasks.truncate(count);
        }
        Ok(tasks)
    };
    let test_tasks = read(std::slice::from_ref(&c.test_path), c.test_count)?;
    let train_tasks = read(&c.arc_path, c.train_count)?;
    let side = c.arc_canvas;
    check_tokens(&train_tasks, &test_tasks, c)?;
    let config = ArcConfig { augmentations: c.augmentations, translate: true, retries_factor: 5, seed: c.seed, side };
    let built = build_datasets(&train_tasks, &test_tasks, &config);
    let fitting = |tasks: &[Task]| tasks.iter().filter(|t| task_fits(t, side)).count();
    let (train_fit, test_fit) = (fitting(&train_tasks), fitting(&test_tasks));
    if test_fit == 0 {
        bail!(
            "data: none of the {} evaluation tasks of {} fits the {side}x{side} canvas (data.arc_canvas)",
            test_tasks.len(),
            c.test_path
        );
    }
    let description = format!(
        "ARC: {train_fit} training tasks + {test_fit} evaluation tasks on a {side}x{side} canvas, {} puzzle \
         identifiers ({} augmented versions), {} training examples, {} held-out test inputs x versions; {} tasks \
         skipped (a grid larger than the canvas){}",
        built.train.num_identifiers(),
        built.train.num_puzzles(),
        built.train.len(),
        built.test.len(),
        built.skipped.len(),
        if duplicates > 0 { format!(", {duplicates} duplicate task ids ignored") } else { String::new() }
    );
    Ok(Datasets {
        train: built.train,
        test: built.test,
        description,
        skipped: built.skipped,
        arc_test_tasks: built.test_tasks,
    })
}

/// The augmented training and held-out sets must stay within [`MAX_DATA_TOKENS`]; checked from the task sizes,
/// before anything is built (TRM's full ARC-AGI-1 recipe with 1000 augmentations is 3.4e9 tokens at 30x30).
fn check_tokens(train: &[Task], test: &[Task], c: &DataConfig) -> Result<()> {
    let side = c.arc_canvas;
    let pairs: usize =
        train.iter().chain(test).filter(|t| task_fits(t, side)).map(|t| t.train.len() + t.test.len()).sum();
    let tokens = pairs as u128 * (c.augmentations as u128 + 1) * (side * side) as u128;
    if tokens > MAX_DATA_TOKENS as u128 {
        bail!(
            "data: {pairs} ARC pairs x {} versions (data.augmentations + 1) x {} tokens (data.arc_canvas {side}) is \
             {tokens} tokens, more than {MAX_DATA_TOKENS}; lower data.augmentations, or use fewer tasks \
             (data.train_count, data.test_count)",
            c.augmentations + 1,
            side * side
        );
    }
    Ok(())
}

/// Bytes the puzzle-embedding table takes in training: `rows x hidden_size` f32 values and as many gradients
/// (the sparse optimizer keeps no other state, and EMA skips the table).
pub fn puzzle_table_bytes(rows: usize, hidden_size: usize) -> u128 {
    2 * 4 * rows as u128 * hidden_size as u128
}

/// Sets `model.num_puzzle_identifiers` to the ARC data's identifier count, refusing (naming the fields) a table
/// that would not fit in the memory this machine has available. Other tasks are left as they are.
pub fn size_puzzle_table(config: &mut TrainConfig, data: &Datasets) -> Result<()> {
    if config.data.task != "arc" {
        return Ok(());
    }
    let rows = data.train.num_identifiers();
    let d = config.model.io().hidden_size;
    let bytes = puzzle_table_bytes(rows, d);
    if let Some(available) = available_memory() {
        if bytes > available as u128 {
            bail!(
                "data: the puzzle-embedding table of {rows} identifiers (tasks x versions, data.augmentations {}) x \
                 model.hidden_size {d} takes {:.2} GB in f32 (values and gradients), more than the {:.2} GB this \
                 machine has available; lower data.augmentations or model.hidden_size, or train on fewer tasks",
                config.data.augmentations,
                bytes as f64 / 1e9,
                available as f64 / 1e9
            );
        }
    }
    match &mut config.model {
        ModelConfig::Trm(m) => m.num_puzzle_identifiers = rows,
        ModelConfig::Hrm(m) => m.num_puzzle_identifiers = rows,
        ModelConfig::Baseline(m) => m.num_puzzle_identifiers = rows,
    }
    config.model.validate().map_err(|e| anyhow!("{e} (set from the ARC data's {rows} puzzle identifiers)"))
}

/// `MemAvailable` of /proc/meminfo in bytes, where there is one.
fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_paper_table_costs_what_the_issue_says() {
        // About 1M augmented tasks x D 512 in f32: 2.0 GB of values, as much again of gradients.
        assert_eq!(puzzle_table_bytes(1_000_000, 512), 4_096_000_000);
    }
}
