//! The 8 symmetries of the square (rotations and reflections), numbered as TRM's `dataset/common.py` numbers them
//! so that an ARC puzzle name `task|||t<k>|||...` means the same transform here and there.
//!
//! | id | transform | numpy |
//! |---|---|---|
//! | 0 | identity | `a` |
//! | 1 | rotate 90 degrees counter-clockwise | `rot90(a, 1)` |
//! | 2 | rotate 180 degrees | `rot90(a, 2)` |
//! | 3 | rotate 90 degrees clockwise | `rot90(a, 3)` |
//! | 4 | mirror left-right | `fliplr(a)` |
//! | 5 | mirror up-down | `flipud(a)` |
//! | 6 | transpose | `a.T` |
//! | 7 | anti-transpose | `fliplr(rot90(a, 1))` |

/// `DIHEDRAL_INVERSE[k]` undoes transform `k`.
pub const DIHEDRAL_INVERSE: [u8; 8] = [0, 3, 2, 1, 4, 5, 6, 7];

/// Shape `(rows, cols)` of an `h x w` grid after transform `tid`.
pub fn dihedral_shape(tid: u8, h: usize, w: usize) -> (usize, usize) {
    match tid {
        1 | 3 | 6 | 7 => (w, h),
        _ => (h, w),
    }
}

/// The source cell `(row, col)` of output cell `(i, j)` under transform `tid` of an `h x w` grid.
#[inline]
fn source(tid: u8, h: usize, w: usize, i: usize, j: usize) -> (usize, usize) {
    match tid {
        0 => (i, j),
        1 => (j, w - 1 - i),
        2 => (h - 1 - i, w - 1 - j),
        3 => (h - 1 - j, i),
        4 => (i, w - 1 - j),
        5 => (h - 1 - i, j),
        6 => (j, i),
        7 => (h - 1 - j, w - 1 - i),
        _ => panic!("dihedral transform id {tid} is not in 0..8"),
    }
}

/// Apply transform `tid` to a row-major `h x w` grid. The result is row-major with shape [`dihedral_shape`].
pub fn dihedral<T: Copy>(grid: &[T], h: usize, w: usize, tid: u8) -> Vec<T> {
    assert_eq!(grid.len(), h * w, "dihedral: grid of {} cells is not {h}x{w}", grid.len());
    let (oh, ow) = dihedral_shape(tid, h, w);
    let mut out = Vec::with_capacity(grid.len());
    for i in 0..oh {
        for j in 0..ow {
            let (r, c) = source(tid, h, w, i, j);
            out.push(grid[r * w + c]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_numpy_on_a_2x3_grid() {
        // a = [[0,1,2],[3,4,5]]
        let a = [0, 1, 2, 3, 4, 5];
        assert_eq!(dihedral(&a, 2, 3, 1), vec![2, 5, 1, 4, 0, 3]); // rot90: [[2,5],[1,4],[0,3]]
        assert_eq!(dihedral(&a, 2, 3, 2), vec![5, 4, 3, 2, 1, 0]);
        assert_eq!(dihedral(&a, 2, 3, 3), vec![3, 0, 4, 1, 5, 2]); // rot90 k=3: [[3,0],[4,1],[5,2]]
        assert_eq!(dihedral(&a, 2, 3, 4), vec![2, 1, 0, 5, 4, 3]);
        assert_eq!(dihedral(&a, 2, 3, 5), vec![3, 4, 5, 0, 1, 2]);
        assert_eq!(dihedral(&a, 2, 3, 6), vec![0, 3, 1, 4, 2, 5]);
        assert_eq!(dihedral(&a, 2, 3, 7), vec![5, 2, 4, 1, 3, 0]); // fliplr([[2,5],[1,4],[0,3]])
    }

    #[test]
    fn inverse_undoes_every_transform() {
        let a: Vec<u8> = (0..12).collect();
        for tid in 0..8u8 {
            let (h, w) = dihedral_shape(tid, 3, 4);
            let back = dihedral(&dihedral(&a, 3, 4, tid), h, w, DIHEDRAL_INVERSE[tid as usize]);
            assert_eq!(back, a, "tid {tid}");
        }
    }
}
