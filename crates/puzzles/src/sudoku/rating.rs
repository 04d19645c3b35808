//! Difficulty rating, on the scale of tdoku's guess counts.
//!
//! Sudoku-Extreme rates a puzzle by the number of guesses tdoku's DPLL solver makes on that exact string (first
//! solution). That number is noisy: the same puzzle permuted gets anything from 5 to 102 (see
//! `../shared/data/sudoku/README.md`). Our rating measures the puzzle rather than one presentation of it: the
//! guesses this crate's solver makes to prove uniqueness (solution limit 2, the whole search tree), averaged over
//! the puzzle and `SAMPLES - 1` random validity-preserving transforms of it, times [`TDOKU_SCALE`].
//!
//! Calibration (docs/puzzles.md has the numbers and the command): on `test_hard.csv` this rating's Spearman rank
//! correlation with tdoku's is 0.69, against 0.56 for our first-solution guess count on the exact string.
//! The ratio of tdoku's guesses to ours is steady across quantiles (see the docs), so one scale factor puts the
//! rating on tdoku's scale: `--min-rating 20` asks for puzzles about as hard as test_hard's median.

use super::augment::Transform;
use super::solver::Solver;
use crate::rng::Rng;

/// Presentations averaged per rating (the puzzle plus `SAMPLES - 1` transforms).
pub const SAMPLES: usize = 8;

/// tdoku guesses per guess of our uniqueness search: the ratio of the means on all 5,000 rows of test_hard.csv.
pub const TDOKU_SCALE: f64 = 0.238;

/// The rating of `puzzle` (a grid with a unique solution): [`TDOKU_SCALE`] times the mean uniqueness-search
/// guesses over [`SAMPLES`] presentations. Deterministic: the transforms are seeded by the puzzle itself.
pub fn rate(solver: &mut Solver, puzzle: &[u8]) -> f64 {
    TDOKU_SCALE * mean_guesses(solver, puzzle, SAMPLES)
}

/// Mean guesses of the uniqueness search (solution limit 2) over the puzzle and `samples - 1` random transforms.
pub fn mean_guesses(solver: &mut Solver, puzzle: &[u8], samples: usize) -> f64 {
    let shape = solver.shape();
    let mut rng = Rng::new(crate::cache::checksum(puzzle));
    let mut total = solver.count_solutions(puzzle, 2).stats.guesses as u64;
    for _ in 1..samples {
        let t = Transform::random(shape, &mut rng);
        total += solver.count_solutions(&t.apply(puzzle), 2).stats.guesses as u64;
    }
    total as f64 / samples.max(1) as f64
}

/// Spearman's rank correlation of two equally long samples (ties get their mean rank). `NaN` when either sample
/// is constant or shorter than 2.
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "spearman: samples of {} and {} values", a.len(), b.len());
    let (ra, rb) = (ranks(a), ranks(b));
    let n = a.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let (mut cov, mut va, mut vb) = (0.0, 0.0, 0.0);
    for (x, y) in ra.iter().zip(&rb) {
        cov += (x - ma) * (y - mb);
        va += (x - ma) * (x - ma);
        vb += (y - mb) * (y - mb);
    }
    cov / (va * vb).sqrt()
}

/// 1-based ranks with ties averaged.
fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        let mean_rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            r[k] = mean_rank;
        }
        i = j + 1;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_known_values() {
        assert!((spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]) - 1.0).abs() < 1e-12);
        assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        // Ties: ranks [1.5, 1.5, 3] vs [1, 2, 3] -> Pearson on ranks = 0.866...
        assert!((spearman(&[1.0, 1.0, 2.0], &[1.0, 2.0, 3.0]) - 0.75f64.sqrt()).abs() < 1e-12);
        assert!(spearman(&[1.0, 1.0], &[1.0, 2.0]).is_nan());
    }

    #[test]
    fn rating_is_deterministic_and_zero_for_easy() {
        let shape = super::super::BoxShape::B3X3;
        let mut solver = Solver::new(shape);
        let hard = super::super::parse_grid(
            "9...72.6...6...7.....9....8......3.5...4.......2.19.8.2.97..8...6..91.7.7.1......",
            shape,
        )
        .unwrap();
        let r = rate(&mut solver, &hard);
        assert!(r > 0.0);
        assert_eq!(r, rate(&mut solver, &hard));
        let mut rng = Rng::new(1);
        let full = super::super::generator::random_solution(&mut solver, &mut rng);
        assert_eq!(rate(&mut solver, &full), 0.0);
    }
}
