//! ARC-AGI for the trainer, as TRM's `build_arc_dataset.py` builds it: the tasks of `data.arc_path` train whole,
//! the demonstrations of `data.test_path`'s tasks train and their test pairs are held out; every task gets the
//! identity and up to `data.augmentations` augmented versions, each its own puzzle identifier; training examples
//! are translated on the canvas, held-out ones are not. The puzzle-embedding table is sized from the data
//! ([`size_puzzle_table`]), after checking that it fits in memory. After training, the held-out predictions are
//! voted over the versions and scored as the paper scores ARC ([`pass_at_1_2`]).

use crate::config::{DataConfig, TrainConfig, MAX_DATA_TOKENS};
use crate::data::Datasets;
use crate::eval::Predictions;
use crate::memory::{available_memory, mib};
use anyhow::{anyhow, bail, Result};
use loopgrad_models::config::ModelConfig;
use loopgrad_puzzles::arc::dataset::task_fits;
use loopgrad_puzzles::arc::{build_datasets, load_path, ArcConfig, ArcEvaluator, Task};
use loopgrad_puzzles::ExampleSet;
use serde::{Deserialize, Serialize};
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

/// The paper's ARC score of a held-out evaluation (pass@2; pass@1 beside it), as `train` prints it and the final
/// `eval` record of an ARC run's `metrics.jsonl` carries it. A task scores the share of its test inputs whose true
/// output is among the top k voted candidates; pass@k is the mean over the tasks with known outputs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArcPass {
    /// Evaluation tasks scored, and their test inputs.
    pub tasks: usize,
    pub test_inputs: usize,
    pub pass_at_1: f64,
    pub pass_at_2: f64,
    /// Test inputs solved at k = 1 and at k = 2.
    pub solved_at_1: usize,
    pub solved_at_2: usize,
}

impl ArcPass {
    /// One line: `pass@2 1.95% (3 of 88 test inputs), pass@1 ... over 77 tasks`.
    pub fn describe(&self) -> String {
        format!(
            "pass@2 {:.2}% ({} of {} test inputs), pass@1 {:.2}% ({} of {}), over {} tasks",
            100.0 * self.pass_at_2,
            self.solved_at_2,
            self.test_inputs,
            100.0 * self.pass_at_1,
            self.solved_at_1,
            self.test_inputs,
            self.tasks
        )
    }
}

/// The votes of `predictions` (of the first examples of `set`, in order), each weighted by its halt confidence,
/// sigmoid(q_halt), as TRM's `evaluators/arc.py` weighs them. `set` is a test set built with `tasks`.
pub fn vote<'a>(set: &'a ExampleSet, tasks: &'a [Task], predictions: &Predictions) -> Result<ArcEvaluator<'a>> {
    let mut evaluator = ArcEvaluator::new(set, tasks);
    for (i, (tokens, &q)) in predictions.tokens.iter().zip(&predictions.q_halt).enumerate() {
        evaluator.record(i, tokens, 1.0 / (1.0 + (-q).exp())).map_err(|e| anyhow!("held-out example {i}: {e}"))?;
    }
    Ok(evaluator)
}

