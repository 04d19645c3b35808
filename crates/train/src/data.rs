//! Training and held-out sets from a [`DataConfig`]: generated on the spot (no download), or read from the
//! user's files. Held-out puzzles never appear in the training set.

use crate::config::{augmented_copies, DataConfig, MAX_DATA_TOKENS};
use anyhow::{anyhow, bail, Result};
use loopgrad_puzzles::maze::{self, MazeConfig, MazeRecord};
use loopgrad_puzzles::sudoku::csv::{read_csv, SudokuRecord};
use loopgrad_puzzles::sudoku::dataset::{generate_puzzles, to_example_set, Difficulty};
use loopgrad_puzzles::sudoku::{canonical_form, BoxShape};
use loopgrad_puzzles::ExampleSet;
use rayon::prelude::*;
use std::collections::HashSet;
use std::path::Path;

/// The two sets a run uses.
pub struct Datasets {
    pub train: ExampleSet,
    pub test: ExampleSet,
    /// One line saying where the data came from, for the log.
    pub description: String,
    /// ARC: ids of the tasks skipped because a grid is larger than the canvas (empty for other tasks).
    pub skipped: Vec<String>,
    /// ARC: the held-out tasks that fit the canvas, for the voting evaluator (empty for other tasks).
    pub arc_test_tasks: Vec<loopgrad_puzzles::arc::Task>,
}

/// Builds the training and held-out sets.
pub fn load(config: &DataConfig) -> Result<Datasets> {
    match config.task.as_str() {
        "sudoku" => sudoku(config),
        "maze" => maze(config),
        "arc" => crate::arc::load(config),
        other => bail!("data.task {other:?}: not a task (sudoku, maze and arc are)"),
    }
}

/// The held-out set alone, from a file (for `loopgrad eval`).
pub fn load_test_file(task: &str, path: &Path, limit: usize) -> Result<ExampleSet> {
    match task {
        "sudoku" => {
            let mut records = read_csv(path, None).map_err(|e| anyhow!("{e}"))?;
            if limit > 0 {
                records.truncate(limit);
            }
            if records.is_empty() {
                bail!("{}: no puzzles", path.display());
            }
            Ok(to_example_set(&records, 0, 0))
        }
        "maze" => {
            let mut records = maze::csv::read_csv(path).map_err(|e| anyhow!("{e}"))?;
            if limit > 0 {
                records.truncate(limit);
            }
            if records.is_empty() {
                bail!("{}: no mazes", path.display());
            }
            check_one_size(path, &records)?;
            Ok(maze::dataset::to_example_set(&records, false))
        }
        other => bail!("--task {other}: evaluation on this task is not available yet (sudoku and maze are)"),
    }
}

