//! A bitmask Sudoku solver: naked singles, hidden singles, locked candidates (pointing and claiming), then MRV
//! branching; it counts solutions up to a limit and the guesses it made.
//!
//! Candidates are one `u16` per cell (bit `d - 1` = digit `d` still possible). Propagation runs the cheap rules
//! to a fixpoint before the dearer ones: naked singles after every placement, hidden singles when those stall,
//! locked candidates when both stall. Branching picks the unsolved cell with the fewest candidates (the first
//! such cell in row-major order) and tries its digits in ascending order (or a random order, for generation).
//!
//! A *guess* is a speculative placement made while other candidates of the branch cell remain untried; trying
//! the last remaining candidate is forced and not a guess. With a solution limit of 1 this is the counting tdoku
//! uses for its ratings; a puzzle the rules alone solve makes 0 guesses.

use super::BoxShape;
use crate::rng::Rng;
use std::sync::Arc;

/// Largest supported grid: 9x9.
const MAX_CELLS: usize = 81;

/// Cell relations of one box shape, computed once per solver.
#[derive(Clone, Debug)]
struct Geometry {
    side: usize,
    cells: usize,
    /// `[3 * side][side]`: the cells of every row, column and box (in that order).
    units: Vec<Vec<u8>>,
    /// `[cells]`: each cell's peers (same row, column or box; itself excluded).
    peers: Vec<Vec<u8>>,
    /// Every intersection of a box with a row or column, with the rest of the box and the rest of the line.
    segments: Vec<Segment>,
}

/// The cells a box shares with one row or column. Boxes and lines are each partitioned by their segments of one
/// orientation, so "the rest of the box" is the union of the box's other segments (likewise for the line).
#[derive(Clone, Debug)]
struct Segment {
    cells: Vec<u8>,
    box_rest: Vec<u8>,
    line_rest: Vec<u8>,
    /// Indices of the other segments (same orientation) of the box and of the line.
    box_siblings: Vec<u16>,
    line_siblings: Vec<u16>,
}

impl Geometry {
    fn new(shape: BoxShape) -> Self {
        let n = shape.side();
        let rows: Vec<Vec<u8>> = (0..n).map(|r| (0..n).map(|c| (r * n + c) as u8).collect()).collect();
        let cols: Vec<Vec<u8>> = (0..n).map(|c| (0..n).map(|r| (r * n + c) as u8).collect()).collect();
        let mut boxes = vec![Vec::new(); n];
        for i in 0..n * n {
            boxes[shape.box_of(i / n, i % n)].push(i as u8);
        }
        let mut peers = vec![Vec::new(); n * n];
        for unit in rows.iter().chain(&cols).chain(&boxes) {
            for &a in unit {
                for &b in unit {
                    if a != b && !peers[a as usize].contains(&b) {
                        peers[a as usize].push(b);
                    }
                }
            }
        }
        // (box, line, orientation) of every segment; a segment that is a whole box or a whole line says nothing.
        let mut keys = Vec::new();
        let mut segments: Vec<Segment> = Vec::new();
        for (b, bx) in boxes.iter().enumerate() {
            for (l, line) in rows.iter().chain(&cols).enumerate() {
                let cells: Vec<u8> = bx.iter().copied().filter(|c| line.contains(c)).collect();
                if cells.is_empty() || cells.len() == bx.len() || cells.len() == line.len() {
                    continue;
                }
                let box_rest = bx.iter().copied().filter(|c| !cells.contains(c)).collect();
                let line_rest = line.iter().copied().filter(|c| !cells.contains(c)).collect();
                keys.push((b, l, l < n));
                segments.push(Segment { cells, box_rest, line_rest, box_siblings: vec![], line_siblings: vec![] });
            }
        }
        for (i, &(b, l, is_row)) in keys.iter().enumerate() {
            for (j, &(b2, l2, is_row2)) in keys.iter().enumerate() {
                if i != j && is_row == is_row2 {
                    if b == b2 {
                        segments[i].box_siblings.push(j as u16);
                    }
                    if l == l2 {
                        segments[i].line_siblings.push(j as u16);
                    }
                }
            }
        }
        let units = rows.into_iter().chain(cols).chain(boxes).collect();
        Geometry { side: n, cells: n * n, units, peers, segments }
    }
}

/// The search state: placed digits and remaining candidates.
#[derive(Clone, Copy)]
struct State {
    values: [u8; MAX_CELLS],
    cands: [u16; MAX_CELLS],
    unsolved: u8,
}

