//! ARC augmentations: one of the 8 dihedral transforms ([`crate::dihedral`]) and a permutation of the colours
//! 1..=9 (black, 0, stays black), named as TRM names augmented puzzles: `task|||t<k>|||<mapping>`, where
//! `<mapping>` is the ten digits `mapping[0..10]` (so it starts with 0). The plain task id names the identity.

use super::{Grid, COLOURS};
use crate::dihedral::{dihedral, dihedral_shape, DIHEDRAL_INVERSE};
use crate::rng::Rng;

/// The separator TRM puts between a task id and its augmentation.
pub const SEPARATOR: &str = "|||";

/// A colour permutation (0 fixed) followed by a dihedral transform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Augmentation {
    /// Dihedral transform id, 0..8.
    pub transform: u8,
    /// Colour `c` becomes `colours[c]`; `colours[0] == 0`.
    pub colours: [u8; COLOURS as usize],
}

impl Augmentation {
    pub const IDENTITY: Augmentation = Augmentation { transform: 0, colours: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] };

    /// Uniform over the 8 transforms and the 9! colour permutations (TRM's `aug`).
    pub fn random(rng: &mut Rng) -> Self {
        let transform = rng.below(8) as u8;
        let mut colours = [0u8; COLOURS as usize];
        for (slot, c) in colours[1..].iter_mut().zip(rng.permutation(9)) {
            *slot = c as u8 + 1;
        }
        Augmentation { transform, colours }
    }

    pub fn is_identity(&self) -> bool {
        *self == Self::IDENTITY
    }

    pub fn apply(&self, grid: &Grid) -> Grid {
        let mapped: Vec<u8> = grid.cells.iter().map(|&c| self.colours[c as usize]).collect();
        let (rows, cols) = dihedral_shape(self.transform, grid.rows, grid.cols);
        Grid::new(rows, cols, dihedral(&mapped, grid.rows, grid.cols, self.transform))
    }

    /// The augmentation that undoes this one.
    pub fn inverse(&self) -> Self {
        let mut colours = [0u8; COLOURS as usize];
        for (c, &to) in self.colours.iter().enumerate() {
            colours[to as usize] = c as u8;
        }
        Augmentation { transform: DIHEDRAL_INVERSE[self.transform as usize], colours }
    }

    /// Undo this augmentation on `grid`. Cells outside `0..=9` are left as they are.
    pub fn invert(&self, grid: &Grid) -> Grid {
        let inv = self.inverse();
        let (rows, cols) = dihedral_shape(inv.transform, grid.rows, grid.cols);
        let moved = dihedral(&grid.cells, grid.rows, grid.cols, inv.transform);
        let cells = moved.into_iter().map(|c| if c < COLOURS { inv.colours[c as usize] } else { c }).collect();
        Grid::new(rows, cols, cells)
    }

    /// TRM's puzzle name for `task` under this augmentation (the bare id for the identity).
    pub fn name(&self, task: &str) -> String {
        if self.is_identity() {
            return task.to_string();
        }
        let mapping: String = self.colours.iter().map(|&c| (b'0' + c) as char).collect();
        format!("{task}{SEPARATOR}t{}{SEPARATOR}{mapping}", self.transform)
    }

    /// Split a puzzle name into the task id and its augmentation; `None` if the suffix is malformed (a name with
    /// a separator has both parts of it: `TASK|||tT|||COLOURS`).
    pub fn parse_name(name: &str) -> Option<(&str, Augmentation)> {
        let mut parts = name.rsplitn(3, SEPARATOR);
        let (last, mid, first) = (parts.next()?, parts.next(), parts.next());
        let (Some(mid), Some(task)) = (mid, first) else {
            return (!name.contains(SEPARATOR)).then_some((name, Self::IDENTITY));
        };
        let transform = mid.strip_prefix('t')?.parse::<u8>().ok().filter(|&t| t < 8)?;
        let digits: Vec<u8> = last.bytes().map(|b| b.wrapping_sub(b'0')).collect();
        let mut seen = [false; COLOURS as usize];
        if digits.len() != COLOURS as usize || digits[0] != 0 {
            return None;
        }
        for &d in &digits {
            if d >= COLOURS || std::mem::replace(&mut seen[d as usize], true) {
                return None;
            }
        }
        Some((task, Augmentation { transform, colours: digits.try_into().ok()? }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{any, prop_assert_eq, proptest, ProptestConfig};

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        #[test]
        fn augmentations_invert_exactly(seed in any::<u64>(), rows in 1usize..=30, cols in 1usize..=30) {
            let mut rng = Rng::new(seed);
            let cells = (0..rows * cols).map(|_| rng.below(10) as u8).collect();
            let grid = Grid::new(rows, cols, cells);
            let aug = Augmentation::random(&mut rng);
            prop_assert_eq!(aug.invert(&aug.apply(&grid)), grid.clone());
            prop_assert_eq!(aug.inverse().apply(&aug.apply(&grid)), grid.clone());
            prop_assert_eq!(aug.apply(&grid).cells.iter().filter(|&&c| c == 0).count(),
                grid.cells.iter().filter(|&&c| c == 0).count());
            let name = aug.name("007bbfb7");
            prop_assert_eq!(Augmentation::parse_name(&name), Some(("007bbfb7", aug)));
        }
    }

    #[test]
    fn names_match_trm() {
        let aug = Augmentation { transform: 3, colours: [0, 2, 1, 3, 4, 5, 6, 7, 9, 8] };
        assert_eq!(aug.name("abc"), "abc|||t3|||0213456798");
        assert_eq!(Augmentation::parse_name("abc"), Some(("abc", Augmentation::IDENTITY)));
        assert_eq!(Augmentation::parse_name("abc|||t9|||0123456789"), None);
        assert_eq!(Augmentation::parse_name("abc|||t1|||1023456789"), None);
        assert_eq!(Augmentation::parse_name("abc|||t1|||0023456789"), None);
        assert_eq!(Augmentation::parse_name("abc|||t1"), None, "one part of the suffix");
    }
}
