//! Random solution grids and minimal unique puzzles.
//!
//! A solution grid is the first solution of the empty grid under random branching order. A minimal puzzle is made
//! by visiting the cells of a solution in random order and blanking each one whose removal keeps the solution
//! unique. One pass is enough for minimality: removing clues only adds solutions, so a clue that could not be
//! removed early cannot be removed later either. Every puzzle returned therefore has exactly one solution and
//! loses that property if any single given is removed.

use super::solver::Solver;
use super::BoxShape;
use crate::rng::Rng;

/// A random complete grid for `solver`'s shape.
pub fn random_solution(solver: &mut Solver, rng: &mut Rng) -> Vec<u8> {
    let empty = vec![0u8; solver.shape().cells()];
    solver.random_solution(&empty, rng).expect("the empty grid has solutions")
}

/// Blank every given of `puzzle` (a grid with a unique solution) whose removal keeps the solution unique, in
/// random order. The result is a minimal puzzle with the same solution.
pub fn minimise(solver: &mut Solver, puzzle: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut grid = puzzle.to_vec();
    let mut order: Vec<usize> = (0..grid.len()).filter(|&i| grid[i] != 0).collect();
    rng.shuffle(&mut order);
    for cell in order {
        let d = grid[cell];
        grid[cell] = 0;
        if !solver.has_unique_solution(&grid) {
            grid[cell] = d;
        }
    }
    grid
}

/// A minimal unique puzzle and its solution.
pub fn minimal_puzzle(solver: &mut Solver, rng: &mut Rng) -> (Vec<u8>, Vec<u8>) {
    let solution = random_solution(solver, rng);
    let puzzle = minimise(solver, &solution, rng);
    (puzzle, solution)
}

/// A unique puzzle with a number of givens in `min..=max`: a minimal puzzle (retried while it has more than `max`
/// givens) topped up with random cells of its solution to a target drawn uniformly from what remains of the range.
/// `None` when `max_tries` minimal puzzles all had more than `max` givens.
pub fn puzzle_with_givens(
    solver: &mut Solver,
    rng: &mut Rng,
    min: usize,
    max: usize,
    max_tries: usize,
) -> Option<(Vec<u8>, Vec<u8>)> {
    let cells = solver.shape().cells();
    assert!(min <= max && max <= cells, "puzzle_with_givens: givens range {min}..={max} for {cells} cells");
    for _ in 0..max_tries {
        let (mut puzzle, solution) = minimal_puzzle(solver, rng);
        let have = super::givens(&puzzle);
        if have > max {
            continue;
        }
        let target = rng.range_inclusive(have.max(min), max);
        let mut blanks: Vec<usize> = (0..cells).filter(|&i| puzzle[i] == 0).collect();
        rng.shuffle(&mut blanks);
        for &cell in blanks.iter().take(target - have) {
            puzzle[cell] = solution[cell];
        }
        return Some((puzzle, solution));
    }
    None
}

/// True when `puzzle` has a unique solution and removing any one given breaks uniqueness.
pub fn is_minimal(solver: &mut Solver, puzzle: &[u8]) -> bool {
    if !solver.has_unique_solution(puzzle) {
        return false;
    }
    let mut grid = puzzle.to_vec();
    for cell in 0..grid.len() {
        let d = grid[cell];
        if d == 0 {
            continue;
        }
        grid[cell] = 0;
        let unique = solver.has_unique_solution(&grid);
        grid[cell] = d;
        if unique {
            return false;
        }
    }
    true
}

/// The shapes the crate tests and documents.
pub const SHAPES: [BoxShape; 3] = [BoxShape::B2X2, BoxShape::B2X3, BoxShape::B3X3];

#[cfg(test)]
mod tests {
    use super::super::is_solution_of;
    use super::*;

    #[test]
    fn minimal_puzzles_are_unique_and_minimal() {
        for shape in SHAPES.into_iter().chain([BoxShape::new(3, 2)]) {
            let mut solver = Solver::new(shape);
            for seed in 0..5 {
                let mut rng = Rng::for_item(seed, 0);
                let (puzzle, solution) = minimal_puzzle(&mut solver, &mut rng);
                assert!(is_solution_of(&puzzle, &solution, shape));
                assert_eq!(solver.unique_solution(&puzzle), Some(solution), "{shape}");
                assert!(is_minimal(&mut solver, &puzzle), "{shape}");
            }
        }
    }

    #[test]
    fn givens_range_is_respected() {
        let mut solver = Solver::new(BoxShape::B3X3);
        let mut rng = Rng::new(4);
        for _ in 0..10 {
            let (p, s) = puzzle_with_givens(&mut solver, &mut rng, 30, 35, 10).unwrap();
            assert!((30..=35).contains(&super::super::givens(&p)));
            assert_eq!(solver.unique_solution(&p), Some(s));
        }
    }
}
