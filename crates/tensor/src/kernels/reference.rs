//! The scalar references: plain loops, one per kernel in [`crate::kernels`], with the same names and
//! signatures. The SIMD kernels are tested against these (proptest, `tests/kernels.rs`) and the benches compare
//! with them. Written for clarity, not speed; nothing else should call them.
//!
//! The fused row kernels that implement one autograd op each (RMSNorm: `rms_norm_rows`, `add_rms_norm_rows`,
//! `rms_norm_rows_grad`; SwiGLU: `swiglu_rows`, `swiglu_rows_grad`) have their references next to that op
//! instead, as its specification, where they are tested: loopgrad-autograd's `ops::rms_norm::reference` and
//! `ops::swiglu::reference`.

use super::{check_len, scale_rows_cols};
use crate::float::Float;

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

/// `out[r] = sum_j x[r, j]`
pub fn row_sum<E: Float>(x: &[E], cols: usize, out: &mut [E]) {
    for_rows("row_sum", x, cols, out, |row| row.iter().copied().sum())
}

/// `out[r] = mean_j x[r, j]^2`
pub fn row_mean_sq<E: Float>(x: &[E], cols: usize, out: &mut [E]) {
    let inv = E::ONE / E::from_usize(cols.max(1));
    for_rows("row_mean_sq", x, cols, out, |row| row.iter().map(|&v| v * v).sum::<E>() * inv)
}

/// `out[r] = max_j x[r, j]`
pub fn row_max<E: Float>(x: &[E], cols: usize, out: &mut [E]) {
    for_rows("row_max", x, cols, out, |row| row.iter().copied().fold(row[0], E::max))
}

/// `out[r] = argmax_j x[r, j]` (the first index on ties)
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