/// [`vote`], then pass@1 and pass@2.
pub fn pass_at_1_2(set: &ExampleSet, tasks: &[Task], predictions: &Predictions) -> Result<ArcPass> {
    let scores = vote(set, tasks, predictions)?.scores(&[1, 2]);
    Ok(ArcPass {
        tasks: scores.per_task.len(),
        test_inputs: scores.test_inputs,
        pass_at_1: scores.overall[0],
        pass_at_2: scores.overall[1],
        solved_at_1: scores.solved[0],
        solved_at_2: scores.solved[1],
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

/// Sets `model.num_puzzle_identifiers` to the ARC data's identifier count, then checks the run's whole memory
/// estimate (`crate::memory`) with that table and the data's examples against the memory this machine has
/// available, refusing it naming the fields. Other tasks are left as they are (their estimate was checked by
/// `validate()` from the config alone).
pub fn size_puzzle_table(config: &mut TrainConfig, data: &Datasets) -> Result<()> {
    if config.data.task != "arc" {
        return Ok(());
    }
    let rows = data.train.num_identifiers();
    match &mut config.model {
        ModelConfig::Trm(m) => m.num_puzzle_identifiers = rows,
        ModelConfig::Hrm(m) => m.num_puzzle_identifiers = rows,
        ModelConfig::Baseline(m) => m.num_puzzle_identifiers = rows,
    }
    config.model.validate().map_err(|e| anyhow!("{e} (set from the ARC data's {rows} puzzle identifiers)"))?;
    check_memory(config, data.train.len() + data.test.len(), available_memory())
}

/// Refuses an ARC run whose memory estimate with `examples` built examples (and the puzzle table already sized)
/// exceeds `available` bytes; `None` (unknown) refuses nothing.
fn check_memory(config: &TrainConfig, examples: usize, available: Option<u64>) -> Result<()> {
    let Some(available) = available else { return Ok(()) };
    let need = config.memory_estimate_with_examples(examples);
    if need.total() > available {
        let io = config.model.io();
        bail!(
            "data: with the ARC data's puzzle-embedding table of {} identifiers (tasks x versions, \
             data.augmentations {}) x model.hidden_size {} and its {examples} examples, this run needs about {} of \
             memory, more than the {} available; lower data.augmentations or model.hidden_size, or train on fewer \
             tasks (data.train_count, data.test_count)",
            io.num_puzzle_identifiers,
            config.data.augmentations,
            io.hidden_size,
            need.summary(),
            mib(available)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use loopgrad_puzzles::arc::canvas::encode;
    use loopgrad_puzzles::arc::{Grid, Pair, TestPair};

    #[test]
    fn pass_at_1_2_votes_the_predictions_over_the_versions() {
        // Two evaluation tasks, one test input each; the output is the input with every cell one colour up.
        let task = |id: &str, cells: Vec<u8>| {
            let up = |g: &[u8]| Grid::new(2, 2, g.iter().map(|c| c + 1).collect());
            Task {
                id: id.into(),
                train: vec![Pair { input: Grid::new(2, 2, vec![1, 2, 3, 4]), output: up(&[1, 2, 3, 4]) }],
                test: vec![TestPair { input: Grid::new(2, 2, cells.clone()), output: Some(up(&cells)) }],
            }
        };
        let tasks = [task("t0", vec![1, 1, 2, 2]), task("t1", vec![3, 4, 5, 6])];
        let config = ArcConfig { augmentations: 3, translate: false, retries_factor: 5, seed: 7, side: 4 };
        let d = build_datasets(&[], &tasks, &config);
        let labels = Predictions {
            tokens: (0..d.test.len()).map(|i| d.test.labels(i).to_vec()).collect(),
            q_halt: vec![0.0; d.test.len()],
        };
        let all = pass_at_1_2(&d.test, &d.test_tasks, &labels).unwrap();
        let want = ArcPass { tasks: 2, test_inputs: 2, pass_at_1: 1.0, pass_at_2: 1.0, solved_at_1: 2, solved_at_2: 2 };
        assert_eq!(all, want);
        // Task t1 answered with one fixed canvas: undone under each version's colours, it is never t1's output.
        let mut half = labels.clone();
        for i in 0..d.test.len() {
            if d.test.identifier_name(d.test.puzzle_id(i)).starts_with("t1") {
                half.tokens[i] = encode(&Grid::new(1, 1, vec![9]), 4, 0, 0);
            }
        }
        let half = pass_at_1_2(&d.test, &d.test_tasks, &half).unwrap();
        assert_eq!((half.pass_at_1, half.pass_at_2, half.solved_at_1, half.solved_at_2), (0.5, 0.5, 1, 1));
        assert!(half.describe().starts_with("pass@2 50.00% (1 of 2 test inputs), pass@1 50.00% (1 of 2)"));
    }

    /// `paper-trm-att-arc` with its table sized for `rows` identifiers.
    fn paper_with_rows(rows: usize) -> TrainConfig {
        let mut c = TrainConfig::preset("paper-trm-att-arc").unwrap();
        match &mut c.model {
            ModelConfig::Trm(m) => m.num_puzzle_identifiers = rows,
            other => panic!("paper-trm-att-arc is TRM, got {}", other.arch()),
        }
        c
    }

    #[test]
    fn the_paper_table_costs_what_the_issue_says_and_counts_in_the_run_estimate() {
        // About 1M augmented tasks x D 512 in f32: 2.0 GB of values, as much again of gradients.
        let (small, paper) = (paper_with_rows(1), paper_with_rows(1_000_000));
        assert_eq!(paper.memory_estimate().puzzle_table, 4_096_000_000);
        let grown = paper.memory_estimate().total() - small.memory_estimate().total();
        assert_eq!(grown, 4_096_000_000 - 8 * 512, "only the table grows with the identifiers");
    }

    #[test]
    fn a_table_beyond_the_available_memory_is_refused_naming_the_fields() {
        let c = paper_with_rows(960 * 1001 + 1);
        let need = c.memory_estimate_with_examples(1000).total();
        check_memory(&c, 1000, Some(need)).unwrap();
        check_memory(&c, 1000, None).unwrap();
        let err = check_memory(&c, 1000, Some(need - 1)).unwrap_err().to_string();
        for field in ["960961 identifiers", "data.augmentations 1000", "model.hidden_size 512", "puzzle table 3754 MiB"]
        {
            assert!(err.contains(field), "{field:?} missing from: {err}");
        }
        // The examples count too: 2 (L + 2) bytes each (inputs, labels, a puzzle index).
        let more = c.memory_estimate_with_examples(2000).total() - need;
        assert_eq!(more, 1000 * (2 * 900 + 4));
    }
}
