//! Element-wise and row kernels on slices: SIMD through `wide` (`f32x8` / `f64x4`, see [`crate::simd`]), split
//! across threads above measured sizes (see [`crate::parallel`]). Every kernel has a scalar twin of the same name
//! in [`reference`](mod@reference), which the tests compare it with.
//!
//! Conventions: `out` may not alias an input (the borrow checker enforces it); kernels that update their first
//! argument in place say so with `_assign`, kernels that accumulate (`+=`, as backward passes do) end in `_add`.
//! "Rows" means the slice seen as a row-major `[rows, cols]` matrix. Length mismatches panic naming the kernel
//! and both lengths.
//!
//! Accuracy against [`reference`](mod@reference) (tested by proptest in `tests/kernels.rs`): add, sub, mul, scale,
//! fill, rsqrt, the broadcasts and transpose are bit-identical; kernels with a fused multiply-add (axpy, the `_add`
//! kernels) or a different summation order (the sums, dots and row reductions) differ by a few roundings of the
//! magnitudes involved; exp is within 2 ulp of `std`'s, and sigmoid, SiLU and softmax inherit that plus a
//! rounding or two.

mod norm;
mod optim;
pub mod reference;
mod rows;

pub use norm::*;
pub use optim::*;
pub use reference::{sigmoid_scalar, silu_grad_scalar};
pub use rows::*;

use crate::float::Float;
use crate::parallel::{for_chunks, PAR_MIN_ELEMS_EXP, PAR_MIN_ELEMS_STREAMING};
#[cfg(target_arch = "x86_64")]
use crate::simd::avx512;
use crate::simd::{self, SimdVec};

#[inline]
pub(crate) fn check_len(op: &str, a: usize, b: usize) {
    assert_eq!(a, b, "{op}: length {a} vs {b}");
}

/// The row length of `scale_rows`' `x` and `out`, which hold one row per scale in `s`, after checking the lengths
/// (for the kernel and its reference twin alike).
pub(crate) fn scale_rows_cols<E>(x: &[E], s: &[E], out: &[E]) -> usize {
    check_len("scale_rows", x.len(), out.len());
    assert!(!s.is_empty() && x.len().is_multiple_of(s.len()), "scale_rows: length {} is not {} rows", x.len(), s.len());
    x.len() / s.len()
}

/// The vector type of `E`.
type V<E> = <E as Float>::Simd;

/// `out[i] = f(a[i], b[i])` with SIMD, split across threads from `min_work` elements.
#[inline(always)]
fn zip_map<E: Float>(a: &[E], b: &[E], out: &mut [E], min_work: usize, f: impl Fn(V<E>, V<E>) -> V<E> + Sync) {
    for_chunks(out, V::<E>::LANES, 1, min_work, |off, o| {
        let r = off..off + o.len();
        simd::map2::<V<E>>(&a[r.clone()], &b[r], o, &f)
    })
}

/// `out[i] = f(a[i])` with SIMD, split across threads from `min_work` elements.
#[inline(always)]
fn map<E: Float>(a: &[E], out: &mut [E], min_work: usize, f: impl Fn(V<E>) -> V<E> + Sync) {
    for_chunks(out, V::<E>::LANES, 1, min_work, |off, o| simd::map1::<V<E>>(&a[off..off + o.len()], o, &f))
}

/// `y[i] = f(y[i], x[i])` with SIMD, split across threads from `min_work` elements.
#[inline(always)]
fn update<E: Float>(y: &mut [E], x: &[E], min_work: usize, f: impl Fn(V<E>, V<E>) -> V<E> + Sync) {
    for_chunks(y, V::<E>::LANES, 1, min_work, |off, o| simd::update1::<V<E>>(o, &x[off..off + o.len()], &f))
}

/// out = a + b
pub fn add<E: Float>(a: &[E], b: &[E], out: &mut [E]) {
    check_len("add", a.len(), b.len());
    check_len("add", a.len(), out.len());
    zip_map(a, b, out, PAR_MIN_ELEMS_STREAMING, |x, y| x + y)
}

