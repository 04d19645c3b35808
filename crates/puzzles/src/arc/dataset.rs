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
//! - **Canvas**: `side` x `side` (TRM: 30). A task with a grid larger than the canvas is skipped whole, and named
//!   in [`ArcDatasets::skipped`].
//! - **Evaluating a trained model** ([`build_test_set`]): the test set again, from the evaluation tasks and the
//!   identifier table the model was trained with (TRM's `identifiers.json`): each task's augmentations are the
//!   ones its identifiers name, so every test example meets the embedding its demonstrations trained.

use super::augment::Augmentation;
use super::canvas::{encode_pair, fits, VOCAB_SIZE};
use super::{Grid, Task, MAX_SIDE};
use crate::example_set::{ExampleSet, ExampleSetBuilder, Identifiers, BLANK_IDENTIFIER};
use crate::rng::Rng;
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};

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
    /// Canvas side (TRM: 30); sequences are `side * side` tokens.
    pub side: usize,
}

impl Default for ArcConfig {
    fn default() -> Self {
        ArcConfig { augmentations: 1000, translate: true, retries_factor: 5, seed: 42, side: MAX_SIDE }
    }
}

/// The training and test sets, sharing one identifier table.
pub struct ArcDatasets {
    pub train: ExampleSet,
    pub test: ExampleSet,
    /// The test tasks that fit the canvas, for the evaluator's references.
    pub test_tasks: Vec<Task>,
    /// Ids of the tasks (training or test) skipped because a grid is larger than the canvas, in input order.
    pub skipped: Vec<String>,
}

