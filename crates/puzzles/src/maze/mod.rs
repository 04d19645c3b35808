//! Mazes on a square grid, in the Maze-Hard format (HRM/TRM): a row-major string of `size * size` characters,
//! index `x + size * y`, with `#` wall, ` ` free, `S` start, `G` goal, and in answers `o` for the interior cells of
//! one shortest S->G path.
//!
//! Tokens (HRM's `build_maze_dataset.py`): 0 PAD, `#` 1, ` ` 2, `S` 3, `G` 4, `o` 5; vocabulary 6; sequence length
//! `size * size` (900 for 30x30).
//!
//! - [`astar`]: Searchformer's deterministic A*, whose plans are the answer column of Maze-Hard.
//! - [`generate`]: random-wall mazes with a route-length filter, as `../shared/data/maze/README.md` describes.
//! - [`score`]: exact match and "valid and shortest path".
//! - [`csv`]: the CSV format; [`dataset`]: to an [`crate::ExampleSet`], with dihedral augmentation.

pub mod astar;
pub mod csv;
pub mod dataset;
pub mod generate;
pub mod score;

pub use astar::{astar_path, label};
pub use csv::{read_csv, write_csv, MazeRecord};
pub use dataset::to_example_set;
pub use generate::{generate_mazes, MazeConfig};
pub use score::{exact_match, valid_shortest_path};

pub const WALL: u8 = b'#';
pub const FREE: u8 = b' ';
pub const START: u8 = b'S';
pub const GOAL: u8 = b'G';
pub const PATH: u8 = b'o';

/// Characters in token order: token `t` (1..=5) is `CHARSET[t - 1]`.
pub const CHARSET: &[u8; 5] = b"# SGo";
/// Token vocabulary: PAD plus the five characters.
pub const VOCAB_SIZE: usize = 6;

/// The token of a maze character (0 for anything else).
pub fn token_of(ch: u8) -> u8 {
    CHARSET.iter().position(|&c| c == ch).map_or(0, |p| p as u8 + 1)
}

/// Tokens of a maze string.
pub fn to_tokens(cells: &[u8]) -> Vec<u8> {
    cells.iter().map(|&c| token_of(c)).collect()
}

/// The characters of a token row; PAD and unknown tokens become `?`.
pub fn from_tokens(tokens: &[u8]) -> Vec<u8> {
    tokens.iter().map(|&t| if (1..=5).contains(&t) { CHARSET[t as usize - 1] } else { b'?' }).collect()
}

/// The side of a square maze of `cells` cells, if it is a square.
pub fn side_of(cells: usize) -> Option<usize> {
    let s = (cells as f64).sqrt().round() as usize;
    (s * s == cells && s > 0).then_some(s)
}

/// The single `S` and `G` of a question, or why there are not exactly one of each.
pub fn endpoints(cells: &[u8]) -> Result<(usize, usize), String> {
    let find = |ch: u8| {
        let mut it = cells.iter().enumerate().filter(|(_, &c)| c == ch).map(|(i, _)| i);
        match (it.next(), it.next()) {
            (Some(i), None) => Ok(i),
            (None, _) => Err(format!("no {:?} cell", ch as char)),
            (Some(_), Some(_)) => Err(format!("more than one {:?} cell", ch as char)),
        }
    };
    Ok((find(START)?, find(GOAL)?))
}

/// The 4-neighbours of `cell` in a `size x size` grid.
pub fn neighbours(cell: usize, size: usize) -> impl Iterator<Item = usize> {
    let (x, y) = (cell % size, cell / size);
    [
        (y + 1 < size).then(|| cell + size),
        (y > 0).then(|| cell - size),
        (x > 0).then(|| cell - 1),
        (x + 1 < size).then(|| cell + 1),
    ]
    .into_iter()
    .flatten()
}

/// Breadth-first distances (in steps) from `from` over non-wall cells; `u32::MAX` where unreachable.
pub fn bfs_distances(cells: &[u8], size: usize, from: usize) -> Vec<u32> {
    let mut dist = vec![u32::MAX; cells.len()];
    let mut queue = std::collections::VecDeque::new();
    dist[from] = 0;
    queue.push_back(from);
    while let Some(c) = queue.pop_front() {
        for n in neighbours(c, size) {
            if cells[n] != WALL && dist[n] == u32::MAX {
                dist[n] = dist[c] + 1;
                queue.push_back(n);
            }
        }
    }
    dist
}

/// The shortest S->G route in cells, S and G included (Maze-Hard's `rating`); `None` when G is unreachable.
pub fn route_cells(cells: &[u8], size: usize) -> Option<usize> {
    let (s, g) = endpoints(cells).ok()?;
    let d = bfs_distances(cells, size, s)[g];
    (d != u32::MAX).then_some(d as usize + 1)
}

/// A maze drawn for a terminal: one text row per grid row, framed.
pub fn draw(cells: &[u8], size: usize) -> String {
    let mut out = format!("+{}+\n", "-".repeat(size));
    for row in cells.chunks(size) {
        out.push('|');
        out.extend(row.iter().map(|&c| c as char));
        out.push_str("|\n");
    }
    out.push_str(&format!("+{}+\n", "-".repeat(size)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_follow_hrm() {
        assert_eq!(to_tokens(b"# SGo"), vec![1, 2, 3, 4, 5]);
        assert_eq!(from_tokens(&[1, 2, 3, 4, 5, 0]), b"# SGo?".to_vec());
        assert_eq!(side_of(900), Some(30));
        assert_eq!(side_of(899), None);
    }

    #[test]
    fn route_and_endpoints() {
        // 3x3: S top-left, G bottom-left, wall in the middle column's top two cells.
        let m = b"S# \n # \nG  ".iter().copied().filter(|&c| c != b'\n').collect::<Vec<_>>();
        assert_eq!(route_cells(&m, 3), Some(3));
        assert!(endpoints(b"SS G").unwrap_err().contains("more than one 'S'"));
        assert!(endpoints(b"   G").unwrap_err().contains("no 'S'"));
    }
}
