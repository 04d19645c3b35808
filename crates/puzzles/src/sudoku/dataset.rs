//! Sudoku puzzles to training data: generation of whole sets at a chosen difficulty, and conversion of puzzle
//! lists to an [`ExampleSet`] with augmentation.

use super::augment::Transform;
use super::csv::SudokuRecord;
use super::generator::{minimal_puzzle, puzzle_with_givens};
use super::hard::{climb, ClimbConfig};
use super::rating::rate;
use super::solver::Solver;
use super::{to_tokens, BoxShape};
use crate::example_set::{ExampleSet, ExampleSetBuilder, Identifiers};
use crate::rng::Rng;
use rayon::prelude::*;

/// How hard generated puzzles are.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Difficulty {
    /// Minimal unique puzzles: no given can be removed.
    Minimal,
    /// Unique puzzles with `min..=max` givens (minimal puzzles topped up with cells of their solution).
    Givens { min: usize, max: usize },
    /// Minimal puzzles rated at least this (tdoku scale, see [`super::rating`]), by hill climbing.
    MinRating(f64),
}

/// Climbs tried per puzzle before [`generate_puzzles`] gives up on a `MinRating` target.
pub const MAX_CLIMBS: usize = 20;

/// Make one puzzle, item `index` of the set seeded by `seed`.
pub fn generate_one(
    solver: &mut Solver,
    difficulty: Difficulty,
    seed: u64,
    index: usize,
) -> Result<SudokuRecord, String> {
    let shape = solver.shape();
    let mut rng = Rng::for_item(seed, index as u64);
    let (puzzle, solution, rating) = match difficulty {
        Difficulty::Minimal => {
            let (p, s) = minimal_puzzle(solver, &mut rng);
            let r = rate(solver, &p);
            (p, s, r)
        }
        Difficulty::Givens { min, max } => {
            let (p, s) = puzzle_with_givens(solver, &mut rng, min, max, 1000).ok_or_else(|| {
                format!("no minimal {shape} puzzle with at most {max} givens in 1000 tries; raise the maximum")
            })?;
            let r = rate(solver, &p);
            (p, s, r)
        }
        Difficulty::MinRating(target) => {
            let config = ClimbConfig::new(target);
            let mut best = None;
            for _ in 0..MAX_CLIMBS {
                let (found, reached) = climb(solver, &mut rng, &config);
                if reached {
                    best = Some(found);
                    break;
                }
            }
            let found = best.ok_or_else(|| {
                format!(
                    "{MAX_CLIMBS} climbs of {} steps found no {shape} puzzle rated {target} or more",
                    config.max_steps
                )
            })?;
            (found.puzzle, found.solution, found.rating)
        }
    };
    Ok(SudokuRecord {
        source: format!("gen_{shape}_seed{seed}_{index}"),
        shape,
        puzzle,
        solution,
        rating,
        row: 0,
        line: 0,
    })
}

/// `count` puzzles of `shape` at `difficulty`, made and rated on rayon's pool (sized by the thread rule,
/// `loopgrad_tensor::parallel`), each piece of work on its own copy of one solver (`map_with`: copying its
/// tables is much cheaper than building them, which `map_init` would do for every piece); item `i` depends only
/// on `(seed, i)`, so the result does not depend on the number of threads. The error is the first item's, in
/// order, that failed.
pub fn generate_puzzles(
    shape: BoxShape,
    count: usize,
    difficulty: Difficulty,
    seed: u64,
) -> Result<Vec<SudokuRecord>, String> {
    let records: Vec<_> = (0..count)
        .into_par_iter()
        .map_with(Solver::new(shape), |solver, i| generate_one(solver, difficulty, seed, i))
        .collect();
    records.into_iter().collect()
}