fn sudoku(c: &DataConfig) -> Result<Datasets> {
    let shape = BoxShape::parse(&c.sudoku_box).map_err(|e| anyhow!("data.sudoku_box: {e}"))?;
    let difficulty = match c.sudoku_givens {
        [0, 0] => Difficulty::Minimal,
        [min, max] if min <= max => Difficulty::Givens { min, max },
        [min, max] => bail!("data.sudoku_givens: [{min}, {max}] is not a range"),
    };
    let read = |path: &str, count: usize| -> Result<Vec<SudokuRecord>> {
        let mut records = read_csv(Path::new(path), Some(shape)).map_err(|e| anyhow!("{e}"))?;
        if count > 0 {
            records.truncate(count);
        }
        Ok(records)
    };
    // The validation split is the next `validation_count` puzzles of the training stream: item i of a generated
    // set depends on (seed, i) alone, so the first `train_count` are the training puzzles of a run without it.
    let wanted = c.train_count + c.validation_count;
    let mut train = if c.train_path.is_empty() {
        generate_puzzles(shape, wanted, difficulty, c.seed).map_err(|e| anyhow!("generating puzzles: {e}"))?
    } else {
        read(&c.train_path, wanted)?
    };
    if c.validation_count > 0 {
        if train.len() < wanted {
            bail!("data.validation_count {}: {} has only {} puzzles", c.validation_count, c.train_path, train.len());
        }
        let validation = train.split_off(c.train_count);
        let description = format!(
            "{} {shape} Sudoku for training{}, {} validation puzzles carved from the training stream (the held-out \
             set is not built)",
            train.len(),
            if c.augmentations > 0 { format!(" x {} augmentations", c.augmentations + 1) } else { String::new() },
            validation.len()
        );
        check_training_tokens(train.len(), augmented_copies(&c.task, c.augmentations), train[0].puzzle.len())?;
        return Ok(Datasets {
            train: to_example_set(&train, c.augmentations, c.seed),
            test: to_example_set(&validation, 0, c.seed),
            description,
            skipped: Vec::new(),
            arc_test_tasks: Vec::new(),
        });
    }
    let mut dropped = 0;
    let test = if c.test_path.is_empty() {
        // A different seed, and an explicit filter: a held-out puzzle is one the model never trained on, up to
        // symmetry (augmentation shows the model transforms of its training puzzles, so a held-out puzzle that is
        // a transform of one would not be held out).
        let by_symmetry = c.heldout_disjoint == "symmetry";
        let key = |records: &[SudokuRecord]| -> Vec<Vec<u8>> {
            if by_symmetry {
                canonical_forms(records, shape)
            } else {
                records.iter().map(|r| r.puzzle.clone()).collect()
            }
        };
        let seen: HashSet<Vec<u8>> = key(&train).into_iter().collect();
        let extra = c.test_count / 10 + 10;
        let candidates = generate_puzzles(shape, c.test_count + extra, difficulty, c.seed ^ 0x07e5_75e7)
            .map_err(|e| anyhow!("generating puzzles: {e}"))?;
        let forms = key(&candidates);
        let mut fresh = Vec::with_capacity(c.test_count);
        for (r, form) in candidates.into_iter().zip(&forms) {
            if fresh.len() == c.test_count {
                break;
            }
            if seen.contains(form) {
                dropped += 1;
            } else {
                fresh.push(r);
            }
        }
        let unseen = if by_symmetry { " up to symmetry (data.heldout_disjoint = \"symmetry\")" } else { "" };
        check_enough_held_out(c, fresh.len(), &format!("{shape} puzzles unseen in training{unseen}"))?;
        fresh
    } else {
        read(&c.test_path, c.test_count)?
    };
    check_both_non_empty(train.len(), test.len(), "puzzles")?;
    let description = format!(
        "{} {shape} Sudoku for training{}, {} held out ({}{})",
        train.len(),
        if c.augmentations > 0 { format!(" x {} augmentations", c.augmentations + 1) } else { String::new() },
        test.len(),
        if c.train_path.is_empty() { "generated" } else { "from files" },
        if c.test_path.is_empty() {
            let what = if c.heldout_disjoint == "symmetry" { "up to symmetry" } else { "as given" };
            format!("; disjoint from training {what}, {dropped} dropped")
        } else {
            String::new()
        }
    );
    check_training_tokens(train.len(), augmented_copies(&c.task, c.augmentations), train[0].puzzle.len())?;
    Ok(Datasets {
        train: to_example_set(&train, c.augmentations, c.seed),
        test: to_example_set(&test, 0, c.seed),
        description,
        skipped: Vec::new(),
        arc_test_tasks: Vec::new(),
    })
}

/// The canonical form of each record's puzzle under the Sudoku symmetry group (on rayon's pool: about a
/// millisecond a 9x9 puzzle).
fn canonical_forms(records: &[SudokuRecord], shape: BoxShape) -> Vec<Vec<u8>> {
    records.par_iter().map(|r| canonical_form(&r.puzzle, shape)).collect()
}

