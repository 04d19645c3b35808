//! Row kernels: reductions over the last axis, softmax, broadcasts of a row vector, column sums, SwiGLU on a
//! fused `[gate, up]` projection, and the transpose of the last two axes. Rows are independent, so the thread
//! split is by whole rows.

use super::{check_len, scale_rows_cols, silu_mul_grad_serial, Store, V};
use crate::float::Float;
use crate::parallel::{for_chunks, PAR_MIN_ELEMS_EXP, PAR_MIN_ELEMS_STREAMING};
#[cfg(target_arch = "x86_64")]
use crate::simd::avx512;
use crate::simd::{self, SimdVec};

fn check_rows(op: &str, len: usize, cols: usize) {
    assert!(cols > 0 && len.is_multiple_of(cols), "{op}: length {len} is not rows of {cols}");
}

/// `out[r] = f(x[r, :])`, split by rows across threads from `min_work` elements of `x`.
#[inline(always)]
fn reduce_rows<E: Float>(op: &str, x: &[E], cols: usize, out: &mut [E], min_work: usize, f: impl Fn(&[E]) -> E + Sync) {
    check_rows(op, x.len(), cols);
    check_len(op, x.len() / cols, out.len());
    for_chunks(out, 1, cols, min_work, |r0, o| {
        for (ov, row) in o.iter_mut().zip(x[r0 * cols..].chunks_exact(cols)) {
            *ov = f(row);
        }
    })
}

#[inline(always)]
fn sum_of<E: Float>(row: &[E]) -> E {
    simd::fold1::<V<E>>(row, E::ZERO, |acc, x| acc + x, |p, q| p + q).reduce_sum()
}

#[inline(always)]
pub(crate) fn sum_sq_of<E: Float>(row: &[E]) -> E {
    simd::fold1::<V<E>>(row, E::ZERO, |acc, x| x.mul_add(x, acc), |p, q| p + q).reduce_sum()
}

#[inline(always)]
fn max_of<E: Float>(row: &[E]) -> E {
    let ninf = E::from_f64(f64::NEG_INFINITY);
    simd::fold1::<V<E>>(row, ninf, |acc, x| acc.max(x), |p, q| p.max(q)).reduce_max()
}

#[inline(always)]
fn dot_of<E: Float>(a: &[E], b: &[E]) -> E {
    simd::fold2::<V<E>>(a, b, |acc, x, y| x.mul_add(y, acc)).reduce_sum()
}

/// `out[r] = sum_j x[r, j]`
pub fn row_sum<E: Float>(x: &[E], cols: usize, out: &mut [E]) {
    reduce_rows("row_sum", x, cols, out, PAR_MIN_ELEMS_STREAMING, sum_of)
}

/// `out[r] = mean_j x[r, j]^2` (RMSNorm's statistic)
pub fn row_mean_sq<E: Float>(x: &[E], cols: usize, out: &mut [E]) {
    let inv = E::ONE / E::from_usize(cols.max(1));
    reduce_rows("row_mean_sq", x, cols, out, PAR_MIN_ELEMS_STREAMING, |row| sum_sq_of(row) * inv)
}

/// `out[r] = sum_j x[r, j]^2`
pub fn row_sum_sq<E: Float>(x: &[E], cols: usize, out: &mut [E]) {
    reduce_rows("row_sum_sq", x, cols, out, PAR_MIN_ELEMS_STREAMING, sum_sq_of)
}

/// `out[r] = max_j x[r, j]` (for a row containing NaN, unspecified between NaN and the largest number)
pub fn row_max<E: Float>(x: &[E], cols: usize, out: &mut [E]) {
    reduce_rows("row_max", x, cols, out, PAR_MIN_ELEMS_STREAMING, max_of)
}

/// `out[r] = sum_j a[r, j] * b[r, j]`
pub fn row_dot<E: Float>(a: &[E], b: &[E], cols: usize, out: &mut [E]) {
    check_len("row_dot", a.len(), b.len());
    check_rows("row_dot", a.len(), cols);
    check_len("row_dot", a.len() / cols, out.len());
    for_chunks(out, 1, cols, PAR_MIN_ELEMS_STREAMING, |r0, o| {
        let (ar, br) = (a[r0 * cols..].chunks_exact(cols), b[r0 * cols..].chunks_exact(cols));
        for ((ov, x), y) in o.iter_mut().zip(ar).zip(br) {
            *ov = dot_of(x, y);
        }
    })
}