/// How many times each rule fired and how many guesses the search made (summed over the whole search).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SolveStats {
    pub guesses: u32,
    pub naked_singles: u32,
    pub hidden_singles: u32,
    /// Candidates removed by locked candidates (pointing or claiming).
    pub locked_eliminations: u32,
    /// Dead ends met (contradictions after a guess).
    pub dead_ends: u32,
}

/// The result of a search with a solution limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SolveOutcome {
    /// Solutions found, at most the limit (so `count == 2` with limit 2 means "two or more").
    pub count: usize,
    /// The first solution found, if any.
    pub solution: Option<Vec<u8>>,
    pub stats: SolveStats,
}

/// Digit order for branching.
enum Order<'a> {
    Ascending,
    Random(&'a mut Rng),
}

/// A solver for one box shape; reuse it across puzzles (it owns the precomputed cell relations, which its clones
/// share: a parallel loop gives each piece of work a clone, and building the 9x9 relations takes 0.46 M
/// instructions, two thirds of rating a 9x9 puzzle, by callgrind).
#[derive(Clone, Debug)]
pub struct Solver {
    shape: BoxShape,
    geo: Arc<Geometry>,
    full: u16,
    stats: SolveStats,
    singles: Vec<u8>,
}

impl Solver {
    pub fn new(shape: BoxShape) -> Self {
        let n = shape.side();
        Solver {
            shape,
            geo: Arc::new(Geometry::new(shape)),
            full: ((1u32 << n) - 1) as u16,
            stats: Default::default(),
            singles: Vec::new(),
        }
    }

    pub fn shape(&self) -> BoxShape {
        self.shape
    }

    /// Count solutions up to `limit`, trying digits in ascending order (deterministic guess counts).
    pub fn count_solutions(&mut self, grid: &[u8], limit: usize) -> SolveOutcome {
        self.run(grid, limit, Order::Ascending)
    }

    /// The unique solution, or `None` when the grid has none or more than one.
    pub fn unique_solution(&mut self, grid: &[u8]) -> Option<Vec<u8>> {
        let out = self.count_solutions(grid, 2);
        if out.count == 1 {
            out.solution
        } else {
            None
        }
    }

    /// True when the grid has exactly one solution.
    pub fn has_unique_solution(&mut self, grid: &[u8]) -> bool {
        self.count_solutions(grid, 2).count == 1
    }

    /// A solution found with random branching order (on an empty grid: a random solution grid).
    pub fn random_solution(&mut self, grid: &[u8], rng: &mut Rng) -> Option<Vec<u8>> {
        self.run(grid, 1, Order::Random(rng)).solution
    }

    /// Two distinct solutions when the grid has at least two (random branching order), else `None`.
    pub fn two_solutions(&mut self, grid: &[u8], rng: &mut Rng) -> Option<(Vec<u8>, Vec<u8>)> {
        let mut found = Vec::new();
        self.stats = SolveStats::default();
        let mut order = Order::Random(rng);
        if let Some(state) = self.initial_state(grid) {
            self.search(state, 2, &mut order, &mut found);
        }
        let mut it = found.into_iter();
        match (it.next(), it.next()) {
            (Some(a), Some(b)) => Some((a, b)),
            _ => None,
        }
    }

    fn run(&mut self, grid: &[u8], limit: usize, mut order: Order) -> SolveOutcome {
        assert_eq!(grid.len(), self.geo.cells, "Solver({}): grid has {} cells", self.shape, grid.len());
        assert!(limit >= 1, "Solver: solution limit must be at least 1");
        self.stats = SolveStats::default();
        let mut found = Vec::new();
        if let Some(state) = self.initial_state(grid) {
            self.search(state, limit, &mut order, &mut found);
        }
        SolveOutcome { count: found.len(), solution: found.into_iter().next(), stats: self.stats }
    }

    /// The state with every given placed and propagated through its peers (no rules yet), or `None` when two
    /// givens clash or a given is out of range.
    fn initial_state(&mut self, grid: &[u8]) -> Option<State> {
        let mut st = State { values: [0; MAX_CELLS], cands: [0; MAX_CELLS], unsolved: self.geo.cells as u8 };
        st.cands[..self.geo.cells].fill(self.full);
        self.singles.clear();
        for (cell, &d) in grid.iter().enumerate() {
            if d as usize > self.geo.side {
                return None;
            }
            if d != 0 && st.values[cell] != d && !self.assign(&mut st, cell, d) {
                return None;
            }
        }
        Some(st)
    }

