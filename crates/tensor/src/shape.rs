//! Shapes: up to 6 dimensions, stored inline so that a shape never allocates.

use serde::{Deserialize, Serialize};
use std::fmt;

pub const MAX_RANK: usize = 6;

/// The dimensions of a contiguous row-major tensor. `Copy`, inline, at most [`MAX_RANK`] axes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Shape {
    dims: [usize; MAX_RANK],
    rank: u8,
}

impl Shape {
    pub fn new(dims: &[usize]) -> Self {
        assert!(dims.len() <= MAX_RANK, "Shape::new: rank {} exceeds the maximum {MAX_RANK}", dims.len());
        let mut d = [0; MAX_RANK];
        d[..dims.len()].copy_from_slice(dims);
        Shape { dims: d, rank: dims.len() as u8 }
    }
    pub fn scalar() -> Self {
        Shape::new(&[])
    }
    pub fn dims(&self) -> &[usize] {
        &self.dims[..self.rank as usize]
    }
    pub fn rank(&self) -> usize {
        self.rank as usize
    }
    /// Number of elements (1 for a scalar).
    pub fn numel(&self) -> usize {
        self.dims().iter().product()
    }
    /// Size of axis `i`; negative `i` counts from the end.
    pub fn dim(&self, i: isize) -> usize {
        let r = self.rank() as isize;
        let j = if i < 0 { r + i } else { i };
        assert!((0..r).contains(&j), "Shape::dim: axis {i} out of range for {self}");
        self.dims[j as usize]
    }
    /// Length of the last axis (1 for a scalar).
    pub fn last(&self) -> usize {
        self.dims().last().copied().unwrap_or(1)
    }
    /// Number of rows when the tensor is seen as a matrix [numel / last, last].
    pub fn rows(&self) -> usize {
        self.numel().checked_div(self.last()).unwrap_or(0)
    }
    /// The same shape with the last two axes swapped.
    pub fn transpose_last2(&self) -> Self {
        assert!(self.rank() >= 2, "transpose: shape {self} has fewer than 2 axes");
        let mut s = *self;
        let r = self.rank();
        s.dims.swap(r - 1, r - 2);
        s
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[")?;
        for (i, d) in self.dims().iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{d}")?;
        }
        write!(f, "]")
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl From<&[usize]> for Shape {
    fn from(d: &[usize]) -> Self {
        Shape::new(d)
    }
}

impl<const N: usize> From<[usize; N]> for Shape {
    fn from(d: [usize; N]) -> Self {
        Shape::new(&d)
    }
}

impl From<&Vec<usize>> for Shape {
    fn from(d: &Vec<usize>) -> Self {
        Shape::new(d)
    }
}
