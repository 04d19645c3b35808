//! Scoring maze predictions two ways. Shortest paths are never unique in Maze-Hard (median ~10^6 of them per
//! maze), so exact match against the A* label rewards learning A*'s tie-break; "valid and shortest" is the
//! task-level criterion HRM states.

use super::{bfs_distances, endpoints, neighbours, FREE, PATH};

/// Exact match: every cell (token) equal to the label.
pub fn exact_match(prediction: &[u8], label: &[u8]) -> bool {
    prediction == label
}

/// True when `prediction` (characters) is `question` with the cells of one shortest S->G path marked `o`: walls,
/// S and G unchanged, every other cell ` ` or `o`, the `o` cells connect S to G, and there are exactly as many
/// of them as a shortest route has interior cells (so they are that route, with nothing extra).
pub fn valid_shortest_path(question: &[u8], prediction: &[u8], size: usize) -> bool {
    if prediction.len() != question.len() || question.len() != size * size {
        return false;
    }
    let Ok((start, goal)) = endpoints(question) else { return false };
    for (&q, &p) in question.iter().zip(prediction) {
        let ok = match q {
            FREE => p == FREE || p == PATH,
            _ => p == q,
        };
        if !ok {
            return false;
        }
    }
    let shortest = bfs_distances(question, size, start)[goal];
    if shortest == u32::MAX {
        return false;
    }
    let marked = prediction.iter().filter(|&&c| c == PATH).count();
    if marked + 1 != shortest as usize {
        return false;
    }
    // Is G reachable from S through `o` cells only?
    let mut seen = vec![false; prediction.len()];
    let mut stack = vec![start];
    seen[start] = true;
    while let Some(c) = stack.pop() {
        for n in neighbours(c, size) {
            if n == goal {
                return true;
            }
            if !seen[n] && prediction[n] == PATH {
                seen[n] = true;
                stack.push(n);
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(rows: &[&str]) -> Vec<u8> {
        rows.concat().into_bytes()
    }

    #[test]
    fn accepts_any_shortest_path_and_rejects_the_rest() {
        let q = grid(&["S  ", "   ", "  G"]);
        assert!(valid_shortest_path(&q, &grid(&["Soo", "  o", "  G"]), 3));
        assert!(valid_shortest_path(&q, &grid(&["S  ", "o  ", "ooG"]), 3));
        assert!(valid_shortest_path(&q, &grid(&["So ", " o ", " oG"]), 3));
        assert!(!valid_shortest_path(&q, &grid(&["Soo", "  o", " oG"]), 3), "an extra cell");
        assert!(!valid_shortest_path(&q, &grid(&["So ", "   ", " oG"]), 3), "disconnected");
        assert!(!valid_shortest_path(&q, &grid(&["So#", " o ", " oG"]), 3), "changed a cell");
        assert!(!valid_shortest_path(&q, &grid(&["S  ", "   ", "  G"]), 3), "no path");
        let q2 = grid(&["S ", " G"]);
        assert!(exact_match(&q2, &q2) && !exact_match(&q2, &grid(&["So", " G"])));
    }
}
