//! Validity-preserving Sudoku transforms, as Sudoku-Extreme and TRM's `shuffle_sudoku` make them: an optional
//! transpose, then a permutation of bands and of rows within each band, a permutation of stacks and of columns
//! within each stack, then a relabelling of the digits. Each maps solutions of a puzzle onto solutions of the
//! transformed puzzle, so one puzzle yields many distinct training examples (the group has 2 * 6^8 * 9! = 1.2e12 elements for 9x9).
//!
//! Transposing a grid with `r x c` boxes gives a grid with `c x r` boxes; [`Transform::random`] therefore only
//! transposes square boxes, so an augmented set keeps one shape. Build a `Transform` by hand to transpose 2x3
//! boxes into 3x2 boxes.

use super::BoxShape;
use crate::rng::Rng;

/// One transform: `out[i][j] = digits[t[row_perm[i]][col_perm[j]]]`, where `t` is the grid, transposed first if
/// `transpose` is set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transform {
    /// Shape of the grids the transform applies to.
    pub shape: BoxShape,
    pub transpose: bool,
    /// `[n]`: output row `i` is row `row_perm[i]` (of the transposed grid when `transpose`).
    pub row_perm: Vec<usize>,
    /// `[n]`: output column `j` is column `col_perm[j]`.
    pub col_perm: Vec<usize>,
    /// `[n + 1]`: digit `d` becomes `digits[d]`; `digits[0] = 0` keeps blanks blank.
    pub digits: Vec<u8>,
}

/// A permutation of `0..bands * size` that permutes whole bands of `size` lines and lines within each band.
fn banded_permutation(bands: usize, size: usize, rng: &mut Rng) -> Vec<usize> {
    let order = rng.permutation(bands);
    order
        .into_iter()
        .flat_map(|b| rng.permutation(size).into_iter().map(move |r| b * size + r).collect::<Vec<_>>())
        .collect()
}

impl Transform {
    /// The identity on `shape`.
    pub fn identity(shape: BoxShape) -> Self {
        let n = shape.side();
        Transform {
            shape,
            transpose: false,
            row_perm: (0..n).collect(),
            col_perm: (0..n).collect(),
            digits: (0..=n as u8).collect(),
        }
    }

    /// A uniformly random transform of the group above; transposes (p = 1/2) only when the boxes are square.
    pub fn random(shape: BoxShape, rng: &mut Rng) -> Self {
        let n = shape.side();
        let transpose = shape.rows == shape.cols && rng.below(2) == 1;
        let out = if transpose { shape.transposed() } else { shape };
        // Rows come in bands of `out.rows` rows (there are `out.cols` bands); columns in stacks of `out.cols`.
        let row_perm = banded_permutation(out.cols, out.rows, rng);
        let col_perm = banded_permutation(out.rows, out.cols, rng);
        let mut digits = vec![0u8];
        digits.extend(rng.permutation(n).into_iter().map(|d| d as u8 + 1));
        Transform { shape, transpose, row_perm, col_perm, digits }
    }

    /// Shape of the transformed grids.
    pub fn output_shape(&self) -> BoxShape {
        if self.transpose {
            self.shape.transposed()
        } else {
            self.shape
        }
    }

    /// Transform a grid (puzzle or solution) of `self.shape`.
    pub fn apply(&self, grid: &[u8]) -> Vec<u8> {
        let n = self.shape.side();
        assert_eq!(grid.len(), n * n, "Transform::apply: grid of {} cells for {} boxes", grid.len(), self.shape);
        let mut out = Vec::with_capacity(n * n);
        for i in 0..n {
            for j in 0..n {
                let (r, c) = (self.row_perm[i], self.col_perm[j]);
                let src = if self.transpose { c * n + r } else { r * n + c };
                out.push(self.digits[grid[src] as usize]);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::{generator::minimal_puzzle, is_solution_of, rule_violation, solver::Solver};
    use super::*;
    use crate::rng::Rng;
    use proptest::prelude::{any, prop_assert, prop_assert_eq, proptest, ProptestConfig, TestCaseError};

    fn check(shape: BoxShape, t: &Transform, seed: u64) -> Result<(), TestCaseError> {
        let mut solver = Solver::new(shape);
        let (puzzle, solution) = minimal_puzzle(&mut solver, &mut Rng::new(seed));
        let (p2, s2) = (t.apply(&puzzle), t.apply(&solution));
        let out = t.output_shape();
        prop_assert!(rule_violation(&s2, out).is_none());
        prop_assert!(is_solution_of(&p2, &s2, out));
        // Uniqueness is preserved too: the transform is a bijection on solutions.
        prop_assert_eq!(Solver::new(out).unique_solution(&p2), Some(s2));
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn random_transforms_preserve_validity(shape_i in 0usize..4, seed in any::<u64>()) {
            let shape = [BoxShape::B2X2, BoxShape::B2X3, BoxShape::B3X3, BoxShape::new(3, 2)][shape_i];
            let t = Transform::random(shape, &mut Rng::new(seed ^ 1));
            check(shape, &t, seed)?;
        }

        #[test]
        fn transposing_2x3_gives_valid_3x2(seed in any::<u64>()) {
            let mut t = Transform::random(BoxShape::B2X3, &mut Rng::new(seed));
            // Rebuild the line permutations for the transposed shape (3x2 boxes: bands of 3 rows, stacks of 2).
            let mut rng = Rng::new(seed ^ 7);
            t.transpose = true;
            t.row_perm = banded_permutation(2, 3, &mut rng);
            t.col_perm = banded_permutation(3, 2, &mut rng);
            prop_assert_eq!(t.output_shape(), BoxShape::new(3, 2));
            check(BoxShape::B2X3, &t, seed)?;
        }
    }

    #[test]
    fn identity_is_identity() {
        let g: Vec<u8> = (0..81).map(|i| (i % 10) as u8).collect();
        assert_eq!(Transform::identity(BoxShape::B3X3).apply(&g), g);
    }
}