fn maze(c: &DataConfig) -> Result<Datasets> {
    let config = MazeConfig::new(c.maze_size, c.maze_min_route);
    let read = |path: &str, count: usize| -> Result<Vec<MazeRecord>> {
        let mut records = maze::csv::read_csv(Path::new(path)).map_err(|e| anyhow!("{e}"))?;
        if count > 0 {
            records.truncate(count);
        }
        check_one_size(Path::new(path), &records)?;
        Ok(records)
    };
    // As for Sudoku, the validation split is the next `validation_count` mazes of the training stream (maze i of a
    // generated set depends on (seed, i) alone).
    let wanted = c.train_count + c.validation_count;
    let mut train = if c.train_path.is_empty() {
        maze::generate::generate_mazes(&config, wanted, c.seed).map_err(|e| anyhow!("generating mazes: {e}"))?
    } else {
        read(&c.train_path, wanted)?
    };
    let copies = augmented_copies(&c.task, c.augmentations);
    let images = if c.augmentations > 0 { " x 8 dihedral images" } else { "" };
    if c.validation_count > 0 {
        if train.len() < wanted {
            bail!("data.validation_count {}: {} has only {} mazes", c.validation_count, c.train_path, train.len());
        }
        let validation = train.split_off(c.train_count);
        let side = train[0].size;
        check_training_tokens(train.len(), copies, side * side)?;
        return Ok(Datasets {
            train: maze::dataset::to_example_set(&train, c.augmentations > 0),
            test: maze::dataset::to_example_set(&validation, false),
            description: format!(
                "{} {side}x{side} mazes for training{images}, {} validation mazes carved from the training stream \
                 (the held-out set is not built)",
                train.len(),
                validation.len()
            ),
            skipped: Vec::new(),
            arc_test_tasks: Vec::new(),
        });
    }
    // Held out against the training mazes up to their 8 dihedral images when "symmetry" (augmentation trains on
    // those images, so a held-out maze that is one of them would not be held out), else as given.
    let by_symmetry = c.heldout_disjoint == "symmetry";
    let key = |r: &MazeRecord| if by_symmetry { maze_canonical_form(r) } else { r.question.clone() };
    let seen: HashSet<Vec<u8>> = train.iter().map(key).collect();
    let mut dropped = 0;
    let test = if c.test_path.is_empty() {
        let extra = c.test_count / 10 + 10;
        let candidates = maze::generate::generate_mazes(&config, c.test_count + extra, c.seed ^ 0x07e5_75e7)
            .map_err(|e| anyhow!("generating mazes: {e}"))?;
        let mut fresh = Vec::with_capacity(c.test_count);
        for r in candidates {
            if fresh.len() == c.test_count {
                break;
            }
            if seen.contains(&key(&r)) {
                dropped += 1;
            } else {
                fresh.push(r);
            }
        }
        let unseen = if by_symmetry { " up to symmetry (data.heldout_disjoint = \"symmetry\")" } else { "" };
        check_enough_held_out(c, fresh.len(), &format!("mazes unseen in training{unseen}"))?;
        fresh
    } else {
        read(&c.test_path, c.test_count)?
    };
    check_both_non_empty(train.len(), test.len(), "mazes")?;
    if train[0].size != test[0].size {
        bail!("data: training mazes are {0}x{0} but held-out mazes are {1}x{1}", train[0].size, test[0].size);
    }
    let side = train[0].size;
    let description = format!(
        "{} {side}x{side} mazes for training{images}, {} held out ({}{})",
        train.len(),
        test.len(),
        if c.train_path.is_empty() { "generated" } else { "from files" },
        if c.test_path.is_empty() {
            let what = if by_symmetry { "up to symmetry" } else { "as given" };
            format!("; disjoint from training {what}, {dropped} dropped")
        } else {
            String::new()
        }
    );
    check_training_tokens(train.len(), copies, side * side)?;
    Ok(Datasets {
        train: maze::dataset::to_example_set(&train, c.augmentations > 0),
        test: maze::dataset::to_example_set(&test, false),
        description,
        skipped: Vec::new(),
        arc_test_tasks: Vec::new(),
    })
}