/// Whether every grid of `task` (demonstrations, test inputs and known test outputs) fits a `side` canvas.
pub fn task_fits(task: &Task, side: usize) -> bool {
    task.train.iter().all(|p| fits(&p.input, side) && fits(&p.output, side))
        && task.test.iter().all(|p| fits(&p.input, side) && p.output.as_ref().is_none_or(|o| fits(o, side)))
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
/// train, test pairs test). Task `i` of the concatenated list draws from `Rng::for_item(seed, i)` (skipped tasks
/// keep their index, so a task's augmentations do not depend on which others fit).
///
/// Augmenting is the expensive part (every draw applies the augmentation to all of a task's grids to compare
/// it with the versions so far), and tasks are independent: a few tasks per thread at a time are augmented and
/// encoded on rayon's pool ([`augment_task`]), then added to the sets in task order, where their identifiers
/// are numbered. The sets are the same on any number of threads, and only those few tasks' examples are held
/// twice.
pub fn build_datasets(train_tasks: &[Task], test_tasks: &[Task], config: &ArcConfig) -> ArcDatasets {
    assert!((1..=MAX_SIDE).contains(&config.side), "build_datasets: canvas side {} is not 1..=30", config.side);
    let side = config.side;
    let mut ids = Identifiers::new();
    let mut train = ExampleSetBuilder::new(side * side, VOCAB_SIZE);
    let mut test = ExampleSetBuilder::new(side * side, VOCAB_SIZE);
    let mut skipped = Vec::new();
    let mut kept_test_tasks = Vec::new();
    let tasks: Vec<(&Task, bool)> =
        train_tasks.iter().map(|t| (t, false)).chain(test_tasks.iter().map(|t| (t, true))).collect();
    let per_round = 4 * rayon::current_num_threads();
    for (round, some) in tasks.chunks(per_round).enumerate() {
        let versions: Vec<Option<Vec<Version>>> = some
            .par_iter()
            .enumerate()
            .map(|(k, &(task, is_test))| {
                task_fits(task, side).then(|| augment_task(task, is_test, round * per_round + k, config))
            })
            .collect();
        for (&(task, is_test), versions) in some.iter().zip(versions) {
            let Some(versions) = versions else {
                skipped.push(task.id.clone());
                continue;
            };
            train.begin_group();
            for version in &versions {
                train.begin_puzzle(ids.intern(&version.aug.name(&task.id)));
                for (input, label) in &version.examples {
                    train.push_example(input, label);
                }
            }
            if is_test {
                let versions: Vec<(u32, Augmentation)> =
                    versions.iter().map(|v| (ids.intern(&v.aug.name(&task.id)), v.aug)).collect();
                push_test_task(&mut test, task, &versions, side);
                kept_test_tasks.push(task.clone());
            }
        }
    }
    ArcDatasets { train: train.finish(&ids), test: test.finish(&ids), test_tasks: kept_test_tasks, skipped }
}

/// One augmented version of a task: its augmentation and its training examples (input and label token rows).
struct Version {
    aug: Augmentation,
    examples: Vec<(Vec<u8>, Vec<u8>)>,
}

/// The versions of task `index` (of the concatenated list) for the training set, drawn from its own stream
/// `Rng::for_item(seed, index)`: its augmentations, then per version the example kept at the corner and the
/// others' translations. A test task trains on its demonstrations only.
fn augment_task(task: &Task, is_test: bool, index: usize, config: &ArcConfig) -> Vec<Version> {
    let mut rng = Rng::for_item(config.seed, index as u64);
    let augs = task_augmentations(task, config, &mut rng);
    let mut demos: Vec<(&Grid, &Grid)> = task.train.iter().map(|p| (&p.input, &p.output)).collect();
    if !is_test {
        demos.extend(task.test.iter().filter_map(|p| Some((&p.input, p.output.as_ref()?))));
    }
    let mut versions = Vec::with_capacity(augs.len());
    for aug in augs {
        let fixed = rng.below(demos.len().max(1));
        let mut examples = Vec::with_capacity(demos.len());
        for (k, (input, output)) in demos.iter().enumerate() {
            let translate = config.translate && k != fixed;
            examples.push(encode_pair(
                &aug.apply(input),
                &aug.apply(output),
                config.side,
                translate.then_some(&mut rng),
            ));
        }
        versions.push(Version { aug, examples });
    }
    versions
}

/// One group of the test set: `task`'s test pairs under each of its `versions` (identifier, augmentation), never
/// translated. An unknown output becomes an all-PAD label.
fn push_test_task(test: &mut ExampleSetBuilder, task: &Task, versions: &[(u32, Augmentation)], side: usize) {
    test.begin_group();
    for &(id, aug) in versions {
        test.begin_puzzle(id);
        for pair in &task.test {
            let input = aug.apply(&pair.input);
            let (i, o) = match &pair.output {
                Some(out) => encode_pair(&input, &aug.apply(out), side, None),
                None => (encode_pair(&input, &input, side, None).0, vec![0; side * side]),
            };
            test.push_example(&i, &o);
        }
    }
}

/// An identifier table from its names in id order (TRM's `identifiers.json`): the first must be `<blank>`, and
/// no name may appear twice.
pub fn identifiers_from_names(names: &[String]) -> Result<Identifiers, String> {
    if names.first().map(String::as_str) != Some(BLANK_IDENTIFIER) {
        return Err(format!("identifier 0 must be {BLANK_IDENTIFIER:?}, found {:?}", names.first()));
    }
    let mut ids = Identifiers::new();
    for (i, name) in names.iter().enumerate().skip(1) {
        // A name that is no augmentation of a task would be skipped when the test set is built, silently.
        if Augmentation::parse_name(name).is_none() {
            return Err(format!(
                "identifier {i} ({name:?}) is not a task's augmentation (TASK, or TASK|||tT|||COLOURS)"
            ));
        }
        if ids.intern(name) as usize != i {
            return Err(format!("identifier {i} ({name:?}) appears twice"));
        }
    }
    Ok(ids)
}

/// The test set of a trained model: `tasks`' test pairs under every augmentation that `identifiers` names for
/// them (in id order), on a `side` canvas. Returns the set, the tasks it holds, and the ids of the tasks left
/// out with why (a grid larger than the canvas, or no identifier: the model never saw the task's demonstrations).
pub fn build_test_set(tasks: &[Task], identifiers: &Identifiers, side: usize) -> (ExampleSet, Vec<Task>, Vec<String>) {
    let mut versions: HashMap<&str, Vec<(u32, Augmentation)>> = HashMap::new();
    for (id, name) in identifiers.names().iter().enumerate().skip(1) {
        if let Some((task, aug)) = Augmentation::parse_name(name) {
            versions.entry(task).or_default().push((id as u32, aug));
        }
    }
    let mut test = ExampleSetBuilder::new(side * side, VOCAB_SIZE);
    let (mut kept, mut left_out) = (Vec::new(), Vec::new());
    for task in tasks {
        match versions.get(task.id.as_str()) {
            _ if !task_fits(task, side) => {
                left_out.push(format!("{}: a grid is larger than the {side}x{side} canvas", task.id))
            }
            None => {
                left_out.push(format!("{}: no puzzle identifier names it (not in the model's training data)", task.id))
            }
            Some(v) => {
                push_test_task(&mut test, task, v, side);
                kept.push(task.clone());
            }
        }
    }
    (test.finish(identifiers), kept, left_out)
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
        let config = ArcConfig { augmentations: 4, translate: true, retries_factor: 5, seed: 1, side: 30 };
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
    fn the_same_sets_on_one_and_two_threads() {
        // Enough tasks for several rounds of a two-thread pool (8 tasks a round), one of them too large.
        let cells = |i: u8| [i % 10, (i / 2) % 10, (i / 3) % 10, 7];
        let train: Vec<Task> = (0..13).map(|i| task(&format!("t{i}"), &cells(i))).collect();
        let mut test: Vec<Task> = (0..7).map(|i| task(&format!("e{i}"), &cells(i + 40))).collect();
        test[3].train[0].input = Grid::new(1, 12, vec![1; 12]);
        let config = ArcConfig { augmentations: 6, translate: true, retries_factor: 5, seed: 3, side: 10 };
        let on = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("a rayon pool");
            pool.install(|| build_datasets(&train, &test, &config))
        };
        let (one, two) = (on(1), on(2));
        assert_eq!(one.skipped, vec!["e3".to_string()]);
        assert_eq!((one.train.num_groups(), one.test.num_groups()), (19, 6));
        assert_eq!((one.train, one.test, one.skipped), (two.train, two.test, two.skipped));
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
