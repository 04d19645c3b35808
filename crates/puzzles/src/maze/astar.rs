//! Searchformer's deterministic A* (facebookresearch/searchformer `astar.py` + `maze.py`), whose plans are the
//! `answer` column of Maze-Hard. Reproducing its tie-breaks exactly is what makes exact-match scoring meaningful.
//!
//! - Cost `f = g + h`, `h` the Manhattan distance to G, every step costs 1.
//! - The open heap pops the smallest `(f, x + 100000 * y)`; for `x < size` that key orders like the cell index
//!   `x + size * y`, so ties go to the cell with the smaller index.
//! - The open set holds one entry per cell; a cell's entry (and parent) is replaced only by a strictly lower `f`.
//!   A closed cell is reopened only by a strictly lower `f` (never, with this consistent heuristic).
//! - Children are generated as (x, y+1), (x, y-1), (x-1, y), (x+1, y); since entries are unique per cell and the
//!   heap order is total, that order does not change the result, but it is kept for fidelity.
//! - The search stops when G is popped; the plan is G's parent chain.

use super::{endpoints, neighbours, WALL};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// The A* plan from S to G as cell indices, S and G included; `None` when G is unreachable or the maze lacks a
/// single S or G.
pub fn astar_path(cells: &[u8], size: usize) -> Option<Vec<usize>> {
    let (start, goal) = endpoints(cells).ok()?;
    let (gx, gy) = ((goal % size) as i64, (goal / size) as i64);
    let h = |c: usize| ((c % size) as i64 - gx).unsigned_abs() + ((c / size) as i64 - gy).unsigned_abs();
    let n = cells.len();
    // f of the live open entry per cell (u64::MAX = not open), f at closing, g, parent.
    let mut open_f = vec![u64::MAX; n];
    let mut closed_f = vec![u64::MAX; n];
    let mut g = vec![0u64; n];
    let mut parent = vec![usize::MAX; n];
    let mut heap = BinaryHeap::new();
    open_f[start] = h(start);
    heap.push(Reverse((h(start), start)));
    let mut reached = false;
    while let Some(Reverse((f, cell))) = heap.pop() {
        if open_f[cell] != f {
            continue; // a stale entry, replaced by a lower f or already popped
        }
        open_f[cell] = u64::MAX;
        closed_f[cell] = f;
        if cell == goal {
            reached = true;
            break;
        }
        for child in neighbours(cell, size) {
            if cells[child] == WALL {
                continue;
            }
            let child_g = g[cell] + 1;
            let child_f = child_g + h(child);
            if open_f[child] != u64::MAX && open_f[child] <= child_f {
                continue;
            }
            if closed_f[child] != u64::MAX && closed_f[child] <= child_f {
                continue;
            }
            open_f[child] = child_f;
            g[child] = child_g;
            parent[child] = cell;
            heap.push(Reverse((child_f, child)));
        }
    }
    if !reached {
        return None;
    }
    let mut path = vec![goal];
    while *path.last().unwrap() != start {
        path.push(parent[*path.last().unwrap()]);
    }
    path.reverse();
    Some(path)
}

/// The Maze-Hard answer for a question: the question with the interior cells of the A* plan set to `o`.
pub fn label(question: &[u8], size: usize) -> Option<Vec<u8>> {
    let path = astar_path(question, size)?;
    let mut answer = question.to_vec();
    for &c in &path[1..path.len() - 1] {
        answer[c] = super::PATH;
    }
    Some(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_grid_prefers_smaller_index_on_ties() {
        // 3x3 open grid, S at (0,0), G at (2,2). With ties on f broken by the smaller index, the search expands
        // along row 0 first, so the plan runs right then down.
        let q = b"S        ".iter().enumerate().map(|(i, &c)| if i == 8 { b'G' } else { c }).collect::<Vec<_>>();
        assert_eq!(astar_path(&q, 3).unwrap(), vec![0, 1, 2, 5, 8]);
        assert_eq!(label(&q, 3).unwrap(), b"Soo  o  G".to_vec());
    }

    #[test]
    fn unreachable_goal() {
        assert_eq!(astar_path(b"S#  #  #G", 3), None);
    }
}