/// out = a - b
pub fn sub<E: Float>(a: &[E], b: &[E], out: &mut [E]) {
    check_len("sub", a.len(), b.len());
    check_len("sub", a.len(), out.len());
    zip_map(a, b, out, PAR_MIN_ELEMS_STREAMING, |x, y| x - y)
}

/// out = a * b
pub fn mul<E: Float>(a: &[E], b: &[E], out: &mut [E]) {
    check_len("mul", a.len(), b.len());
    check_len("mul", a.len(), out.len());
    zip_map(a, b, out, PAR_MIN_ELEMS_STREAMING, |x, y| x * y)
}

/// out = s * a
pub fn scale<E: Float>(a: &[E], s: E, out: &mut [E]) {
    check_len("scale", a.len(), out.len());
    let sv = V::<E>::splat(s);
    map(a, out, PAR_MIN_ELEMS_STREAMING, |x| sv * x)
}

/// y += alpha * x (one fused multiply-add per element)
pub fn axpy<E: Float>(alpha: E, x: &[E], y: &mut [E]) {
    check_len("axpy", x.len(), y.len());
    let av = V::<E>::splat(alpha);
    update(y, x, PAR_MIN_ELEMS_STREAMING, |acc, v| av.mul_add(v, acc))
}

/// y += x
pub fn add_assign<E: Float>(y: &mut [E], x: &[E]) {
    check_len("add_assign", x.len(), y.len());
    update(y, x, PAR_MIN_ELEMS_STREAMING, |acc, v| acc + v)
}

/// y -= x
pub fn sub_assign<E: Float>(y: &mut [E], x: &[E]) {
    check_len("sub_assign", x.len(), y.len());
    update(y, x, PAR_MIN_ELEMS_STREAMING, |acc, v| acc - v)
}

/// y *= x (element-wise)
pub fn mul_assign<E: Float>(y: &mut [E], x: &[E]) {
    check_len("mul_assign", x.len(), y.len());
    update(y, x, PAR_MIN_ELEMS_STREAMING, |acc, v| acc * v)
}

/// y *= s
pub fn scale_assign<E: Float>(y: &mut [E], s: E) {
    let sv = V::<E>::splat(s);
    for_chunks(y, V::<E>::LANES, 1, PAR_MIN_ELEMS_STREAMING, |_, o| simd::map_inplace::<V<E>>(o, |acc| acc * sv))
}

/// y += a * b (element-wise product accumulated, one fused multiply-add per element)
pub fn mul_add_assign<E: Float>(y: &mut [E], a: &[E], b: &[E]) {
    check_len("mul_add_assign", a.len(), y.len());
    check_len("mul_add_assign", b.len(), y.len());
    for_chunks(y, V::<E>::LANES, 1, PAR_MIN_ELEMS_STREAMING, |off, o| {
        let r = off..off + o.len();
        simd::update2::<V<E>>(o, &a[r.clone()], &b[r], |acc, x, w| x.mul_add(w, acc))
    })
}

/// out = value
pub fn fill<E: Float>(out: &mut [E], value: E) {
    out.fill(value);
}

/// out = exp(a) (within 2 ulp of `std`; +inf on overflow, gradual underflow, NaN stays NaN)
pub fn exp<E: Float>(a: &[E], out: &mut [E]) {
    check_len("exp", a.len(), out.len());
    map(a, out, PAR_MIN_ELEMS_EXP, simd::exp)
}

/// out = sigmoid(a) = 1 / (1 + exp(-a)), never overflowing (see [`sigmoid_scalar`])
pub fn sigmoid<E: Float>(a: &[E], out: &mut [E]) {
    check_len("sigmoid", a.len(), out.len());
    map(a, out, PAR_MIN_ELEMS_EXP, simd::sigmoid)
}

