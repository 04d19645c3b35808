//! Sudoku with `r x c` boxes on an `n x n` grid, `n = r * c` (2x2 -> 4x4, 2x3 -> 6x6, 3x3 -> 9x9; any box with
//! `n <= 9` works).
//!
//! A grid is a row-major `&[u8]` of `n * n` cells, 0 for blank and `1..=n` for digits. Tokens (the design's
//! convention, as HRM/TRM build Sudoku-Extreme): 0 = PAD (unused, rows have no padding), 1 = blank,
//! `d + 1` for digit `d`; so the vocabulary is `n + 2` (11 for 9x9) and the sequence length `n * n`.
//!
//! - [`solver`]: singles, locked candidates, MRV branching, guess counts, solution counts up to 2.
//! - [`generator`]: random solution grids, minimal unique puzzles, a givens range.
//! - [`rating`] and [`hard`]: a difficulty rating calibrated against tdoku, and hill climbing on it.
//! - [`augment`]: validity-preserving transforms (digits, transpose, bands, rows, stacks, columns).
//! - [`canonical`]: a canonical form under those transforms, to tell puzzles apart up to symmetry.
//! - [`csv`]: the Sudoku-Extreme CSV format.
//! - [`dataset`]: puzzles to an [`crate::ExampleSet`], with augmentation.

pub mod augment;
pub mod canonical;
pub mod csv;
pub mod dataset;
pub mod generator;
pub mod hard;
pub mod rating;
pub mod solver;

pub use augment::Transform;
pub use canonical::canonical_form;
pub use csv::{read_csv, write_csv, SudokuRecord};
pub use dataset::{generate_dataset, to_example_set, Difficulty};
pub use generator::{minimal_puzzle, random_solution};
pub use rating::rate;
pub use solver::{SolveOutcome, Solver};

/// PAD token (never present in Sudoku rows; reserved so every task shares the convention).
pub const PAD: u8 = 0;
/// Token of a blank cell.
pub const BLANK: u8 = 1;

/// The box shape: `rows x cols` cells per box; the grid side is `rows * cols`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BoxShape {
    pub rows: usize,
    pub cols: usize,
}

impl BoxShape {
    pub const B2X2: BoxShape = BoxShape { rows: 2, cols: 2 };
    pub const B2X3: BoxShape = BoxShape { rows: 2, cols: 3 };
    pub const B3X3: BoxShape = BoxShape { rows: 3, cols: 3 };

    /// Panics unless `1 <= rows, cols` and `2 <= rows * cols <= 9`.
    pub fn new(rows: usize, cols: usize) -> Self {
        assert!(
            rows >= 1 && cols >= 1 && (2..=9).contains(&(rows * cols)),
            "BoxShape {rows}x{cols}: side must be 2..=9"
        );
        BoxShape { rows, cols }
    }

    /// Parse `"3x3"`, `"2x3"`, ...
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("box shape `{text}` is not ROWSxCOLS with a side of 2..=9 (e.g. 2x2, 2x3, 3x3)");
        let (r, c) = text.split_once(['x', 'X']).ok_or_else(bad)?;
        let (r, c): (usize, usize) = (r.trim().parse().map_err(|_| bad())?, c.trim().parse().map_err(|_| bad())?);
        // Checked: `18446744073709551615x2` overflowed the product (a panic with overflow checks, as in tests).
        if r == 0 || c == 0 || !r.checked_mul(c).is_some_and(|side| (2..=9).contains(&side)) {
            return Err(bad());
        }
        Ok(BoxShape { rows: r, cols: c })
    }

    /// Grid side `n`.
    pub fn side(&self) -> usize {
        self.rows * self.cols
    }

    /// Number of cells `n * n`.
    pub fn cells(&self) -> usize {
        self.side() * self.side()
    }

    /// The shape after transposing the grid (2x3 boxes become 3x2 boxes).
    pub fn transposed(&self) -> Self {
        BoxShape { rows: self.cols, cols: self.rows }
    }

    /// The token vocabulary: PAD, blank, and `n` digits.
    pub fn vocab_size(&self) -> usize {
        self.side() + 2
    }

    /// The conventional shape for a grid of `cells` cells (16 -> 2x2, 36 -> 2x3, 81 -> 3x3).
    pub fn for_cells(cells: usize) -> Option<Self> {
        match cells {
            16 => Some(Self::B2X2),
            36 => Some(Self::B2X3),
            81 => Some(Self::B3X3),
            _ => None,
        }
    }

    /// Index of the box holding cell `(row, col)`.
    pub fn box_of(&self, row: usize, col: usize) -> usize {
        (row / self.rows) * self.rows + col / self.cols
    }
}

impl std::fmt::Display for BoxShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.rows, self.cols)
    }
}

/// Tokens of a grid: blank -> 1, digit `d` -> `d + 1`.
pub fn to_tokens(grid: &[u8]) -> Vec<u8> {
    grid.iter().map(|&d| d + 1).collect()
}

/// The grid of a token row (inverse of [`to_tokens`]); PAD and out-of-range tokens become blanks.
pub fn from_tokens(tokens: &[u8], shape: BoxShape) -> Vec<u8> {
    tokens.iter().map(|&t| if t >= 2 && (t as usize) <= shape.side() + 1 { t - 1 } else { 0 }).collect()
}