/// A maze's canonical form under the 8 dihedral images of its grid: the least of its question's images, so two
/// mazes have the same form exactly when one is an image of the other.
fn maze_canonical_form(record: &MazeRecord) -> Vec<u8> {
    (0..8).map(|tid| maze::dataset::transform(record, tid).0).min().expect("8 images")
}

/// Fails when generation found fewer than `data.test_count` held-out `items` (described: "mazes unseen in
/// training").
fn check_enough_held_out(c: &DataConfig, found: usize, items: &str) -> Result<()> {
    if found < c.test_count {
        bail!(
            "data.test_count {}: could only generate {found} held-out {items} (data.train_count {} leaves too few)",
            c.test_count,
            c.train_count
        );
    }
    Ok(())
}

/// Fails unless there are training and held-out `items` ("puzzles", "mazes") both.
fn check_both_non_empty(train: usize, test: usize, items: &str) -> Result<()> {
    if train == 0 || test == 0 {
        bail!(
            "data: {train} training and {test} held-out {items} (data.train_count / data.train_path, \
             data.test_count / data.test_path); both must be non-empty"
        );
    }
    Ok(())
}

/// A model has one sequence length: every maze of a file must have the same size.
fn check_one_size(path: &Path, records: &[MazeRecord]) -> Result<()> {
    if let Some((i, r)) = records.iter().enumerate().find(|(_, r)| r.size != records[0].size) {
        bail!(
            "{}: maze {} is {2}x{2}, the first is {3}x{3}; one file, one size",
            path.display(),
            i + 1,
            r.size,
            records[0].size
        );
    }
    Ok(())
}