/// `out[r, :] = softmax(x[r, :])` (max-subtracted)
pub fn softmax_rows<E: Float>(x: &[E], cols: usize, out: &mut [E]) {
    check_len("softmax_rows", x.len(), out.len());
    assert!(cols > 0 && x.len().is_multiple_of(cols), "softmax_rows: length {} is not rows of {cols}", x.len());
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

/// `out[r, j] = x[r, j] + row[j]` (a row vector broadcast over rows)
pub fn add_row_broadcast<E: Float>(x: &[E], row: &[E], out: &mut [E]) {
    check_len("add_row_broadcast", x.len(), out.len());
    let cols = row.len();
    assert!(cols > 0 && x.len().is_multiple_of(cols), "add_row_broadcast: length {} is not rows of {cols}", x.len());
    for (orow, xrow) in out.chunks_exact_mut(cols).zip(x.chunks_exact(cols)) {
        for ((o, &a), &b) in orow.iter_mut().zip(xrow).zip(row) {
            *o = a + b;
        }
    }
}

/// `acc[j] += sum_r x[r, j]` (column sums, e.g. a bias gradient)
pub fn col_sum_add<E: Float>(x: &[E], acc: &mut [E]) {
    let cols = acc.len();
    assert!(cols > 0 && x.len().is_multiple_of(cols), "col_sum_add: length {} is not rows of {cols}", x.len());
    for xrow in x.chunks_exact(cols) {
        for (a, &v) in acc.iter_mut().zip(xrow) {
            *a += v;
        }
    }
}

/// `out[b, j, i] = x[b, i, j]` for x of shape [batch, rows, cols]
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

/// y -= x
pub fn sub_assign<E: Float>(y: &mut [E], x: &[E]) {
    check_len("sub_assign", x.len(), y.len());
    for (o, &v) in y.iter_mut().zip(x) {
        *o -= v;
    }
}

/// y *= x (element-wise)
pub fn mul_assign<E: Float>(y: &mut [E], x: &[E]) {
    check_len("mul_assign", x.len(), y.len());
    for (o, &v) in y.iter_mut().zip(x) {
        *o *= v;
    }
}

/// y *= s
pub fn scale_assign<E: Float>(y: &mut [E], s: E) {
    for o in y.iter_mut() {
        *o *= s;
    }
}

/// `sum_i a[i]`
pub fn sum<E: Float>(a: &[E]) -> E {
    a.iter().copied().sum()
}

/// `sum_i a[i] * b[i]`
pub fn dot<E: Float>(a: &[E], b: &[E]) -> E {
    check_len("dot", a.len(), b.len());
    a.iter().zip(b).map(|(&x, &y)| x * y).sum()
}

/// `sum_i a[i]^2`
pub fn sum_sq<E: Float>(a: &[E]) -> E {
    a.iter().map(|&x| x * x).sum()
}

/// silu'(x) = s (1 + x (1 - s)) with s = sigmoid(x).
#[inline]
pub fn silu_grad_scalar<E: Float>(x: E) -> E {
    let s = sigmoid_scalar(x);
    s * (E::ONE + x * (E::ONE - s))
}

/// dx += dy * silu'(x)
pub fn silu_grad_add<E: Float>(x: &[E], dy: &[E], dx: &mut [E]) {
    check_len("silu_grad_add", x.len(), dy.len());
    check_len("silu_grad_add", x.len(), dx.len());
    for ((o, &v), &g) in dx.iter_mut().zip(x).zip(dy) {
        *o += g * silu_grad_scalar(v);
    }
}

/// out = silu(gate) * up (the SwiGLU product)
pub fn silu_mul<E: Float>(gate: &[E], up: &[E], out: &mut [E]) {
    check_len("silu_mul", gate.len(), up.len());
    check_len("silu_mul", gate.len(), out.len());
    for ((o, &g), &u) in out.iter_mut().zip(gate).zip(up) {
        *o = g * sigmoid_scalar(g) * u;
    }
}

/// d_gate += d_out * up * silu'(gate); d_up += d_out * silu(gate)
pub fn silu_mul_grad_add<E: Float>(gate: &[E], up: &[E], d_out: &[E], d_gate: &mut [E], d_up: &mut [E]) {
    let n = gate.len();
    for (what, len) in [("up", up.len()), ("d_out", d_out.len()), ("d_gate", d_gate.len()), ("d_up", d_up.len())] {
        assert_eq!(len, n, "silu_mul_grad_add: {what} has length {len}, gate {n}");
    }
    for i in 0..n {
        let (g, u, d) = (gate[i], up[i], d_out[i]);
        d_gate[i] += d * u * silu_grad_scalar(g);
        d_up[i] += d * g * sigmoid_scalar(g);
    }
}

/// `out[r] = sum_j a[r, j] * b[r, j]`
pub fn row_dot<E: Float>(a: &[E], b: &[E], cols: usize, out: &mut [E]) {
    check_len("row_dot", a.len(), b.len());
    assert!(cols > 0 && a.len().is_multiple_of(cols), "row_dot: length {} is not rows of {cols}", a.len());
    check_len("row_dot", a.len() / cols, out.len());
    for ((o, x), y) in out.iter_mut().zip(a.chunks_exact(cols)).zip(b.chunks_exact(cols)) {
        *o = x.iter().zip(y).map(|(&p, &q)| p * q).sum();
    }
}

/// `out[r] = sum_j x[r, j]^2`
pub fn row_sum_sq<E: Float>(x: &[E], cols: usize, out: &mut [E]) {
    for_rows("row_sum_sq", x, cols, out, |row| row.iter().map(|&v| v * v).sum())
}

/// `out[r, j] = x[r, j] * s[r]` (one scale per row, e.g. RMSNorm's 1 / rms)
pub fn scale_rows<E: Float>(x: &[E], s: &[E], out: &mut [E]) {
    let cols = scale_rows_cols(x, s, out);
    if cols == 0 {
        return;
    }
    for ((orow, xrow), &k) in out.chunks_exact_mut(cols).zip(x.chunks_exact(cols)).zip(s) {
        for (o, &v) in orow.iter_mut().zip(xrow) {
            *o = v * k;
        }
    }
}

/// `out[r, j] = x[r, j] * row[j]` (a row vector broadcast over rows, e.g. a norm's weight)
pub fn mul_row_broadcast<E: Float>(x: &[E], row: &[E], out: &mut [E]) {
    check_len("mul_row_broadcast", x.len(), out.len());
    let cols = row.len();
    assert!(cols > 0 && x.len().is_multiple_of(cols), "mul_row_broadcast: length {} is not rows of {cols}", x.len());
    for (orow, xrow) in out.chunks_exact_mut(cols).zip(x.chunks_exact(cols)) {
        for ((o, &a), &b) in orow.iter_mut().zip(xrow).zip(row) {
            *o = a * b;
        }
    }
}

/// The gradient of [`softmax_rows`] from its output y, accumulated: dx[r, :] += y[r, :] * (dy[r, :] - <y, dy>_r)
pub fn softmax_rows_grad_add<E: Float>(y: &[E], dy: &[E], cols: usize, dx: &mut [E]) {
    check_len("softmax_rows_grad_add", y.len(), dy.len());
    check_len("softmax_rows_grad_add", y.len(), dx.len());
    assert!(
        cols > 0 && y.len().is_multiple_of(cols),
        "softmax_rows_grad_add: length {} is not rows of {cols}",
        y.len()
    );
    for ((yr, gr), dr) in y.chunks_exact(cols).zip(dy.chunks_exact(cols)).zip(dx.chunks_exact_mut(cols)) {
        let d: E = yr.iter().zip(gr).map(|(&p, &q)| p * q).sum();
        for ((o, &p), &q) in dr.iter_mut().zip(yr).zip(gr) {
            *o += p * (q - d);
        }
    }
}

/// One AdamATan2 step (see [`crate::kernels::AdamAtan2Step`]), element by element with `std`'s atan2.
pub fn adam_atan2_step<E: Float>(
    p: &mut [E],
    g: &mut [E],
    m: &mut [E],
    v: &mut [E],
    c: &crate::kernels::AdamAtan2Step<E>,
) {
    for i in 0..p.len() {
        let gi = g[i];
        g[i] = E::ZERO;
        m[i] += c.one_minus_beta1 * (gi - m[i]);
        v[i] = v[i] * c.beta2 + c.one_minus_beta2 * gi * gi;
        let denom = v[i].sqrt() / c.bc2_sqrt;
        p[i] = p[i] * c.decay - c.step_size * (c.bc1_recip * m[i]).atan2(denom);
    }
}

fn for_rows<E: Float>(op: &str, x: &[E], cols: usize, out: &mut [E], f: impl Fn(&[E]) -> E) {
    assert!(cols > 0 && x.len().is_multiple_of(cols), "{op}: length {} is not rows of {cols}", x.len());
    check_len(op, x.len() / cols, out.len());
    for (o, row) in out.iter_mut().zip(x.chunks_exact(cols)) {
        *o = f(row);
    }
}