/// The first rule a grid breaks, if any: a cell out of range or a digit twice in a row, column or box. Blanks
/// are allowed (a puzzle); use [`is_solution_of`] for a complete grid.
pub fn rule_violation(grid: &[u8], shape: BoxShape) -> Option<String> {
    let n = shape.side();
    if grid.len() != n * n {
        return Some(format!("grid has {} cells, a {shape} Sudoku has {}", grid.len(), n * n));
    }
    let (mut rows, mut cols, mut boxes) = (vec![0u16; n], vec![0u16; n], vec![0u16; n]);
    for (i, &d) in grid.iter().enumerate() {
        let (r, c) = (i / n, i % n);
        if d as usize > n {
            return Some(format!("cell r{}c{} holds {d}, digits are 1..={n}", r + 1, c + 1));
        }
        if d == 0 {
            continue;
        }
        let bit = 1u16 << (d - 1);
        let b = shape.box_of(r, c);
        for (set, what, k) in [(&mut rows, "row", r), (&mut cols, "column", c), (&mut boxes, "box", b)] {
            if set[k] & bit != 0 {
                return Some(format!("digit {d} appears twice in {what} {}", k + 1));
            }
            set[k] |= bit;
        }
    }
    None
}

/// Why `solution` is not a complete, rule-abiding grid that agrees with every given of `puzzle`, if it is not.
pub fn solution_problem(puzzle: &[u8], solution: &[u8], shape: BoxShape) -> Option<String> {
    if let Some(v) = rule_violation(solution, shape) {
        return Some(v);
    }
    let n = shape.side();
    if let Some(i) = solution.iter().position(|&d| d == 0) {
        return Some(format!("answer has a blank at r{}c{}", i / n + 1, i % n + 1));
    }
    let i = puzzle.iter().zip(solution).position(|(&p, &s)| p != 0 && p != s)?;
    Some(format!("answer has {} at r{}c{} where the question gives {}", solution[i], i / n + 1, i % n + 1, puzzle[i]))
}

/// True when `solution` is complete, follows the rules and keeps every given of `puzzle`.
pub fn is_solution_of(puzzle: &[u8], solution: &[u8], shape: BoxShape) -> bool {
    solution_problem(puzzle, solution, shape).is_none()
}

/// Number of givens (non-blank cells).
pub fn givens(grid: &[u8]) -> usize {
    grid.iter().filter(|&&d| d != 0).count()
}

/// Parse the Sudoku-Extreme text form: `.` blank, `1`..`n` digits.
pub fn parse_grid(text: &str, shape: BoxShape) -> Result<Vec<u8>, String> {
    let n = shape.side();
    let chars: Vec<char> = text.chars().collect();
    if chars.len() != n * n {
        return Err(format!("has {} characters, a {shape} Sudoku has {}", chars.len(), n * n));
    }
    chars
        .iter()
        .enumerate()
        .map(|(i, &ch)| match ch {
            '.' => Ok(0),
            '1'..='9' if (ch as usize - '0' as usize) <= n => Ok(ch as u8 - b'0'),
            _ => Err(format!("has bad character {ch:?} at position {} (expected '.' or 1-{n})", i + 1)),
        })
        .collect()
}

/// The Sudoku-Extreme text form of a grid.
pub fn format_grid(grid: &[u8]) -> String {
    grid.iter().map(|&d| if d == 0 { '.' } else { (b'0' + d) as char }).collect()
}

/// A grid drawn for a terminal, boxes separated by lines.
pub fn draw(grid: &[u8], shape: BoxShape) -> String {
    let n = shape.side();
    let mut out = String::new();
    for r in 0..n {
        if r > 0 && r % shape.rows == 0 {
            let seg = "-".repeat(shape.cols * 2 - 1);
            out.push_str(&vec![seg; shape.rows].join("-+-"));
            out.push('\n');
        }
        for c in 0..n {
            if c > 0 {
                out.push_str(if c % shape.cols == 0 { " | " } else { " " });
            }
            let d = grid[r * n + c];
            out.push(if d == 0 { '.' } else { (b'0' + d) as char });
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_parse_and_tokens() {
        assert_eq!(BoxShape::parse("2x3").unwrap(), BoxShape::B2X3);
        assert!(BoxShape::parse("4x4").is_err() && BoxShape::parse("3").is_err() && BoxShape::parse("0x5").is_err());
        assert_eq!(BoxShape::B3X3.vocab_size(), 11);
        let g = vec![0, 3, 9];
        assert_eq!(to_tokens(&g), vec![1, 4, 10]);
        assert_eq!(from_tokens(&to_tokens(&g), BoxShape::B3X3), g);
    }

    #[test]
    fn rules_and_consistency() {
        let s = BoxShape::B2X2;
        let sol = parse_grid("1234341221434321", s).unwrap();
        assert!(rule_violation(&sol, s).is_none());
        let puzzle = parse_grid("1...............", s).unwrap();
        assert!(is_solution_of(&puzzle, &sol, s));
        let wrong_given = parse_grid("2...............", s).unwrap();
        assert!(solution_problem(&wrong_given, &sol, s).unwrap().contains("where the question gives 2"));
        let dup = parse_grid("11..............", s).unwrap();
        assert_eq!(rule_violation(&dup, s).unwrap(), "digit 1 appears twice in row 1");
        assert!(parse_grid("123456789", s).is_err());
        assert!(parse_grid("1234341221434325", s).unwrap_err().contains("bad character '5'"));
    }

    #[test]
    fn draw_shows_boxes() {
        let s = BoxShape::B2X2;
        let g = parse_grid("1234341221434321", s).unwrap();
        assert_eq!(draw(&g, s).lines().nth(2).unwrap(), "----+----");
        assert_eq!(draw(&g, s).lines().next().unwrap(), "1 2 | 3 4");
    }
}