/// `out[r] = argmax_j x[r, j]`, the first index on ties (for a row containing NaN, unspecified)
pub fn row_argmax<E: Float>(x: &[E], cols: usize, out: &mut [usize]) {
    check_rows("row_argmax", x.len(), cols);
    check_len("row_argmax", x.len() / cols, out.len());
    for_chunks(out, 1, cols, PAR_MIN_ELEMS_STREAMING, |r0, o| {
        for (ov, row) in o.iter_mut().zip(x[r0 * cols..].chunks_exact(cols)) {
            let m = max_of(row);
            *ov = row.iter().position(|&v| v == m).unwrap_or(0);
        }
    })
}

/// `out[r, :] = softmax(x[r, :])`, computed as `exp(x - max) / sum`
pub fn softmax_rows<E: Float>(x: &[E], cols: usize, out: &mut [E]) {
    check_len("softmax_rows", x.len(), out.len());
    check_rows("softmax_rows", x.len(), cols);
    for_chunks(out, cols, 1, PAR_MIN_ELEMS_EXP, |off, o| {
        let x = &x[off..off + o.len()];
        #[cfg(target_arch = "x86_64")]
        if let Some(xf) = avx512::as_f32(x) {
            // SAFETY: `as_f32` returned a slice, so this CPU has AVX-512F.
            return unsafe { softmax_rows_avx512(xf, cols, avx512::as_f32_mut(o).unwrap()) };
        }
        softmax_rows_serial::<V<E>>(x, cols, o)
    })
}

/// [`softmax_rows`] over whole rows, on one thread. The exponentials and the scaling are lane-wise, so they run
/// at `S`'s width with the same bits; the row's maximum and sum stay on `V<E>` (a sum's order sets its bits).
/// Written without closures, as [`swiglu_rows_serial`].
#[inline(always)]
pub(super) fn softmax_rows_serial<S: SimdVec>(x: &[S::Elem], cols: usize, out: &mut [S::Elem]) {
    let (n, zero) = (S::LANES, <S::Elem as Float>::ZERO);
    let whole = cols - cols % n;
    for (orow, row) in out.chunks_exact_mut(cols).zip(x.chunks_exact(cols)) {
        let m = S::splat(max_of(row));
        for j in (0..whole).step_by(n) {
            simd::exp(S::load(&row[j..]) - m).store(&mut orow[j..]);
        }
        if whole < cols {
            simd::store_partial(simd::exp(simd::load_partial::<S>(&row[whole..], zero) - m), &mut orow[whole..]);
        }
        let inv = S::splat(<S::Elem as Float>::ONE / sum_of(orow));
        for j in (0..whole).step_by(n) {
            (S::load(&orow[j..]) * inv).store(&mut orow[j..]);
        }
        if whole < cols {
            let tail = &mut orow[whole..];
            simd::store_partial(simd::load_partial::<S>(tail, zero) * inv, tail);
        }
    }
}

/// [`softmax_rows_serial`] with sixteen f32 lanes (`simd::avx512`).
///
/// # Safety
/// The CPU has AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn softmax_rows_avx512(x: &[f32], cols: usize, out: &mut [f32]) {
    softmax_rows_serial::<avx512::F32x16>(x, cols, out)
}

/// The gradient of [`softmax_rows`] from its output y, accumulated: dx[r, :] += y[r, :] * (dy[r, :] - <y, dy>_r)
pub fn softmax_rows_grad_add<E: Float>(y: &[E], dy: &[E], cols: usize, dx: &mut [E]) {
    check_len("softmax_rows_grad_add", y.len(), dy.len());
    check_len("softmax_rows_grad_add", y.len(), dx.len());
    check_rows("softmax_rows_grad_add", y.len(), cols);
    for_chunks(dx, cols, 1, PAR_MIN_ELEMS_STREAMING, |off, o| {
        let rows = o.chunks_exact_mut(cols).zip(y[off..].chunks_exact(cols)).zip(dy[off..].chunks_exact(cols));
        for ((dr, yr), gr) in rows {
            let d = V::<E>::splat(dot_of(yr, gr));
            simd::update2::<V<E>>(dr, yr, gr, |acc, p, q| p.mul_add(q - d, acc));
        }
    })
}

/// `out[r, j] = x[r, j] + row[j]` (a row vector broadcast over rows)
pub fn add_row_broadcast<E: Float>(x: &[E], row: &[E], out: &mut [E]) {
    check_len("add_row_broadcast", x.len(), out.len());
    check_rows("add_row_broadcast", x.len(), row.len());
    let cols = row.len();
    for_chunks(out, cols, 1, PAR_MIN_ELEMS_STREAMING, |off, o| {
        for (orow, xrow) in o.chunks_exact_mut(cols).zip(x[off..].chunks_exact(cols)) {
            simd::map2::<V<E>>(xrow, row, orow, |a: V<E>, b| a + b);
        }
    })
}

