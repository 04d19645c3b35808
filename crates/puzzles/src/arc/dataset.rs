//! TRM's ARC training split and test set (`dataset/build_arc_dataset.py`).
//!
//! - **Training set**: every demonstration and test pair of the training tasks, and the demonstration pairs of
//!   the test tasks. One group per task; one puzzle per augmented version of it, each with its own identifier
//!   (its TRM name); one example per pair. Examples are translated to a random canvas position, except one
//!   random example per puzzle that stays at the corner.
//! - **Test set**: the test pairs of the test tasks, one group per task, one puzzle per augmented version under
//!   the *same* identifier as that version's demonstrations in the training set. Never translated (the
//!   evaluator's crop assumes the corner). Unknown outputs (Kaggle without solutions) become all-PAD labels.
//! - **Augmentation**: the identity plus up to `augmentations` random [`Augmentation`]s per task, each applied to
//!   all of the task's grids; a version whose set of pairs equals an earlier version's is rejected, and at most
//!   `5 * augmentations` draws are made (TRM's retry factor), so tasks with symmetries may get fewer.

use super::augment::Augmentation;
use super::canvas::{encode_pair, SEQ_LEN, VOCAB_SIZE};
use super::{Grid, Task};
use crate::example_set::{ExampleSet, ExampleSetBuilder, Identifiers};
use crate::rng::Rng;
use std::collections::HashSet;

/// Build settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArcConfig {
    /// Augmented versions per task besides the original (TRM: 1000).
    pub augmentations: usize,
    /// Translate training examples (TRM: yes).
    pub translate: bool,
    /// Draws per wanted augmentation before giving up on duplicates (TRM: 5).
    pub retries_factor: usize,
    pub seed: u64,
}

impl Default for ArcConfig {
    fn default() -> Self {
        ArcConfig { augmentations: 1000, translate: true, retries_factor: 5, seed: 42 }
    }
}

/// The training and test sets, sharing one identifier table.
pub struct ArcDatasets {
    pub train: ExampleSet,
    pub test: ExampleSet,
    /// The test tasks, for the evaluator's references.
    pub test_tasks: Vec<Task>,
}

/// The distinct augmentations of `task`: the identity first, then random ones whose pair sets are new.
pub fn task_augmentations(task: &Task, config: &ArcConfig, rng: &mut Rng) -> Vec<Augmentation> {
    let key = |aug: &Augmentation| {
        let grid_key = |g: &Grid| {
            let g = aug.apply(g);
            let mut k = vec![g.rows as u8, g.cols as u8];
            k.extend_from_slice(&g.cells);
            k
        };
        let mut pairs: Vec<Vec<u8>> = task
            .train
            .iter()
            .map(|p| (&p.input, Some(&p.output)))
            .chain(task.test.iter().map(|p| (&p.input, p.output.as_ref())))
            .map(|(i, o)| {
                let mut k = grid_key(i);
                k.push(255);
                k.extend(o.map(grid_key).unwrap_or_default());
                k
            })
            .collect();
        pairs.sort();
        pairs
    };
    let mut seen = HashSet::from([key(&Augmentation::IDENTITY)]);
    let mut out = vec![Augmentation::IDENTITY];
    for _ in 0..config.retries_factor * config.augmentations {
        if out.len() > config.augmentations {
            break;
        }
        let aug = Augmentation::random(rng);
        if seen.insert(key(&aug)) {
            out.push(aug);
        }
    }
    out
}

