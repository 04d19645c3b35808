//! `F32x16`: sixteen f32 lanes in one AVX-512 register, for the element-wise kernels built on `exp` (SiLU, SwiGLU
//! and its gradient, softmax's exponentials) on CPUs that have AVX-512F.
//!
//! Why a second f32 vector: `wide` chooses its instructions when the crate is compiled, and the build targets
//! AVX2 (`.cargo/config.toml`), so `f32x8` is the widest it gives. At the main job's shape in bf16 the SwiGLU's
//! element-wise passes held about a third of a step's samples (`docs/benchmarks.md`), each an exp polynomial per
//! lane; on a CPU with two 512-bit FMA units, sixteen lanes per instruction halve their instructions.
//!
//! **Same bits as `f32x8`.** Every method is the lane-wise instruction `wide` uses for `f32x8` at 512 bits:
//! FMA for `mul_add`, `0 - x` for negation, the sign bit masked off for `abs`, round-to-nearest-even and floor
//! by `vrndscaleps`, the ordered `>=` and the unordered self-compare for masks, `vmaxps`/`vminps` with the same
//! operand order. A kernel whose lanes are computed alone therefore gives the same bits with either vector, and
//! only such kernels use this one: a reduction across lanes (`reduce_sum`) adds in a different order, so the
//! row sums and dot products stay on `f32x8`.
//!
//! **Where it may run.** Its methods use AVX-512F instructions without checking the CPU, so an `F32x16` is only
//! ever made inside a function compiled with `#[target_feature(enable = "avx512f")]` and called once the CPU is
//! known to have AVX-512F: after [`available`] (the kernels' `*_avx512` wrappers, into which the generic kernel
//! bodies inline), or inside the AVX-512 GEMM (its fused SwiGLU epilogue, `gemm::avx512::swiglu::gate_row`, which
//! `LOOPGRAD_SIMD16` does not switch). The type is private to the crate for that reason.

use super::SimdVec;
use std::any::TypeId;
use std::arch::x86_64::*;
use std::ops::{Add, Div, Mul, Neg, Sub};
use std::sync::OnceLock;

/// Whether the element-wise kernels run on [`F32x16`]: the CPU has AVX-512F and `LOOPGRAD_SIMD16` is not `0`
/// (which keeps them on `f32x8`, so that the two widths can be timed on one machine; the bits are the same; the
/// AVX-512 GEMM's SwiGLU epilogue stays on sixteen lanes).
/// Decided once per process.
#[inline(always)]
pub(crate) fn available() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        is_x86_feature_detected!("avx512f") && std::env::var("LOOPGRAD_SIMD16").map_or(true, |v| v.trim() != "0")
    })
}

/// `s` as f32 elements, when `E` is f32 and this CPU has AVX-512F: the kernels' test for the 16-lane path.
#[inline(always)]
pub(crate) fn as_f32<E: 'static>(s: &[E]) -> Option<&[f32]> {
    // SAFETY: E is f32 (same TypeId), so the slice is one of f32s.
    (TypeId::of::<E>() == TypeId::of::<f32>() && available())
        .then(|| unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<f32>(), s.len()) })
}

/// [`as_f32`] for a mutable slice.
#[inline(always)]
pub(crate) fn as_f32_mut<E: 'static>(s: &mut [E]) -> Option<&mut [f32]> {
    // SAFETY: as in `as_f32`; the borrow is moved into the result.
    (TypeId::of::<E>() == TypeId::of::<f32>() && available())
        .then(|| unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<f32>(), s.len()) })
}

#[derive(Clone, Copy)]
#[repr(transparent)]
pub(crate) struct F32x16(__m512);

// Every `unsafe` block below calls AVX-512F intrinsics on register values (and, for `load`/`store`, on a slice
// whose length is checked first). SAFETY, for all of them: an F32x16 exists only inside AVX-512F code (module doc).

/// The four arithmetic operators, each one lane-wise instruction.
macro_rules! binary_ops {
    ($($trait:ident $method:ident $intrinsic:ident),+) => {$(
        impl $trait for F32x16 {
            type Output = Self;
            #[inline(always)]
            fn $method(self, o: Self) -> Self {
                F32x16(unsafe { $intrinsic(self.0, o.0) })
            }
        }
    )+};
}

binary_ops!(Add add _mm512_add_ps, Sub sub _mm512_sub_ps, Mul mul _mm512_mul_ps, Div div _mm512_div_ps);