/// `out[r, j] = x[r, j] * row[j]` (a row vector broadcast over rows, e.g. a norm's weight)
pub fn mul_row_broadcast<E: Float>(x: &[E], row: &[E], out: &mut [E]) {
    check_len("mul_row_broadcast", x.len(), out.len());
    check_rows("mul_row_broadcast", x.len(), row.len());
    let cols = row.len();
    for_chunks(out, cols, 1, PAR_MIN_ELEMS_STREAMING, |off, o| {
        for (orow, xrow) in o.chunks_exact_mut(cols).zip(x[off..].chunks_exact(cols)) {
            simd::map2::<V<E>>(xrow, row, orow, |a: V<E>, b| a * b);
        }
    })
}

/// `out[r, j] = x[r, j] * s[r]` (one scale per row, e.g. RMSNorm's 1 / rms)
pub fn scale_rows<E: Float>(x: &[E], s: &[E], out: &mut [E]) {
    let cols = scale_rows_cols(x, s, out);
    if cols == 0 {
        return;
    }
    for_chunks(out, cols, 1, PAR_MIN_ELEMS_STREAMING, |off, o| {
        for ((orow, xrow), &k) in o.chunks_exact_mut(cols).zip(x[off..].chunks_exact(cols)).zip(&s[off / cols..]) {
            let kv = V::<E>::splat(k);
            simd::map1::<V<E>>(xrow, orow, |a| a * kv);
        }
    })
}

/// `acc[j] += sum_r x[r, j]` (column sums, e.g. a bias gradient; rows are added in order, as in the reference)
pub fn col_sum_add<E: Float>(x: &[E], acc: &mut [E]) {
    check_rows("col_sum_add", x.len(), acc.len());
    let cols = acc.len();
    let rows = x.len() / cols;
    // Split by columns: each thread sweeps every row but only its own column range of `acc`.
    for_chunks(acc, V::<E>::LANES, rows, PAR_MIN_ELEMS_STREAMING, |off, a| {
        for xrow in x.chunks_exact(cols) {
            simd::update1::<V<E>>(a, &xrow[off..off + a.len()], |s: V<E>, v| s + v);
        }
    })
}

/// `out[r, :] = silu(g) * u` for rows `gate_up[r, :] = [g (inner elements), u (inner elements)]`: SwiGLU on a fused
/// gate/up projection. gate_up is [rows, 2 inner], out is [rows, inner].
pub fn swiglu_rows<E: Float>(gate_up: &[E], inner: usize, out: &mut [E]) {
    check_rows("swiglu_rows", gate_up.len(), 2 * inner);
    let rows = gate_up.len() / (2 * inner);
    assert_eq!(out.len(), rows * inner, "swiglu_rows: output has {} elements, expected [{rows}, {inner}]", out.len());
    for_chunks(out, inner, 1, PAR_MIN_ELEMS_EXP, |off, o| {
        let gate_up = &gate_up[2 * off..2 * (off + o.len())];
        #[cfg(target_arch = "x86_64")]
        if let Some(gu) = avx512::as_f32(gate_up) {
            // SAFETY: `as_f32` returned a slice, so this CPU has AVX-512F.
            return unsafe { swiglu_rows_avx512(gu, inner, avx512::as_f32_mut(o).unwrap()) };
        }
        swiglu_rows_serial::<V<E>>(gate_up, inner, o)
    })
}

/// [`swiglu_rows`] over whole rows, on one thread: the same lane-wise formula for any vector width (written
/// without closures, which would not inherit the AVX-512 wrapper's features: `kernels::silu_mul_grad_vec`).
#[inline(always)]
pub(super) fn swiglu_rows_serial<S: SimdVec>(gate_up: &[S::Elem], inner: usize, out: &mut [S::Elem]) {
    let (n, zero) = (S::LANES, <S::Elem as Float>::ZERO);
    let whole = inner - inner % n;
    for (orow, row) in out.chunks_exact_mut(inner).zip(gate_up.chunks_exact(2 * inner)) {
        let (g, u) = row.split_at(inner);
        for j in (0..whole).step_by(n) {
            (simd::silu(S::load(&g[j..])) * S::load(&u[j..])).store(&mut orow[j..]);
        }
        if whole < inner {
            let h = simd::silu(simd::load_partial::<S>(&g[whole..], zero)) * simd::load_partial(&u[whole..], zero);
            simd::store_partial(h, &mut orow[whole..]);
        }
    }
}