    /// Place `d` in `cell` and remove it from the peers, queueing peers left with one candidate. False on a
    /// contradiction.
    fn assign(&mut self, st: &mut State, cell: usize, d: u8) -> bool {
        let bit = 1u16 << (d - 1);
        if st.cands[cell] & bit == 0 || st.values[cell] != 0 {
            return false;
        }
        st.values[cell] = d;
        st.cands[cell] = bit;
        st.unsolved -= 1;
        for &p in &self.geo.peers[cell] {
            let p = p as usize;
            if st.cands[p] & bit != 0 {
                if st.values[p] != 0 {
                    return false;
                }
                st.cands[p] &= !bit;
                let c = st.cands[p];
                if c == 0 {
                    return false;
                }
                if c & (c - 1) == 0 {
                    self.singles.push(p as u8);
                }
            }
        }
        true
    }

    /// Apply the rules to a fixpoint. False on a contradiction.
    fn propagate(&mut self, st: &mut State) -> bool {
        loop {
            while let Some(cell) = self.singles.pop() {
                let cell = cell as usize;
                if st.values[cell] == 0 {
                    let d = st.cands[cell].trailing_zeros() as u8 + 1;
                    self.stats.naked_singles += 1;
                    if !self.assign(st, cell, d) {
                        return false;
                    }
                }
            }
            if st.unsolved == 0 {
                return true;
            }
            match self.hidden_singles(st) {
                None => return false,
                Some(true) => continue,
                Some(false) => {}
            }
            match self.locked_candidates(st) {
                None => return false,
                Some(true) => continue,
                Some(false) => return true,
            }
        }
    }

    /// Place every digit that has one place left in some unit. `None` on a contradiction (a digit with no place),
    /// `Some(progress)` otherwise.
    fn hidden_singles(&mut self, st: &mut State) -> Option<bool> {
        let mut progress = false;
        for u in 0..self.geo.units.len() {
            let (mut seen, mut multi, mut placed) = (0u16, 0u16, 0u16);
            for &c in &self.geo.units[u] {
                let m = st.cands[c as usize];
                multi |= seen & m;
                seen |= m;
                if st.values[c as usize] != 0 {
                    placed |= m;
                }
            }
            if seen != self.full {
                return None;
            }
            let mut once = seen & !multi & !placed;
            while once != 0 {
                let bit = once & once.wrapping_neg();
                once &= once - 1;
                let cell = self.geo.units[u].iter().map(|&c| c as usize).find(|&c| st.cands[c] & bit != 0)?;
                if st.values[cell] != 0 {
                    continue;
                }
                self.stats.hidden_singles += 1;
                if !self.assign(st, cell, bit.trailing_zeros() as u8 + 1) {
                    return None;
                }
                progress = true;
            }
        }
        Some(progress)
    }

    /// Pointing (a digit confined to one line within a box leaves the rest of that line) and claiming (a digit
    /// confined to one box within a line leaves the rest of that box). `None` on a contradiction.
    fn locked_candidates(&mut self, st: &mut State) -> Option<bool> {
        // Candidate masks of every segment, computed once per pass. Eliminations made during the pass leave them
        // supersets of the truth, which keeps every deduction below sound (it can only miss some).
        let mut masks = [0u16; 2 * MAX_CELLS];
        for (m, seg) in masks.iter_mut().zip(&self.geo.segments) {
            *m = seg.cells.iter().fold(0, |acc, &c| acc | st.cands[c as usize]);
        }
        let mut progress = false;
        for (s, seg) in self.geo.segments.iter().enumerate() {
            let in_seg = masks[s];
            let in_box_rest = seg.box_siblings.iter().fold(0, |acc, &j| acc | masks[j as usize]);
            let in_line_rest = seg.line_siblings.iter().fold(0, |acc, &j| acc | masks[j as usize]);
            for (elim, targets) in [
                (in_seg & !in_box_rest & in_line_rest, &seg.line_rest),
                (in_seg & !in_line_rest & in_box_rest, &seg.box_rest),
            ] {
                if elim == 0 {
                    continue;
                }
                for &c in targets {
                    let c = c as usize;
                    if st.values[c] == 0 && st.cands[c] & elim != 0 {
                        self.stats.locked_eliminations += (st.cands[c] & elim).count_ones();
                        st.cands[c] &= !elim;
                        let m = st.cands[c];
                        if m == 0 {
                            return None;
                        }
                        if m & (m - 1) == 0 {
                            self.singles.push(c as u8);
                        }
                        progress = true;
                    }
                }
            }
        }
        Some(progress)
    }