impl Neg for F32x16 {
    type Output = Self;
    /// `0 - x`, as `wide`'s negation (so -(+0) is +0, as there).
    #[inline(always)]
    fn neg(self) -> Self {
        F32x16(unsafe { _mm512_sub_ps(_mm512_setzero_ps(), self.0) })
    }
}

/// A mask vector (all-ones or zero lanes, from `ge_mask` or `nan_mask`) as a 16-bit lane mask.
#[inline(always)]
fn lane_mask(m: F32x16) -> __mmask16 {
    unsafe {
        let bits = _mm512_castps_si512(m.0);
        _mm512_test_epi32_mask(bits, bits)
    }
}

/// A 16-bit lane mask as a mask vector: all-ones lanes where set.
#[inline(always)]
fn mask_vector(k: __mmask16) -> F32x16 {
    unsafe { F32x16(_mm512_castsi512_ps(_mm512_maskz_set1_epi32(k, -1))) }
}

impl SimdVec for F32x16 {
    type Elem = f32;
    const LANES: usize = 16;
    // The f32x8 constants: the same polynomial and reduction, lane for lane.
    const EXP_DEGREE: usize = <wide::f32x8 as SimdVec>::EXP_DEGREE;
    const EXP_CLAMP: f64 = <wide::f32x8 as SimdVec>::EXP_CLAMP;
    const LN2_HI: f64 = <wide::f32x8 as SimdVec>::LN2_HI;
    const LN2_LO: f64 = <wide::f32x8 as SimdVec>::LN2_LO;