/// [`swiglu_rows_serial`] on sixteen f32 lanes (the same bits: `simd::avx512`).
///
/// # Safety
/// The CPU has AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn swiglu_rows_avx512(gate_up: &[f32], inner: usize, out: &mut [f32]) {
    swiglu_rows_serial::<avx512::F32x16>(gate_up, inner, out)
}

/// The gradient of [`swiglu_rows`], accumulated: d_gate_up[r, :] += [d_out * u * silu'(g), d_out * silu(g)].
pub fn swiglu_rows_grad_add<E: Float>(gate_up: &[E], d_out: &[E], inner: usize, d_gate_up: &mut [E]) {
    swiglu_rows_grad(gate_up, d_out, inner, d_gate_up, Store::Add)
}

/// The gradient of [`swiglu_rows`], written into or added to `d_gate_up` as `store` says.
pub fn swiglu_rows_grad<E: Float>(gate_up: &[E], d_out: &[E], inner: usize, d_gate_up: &mut [E], store: Store) {
    check_rows("swiglu_rows_grad", gate_up.len(), 2 * inner);
    check_len("swiglu_rows_grad", gate_up.len() / 2, d_out.len());
    check_len("swiglu_rows_grad", gate_up.len(), d_gate_up.len());
    for_chunks(d_gate_up, 2 * inner, 1, PAR_MIN_ELEMS_EXP, |off, o| {
        let rows = o.chunks_exact_mut(2 * inner).zip(gate_up[off..].chunks_exact(2 * inner));
        for ((drow, row), d) in rows.zip(d_out[off / 2..].chunks_exact(inner)) {
            let (dg, du) = drow.split_at_mut(inner);
            let (g, u) = row.split_at(inner);
            match store {
                Store::Write => silu_mul_grad_serial::<E, false>(g, u, d, dg, du),
                Store::Add => silu_mul_grad_serial::<E, true>(g, u, d, dg, du),
            }
        }
    })
}

/// Side of the square tiles of the transpose: two 32 x 32 f64 tiles (16 KiB) stay in L1.
const TILE: usize = 32;

/// `out[b, j, i] = x[b, i, j]` for x of shape [batch, rows, cols]. Cache-blocked; split by output rows.
pub fn transpose<E: Float>(x: &[E], batch: usize, rows: usize, cols: usize, out: &mut [E]) {
    check_len("transpose", x.len(), batch * rows * cols);
    check_len("transpose", out.len(), batch * rows * cols);
    if out.is_empty() {
        return;
    }
    let n = rows * cols;
    // Output rows are (b, j) pairs, `rows` elements each; a chunk holds whole output rows.
    for_chunks(out, rows, 1, PAR_MIN_ELEMS_STREAMING, |off, o| {
        let (first, count) = (off / rows, o.len() / rows);
        let mut q = first;
        while q < first + count {
            let (b, j0) = (q / cols, q % cols);
            let j1 = cols.min(j0 + (first + count - q));
            let dst = &mut o[(q - first) * rows..(q - first + j1 - j0) * rows];
            transpose_tiles(&x[b * n..(b + 1) * n], rows, cols, j0..j1, dst);
            q += j1 - j0;
        }
    })
}

/// Writes output rows `js` (columns of the [rows, cols] matrix `x`) into `dst`, tile by tile; inside a tile,
/// whole `LANES x LANES` blocks go through [`SimdVec::transpose_block`], the ragged edges element by element.
fn transpose_tiles<E: Float>(x: &[E], rows: usize, cols: usize, js: std::ops::Range<usize>, dst: &mut [E]) {
    let l = V::<E>::LANES;
    for jb in js.clone().step_by(TILE) {
        let je = js.end.min(jb + TILE);
        for ib in (0..rows).step_by(TILE) {
            let ie = rows.min(ib + TILE);
            for j0 in (jb..je).step_by(l) {
                for i0 in (ib..ie).step_by(l) {
                    let d0 = (j0 - js.start) * rows + i0;
                    if j0 + l <= je && i0 + l <= ie {
                        V::<E>::transpose_block(&x[i0 * cols + j0..], cols, &mut dst[d0..], rows);
                    } else {
                        for j in j0..je.min(j0 + l) {
                            for i in i0..ie.min(i0 + l) {
                                dst[(j - js.start) * rows + i] = x[i * cols + j];
                            }
                        }
                    }
                }
            }
        }
    }
}
