//! A canonical form of a Sudoku grid under its symmetry group, so that "this held-out puzzle is not a training
//! puzzle" can be checked *up to symmetry*: two grids have the same canonical form exactly when one is a
//! transform of the other.
//!
//! The group is the one [`super::augment`] samples from: permutations of the bands and of the rows within each
//! band, of the stacks and of the columns within each stack, a relabelling of the digits, and (square boxes
//! only; a 2x3 grid transposes into a 3x2 one, another shape) the transpose.
//!
//! The canonical form is the lexicographically smallest row-major grid among all geometric transforms, each
//! relabelled so that digits are numbered 1, 2, 3, ... in order of first appearance (blanks stay 0, so they sort
//! first). Relabelling by first appearance is the smallest of the relabellings of a fixed geometry, so this is
//! the minimum over the whole group, and equivalent grids share it.
//!
//! Search: for each transpose and each column arrangement (2 x 6^4 = 2,592 for 9x9, 72 for 6x6), the rows are
//! chosen one at a time, depth first (the first row of a band from any unused band, the others from its band),
//! and a branch is cut as soon as its prefix exceeds the best grid found. Only ties are explored further, so a
//! 9x9 puzzle takes well under a millisecond of the 2 * 6^8 = 3.4 million transforms a plain enumeration visits.

use super::BoxShape;

/// The canonical form of `grid` (row-major, 0 = blank, digits 1..=n) under the Sudoku symmetry group of `shape`.
/// Panics if the grid does not have `shape.cells()` cells or holds a digit above the side.
pub fn canonical_form(grid: &[u8], shape: BoxShape) -> Vec<u8> {
    let n = shape.side();
    assert_eq!(grid.len(), n * n, "canonical_form: grid of {} cells for {shape} boxes", grid.len());
    assert!(grid.iter().all(|&d| (d as usize) <= n), "canonical_form: a digit above {n}");
    let transposes: &[bool] = if shape.rows == shape.cols { &[false, true] } else { &[false] };
    let mut search = Search { n, band: shape.rows, bands: shape.cols, best: None, out: vec![0; n * n] };
    for &transpose in transposes {
        let g: Vec<u8> = (0..n * n).map(|i| if transpose { grid[(i % n) * n + i / n] } else { grid[i] }).collect();
        // Columns come in `shape.rows` stacks of `shape.cols`; transposition keeps square boxes square.
        for cols in banded_permutations(shape.rows, shape.cols) {
            let arranged: Vec<u8> = (0..n * n).map(|i| g[(i / n) * n + cols[i % n]]).collect();
            let mut labels = [UNLABELLED; 10];
            labels[0] = 0;
            search.rows(&arranged, 0, 0, labels, 1, false);
        }
    }
    search.best.expect("at least one transform")
}

const UNLABELLED: u8 = u8::MAX;

struct Search {
    n: usize,
    /// Rows per band, and bands.
    band: usize,
    bands: usize,
    best: Option<Vec<u8>>,
    /// The grid being built, row by row.
    out: Vec<u8>,
}

impl Search {
    /// Places output row `k` from the rows of `grid` not in `used` (a bit per row), with the digit labels given
    /// so far and the next free label; `less` says the rows placed are already smaller than `best`'s. Returns
    /// true when it replaced `best` (whose first `k` rows are then the placed ones).
    fn rows(&mut self, grid: &[u8], k: usize, used: u32, labels: [u8; 10], next: u8, mut less: bool) -> bool {
        let n = self.n;
        if k == n {
            if less || self.best.is_none() {
                self.best = Some(self.out.clone());
                return true;
            }
            return false;
        }
        let candidates: Vec<usize> = if k.is_multiple_of(self.band) {
            // Bands are placed whole, so at a band's first row every band is wholly used or unused.
            (0..self.bands).filter(|&b| used & (1 << (b * self.band)) == 0).flat_map(|b| self.band_rows(b)).collect()
        } else {
            self.band_rows(self.open_band(used)).filter(|&r| used & (1 << r) == 0).collect()
        };
        let mut replaced = false;
        for r in candidates {
            let (mut labels, mut next) = (labels, next);
            let row = &grid[r * n..(r + 1) * n];
            for (j, &d) in row.iter().enumerate() {
                if d != 0 && labels[d as usize] == UNLABELLED {
                    labels[d as usize] = next;
                    next += 1;
                }
                self.out[k * n + j] = labels[d as usize];
            }
            let placed = &self.out[k * n..(k + 1) * n];
            let row_less = match (&self.best, less) {
                (None, _) | (_, true) => true,
                (Some(best), false) => match placed.cmp(&best[k * n..(k + 1) * n]) {
                    std::cmp::Ordering::Greater => continue,
                    std::cmp::Ordering::Less => true,
                    std::cmp::Ordering::Equal => false,
                },
            };
            if self.rows(grid, k + 1, used | (1 << r), labels, next, row_less) {
                // The placed prefix is now `best`'s own: later candidates must beat it.
                replaced = true;
                less = false;
            }
        }
        replaced
    }

    fn band_rows(&self, b: usize) -> impl Iterator<Item = usize> {
        b * self.band..(b + 1) * self.band
    }