/// The token rows of `records`: one group per puzzle holding the puzzle itself and `augmentations` random
/// transforms of it (digit relabelling, band/row and stack/column permutations, transpose for square boxes),
/// drawn from `(seed, puzzle index)`. Inputs are the puzzle's tokens, labels the solution's; every example uses
/// the blank identifier. Panics if the records mix shapes.
pub fn to_example_set(records: &[SudokuRecord], augmentations: usize, seed: u64) -> ExampleSet {
    let shape = records.first().map(|r| r.shape).unwrap_or(BoxShape::B3X3);
    assert!(records.iter().all(|r| r.shape == shape), "sudoku::to_example_set: records mix box shapes");
    let mut builder = ExampleSetBuilder::new(shape.cells(), shape.vocab_size());
    for (g, r) in records.iter().enumerate() {
        builder.begin_group();
        builder.begin_puzzle(0);
        builder.push_example(&to_tokens(&r.puzzle), &to_tokens(&r.solution));
        let mut rng = Rng::for_item(seed, g as u64);
        for _ in 0..augmentations {
            let t = Transform::random(shape, &mut rng);
            builder.begin_puzzle(0);
            builder.push_example(&to_tokens(&t.apply(&r.puzzle)), &to_tokens(&t.apply(&r.solution)));
        }
    }
    builder.finish(&Identifiers::new())
}

/// Generate `count` puzzles and return them as an [`ExampleSet`] without augmentation (one group, one example per
/// puzzle). Fast for small grids: 10,000 minimal 6x6 puzzles take seconds.
pub fn generate_dataset(
    shape: BoxShape,
    count: usize,
    difficulty: Difficulty,
    seed: u64,
) -> Result<ExampleSet, String> {
    Ok(to_example_set(&generate_puzzles(shape, count, difficulty, seed)?, 0, seed))
}

#[cfg(test)]
mod tests {
    use super::super::{from_tokens, generator::is_minimal, is_solution_of};
    use super::*;

    #[test]
    fn generated_puzzles_have_exactly_one_solution() {
        for shape in [BoxShape::B2X2, BoxShape::B2X3, BoxShape::B3X3] {
            let records = generate_puzzles(shape, 20, Difficulty::Minimal, 3).unwrap();
            let mut solver = Solver::new(shape);
            for r in &records {
                assert_eq!(solver.count_solutions(&r.puzzle, 2).count, 1, "{shape}");
                assert!(is_solution_of(&r.puzzle, &r.solution, shape));
                assert!(is_minimal(&mut solver, &r.puzzle));
            }
            let with_givens = generate_puzzles(shape, 5, Difficulty::Givens { min: 0, max: shape.cells() }, 3).unwrap();
            assert!(with_givens.iter().all(|r| solver.unique_solution(&r.puzzle) == Some(r.solution.clone())));
        }
    }

    /// `f` on a rayon pool of `threads` threads (the global pool's size is the process's business).
    fn on_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
        rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("a rayon pool").install(f)
    }

    #[test]
    fn deterministic_across_threads_and_calls() {
        for difficulty in [Difficulty::Minimal, Difficulty::Givens { min: 0, max: 14 }] {
            let generate = |count| generate_puzzles(BoxShape::B2X3, count, difficulty, 9).unwrap();
            let one = on_threads(1, || generate(24));
            let two = on_threads(2, || generate(24));
            // One solver for the whole set, in order: a solver's state must not leak into the next puzzle.
            let mut solver = Solver::new(BoxShape::B2X3);
            let sequential: Vec<_> = (0..24).map(|i| generate_one(&mut solver, difficulty, 9, i).unwrap()).collect();
            assert_eq!(one, sequential, "{difficulty:?}: 1 thread");
            assert_eq!(two, sequential, "{difficulty:?}: 2 threads");
            assert_eq!(
                on_threads(2, || generate(7)),
                sequential[..7],
                "{difficulty:?}: item i does not depend on the count"
            );
        }
    }

    #[test]
    fn example_set_layout_and_augmented_labels_solve_inputs() {
        let shape = BoxShape::B2X3;
        let records = generate_puzzles(shape, 4, Difficulty::Minimal, 1).unwrap();
        let set = to_example_set(&records, 3, 2);
        assert_eq!((set.len(), set.num_groups(), set.seq_len(), set.vocab_size()), (16, 4, 36, 8));
        assert_eq!(set.inputs(0), &to_tokens(&records[0].puzzle)[..]);
        let mut solver = Solver::new(shape);
        for i in 0..set.len() {
            let (p, s) = (from_tokens(set.inputs(i), shape), from_tokens(set.labels(i), shape));
            assert_eq!(solver.unique_solution(&p), Some(s));
            assert_eq!(set.puzzle_id(i), 0);
        }
    }

    #[test]
    fn hard_target_is_met() {
        let records = generate_puzzles(BoxShape::B3X3, 2, Difficulty::MinRating(1.0), 4).unwrap();
        assert!(records.iter().all(|r| r.rating >= 1.0));
    }
}
