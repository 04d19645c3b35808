//! GEMM through `matrixmultiply`: C = alpha A B + beta C with arbitrary row and column strides, so a transposed
//! operand is a stride swap, not a copy, and beta = 1 accumulates in place (weight gradients go straight into
//! their persistent buffers).

use crate::float::Float;
use std::any::TypeId;

/// A read-only matrix view: element (i, j) is `data[i * rs + j * cs]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a, E> {
    pub data: &'a [E],
    pub rows: usize,
    pub cols: usize,
    pub rs: isize,
    pub cs: isize,
}

/// A mutable matrix view with strides, for the output of [`gemm`].
#[derive(Debug)]
pub struct MatMut<'a, E> {
    pub data: &'a mut [E],
    pub rows: usize,
    pub cols: usize,
    pub rs: isize,
    pub cs: isize,
}

impl<'a, E: Float> MatRef<'a, E> {
    /// A contiguous row-major [rows, cols] view.
    pub fn new(data: &'a [E], rows: usize, cols: usize) -> Self {
        assert_eq!(data.len(), rows * cols, "MatRef::new: {} elements for [{rows}, {cols}]", data.len());
        MatRef { data, rows, cols, rs: cols as isize, cs: 1 }
    }
    /// The transpose, as a stride swap (free).
    pub fn t(self) -> Self {
        MatRef { data: self.data, rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs }
    }
    fn check(&self, op: &str) {
        if self.rows > 0 && self.cols > 0 {
            let last = (self.rows as isize - 1) * self.rs + (self.cols as isize - 1) * self.cs;
            assert!(
                self.rs >= 0 && self.cs >= 0 && (last as usize) < self.data.len(),
                "{op}: strides ({}, {}) of a [{}, {}] view overrun {} elements",
                self.rs,
                self.cs,
                self.rows,
                self.cols,
                self.data.len()
            );
        }
    }
}

impl<'a, E: Float> MatMut<'a, E> {
    /// A contiguous row-major [rows, cols] view.
    pub fn new(data: &'a mut [E], rows: usize, cols: usize) -> Self {
        assert_eq!(data.len(), rows * cols, "MatMut::new: {} elements for [{rows}, {cols}]", data.len());
        MatMut { data, rows, cols, rs: cols as isize, cs: 1 }
    }
}

/// C = alpha * A B + beta * C. A is [m, k], B is [k, n], C is [m, n]. With beta = 0, C's old contents are
/// ignored (NaNs in it do not leak through). Panics naming both shapes when they do not fit.
pub fn gemm<E: Float>(alpha: E, a: MatRef<'_, E>, b: MatRef<'_, E>, beta: E, c: MatMut<'_, E>) {
    assert!(
        a.cols == b.rows && c.rows == a.rows && c.cols == b.cols,
        "gemm: cannot multiply [{}, {}] by [{}, {}] into [{}, {}]",
        a.rows,
        a.cols,
        b.rows,
        b.cols,
        c.rows,
        c.cols
    );
    a.check("gemm (A)");
    b.check("gemm (B)");
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if m == 0 || n == 0 {
        return;
    }
    if c.rows > 0 && c.cols > 0 {
        let last = (c.rows as isize - 1) * c.rs + (c.cols as isize - 1) * c.cs;
        assert!(c.rs >= 0 && c.cs >= 0 && (last as usize) < c.data.len(), "gemm: output strides overrun");
    }
    // SAFETY: every view was bounds-checked above against its slice; matrixmultiply reads A and B and writes C
    // only at i * rs + j * cs for i < rows, j < cols. C is a unique borrow, so it cannot alias A or B.
    unsafe {
        if TypeId::of::<E>() == TypeId::of::<f32>() {
            matrixmultiply::sgemm(
                m,
                k,
                n,
                alpha.to_f64() as f32,
                a.data.as_ptr() as *const f32,
                a.rs,
                a.cs,
                b.data.as_ptr() as *const f32,
                b.rs,
                b.cs,
                beta.to_f64() as f32,
                c.data.as_mut_ptr() as *mut f32,
                c.rs,
                c.cs,
            );
        } else if TypeId::of::<E>() == TypeId::of::<f64>() {
            matrixmultiply::dgemm(
                m,
                k,
                n,
                alpha.to_f64(),
                a.data.as_ptr() as *const f64,
                a.rs,
                a.cs,
                b.data.as_ptr() as *const f64,
                b.rs,
                b.cs,
                beta.to_f64(),
                c.data.as_mut_ptr() as *mut f64,
                c.rs,
                c.cs,
            );
        } else {
            unreachable!("gemm: Float is implemented only for f32 and f64");
        }
    }
}

/// `batch` independent GEMMs over contiguous [m, k] x [k, n] -> [m, n] blocks, with each operand optionally
/// transposed (`ta`: A is stored [k, m]; `tb`: B is stored [n, k]). A stride of 0 for an operand broadcasts
/// it over the batch. C = alpha A B + beta C for each block.
#[allow(clippy::too_many_arguments)]
pub fn gemm_batched<E: Float>(
    batch: usize,
    m: usize,
    k: usize,
    n: usize,
    alpha: E,
    a: &[E],
    ta: bool,
    a_stride: usize,
    b: &[E],
    tb: bool,
    b_stride: usize,
    beta: E,
    c: &mut [E],
) {
    assert!(c.len() == batch * m * n, "gemm_batched: output has {} elements, expected {batch} x [{m}, {n}]", c.len());
    for i in 0..batch {
        let ab = &a[i * a_stride..i * a_stride + m * k];
        let bb = &b[i * b_stride..i * b_stride + k * n];
        let am = if ta { MatRef::new(ab, k, m).t() } else { MatRef::new(ab, m, k) };
        let bm = if tb { MatRef::new(bb, n, k).t() } else { MatRef::new(bb, k, n) };
        gemm(alpha, am, bm, beta, MatMut::new(&mut c[i * m * n..(i + 1) * m * n], m, n));
    }
}