    #[inline(always)]
    fn splat(x: f32) -> Self {
        F32x16(unsafe { _mm512_set1_ps(x) })
    }
    #[inline(always)]
    fn load(s: &[f32]) -> Self {
        assert!(s.len() >= 16, "F32x16::load: {} elements", s.len());
        F32x16(unsafe { _mm512_loadu_ps(s.as_ptr()) })
    }
    #[inline(always)]
    fn store(self, s: &mut [f32]) {
        assert!(s.len() >= 16, "F32x16::store: {} elements", s.len());
        unsafe { _mm512_storeu_ps(s.as_mut_ptr(), self.0) }
    }
    #[inline(always)]
    fn mul_add(self, m: Self, a: Self) -> Self {
        F32x16(unsafe { _mm512_fmadd_ps(self.0, m.0, a.0) })
    }
    #[inline(always)]
    fn max(self, o: Self) -> Self {
        F32x16(unsafe { _mm512_max_ps(self.0, o.0) })
    }
    #[inline(always)]
    fn min(self, o: Self) -> Self {
        F32x16(unsafe { _mm512_min_ps(self.0, o.0) })
    }
    #[inline(always)]
    fn abs(self) -> Self {
        unsafe {
            let bits = _mm512_and_si512(_mm512_castps_si512(self.0), _mm512_set1_epi32(i32::MAX));
            F32x16(_mm512_castsi512_ps(bits))
        }
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        F32x16(unsafe { _mm512_sqrt_ps(self.0) })
    }
    #[inline(always)]
    fn round(self) -> Self {
        F32x16(unsafe { _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(self.0) })
    }
    #[inline(always)]
    fn floor(self) -> Self {
        F32x16(unsafe { _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(self.0) })
    }
    #[inline(always)]
    fn ge_mask(self, o: Self) -> Self {
        mask_vector(unsafe { _mm512_cmp_ps_mask::<_CMP_GE_OQ>(self.0, o.0) })
    }
    #[inline(always)]
    fn nan_mask(self) -> Self {
        mask_vector(unsafe { _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(self.0, self.0) })
    }
    #[inline(always)]
    fn blend(mask: Self, t: Self, f: Self) -> Self {
        F32x16(unsafe { _mm512_mask_blend_ps(lane_mask(mask), f.0, t.0) })
    }
    /// Not `f32x8`'s order (see the module doc): no kernel that must match `f32x8` reduces with it.
    #[inline(always)]
    fn reduce_sum(self) -> f32 {
        unsafe { _mm512_reduce_add_ps(self.0) }
    }
    #[inline(always)]
    fn reduce_max(self) -> f32 {
        let mut lanes = [0f32; 16];
        self.store(&mut lanes);
        lanes.into_iter().fold(f32::NEG_INFINITY, f32::max)
    }
    #[inline(always)]
    fn pow2i(k: Self) -> Self {
        // As f32x8's: k + 2^23 + 127 holds k + 127 in its mantissa field; shift it into the exponent field.
        let t = k + Self::splat(8_388_608.0 + 127.0);
        F32x16(unsafe { _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_castps_si512(t.0))) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::{exp, map1, map2, sigmoid, silu};
    use wide::f32x8;

    /// Inputs that reach every branch of exp and the logistic functions: zeros of both signs, the clamps,
    /// overflow, gradual underflow, NaN, infinities, and a sweep.
    fn edge_inputs() -> Vec<f32> {
        let mut xs = vec![0.0, -0.0, 1.0, -1.0, 88.7, 88.8, -87.3, -103.9, -104.5, 104.5, 200.0, -200.0, 1e-30];
        xs.extend([f32::NAN, f32::INFINITY, f32::NEG_INFINITY, f32::MIN_POSITIVE, -f32::MIN_POSITIVE]);
        xs.extend((0..4001).map(|i| (i as f32 - 2000.0) * 0.0537));
        xs
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn wide16(xs: &[f32], ys: &[f32], f: impl Fn(F32x16, F32x16) -> F32x16) -> Vec<f32> {
        let mut out = vec![0.0; xs.len()];
        map2::<F32x16>(xs, ys, &mut out, f);
        out
    }

    #[test]
    fn sixteen_lanes_give_the_bits_of_eight() {
        if !available() {
            eprintln!("skipped: this CPU has no AVX-512F");
            return;
        }
        let xs = edge_inputs();
        let ys: Vec<f32> = xs.iter().rev().copied().collect();
        let narrow = |f: &dyn Fn(f32x8, f32x8) -> f32x8| {
            let mut out = vec![0.0; xs.len()];
            map2::<f32x8>(&xs, &ys, &mut out, f);
            out
        };
        type Case = (&'static str, fn(f32x8, f32x8) -> f32x8, fn(F32x16, F32x16) -> F32x16);
        let cases: [Case; 6] = [
            ("exp", |x, _| exp(x), |x, _| exp(x)),
            ("sigmoid", |x, _| sigmoid(x), |x, _| sigmoid(x)),
            ("silu * u", |x, u| silu(x) * u, |x, u| silu(x) * u),
            ("-|x| max min sqrt", |x, y| (-x.abs()).max(y).min(x).sqrt(), |x, y| (-x.abs()).max(y).min(x).sqrt()),
            ("round floor fma", |x, y| x.round().mul_add(y.floor(), x / y), |x, y| x.round().mul_add(y.floor(), x / y)),
            (
                "masks",
                |x, y| f32x8::blend(x.ge_mask(y), x, f32x8::blend(y.nan_mask(), x, y)),
                |x, y| F32x16::blend(x.ge_mask(y), x, F32x16::blend(y.nan_mask(), x, y)),
            ),
        ];
        for (name, f8, f16) in cases {
            let want = narrow(&f8);
            // SAFETY: AVX-512F is available (checked above).
            let got = unsafe { wide16(&xs, &ys, f16) };
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                // max and min leave NaN unspecified (`SimdVec::max`), and the compiler may reorder them there.
                if name.contains("max") && (xs[i].is_nan() || ys[i].is_nan()) {
                    continue;
                }
                assert_eq!(g.to_bits(), w.to_bits(), "{name} at x = {}, y = {}: {g} vs {w}", xs[i], ys[i]);
            }
        }
        // A tail shorter than a vector is padded like f32x8's, lane for lane.
        let mut out = vec![0.0; 21];
        // SAFETY: as above.
        unsafe { map1_16(&xs[..21], &mut out) };
        let mut want = vec![0.0; 21];
        map1::<f32x8>(&xs[..21], &mut want, exp);
        assert_eq!(
            out.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            want.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn map1_16(xs: &[f32], out: &mut [f32]) {
        map1::<F32x16>(xs, out, exp)
    }

    #[test]
    fn pow2_and_reductions() {
        if !available() {
            eprintln!("skipped: this CPU has no AVX-512F");
            return;
        }
        #[target_feature(enable = "avx512f")]
        unsafe fn check() {
            let k: Vec<f32> = (0..16).map(|i| (i * 16 - 126) as f32).collect();
            let mut p = [0f32; 16];
            F32x16::pow2i(F32x16::load(&k)).store(&mut p);
            for (ki, pi) in k.iter().zip(p) {
                assert_eq!(pi, 2f32.powi(*ki as i32));
            }
            let v = F32x16::load(&k);
            assert_eq!(v.reduce_sum(), k.iter().sum::<f32>());
            assert_eq!(v.reduce_max(), 114.0);
        }
        // SAFETY: AVX-512F is available (checked above).
        unsafe { check() }
    }
}