/// out = silu(a) = a * sigmoid(a)
pub fn silu<E: Float>(a: &[E], out: &mut [E]) {
    check_len("silu", a.len(), out.len());
    map(a, out, PAR_MIN_ELEMS_EXP, simd::silu)
}

/// dx += dy * silu'(x), silu'(x) = s (1 + x (1 - s)) with s = sigmoid(x)
pub fn silu_grad_add<E: Float>(x: &[E], dy: &[E], dx: &mut [E]) {
    check_len("silu_grad_add", x.len(), dy.len());
    check_len("silu_grad_add", x.len(), dx.len());
    for_chunks(dx, V::<E>::LANES, 1, PAR_MIN_ELEMS_EXP, |off, o| {
        let r = off..off + o.len();
        simd::update2::<V<E>>(o, &x[r.clone()], &dy[r], |acc, v, g| g.mul_add(silu_grad(v), acc))
    })
}

/// out = silu(gate) * up (the SwiGLU product)
pub fn silu_mul<E: Float>(gate: &[E], up: &[E], out: &mut [E]) {
    check_len("silu_mul", gate.len(), up.len());
    check_len("silu_mul", gate.len(), out.len());
    zip_map(gate, up, out, PAR_MIN_ELEMS_EXP, |g, u| simd::silu(g) * u)
}

/// d_gate += d_out * up * silu'(gate); d_up += d_out * silu(gate) (the gradient of [`silu_mul`], accumulated)
pub fn silu_mul_grad_add<E: Float>(gate: &[E], up: &[E], d_out: &[E], d_gate: &mut [E], d_up: &mut [E]) {
    let n = gate.len();
    for (what, len) in [("up", up.len()), ("d_out", d_out.len()), ("d_gate", d_gate.len()), ("d_up", d_up.len())] {
        assert_eq!(len, n, "silu_mul_grad_add: {what} has length {len}, gate {n}");
    }
    // Split d_gate across threads; d_up is cut at the same offsets by hand (both outputs line up with the inputs).
    let d_up = SyncPtr(d_up.as_mut_ptr());
    for_chunks(d_gate, V::<E>::LANES, 1, PAR_MIN_ELEMS_EXP, |off, dg| {
        // SAFETY: the chunks of d_gate are disjoint ranges off..off + len, so are these ranges of d_up, which
        // has d_gate's length; d_up is exclusively borrowed for the duration of this call.
        let du = unsafe { std::slice::from_raw_parts_mut(d_up.get().add(off), dg.len()) };
        let r = off..off + dg.len();
        silu_mul_grad_serial::<E, true>(&gate[r.clone()], &up[r.clone()], &d_out[r], dg, du);
    })
}

/// The SwiGLU gradient over one run of elements: d_gate (+)= d_out u silu'(g), d_up (+)= d_out silu(g), adding
/// when `ADD`, writing otherwise (a const parameter, so each variant is a straight loop). f32 on an AVX-512 CPU
/// runs sixteen lanes at a time, with the same bits (`simd::avx512`).
pub(crate) fn silu_mul_grad_serial<E: Float, const ADD: bool>(
    gate: &[E],
    up: &[E],
    d_out: &[E],
    d_gate: &mut [E],
    d_up: &mut [E],
) {
    #[cfg(target_arch = "x86_64")]
    if let (Some(g), Some(u), Some(d)) = (avx512::as_f32(gate), avx512::as_f32(up), avx512::as_f32(d_out)) {
        let (dg, du) = (avx512::as_f32_mut(d_gate).unwrap(), avx512::as_f32_mut(d_up).unwrap());
        // SAFETY: `as_f32` returned a slice, so this CPU has AVX-512F.
        unsafe { silu_mul_grad_avx512::<ADD>(g, u, d, dg, du) };
        return;
    }
    silu_mul_grad_vec::<V<E>, ADD>(gate, up, d_out, d_gate, d_up)
}

