//! Comparison helpers shared by the property tests. Tolerances are in units of the element type's epsilon
//! (`E::EPSILON`, one ulp at 1.0), so the same stated bound is 2^29 times tighter for f64 than for f32.
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

/// Bit-identical (the kernel does exactly the reference's operations).
pub fn assert_same<E: Float>(op: &str, got: &[E], want: &[E]) {
    assert_eq!(got.len(), want.len(), "{op}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            g == w || (g.to_f64().is_nan() && w.to_f64().is_nan()),
            "{op} ({}) [{i}]: {g} vs reference {w}",
            E::NAME
        );
    }
}

/// |got - want| <= ulps * eps * scale[i]: for results whose rounding error is bounded by the magnitudes that went
/// into them (`scale`), e.g. a fused multiply-add or a sum in another order, where cancellation makes a relative
/// bound meaningless.
pub fn assert_close<E: Float>(op: &str, got: &[E], want: &[E], scale: &[f64], ulps: f64) {
    assert_eq!(got.len(), want.len(), "{op}: lengths");
    for (i, ((g, w), s)) in got.iter().zip(want).zip(scale).enumerate() {
        let (g, w) = (g.to_f64(), w.to_f64());
        let tol = ulps * E::EPSILON.to_f64() * s;
        assert!((g - w).abs() <= tol, "{op} ({}) [{i}]: {g:e} vs reference {w:e}, tolerance {tol:e}", E::NAME);
    }
}

/// Within `ulps` units in the last place of the reference value (its spacing at `want`; denormal spacing
/// below the normal range). Infinities and NaNs must match exactly.
pub fn assert_ulps<E: Float>(op: &str, got: &[E], want: &[E], ulps: f64) {
    assert_eq!(got.len(), want.len(), "{op}: lengths");
    let eps = E::EPSILON.to_f64();
    let min_normal = if E::NAME == "f32" { f32::MIN_POSITIVE as f64 } else { f64::MIN_POSITIVE };
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let (g, w) = (g.to_f64(), w.to_f64());
        if !w.is_finite() || !g.is_finite() {
            assert!(g == w || (g.is_nan() && w.is_nan()), "{op} ({}) [{i}]: {g} vs reference {w}", E::NAME);
            continue;
        }
        let spacing = if w.abs() < min_normal { min_normal * eps } else { 2f64.powf(w.abs().log2().floor()) * eps };
        let err = (g - w).abs() / spacing;
        assert!(err <= ulps, "{op} ({}) [{i}]: {g:e} vs reference {w:e} is {err:.2} ulp > {ulps}", E::NAME);
    }
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
