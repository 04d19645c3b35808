//! RMSNorm without gain over the rows of a matrix, alone or fused with the residual add in front of it (the
//! post-norm block's `rms(h + f(h))`), and its gradient. Rows are independent: the thread split is by whole rows,
//! and each row is read once for its mean square and once more, from L1, for the scaling.
//!
//! ```text
//! forward:   y = s r,  r = 1 / sqrt(mean(s^2) + eps)        (s = x, or s = a + b for the fused add)
//! backward:  ds = r (dy - y mean(dy y))
//! ```
//!
//! The forward performs exactly the operations of `row_mean_sq`, a true `sqrt` and `recip`, and `scale` in that
//! order, so it is bit-identical to composing those kernels.

use super::rows::sum_sq_of;
use super::{check_len, SyncPtr, V};
use crate::float::Float;
use crate::parallel::{for_chunks, PAR_MIN_ELEMS_STREAMING};
use crate::simd::{self, SimdVec};

/// How a gradient kernel stores its result: overwrite the output (a fresh buffer: no zero-fill needed first) or
/// add into what it holds (a gradient that other uses already wrote).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    Write,
    Add,
}

fn check_norm(op: &str, len: usize, out: usize, r: usize, cols: usize) {
    assert!(cols > 0 && len.is_multiple_of(cols), "{op}: length {len} is not rows of {cols}");
    check_len(op, len, out);
    check_len(op, len / cols, r);
}

/// Scales row `s` (in `y`) to unit mean square, returning its r. `y` holds s on entry and the result on exit.
#[inline(always)]
fn normalise_row<E: Float>(y: &mut [E], eps: E, inv_cols: E) -> E {
    let r = (sum_sq_of(y) * inv_cols + eps).sqrt().recip();
    let rv = V::<E>::splat(r);
    simd::map_inplace::<V<E>>(y, |v| v * rv);
    r
}

/// Runs `row(i, out_row, &mut r[i])` over the rows of `out`, split across threads by whole rows.
#[inline(always)]
fn for_rows<E: Float>(out: &mut [E], cols: usize, r: &mut [E], row: impl Fn(usize, &mut [E], &mut E) + Sync) {
    let r_ptr = SyncPtr(r.as_mut_ptr());
    for_chunks(out, cols, 1, PAR_MIN_ELEMS_STREAMING, |off, o| {
        let first = off / cols;
        // SAFETY: chunks of `out` are disjoint runs of whole rows, so these runs of `r` (one entry per row,
        // length checked by the caller) are disjoint too; `r` is exclusively borrowed for this call.
        let rs = unsafe { std::slice::from_raw_parts_mut(r_ptr.get().add(first), o.len() / cols) };
        for (i, (orow, rv)) in o.chunks_exact_mut(cols).zip(rs).enumerate() {
            row(first + i, orow, rv);
        }
    })
}

/// `out[i, :] = x[i, :] r[i]`, `r[i] = 1 / sqrt(mean_j x[i, j]^2 + eps)`. `r` `[rows]` receives the scales (what
/// backward needs).
pub fn rms_norm_rows<E: Float>(x: &[E], cols: usize, eps: E, out: &mut [E], r: &mut [E]) {
    check_norm("rms_norm_rows", x.len(), out.len(), r.len(), cols);
    let inv = E::ONE / E::from_usize(cols);
    for_rows(out, cols, r, |i, orow, rv| {
        orow.copy_from_slice(&x[i * cols..(i + 1) * cols]);
        *rv = normalise_row(orow, eps, inv);
    })
}

/// out = rms_norm(a + b) row-wise, as [`rms_norm_rows`] of the sum, without storing the sum anywhere else.
pub fn add_rms_norm_rows<E: Float>(a: &[E], b: &[E], cols: usize, eps: E, out: &mut [E], r: &mut [E]) {
    check_len("add_rms_norm_rows", a.len(), b.len());
    check_norm("add_rms_norm_rows", a.len(), out.len(), r.len(), cols);
    let inv = E::ONE / E::from_usize(cols);
    for_rows(out, cols, r, |i, orow, rv| {
        let span = i * cols..(i + 1) * cols;
        simd::map2::<V<E>>(&a[span.clone()], &b[span], orow, |x, y| x + y);
        *rv = normalise_row(orow, eps, inv);
    })
}

/// The gradient of [`rms_norm_rows`] from its output y and scales r: `ds[i, :] = r[i] (dy[i, :] - y[i, :]
/// mean_j(dy[i, j] y[i, j]))`, written into or added to `ds` as `store` says.
pub fn rms_norm_rows_grad<E: Float>(dy: &[E], y: &[E], r: &[E], cols: usize, ds: &mut [E], store: Store) {
    check_len("rms_norm_rows_grad", dy.len(), y.len());
    check_norm("rms_norm_rows_grad", y.len(), ds.len(), r.len(), cols);
    let inv = E::ONE / E::from_usize(cols);
    for_chunks(ds, cols, 1, PAR_MIN_ELEMS_STREAMING, |off, o| {
        let rows = o.chunks_exact_mut(cols).zip(dy[off..].chunks_exact(cols)).zip(y[off..].chunks_exact(cols));
        for (((drow, g), yr), &ri) in rows.zip(&r[off / cols..]) {
            let mean = simd::fold2::<V<E>>(g, yr, |acc, p, q| p.mul_add(q, acc)).reduce_sum() * inv;
            let (rv, k) = (V::<E>::splat(ri), V::<E>::splat(-(ri * mean)));
            match store {
                Store::Write => simd::map2::<V<E>>(g, yr, drow, |gv, yv| yv.mul_add(k, gv * rv)),
                Store::Add => simd::update2::<V<E>>(drow, g, yr, |acc, gv, yv| yv.mul_add(k, gv.mul_add(rv, acc))),
            }
        }
    })
}