/// [`silu_mul_grad_serial`] on sixteen f32 lanes.
///
/// # Safety
/// The CPU has AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn silu_mul_grad_avx512<const ADD: bool>(g: &[f32], u: &[f32], d: &[f32], dg: &mut [f32], du: &mut [f32]) {
    silu_mul_grad_vec::<avx512::F32x16, ADD>(g, u, d, dg, du)
}

/// The body of [`silu_mul_grad_serial`] at any vector width. No closures: a closure is compiled apart from the
/// AVX-512 function it is inlined into, without its features, so its vector instructions would become calls.
#[inline(always)]
fn silu_mul_grad_vec<S: SimdVec, const ADD: bool>(
    gate: &[S::Elem],
    up: &[S::Elem],
    d_out: &[S::Elem],
    d_gate: &mut [S::Elem],
    d_up: &mut [S::Elem],
) {
    let n = S::LANES;
    let len = gate.len();
    let whole = len - len % n;
    let zero = <S::Elem as Float>::ZERO;
    for i in (0..whole).step_by(n) {
        let (dg, du) = (grad_acc::<S, ADD>(&d_gate[i..]), grad_acc::<S, ADD>(&d_up[i..]));
        let (dg, du) = silu_mul_grad_step(S::load(&gate[i..]), S::load(&up[i..]), S::load(&d_out[i..]), dg, du);
        dg.store(&mut d_gate[i..]);
        du.store(&mut d_up[i..]);
    }
    if whole < len {
        let (dg, du) = silu_mul_grad_step(
            simd::load_partial(&gate[whole..], zero),
            simd::load_partial(&up[whole..], zero),
            simd::load_partial(&d_out[whole..], zero),
            grad_acc_partial::<S, ADD>(&d_gate[whole..]),
            grad_acc_partial::<S, ADD>(&d_up[whole..]),
        );
        simd::store_partial(dg, &mut d_gate[whole..]);
        simd::store_partial(du, &mut d_up[whole..]);
    }
}

/// What a gradient adds to: its current value when `ADD`, else zero.
#[inline(always)]
fn grad_acc<S: SimdVec, const ADD: bool>(s: &[S::Elem]) -> S {
    if ADD {
        S::load(s)
    } else {
        S::splat(<S::Elem as Float>::ZERO)
    }
}

/// [`grad_acc`] for a tail shorter than a vector (zero-padded).
#[inline(always)]
fn grad_acc_partial<S: SimdVec, const ADD: bool>(s: &[S::Elem]) -> S {
    let zero = <S::Elem as Float>::ZERO;
    if ADD {
        simd::load_partial(s, zero)
    } else {
        S::splat(zero)
    }
}

/// One vector of the SwiGLU gradient: (dg + d u silu'(g), du + d silu(g)).
#[inline(always)]
fn silu_mul_grad_step<S: SimdVec>(g: S, u: S, d: S, dg: S, du: S) -> (S, S) {
    let s = simd::sigmoid(g);
    let one = S::konst(1.0);
    let dsilu = s * g.mul_add(one - s, one);
    ((d * u).mul_add(dsilu, dg), (d * g).mul_add(s, du))
}

/// silu'(x) = s (1 + x (1 - s)), lane-wise.
#[inline(always)]
fn silu_grad<S: SimdVec>(x: S) -> S {
    let s = simd::sigmoid(x);
    let one = S::konst(1.0);
    s * x.mul_add(one - s, one)
}

/// out = 1 / sqrt(a) (a true division of a true square root: bit-identical to the reference)
pub fn rsqrt<E: Float>(a: &[E], out: &mut [E]) {
    check_len("rsqrt", a.len(), out.len());
    let one = V::<E>::konst(1.0);
    map(a, out, PAR_MIN_ELEMS_STREAMING, |x| one / x.sqrt())
}

/// `sum_i a[i]` (four vector accumulators: the order differs from a sequential loop)
pub fn sum<E: Float>(a: &[E]) -> E {
    simd::fold1::<V<E>>(a, E::ZERO, |acc, x| acc + x, |p, q| p + q).reduce_sum()
}