    /// The band whose rows are being placed: the one with some rows used but not all (only one band is ever
    /// part-way through).
    fn open_band(&self, used: u32) -> usize {
        (0..self.bands)
            .find(|&b| {
                let taken = self.band_rows(b).filter(|&r| used & (1 << r) != 0).count();
                taken > 0 && taken < self.band
            })
            .expect("a band part-way through")
    }
}

/// Every permutation of `0..groups * size` that permutes whole groups of `size` and the members within each.
fn banded_permutations(groups: usize, size: usize) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    for order in permutations(groups) {
        let mut partial: Vec<Vec<usize>> = vec![Vec::new()];
        for &g in &order {
            let mut longer = Vec::new();
            for p in &partial {
                for within in permutations(size) {
                    let mut q = p.clone();
                    q.extend(within.iter().map(|&i| g * size + i));
                    longer.push(q);
                }
            }
            partial = longer;
        }
        out.extend(partial);
    }
    out
}

/// Every permutation of `0..n`, in lexicographic order.
fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![Vec::new()];
    }
    let mut out = Vec::new();
    for p in permutations(n - 1) {
        for at in 0..n {
            let mut q = p.clone();
            q.insert(at, n - 1);
            out.push(q);
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::super::augment::Transform;
    use super::super::dataset::{generate_puzzles, Difficulty};
    use super::*;
    use crate::rng::Rng;
    use std::collections::HashSet;

    /// The definition, by brute force: every geometric transform, relabelled by first appearance, the smallest.
    fn by_enumeration(grid: &[u8], shape: BoxShape) -> Vec<u8> {
        let n = shape.side();
        let transposes: &[bool] = if shape.rows == shape.cols { &[false, true] } else { &[false] };
        let mut best: Option<Vec<u8>> = None;
        for &transpose in transposes {
            for rows in banded_permutations(shape.cols, shape.rows) {
                for cols in banded_permutations(shape.rows, shape.cols) {
                    let t = Transform {
                        shape,
                        transpose,
                        row_perm: rows.clone(),
                        col_perm: cols,
                        digits: (0..=n as u8).collect(),
                    };
                    let g = t.apply(grid);
                    let mut labels = [UNLABELLED; 10];
                    labels[0] = 0;
                    let mut next = 1;
                    let relabelled: Vec<u8> = g
                        .iter()
                        .map(|&d| {
                            if labels[d as usize] == UNLABELLED {
                                labels[d as usize] = next;
                                next += 1;
                            }
                            labels[d as usize]
                        })
                        .collect();
                    if best.as_ref().is_none_or(|b| relabelled < *b) {
                        best = Some(relabelled);
                    }
                }
            }
        }
        best.unwrap()
    }

    #[test]
    fn the_search_finds_the_minimum_over_the_whole_group() {
        for (shape, count) in [(BoxShape::B2X2, 30), (BoxShape::B2X3, 12)] {
            for r in generate_puzzles(shape, count, Difficulty::Minimal, 5).unwrap() {
                assert_eq!(canonical_form(&r.puzzle, shape), by_enumeration(&r.puzzle, shape), "{shape}");
                assert_eq!(canonical_form(&r.solution, shape), by_enumeration(&r.solution, shape), "{shape}");
            }
        }
        assert_eq!(banded_permutations(3, 3).len(), 1296);
        assert_eq!(banded_permutations(2, 3).len(), 72);
    }

    #[test]
    fn every_transform_of_a_puzzle_has_its_canonical_form() {
        for shape in [BoxShape::B2X2, BoxShape::B2X3, BoxShape::B3X3] {
            let records = generate_puzzles(shape, 6, Difficulty::Minimal, 11).unwrap();
            let mut rng = Rng::new(3);
            for r in &records {
                let form = canonical_form(&r.puzzle, shape);
                let givens = form.iter().filter(|&&d| d != 0).count();
                assert_eq!(givens, r.puzzle.iter().filter(|&&d| d != 0).count(), "givens are kept");
                assert_eq!(canonical_form(&form, shape), form, "canonical forms are fixed points");
                for _ in 0..20 {
                    let t = Transform::random(shape, &mut rng);
                    assert_eq!(canonical_form(&t.apply(&r.puzzle), shape), form, "{shape} {t:?}");
                }
            }
        }
    }

    #[test]
    fn different_puzzles_have_different_forms() {
        for shape in [BoxShape::B2X3, BoxShape::B3X3] {
            let records = generate_puzzles(shape, 40, Difficulty::Minimal, 12).unwrap();
            let forms: HashSet<Vec<u8>> = records.iter().map(|r| canonical_form(&r.puzzle, shape)).collect();
            assert_eq!(forms.len(), records.len(), "{shape}: 40 random minimal puzzles, none equivalent");
        }
        // One given moved to an inequivalent place: the single-given 4x4 grids are all equivalent, two givens in
        // one row and two givens in different rows, columns and boxes are not.
        let s = BoxShape::B2X2;
        let one = |i: usize| (0..16).map(|j| u8::from(j == i)).collect::<Vec<u8>>();
        assert_eq!(canonical_form(&one(0), s), canonical_form(&one(15), s));
        let mut same_row = vec![0u8; 16];
        same_row[0] = 1;
        same_row[1] = 2;
        let mut apart = vec![0u8; 16];
        apart[0] = 1;
        apart[15] = 2;
        assert_ne!(canonical_form(&same_row, s), canonical_form(&apart, s));
    }
}
