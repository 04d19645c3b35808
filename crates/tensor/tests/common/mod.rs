//! Strategies and operands shared by the property tests. Their comparisons are `loopgrad_tensor::compare`'s
//! (tolerances in units of the element type's epsilon), which the fused ops' tests in loopgrad-autograd use too.
#![allow(dead_code)]

use loopgrad_tensor::{Float, MatRef};
use proptest::prelude::*;

/// 64 cases per property unless `PROPTEST_CASES` says otherwise (`ProptestConfig::with_cases` would ignore it).
pub fn config() -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = 64;
    }
    c
}

/// Lengths that straddle the SIMD widths (4 for f64, 8 for f32) and the 4-accumulator blocks of the
/// reductions (16 and 32 elements), plus random ones.
pub fn len() -> impl Strategy<Value = usize> {
    prop_oneof![
        prop::sample::select(vec![1usize, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65]),
        0usize..400
    ]
}

/// `n` values uniform in [lo, hi).
pub fn values(n: usize, lo: f64, hi: f64) -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(lo..hi, n)
}

pub fn cast<E: Float>(xs: &[f64]) -> Vec<E> {
    xs.iter().map(|&x| E::from_f64(x)).collect()
}

/// A [rows, cols] GEMM operand stored inside a larger buffer: row-major with leading dimension `ld >= cols`, or
/// column-major (`transposed`, `ld >= rows`). Values in the padding must never be read as data.
#[derive(Clone, Debug)]
pub struct Operand<T> {
    pub rows: usize,
    pub cols: usize,
    pub transposed: bool,
    pub ld: usize,
    pub buf: Vec<T>,
}

impl<T> Operand<T> {
    /// `pad` elements beyond the minimal leading dimension; `fill` gives the buffer's values in order.
    pub fn new(rows: usize, cols: usize, transposed: bool, pad: usize, mut fill: impl FnMut() -> T) -> Self {
        let ld = if transposed { rows } else { cols } + pad;
        let len = if rows * cols == 0 { 0 } else { (if transposed { cols } else { rows } - 1) * ld + ld };
        Operand { rows, cols, transposed, ld, buf: (0..len).map(|_| fill()).collect() }
    }
    /// The buffer index of element (i, j).
    pub fn at(&self, i: usize, j: usize) -> usize {
        if self.transposed {
            j * self.ld + i
        } else {
            i * self.ld + j
        }
    }
    /// (row stride, column stride).
    pub fn strides(&self) -> (isize, isize) {
        if self.transposed {
            (1, self.ld as isize)
        } else {
            (self.ld as isize, 1)
        }
    }
    /// This operand's view of `data`: its own buffer, or a copy of it in another type.
    pub fn view<'a, E: Float>(&self, data: &'a [E]) -> MatRef<'a, E> {
        let (rs, cs) = self.strides();
        MatRef { data, rows: self.rows, cols: self.cols, rs, cs }
    }
}