/// `sum_i a[i] * b[i]`
pub fn dot<E: Float>(a: &[E], b: &[E]) -> E {
    check_len("dot", a.len(), b.len());
    simd::fold2::<V<E>>(a, b, |acc, x, y| x.mul_add(y, acc)).reduce_sum()
}

/// `sum_i a[i]^2` (e.g. a gradient norm)
pub fn sum_sq<E: Float>(a: &[E]) -> E {
    simd::fold1::<V<E>>(a, E::ZERO, |acc, x| x.mul_add(x, acc), |p, q| p + q).reduce_sum()
}

/// A raw pointer that may cross to the team's workers; each user states why its accesses are disjoint.
#[derive(Clone, Copy)]
pub(crate) struct SyncPtr<T>(pub(crate) *mut T);
// SAFETY: SyncPtr only carries the address; every dereference site guarantees disjoint, in-bounds access.
unsafe impl<T: Send> Send for SyncPtr<T> {}
unsafe impl<T: Send> Sync for SyncPtr<T> {}
impl<T> SyncPtr<T> {
    #[inline(always)]
    pub(crate) fn get(self) -> *mut T {
        self.0
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::rows::{softmax_rows_serial, swiglu_rows_serial};
    use super::*;
    use wide::f32x8;

    fn values(n: usize, seed: u32) -> Vec<f32> {
        // Spread over the exp's whole range, with zeros, large magnitudes and a NaN.
        let mut v: Vec<f32> =
            (0..n as u32).map(|i| ((i * 7919 + seed * 104_729) % 4001) as f32 * 0.05 - 100.0).collect();
        v[0] = 0.0;
        v[n / 2] = f32::NAN;
        v
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// The public kernels (sixteen lanes on an AVX-512 CPU) against their bodies on `f32x8`, bit for bit, at widths
    /// with and without a tail.
    #[test]
    fn the_sixteen_lane_kernels_give_the_eight_lane_bits() {
        if !avx512::available() {
            eprintln!("skipped: this CPU has no AVX-512F");
            return;
        }
        for width in [16, 37, 104, 256] {
            let rows = 5;
            let (g, u, d) = (values(rows * width, 1), values(rows * width, 2), values(rows * width, 3));
            for add in [false, true] {
                let (mut dg, mut du) = (values(rows * width, 4), values(rows * width, 5));
                let (mut dg8, mut du8) = (dg.clone(), du.clone());
                if add {
                    silu_mul_grad_serial::<f32, true>(&g, &u, &d, &mut dg, &mut du);
                    silu_mul_grad_vec::<f32x8, true>(&g, &u, &d, &mut dg8, &mut du8);
                } else {
                    silu_mul_grad_serial::<f32, false>(&g, &u, &d, &mut dg, &mut du);
                    silu_mul_grad_vec::<f32x8, false>(&g, &u, &d, &mut dg8, &mut du8);
                }
                assert_eq!(bits(&dg), bits(&dg8), "silu_mul_grad d_gate, width {width}, add {add}");
                assert_eq!(bits(&du), bits(&du8), "silu_mul_grad d_up, width {width}, add {add}");
            }
            let gate_up = values(rows * 2 * width, 6);
            let (mut out, mut out8) = (vec![0.0; rows * width], vec![0.0; rows * width]);
            swiglu_rows(&gate_up, width, &mut out);
            swiglu_rows_serial::<f32x8>(&gate_up, width, &mut out8);
            assert_eq!(bits(&out), bits(&out8), "swiglu_rows, width {width}");
            let x: Vec<f32> = values(rows * width, 7).iter().map(|v| if v.is_nan() { 3.0 } else { *v }).collect();
            softmax_rows(&x, width, &mut out);
            softmax_rows_serial::<f32x8>(&x, width, &mut out8);
            assert_eq!(bits(&out), bits(&out8), "softmax_rows, width {width}");
        }
    }
}