    /// Depth-first search; appends solutions to `found` until it holds `limit`.
    fn search(&mut self, mut st: State, limit: usize, order: &mut Order, found: &mut Vec<Vec<u8>>) {
        loop {
            if !self.propagate(&mut st) {
                self.singles.clear();
                self.stats.dead_ends += 1;
                return;
            }
            if st.unsolved == 0 {
                found.push(st.values[..self.geo.cells].to_vec());
                return;
            }
            // MRV: the first unsolved cell with the fewest candidates.
            let mut best = usize::MAX;
            let mut best_count = u32::MAX;
            for c in 0..self.geo.cells {
                if st.values[c] == 0 {
                    let k = st.cands[c].count_ones();
                    if k < best_count {
                        (best, best_count) = (c, k);
                        if k == 2 {
                            break;
                        }
                    }
                }
            }
            let mut digits = [0u8; 16];
            let mut nd = 0;
            let mut m = st.cands[best];
            while m != 0 {
                digits[nd] = m.trailing_zeros() as u8 + 1;
                nd += 1;
                m &= m - 1;
            }
            if let Order::Random(rng) = order {
                rng.shuffle(&mut digits[..nd]);
            }
            // Every digit but the last is a guess on a copy; the last is forced and continues in place.
            for &d in &digits[..nd - 1] {
                self.stats.guesses += 1;
                let mut child = st;
                if self.assign(&mut child, best, d) {
                    self.search(child, limit, order, found);
                } else {
                    self.singles.clear();
                    self.stats.dead_ends += 1;
                }
                if found.len() >= limit {
                    return;
                }
            }
            if !self.assign(&mut st, best, digits[nd - 1]) {
                self.singles.clear();
                self.stats.dead_ends += 1;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{is_solution_of, parse_grid};
    use super::*;

    const HARD: &str = "9...72.6...6...7.....9....8......3.5...4.......2.19.8.2.97..8...6..91.7.7.1......";
    const HARD_ANSWER: &str = "948572163326148759175936248694287315817453926532619487259764831463891572781325694";

    #[test]
    fn solves_a_hard_9x9_uniquely() {
        let s = BoxShape::B3X3;
        let mut solver = Solver::new(s);
        let grid = parse_grid(HARD, s).unwrap();
        let out = solver.count_solutions(&grid, 2);
        assert_eq!(out.count, 1);
        assert_eq!(out.solution.unwrap(), parse_grid(HARD_ANSWER, s).unwrap());
        assert!(out.stats.guesses > 0, "this puzzle needs guessing");
    }

    #[test]
    fn counts_multiple_and_zero_solutions() {
        let s = BoxShape::B2X3;
        let mut solver = Solver::new(s);
        let empty = vec![0u8; 36];
        assert_eq!(solver.count_solutions(&empty, 2).count, 2);
        let mut clash = empty.clone();
        clash[0] = 1;
        clash[1] = 1;
        assert_eq!(solver.count_solutions(&clash, 2).count, 0);
        // A grid whose givens are legal but admit no solution: row 1 needs a 6 in cell 6, whose column has a 6.
        let mut g = empty;
        g[..5].copy_from_slice(&[1, 2, 3, 4, 5]);
        g[6 * 3 + 5] = 6;
        assert_eq!(solver.count_solutions(&g, 2).count, 0);
    }

    #[test]
    fn random_solutions_are_valid_and_vary() {
        for shape in [BoxShape::B2X2, BoxShape::B2X3, BoxShape::B3X3, BoxShape::new(3, 2)] {
            let mut solver = Solver::new(shape);
            let mut rng = Rng::new(1);
            let empty = vec![0u8; shape.cells()];
            let a = solver.random_solution(&empty, &mut rng).unwrap();
            let b = solver.random_solution(&empty, &mut rng).unwrap();
            assert!(is_solution_of(&empty, &a, shape) && is_solution_of(&empty, &b, shape));
            assert_ne!(a, b, "{shape}");
            let (x, y) = solver.two_solutions(&empty, &mut rng).unwrap();
            assert!(x != y && is_solution_of(&empty, &x, shape) && is_solution_of(&empty, &y, shape));
        }
    }
}
