//! Hard puzzles by hill climbing on the rating.
//!
//! A pool of minimal puzzles evolves: each step takes a parent (the better of two random pool members), drops a
//! few of its givens, re-adds givens until the solution is unique again (each re-added given is taken from one of
//! two distinct solutions, at a cell where they differ, so every addition cuts the solution set), minimises, and
//! rates the child. A child that rates above the pool's worst and is new replaces it. The first child that reaches
//! the target rating is returned. Re-adding from a random solution lets the solution grid drift, so the climb
//! explores far from its start.

use super::generator::{minimal_puzzle, minimise};
use super::rating::rate;
use super::solver::Solver;
use crate::rng::Rng;

/// Parameters of one climb.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClimbConfig {
    /// Stop at the first puzzle rated at least this.
    pub min_rating: f64,
    /// Pool members.
    pub pool: usize,
    /// Children evaluated before giving up.
    pub max_steps: usize,
    /// Givens dropped per mutation (1..=max_drop, uniformly).
    pub max_drop: usize,
}

impl ClimbConfig {
    pub fn new(min_rating: f64) -> Self {
        ClimbConfig { min_rating, pool: 8, max_steps: 20_000, max_drop: 3 }
    }
}

/// A puzzle found by a climb.
#[derive(Clone, Debug, PartialEq)]
pub struct Rated {
    pub puzzle: Vec<u8>,
    pub solution: Vec<u8>,
    pub rating: f64,
}

/// Drop givens, restore uniqueness, minimise: a new minimal puzzle near `parent`.
pub fn mutate(solver: &mut Solver, parent: &[u8], max_drop: usize, rng: &mut Rng) -> (Vec<u8>, Vec<u8>) {
    let mut grid = parent.to_vec();
    let mut givens: Vec<usize> = (0..grid.len()).filter(|&i| grid[i] != 0).collect();
    rng.shuffle(&mut givens);
    let drop = rng.range_inclusive(1, max_drop.max(1)).min(givens.len());
    for &cell in &givens[..drop] {
        grid[cell] = 0;
    }
    // The parent's solution still fits, so there is at least one solution; add givens until there is one only.
    while let Some((a, b)) = solver.two_solutions(&grid, rng) {
        let differing: Vec<usize> = (0..grid.len()).filter(|&i| a[i] != b[i]).collect();
        let cell = differing[rng.below(differing.len())];
        grid[cell] = if rng.below(2) == 0 { a[cell] } else { b[cell] };
    }
    let solution = solver.unique_solution(&grid).expect("loop ends with a unique puzzle");
    (minimise(solver, &grid, rng), solution)
}

/// Climb from fresh minimal puzzles until one rates at least `config.min_rating`. Returns the best puzzle found
/// and whether it reached the target.
pub fn climb(solver: &mut Solver, rng: &mut Rng, config: &ClimbConfig) -> (Rated, bool) {
    let mut pool: Vec<Rated> = (0..config.pool.max(1))
        .map(|_| {
            let (puzzle, solution) = minimal_puzzle(solver, rng);
            let rating = rate(solver, &puzzle);
            Rated { puzzle, solution, rating }
        })
        .collect();
    let best_of = |pool: &[Rated]| pool.iter().max_by(|a, b| a.rating.total_cmp(&b.rating)).unwrap().clone();
    let best = best_of(&pool);
    if best.rating >= config.min_rating {
        return (best, true);
    }
    for _ in 0..config.max_steps {
        let (i, j) = (rng.below(pool.len()), rng.below(pool.len()));
        let parent = if pool[i].rating >= pool[j].rating { i } else { j };
        let (puzzle, solution) = mutate(solver, &pool[parent].puzzle, config.max_drop, rng);
        let rating = rate(solver, &puzzle);
        if rating >= config.min_rating {
            return (Rated { puzzle, solution, rating }, true);
        }
        let worst = (0..pool.len()).min_by(|&a, &b| pool[a].rating.total_cmp(&pool[b].rating)).unwrap();
        if rating > pool[worst].rating && pool.iter().all(|p| p.puzzle != puzzle) {
            pool[worst] = Rated { puzzle, solution, rating };
        }
    }
    (best_of(&pool), false)
}

#[cfg(test)]
mod tests {
    use super::super::{generator::is_minimal, is_solution_of, BoxShape};
    use super::*;

    #[test]
    fn mutation_keeps_unique_minimal_puzzles() {
        let shape = BoxShape::B3X3;
        let mut solver = Solver::new(shape);
        let mut rng = Rng::new(2);
        let (mut puzzle, _) = minimal_puzzle(&mut solver, &mut rng);
        for _ in 0..10 {
            let (child, solution) = mutate(&mut solver, &puzzle, 3, &mut rng);
            assert!(is_solution_of(&child, &solution, shape));
            assert_eq!(solver.unique_solution(&child), Some(solution));
            assert!(is_minimal(&mut solver, &child));
            puzzle = child;
        }
    }

    #[test]
    fn climb_reaches_a_modest_target() {
        let mut solver = Solver::new(BoxShape::B3X3);
        let mut rng = Rng::new(5);
        let (found, reached) = climb(&mut solver, &mut rng, &ClimbConfig::new(2.0));
        assert!(reached && found.rating >= 2.0);
        assert_eq!(solver.unique_solution(&found.puzzle), Some(found.solution));
    }
}