/// The training set's size once augmented, against the bound the config puts on generated sets: a file's row
/// count is known only here (93,000 Sudoku rows with `augmentations = 1000` are 7.5e9 tokens, about 14 GiB, which
/// nothing refused before the allocation).
fn check_training_tokens(examples: usize, copies: usize, seq_len: usize) -> Result<()> {
    let tokens = examples as u128 * copies as u128 * seq_len as u128;
    if tokens > MAX_DATA_TOKENS as u128 {
        bail!(
            "data: {examples} training examples x {copies} copies (data.augmentations) of {seq_len} tokens is \
             {tokens} tokens, more than {MAX_DATA_TOKENS}; lower data.augmentations or data.train_count"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_out_sudoku_is_disjoint_from_training_up_to_symmetry() {
        for (shape, train, test) in [("2x2", 8, 3), ("2x3", 2000, 500)] {
            let config = DataConfig {
                sudoku_box: shape.into(),
                train_count: train,
                test_count: test,
                ..crate::presets::get("default").unwrap().data
            };
            let data = load(&config).unwrap();
            eprintln!("{}", data.description);
            let s = BoxShape::parse(shape).unwrap();
            let forms = |set: &ExampleSet| -> HashSet<Vec<u8>> {
                (0..set.len())
                    .map(|i| canonical_form(&loopgrad_puzzles::sudoku::from_tokens(set.inputs(i), s), s))
                    .collect()
            };
            let (train_forms, test_forms) = (forms(&data.train), forms(&data.test));
            assert!(train_forms.is_disjoint(&test_forms), "{shape}");
            assert_eq!(data.test.len(), test);
        }
        // 4x4 has few symmetry classes: 200 training puzzles leave too few unseen ones for 50, which "exact" allows.
        let config = crate::presets::get("smoke").unwrap().data;
        let err = load(&DataConfig { heldout_disjoint: "symmetry".into(), ..config.clone() }).err().unwrap();
        assert!(err.to_string().contains("unseen in training up to symmetry"), "{err}");
        assert!(load(&config).unwrap().description.contains("disjoint from training as given"));
    }

    #[test]
    fn the_validation_split_is_the_training_stream_after_the_training_puzzles() {
        let base = DataConfig {
            train_count: 50,
            test_count: 20,
            augmentations: 0,
            ..crate::presets::get("default").unwrap().data
        };
        let plain = load(&base).unwrap();
        let split = load(&DataConfig { validation_count: 10, ..base.clone() }).unwrap();
        let longer = load(&DataConfig { train_count: 60, ..base }).unwrap();
        assert_eq!(split.train.len(), 50);
        assert_eq!(split.test.len(), 10);
        for i in 0..50 {
            assert_eq!(split.train.inputs(i), plain.train.inputs(i), "the same training puzzles");
        }
        for i in 0..10 {
            assert_eq!(split.test.inputs(i), longer.train.inputs(50 + i), "validation = training items 50..60");
        }
        assert!(split.description.contains("10 validation puzzles carved from the training stream"));
    }

    fn maze_data(train_count: usize, test_count: usize) -> DataConfig {
        DataConfig {
            task: "maze".into(),
            maze_size: 6,
            maze_min_route: 8,
            train_count,
            test_count,
            augmentations: 1,
            ..crate::presets::get("default").unwrap().data
        }
    }

    #[test]
    fn held_out_mazes_are_no_dihedral_image_of_a_training_maze() {
        // 3x3 mazes (no walls; S and G not adjacent) are few, so images of training mazes are drawn as candidates.
        let config = DataConfig { maze_size: 3, maze_min_route: 3, ..maze_data(6, 2) };
        let data = load(&config).unwrap();
        let record = |set: &ExampleSet, i: usize| MazeRecord {
            source: String::new(),
            size: 3,
            question: maze::from_tokens(set.inputs(i)),
            answer: maze::from_tokens(set.labels(i)),
            rating: 0.0,
            row: 0,
            line: 0,
        };
        let train: HashSet<Vec<u8>> = (0..data.train.len()).map(|i| record(&data.train, i).question).collect();
        for i in 0..data.test.len() {
            let maze = record(&data.test, i);
            for tid in 0..8 {
                assert!(!train.contains(&maze::dataset::transform(&maze, tid).0), "held-out maze {i}, image {tid}");
            }
        }
        let dropped = |d: &Datasets| -> usize {
            let tail = d.description.split(", ").last().unwrap();
            tail.split(' ').next().unwrap().parse().unwrap()
        };
        let exact = load(&DataConfig { heldout_disjoint: "exact".into(), ..config }).unwrap();
        assert!(dropped(&data) > dropped(&exact), "{} / {}", data.description, exact.description);
        assert!(data.description.contains("disjoint from training up to symmetry"), "{}", data.description);
    }

    #[test]
    fn the_maze_validation_split_is_the_training_stream_after_the_training_mazes() {
        let plain = load(&maze_data(30, 10)).unwrap();
        let split = load(&DataConfig { validation_count: 5, ..maze_data(30, 10) }).unwrap();
        let longer = load(&maze_data(35, 10)).unwrap();
        assert_eq!((split.train.len(), split.test.len()), (30 * 8, 5));
        for i in 0..30 * 8 {
            assert_eq!(split.train.inputs(i), plain.train.inputs(i), "the same training mazes");
        }
        for i in 0..5 {
            assert_eq!(split.test.inputs(i), longer.train.inputs((30 + i) * 8), "validation = training mazes 30..35");
        }
        assert!(split.description.contains("5 validation mazes carved from the training stream"));
    }

    #[test]
    fn an_augmented_training_file_is_bounded_once_its_size_is_known() {
        check_training_tokens(1000, 1001, 81).unwrap();
        let err = check_training_tokens(93_000, 1001, 81).unwrap_err().to_string();
        assert!(err.contains("93000 training examples x 1001 copies"), "{err}");
    }
}
