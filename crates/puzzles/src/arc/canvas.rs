//! The token canvas of TRM's `build_arc_dataset.py`, 30x30 there (`side` here, so that a CPU-scale model can
//! train on the tasks that fit a smaller one): 0 PAD, 1 EOS, colour `c` -> token `c + 2` (vocabulary 12). The
//! grid sits at `(pad_r, pad_c)` (the top-left corner unless translated); EOS marks the row just below it and the
//! column just right of it (over the grid's width and height, not the corner), where the canvas has room.

use super::{Grid, MAX_SIDE};
use crate::rng::Rng;

pub const PAD: u8 = 0;
pub const EOS: u8 = 1;
/// Tokens of TRM's 30x30 canvas.
pub const SEQ_LEN: usize = MAX_SIDE * MAX_SIDE;
/// PAD, EOS and ten colours.
pub const VOCAB_SIZE: usize = 12;

/// Whether `grid` fits a canvas of side `side`.
pub fn fits(grid: &Grid, side: usize) -> bool {
    grid.rows <= side && grid.cols <= side
}

/// Encode `grid` on a `side` x `side` canvas with its top-left corner at `(pad_r, pad_c)`. Panics if it does not
/// fit (callers skip tasks that do not, [`fits`]).
pub fn encode(grid: &Grid, side: usize, pad_r: usize, pad_c: usize) -> Vec<u8> {
    assert!(
        pad_r + grid.rows <= side && pad_c + grid.cols <= side,
        "canvas::encode: {}x{} grid at ({pad_r}, {pad_c}) leaves the {side}x{side} canvas",
        grid.rows,
        grid.cols
    );
    let mut out = vec![PAD; side * side];
    for r in 0..grid.rows {
        for c in 0..grid.cols {
            out[(pad_r + r) * side + pad_c + c] = grid.get(r, c) + 2;
        }
    }
    let (eos_row, eos_col) = (pad_r + grid.rows, pad_c + grid.cols);
    if eos_row < side {
        out[eos_row * side + pad_c..eos_row * side + eos_col].fill(EOS);
    }
    if eos_col < side {
        for r in pad_r..eos_row {
            out[r * side + eos_col] = EOS;
        }
    }
    out
}

/// Encode an input/output pair on a `side` canvas, translated by one random offset shared by both when `rng` is
/// given (TRM draws `pad_r` uniformly from `0..=side - max(rows)`, likewise `pad_c`), at the corner otherwise.
pub fn encode_pair(input: &Grid, output: &Grid, side: usize, rng: Option<&mut Rng>) -> (Vec<u8>, Vec<u8>) {
    let (pad_r, pad_c) = match rng {
        Some(rng) => {
            (rng.below(side - input.rows.max(output.rows) + 1), rng.below(side - input.cols.max(output.cols) + 1))
        }
        None => (0, 0),
    };
    (encode(input, side, pad_r, pad_c), encode(output, side, pad_r, pad_c))
}

/// The side of a square canvas of `len` tokens, if it is one.
pub fn side_of(len: usize) -> Option<usize> {
    let side = (len as f64).sqrt().round() as usize;
    (side * side == len && side > 0).then_some(side)
}

/// TRM's crop of a predicted canvas: the largest top-left rectangle holding only colour tokens, scanning rows
/// down and shrinking the width at the first non-colour token of each row. An empty grid when the corner is not
/// a colour. The canvas side is that of the square `tokens`.
pub fn crop(tokens: &[u8]) -> Grid {
    let side = side_of(tokens.len()).unwrap_or_else(|| panic!("canvas::crop: {} tokens is not a square", tokens.len()));
    let is_colour = |t: u8| (2..=11).contains(&t);
    let (mut best_area, mut best) = (0, (0, 0));
    let mut width = side;
    for rows in 1..=side {
        if let Some(c) = (0..width).find(|&c| !is_colour(tokens[(rows - 1) * side + c])) {
            width = c;
        }
        if rows * width > best_area {
            best_area = rows * width;
            best = (rows, width);
        }
    }
    let (rows, cols) = best;
    let mut cells = Vec::with_capacity(rows * cols);
    for r in 0..rows {
        cells.extend(tokens[r * side..r * side + cols].iter().map(|&t| t - 2));
    }
    Grid::new(rows, cols, cells)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_marks_eos_and_crop_inverts() {
        let g = Grid::new(2, 3, vec![0, 1, 2, 3, 4, 9]);
        let t = encode(&g, 30, 0, 0);
        assert_eq!(&t[..4], &[2, 3, 4, EOS]);
        assert_eq!(&t[MAX_SIDE..MAX_SIDE + 4], &[5, 6, 11, EOS]);
        assert_eq!(&t[2 * MAX_SIDE..2 * MAX_SIDE + 4], &[EOS, EOS, EOS, PAD]);
        assert_eq!(crop(&t), g);
        let full = Grid::new(30, 30, vec![7; 900]);
        assert_eq!(crop(&encode(&full, 30, 0, 0)), full);
        let translated = encode(&g, 30, 5, 7);
        assert_eq!(translated[6 * MAX_SIDE + 10], EOS);
        assert_eq!(translated[7 * MAX_SIDE + 7..7 * MAX_SIDE + 10], [EOS; 3]);
        assert_eq!(crop(&translated), Grid::new(0, 0, vec![]));
    }

    #[test]
    fn crop_takes_the_largest_rectangle() {
        // Row 0 has 4 colours, rows 1-2 have 2: best is 3x2 (area 6) over 1x4.
        let mut t = vec![PAD; SEQ_LEN];
        t[..4].copy_from_slice(&[2, 2, 2, 2]);
        t[MAX_SIDE..MAX_SIDE + 2].copy_from_slice(&[3, 3]);
        t[2 * MAX_SIDE..2 * MAX_SIDE + 2].copy_from_slice(&[4, 4]);
        assert_eq!(crop(&t), Grid::new(3, 2, vec![0, 0, 1, 1, 2, 2]));
    }

    #[test]
    fn a_small_canvas_encodes_and_crops_alike() {
        let g = Grid::new(2, 3, vec![0, 1, 2, 3, 4, 9]);
        let t = encode(&g, 4, 0, 0);
        assert_eq!(t.len(), 16);
        assert_eq!(&t[..4], &[2, 3, 4, EOS]);
        assert_eq!(&t[8..12], &[EOS, EOS, EOS, PAD]);
        assert_eq!(crop(&t), g);
        // A grid as large as the canvas has no room for EOS marks.
        let full = Grid::new(4, 4, vec![3; 16]);
        assert_eq!(crop(&encode(&full, 4, 0, 0)), full);
        assert!(fits(&full, 4) && !fits(&full, 3));
        assert_eq!((side_of(100), side_of(99)), (Some(10), None));
    }
}
