//! Element-wise and row kernels on slices.
//!
//! FIRST DRAFT: plain scalar loops that fix the API. The tensor issue replaces the bodies with `wide` SIMD
//! (f32x8 / f64x4 with scalar tails, rayon above a measured threshold) and keeps these loops as the scalar
//! references the SIMD versions are tested against. Callers (the tape, the layers) use only these names.
//!
//! Conventions: `out` may not alias an input unless the name says `_inplace`/`_assign`; "rows" means the slice
//! seen as a [rows, cols] row-major matrix with `cols` given. Length mismatches panic naming the kernel.

use crate::float::Float;

#[inline]
fn check_len(op: &str, a: usize, b: usize) {
    assert_eq!(a, b, "{op}: length {a} vs {b}");
}

/// out = a + b
pub fn add<E: Float>(a: &[E], b: &[E], out: &mut [E]) {
    check_len("add", a.len(), b.len());
    check_len("add", a.len(), out.len());
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = x + y;
    }
}

/// out = a - b
pub fn sub<E: Float>(a: &[E], b: &[E], out: &mut [E]) {
    check_len("sub", a.len(), b.len());
    check_len("sub", a.len(), out.len());
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = x - y;
    }
}

/// out = a * b
pub fn mul<E: Float>(a: &[E], b: &[E], out: &mut [E]) {
    check_len("mul", a.len(), b.len());
    check_len("mul", a.len(), out.len());
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = x * y;
    }
}

/// out = s * a
pub fn scale<E: Float>(a: &[E], s: E, out: &mut [E]) {
    check_len("scale", a.len(), out.len());
    for (o, &x) in out.iter_mut().zip(a) {
        *o = s * x;
    }
}

/// y += alpha * x
pub fn axpy<E: Float>(alpha: E, x: &[E], y: &mut [E]) {
    check_len("axpy", x.len(), y.len());
    for (o, &v) in y.iter_mut().zip(x) {
        *o += alpha * v;
    }
}

/// y += x
pub fn add_assign<E: Float>(y: &mut [E], x: &[E]) {
    check_len("add_assign", x.len(), y.len());
    for (o, &v) in y.iter_mut().zip(x) {
        *o += v;
    }
}

/// y += a * b (element-wise product accumulated)
pub fn mul_add_assign<E: Float>(y: &mut [E], a: &[E], b: &[E]) {
    check_len("mul_add_assign", a.len(), y.len());
    check_len("mul_add_assign", b.len(), y.len());
    for ((o, &x), &v) in y.iter_mut().zip(a).zip(b) {
        *o += x * v;
    }
}

/// out = value
pub fn fill<E: Float>(out: &mut [E], value: E) {
    out.fill(value);
}

/// out = exp(a)
pub fn exp<E: Float>(a: &[E], out: &mut [E]) {
    check_len("exp", a.len(), out.len());
    for (o, &x) in out.iter_mut().zip(a) {
        *o = x.exp();
    }
}

/// out = sigmoid(a) = 1 / (1 + exp(-a))
pub fn sigmoid<E: Float>(a: &[E], out: &mut [E]) {
    check_len("sigmoid", a.len(), out.len());
    for (o, &x) in out.iter_mut().zip(a) {
        *o = sigmoid_scalar(x);
    }
}

/// out = silu(a) = a * sigmoid(a)
pub fn silu<E: Float>(a: &[E], out: &mut [E]) {
    check_len("silu", a.len(), out.len());
    for (o, &x) in out.iter_mut().zip(a) {
        *o = x * sigmoid_scalar(x);
    }
}

/// out = 1 / sqrt(a)
pub fn rsqrt<E: Float>(a: &[E], out: &mut [E]) {
    check_len("rsqrt", a.len(), out.len());
    for (o, &x) in out.iter_mut().zip(a) {
        *o = x.sqrt().recip();
    }
}

/// The logistic function, stable for large |x|.
#[inline]
pub fn sigmoid_scalar<E: Float>(x: E) -> E {
    if x >= E::ZERO {
        E::ONE / (E::ONE + (-x).exp())
    } else {
        let e = x.exp();
        e / (E::ONE + e)
    }
}