/// Build TRM's training and test sets from `train_tasks` (all pairs train) and `test_tasks` (demonstrations
/// train, test pairs test). Task `i` of the concatenated list draws from `Rng::for_item(seed, i)`.
pub fn build_datasets(train_tasks: &[Task], test_tasks: &[Task], config: &ArcConfig) -> ArcDatasets {
    let mut ids = Identifiers::new();
    let mut train = ExampleSetBuilder::new(SEQ_LEN, VOCAB_SIZE);
    let mut test = ExampleSetBuilder::new(SEQ_LEN, VOCAB_SIZE);
    let tasks = train_tasks.iter().map(|t| (t, false)).chain(test_tasks.iter().map(|t| (t, true)));
    for (index, (task, is_test)) in tasks.enumerate() {
        let mut rng = Rng::for_item(config.seed, index as u64);
        let augs = task_augmentations(task, config, &mut rng);
        // The training examples of this task, as (input, output) grid pairs.
        let mut demos: Vec<(&Grid, &Grid)> = task.train.iter().map(|p| (&p.input, &p.output)).collect();
        if !is_test {
            demos.extend(task.test.iter().filter_map(|p| Some((&p.input, p.output.as_ref()?))));
        }
        train.begin_group();
        for aug in &augs {
            let id = ids.intern(&aug.name(&task.id));
            train.begin_puzzle(id);
            let fixed = rng.below(demos.len().max(1));
            for (k, (input, output)) in demos.iter().enumerate() {
                let translate = config.translate && k != fixed;
                let (i, o) = encode_pair(&aug.apply(input), &aug.apply(output), translate.then_some(&mut rng));
                train.push_example(&i, &o);
            }
        }
        if is_test {
            test.begin_group();
            for aug in &augs {
                test.begin_puzzle(ids.intern(&aug.name(&task.id)));
                for pair in &task.test {
                    let input = aug.apply(&pair.input);
                    let (i, o) = match &pair.output {
                        Some(out) => encode_pair(&input, &aug.apply(out), None),
                        None => (encode_pair(&input, &input, None).0, vec![0; SEQ_LEN]),
                    };
                    test.push_example(&i, &o);
                }
            }
        }
    }
    ArcDatasets { train: train.finish(&ids), test: test.finish(&ids), test_tasks: test_tasks.to_vec() }
}

#[cfg(test)]
mod tests {
    use super::super::{canvas::crop, Pair, TestPair};
    use super::*;

    fn task(id: &str, cells: &[u8]) -> Task {
        let g = |c: &[u8]| Grid::new(1, c.len(), c.to_vec());
        Task {
            id: id.into(),
            train: vec![
                Pair { input: g(cells), output: g(&cells[..1]) },
                Pair { input: g(&cells[1..]), output: g(cells) },
            ],
            test: vec![TestPair { input: g(cells), output: Some(g(&[cells[0], cells[0]])) }],
        }
    }

    #[test]
    fn split_layout_and_shared_identifiers() {
        let config = ArcConfig { augmentations: 4, translate: true, retries_factor: 5, seed: 1 };
        let d = build_datasets(&[task("a", &[1, 2, 3])], &[task("b", &[4, 5, 6])], &config);
        // Training: task a has 3 pairs, task b's 2 demos; 5 versions each.
        assert_eq!((d.train.num_groups(), d.train.num_puzzles(), d.train.len()), (2, 10, 25));
        assert_eq!((d.test.num_groups(), d.test.num_puzzles(), d.test.len()), (1, 5, 5));
        assert_eq!(d.train.num_identifiers(), 11);
        // Test puzzle v uses the identifier of task b's version v in training.
        for v in 0..5 {
            let test_id = d.test.puzzle_id(v);
            assert!(d.train.identifier_name(test_id).starts_with('b'));
            assert_eq!(d.train.puzzle_id(d.train.puzzle_examples(5 + v).start), test_id);
        }
        // Untranslated test inputs crop back to the augmented grids.
        let (name, aug) = Augmentation::parse_name(d.test.identifier_name(d.test.puzzle_id(3))).unwrap();
        assert_eq!(name, "b");
        assert_eq!(aug.invert(&crop(d.test.inputs(3))), Grid::new(1, 3, vec![4, 5, 6]));
        assert_eq!(aug.invert(&crop(d.test.labels(3))), Grid::new(1, 2, vec![4, 4]));
    }

    #[test]
    fn symmetric_tasks_reject_duplicates() {
        // An all-black task looks the same under every augmentation: only the identity survives.
        let black = |r, c| Grid::new(r, c, vec![0; r * c]);
        let t = Task {
            id: "z".into(),
            train: vec![Pair { input: black(2, 2), output: black(2, 2) }],
            test: vec![TestPair { input: black(2, 2), output: None }],
        };
        let augs = task_augmentations(&t, &ArcConfig { augmentations: 10, ..Default::default() }, &mut Rng::new(0));
        assert_eq!(augs, vec![Augmentation::IDENTITY]);
    }
}