/// out[r] = sum_j x[r, j]
pub fn row_sum<E: Float>(x: &[E], cols: usize, out: &mut [E]) {
    for_rows("row_sum", x, cols, out, |row| row.iter().copied().sum())
}

/// out[r] = mean_j x[r, j]^2
pub fn row_mean_sq<E: Float>(x: &[E], cols: usize, out: &mut [E]) {
    let inv = E::ONE / E::from_usize(cols.max(1));
    for_rows("row_mean_sq", x, cols, out, |row| row.iter().map(|&v| v * v).sum::<E>() * inv)
}

/// out[r] = max_j x[r, j]
pub fn row_max<E: Float>(x: &[E], cols: usize, out: &mut [E]) {
    for_rows("row_max", x, cols, out, |row| row.iter().copied().fold(row[0], E::max))
}

/// out[r] = argmax_j x[r, j] (the first index on ties)
pub fn row_argmax<E: Float>(x: &[E], cols: usize, out: &mut [usize]) {
    assert!(cols > 0, "row_argmax: zero columns");
    check_len("row_argmax", x.len() / cols, out.len());
    for (o, row) in out.iter_mut().zip(x.chunks_exact(cols)) {
        let mut best = 0;
        for (j, &v) in row.iter().enumerate() {
            if v > row[best] {
                best = j;
            }
        }
        *o = best;
    }
}

/// out[r, :] = softmax(x[r, :]) (max-subtracted)
pub fn softmax_rows<E: Float>(x: &[E], cols: usize, out: &mut [E]) {
    check_len("softmax_rows", x.len(), out.len());
    assert!(cols > 0 && x.len() % cols == 0, "softmax_rows: length {} is not rows of {cols}", x.len());
    for (orow, row) in out.chunks_exact_mut(cols).zip(x.chunks_exact(cols)) {
        let m = row.iter().copied().fold(row[0], E::max);
        let mut s = E::ZERO;
        for (o, &v) in orow.iter_mut().zip(row) {
            *o = (v - m).exp();
            s += *o;
        }
        let inv = E::ONE / s;
        for o in orow.iter_mut() {
            *o *= inv;
        }
    }
}

/// out[r, j] = x[r, j] + row[j] (a row vector broadcast over rows)
pub fn add_row_broadcast<E: Float>(x: &[E], row: &[E], out: &mut [E]) {
    check_len("add_row_broadcast", x.len(), out.len());
    let cols = row.len();
    assert!(cols > 0 && x.len() % cols == 0, "add_row_broadcast: length {} is not rows of {cols}", x.len());
    for (orow, xrow) in out.chunks_exact_mut(cols).zip(x.chunks_exact(cols)) {
        for ((o, &a), &b) in orow.iter_mut().zip(xrow).zip(row) {
            *o = a + b;
        }
    }
}

/// acc[j] += sum_r x[r, j] (column sums, e.g. a bias gradient)
pub fn col_sum_add<E: Float>(x: &[E], acc: &mut [E]) {
    let cols = acc.len();
    assert!(cols > 0 && x.len() % cols == 0, "col_sum_add: length {} is not rows of {cols}", x.len());
    for xrow in x.chunks_exact(cols) {
        for (a, &v) in acc.iter_mut().zip(xrow) {
            *a += v;
        }
    }
}

/// out[b, j, i] = x[b, i, j] for x of shape [batch, rows, cols]
pub fn transpose<E: Float>(x: &[E], batch: usize, rows: usize, cols: usize, out: &mut [E]) {
    check_len("transpose", x.len(), batch * rows * cols);
    check_len("transpose", out.len(), batch * rows * cols);
    let n = rows * cols;
    for b in 0..batch {
        let (xs, os) = (&x[b * n..(b + 1) * n], &mut out[b * n..(b + 1) * n]);
        for i in 0..rows {
            for j in 0..cols {
                os[j * rows + i] = xs[i * cols + j];
            }
        }
    }
}

fn for_rows<E: Float>(op: &str, x: &[E], cols: usize, out: &mut [E], f: impl Fn(&[E]) -> E) {
    assert!(cols > 0 && x.len() % cols == 0, "{op}: length {} is not rows of {cols}", x.len());
    check_len(op, x.len() / cols, out.len());
    for (o, row) in out.iter_mut().zip(x.chunks_exact(cols)) {
        *o = f(row);
    }
}
