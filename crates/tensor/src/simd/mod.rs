//! The SIMD vectors behind the kernels: `wide::f32x8` for `f32` and `wide::f64x4` for `f64` (one 256-bit AVX2
//! register each), behind one trait so that every kernel is written once, generically.
//!
//! On AVX-512 CPUs the element-wise kernels built on `exp` run the same code on sixteen f32 lanes (`avx512`),
//! with the same bits.
//!
//! `transcendental` holds the vectorised exp (sigmoid, SiLU and softmax are built on it), `atan` the
//! `atan2` of AdamATan2's update, `loops` the helpers that run a vector closure over slices with a zero-padded tail.

mod atan;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512;
mod loops;
mod transcendental;

pub use atan::atan2_nonneg_x;
pub use loops::*;
pub use transcendental::{exp, sigmoid, silu};

use crate::float::Float;
use bytemuck::cast;
use std::ops::{Add, Div, Mul, Neg, Sub};
use wide::{f32x8, f64x4, u32x8, u64x4, CmpGe};

/// The largest lane count of any [`SimdVec`] (the crate's own 16-lane f32 vector, `avx512::F32x16`): the size of
/// the scratch arrays that pad a slice's tail.
pub const MAX_LANES: usize = 16;

/// A SIMD vector of [`Float`]s. Implemented for `f32x8` (the vector of `f32`) and `f64x4` (of `f64`); select it
/// generically as `E::Simd`.
pub trait SimdVec:
    Copy
    + Send
    + Sync
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
{
    type Elem: Float;
    /// Elements per vector.
    const LANES: usize;
    /// Degree of the Taylor polynomial of `exp` on `|r| <= ln(2) / 2`.
    const EXP_DEGREE: usize;
    /// `exp` saturates beyond this magnitude (+inf above, 0 below), so inputs are clamped to it first.
    const EXP_CLAMP: f64;
    /// `ln 2 = LN2_HI + LN2_LO`, with `LN2_HI` short enough that `n * LN2_HI` is exact for every `n` used.
    const LN2_HI: f64;
    const LN2_LO: f64;

    fn splat(x: Self::Elem) -> Self;
    /// Loads the first `LANES` elements of `s` (panics if it is shorter).
    fn load(s: &[Self::Elem]) -> Self;
    /// Stores into the first `LANES` elements of `s` (panics if it is shorter).
    fn store(self, s: &mut [Self::Elem]);
    /// `self * m + a` with one rounding (an FMA instruction when the target has FMA).
    fn mul_add(self, m: Self, a: Self) -> Self;
    /// Lane-wise maximum (NaN handling unspecified: the kernels document theirs).
    fn max(self, o: Self) -> Self;
    fn min(self, o: Self) -> Self;
    fn abs(self) -> Self;
    fn sqrt(self) -> Self;
    /// Round half to even.
    fn round(self) -> Self;
    fn floor(self) -> Self;
    /// All-ones lanes where `self >= o`, zero lanes elsewhere (a mask for [`SimdVec::blend`]).
    fn ge_mask(self, o: Self) -> Self;
    /// All-ones lanes where `self` is NaN.
    fn nan_mask(self) -> Self;
    /// `mask ? t : f`, lane-wise (mask from `ge_mask` / `nan_mask`).
    fn blend(mask: Self, t: Self, f: Self) -> Self;
    /// Sum of the lanes.
    fn reduce_sum(self) -> Self::Elem;
    /// Maximum of the lanes.
    fn reduce_max(self) -> Self::Elem;
    /// `2^k` for integer-valued lanes `k` in the normal exponent range (f32: -126..=127, f64: -1022..=1023).
    fn pow2i(k: Self) -> Self;

    /// Writes the transpose of the `LANES x LANES` block at the start of `src` (rows `src_stride` apart) to the
    /// start of `dst` (rows `dst_stride` apart). Scalar by default; `f32x8` shuffles in registers.
    #[inline(always)]
    fn transpose_block(src: &[Self::Elem], src_stride: usize, dst: &mut [Self::Elem], dst_stride: usize) {
        for i in 0..Self::LANES {
            for j in 0..Self::LANES {
                dst[j * dst_stride + i] = src[i * src_stride + j];
            }
        }
    }

    /// A constant (rounded to the element type).
    #[inline(always)]
    fn konst(x: f64) -> Self {
        Self::splat(Self::Elem::from_f64(x))
    }
}

/// The [`SimdVec`] methods that `f32x8` and `f64x4` implement alike, by forwarding to `wide` (written once here;
/// each `impl` adds its constants, `pow2i` and any override). Every method stays `#[inline(always)]`: the kernels
/// rely on the whole vector closure inlining into their loops.
macro_rules! wide_vector_ops {
    ($v:ident, $e:ty, $lanes:literal) => {
        #[inline(always)]
        fn splat(x: $e) -> Self {
            $v::splat(x)
        }
        #[inline(always)]
        fn load(s: &[$e]) -> Self {
            let a: [$e; $lanes] = s[..$lanes].try_into().unwrap();
            $v::from(a)
        }
        #[inline(always)]
        fn store(self, s: &mut [$e]) {
            s[..$lanes].copy_from_slice(&self.to_array());
        }
        #[inline(always)]
        fn mul_add(self, m: Self, a: Self) -> Self {
            $v::mul_add(self, m, a)
        }
        #[inline(always)]
        fn max(self, o: Self) -> Self {
            self.fast_max(o)
        }
        #[inline(always)]
        fn min(self, o: Self) -> Self {
            self.fast_min(o)
        }
        #[inline(always)]
        fn abs(self) -> Self {
            $v::abs(self)
        }
        #[inline(always)]
        fn sqrt(self) -> Self {
            $v::sqrt(self)
        }
        #[inline(always)]
        fn round(self) -> Self {
            $v::round(self)
        }
        #[inline(always)]
        fn floor(self) -> Self {
            $v::floor(self)
        }
        #[inline(always)]
        fn ge_mask(self, o: Self) -> Self {
            self.cmp_ge(o)
        }
        #[inline(always)]
        fn nan_mask(self) -> Self {
            self.is_nan()
        }
        #[inline(always)]
        fn blend(mask: Self, t: Self, f: Self) -> Self {
            mask.blend(t, f)
        }
        #[inline(always)]
        fn reduce_sum(self) -> $e {
            self.reduce_add()
        }
        #[inline(always)]
        fn reduce_max(self) -> $e {
            self.to_array().into_iter().fold(<$e>::NEG_INFINITY, <$e>::max)
        }
    };
}

impl SimdVec for f32x8 {
    type Elem = f32;
    const LANES: usize = 8;
    const EXP_DEGREE: usize = 7;
    const EXP_CLAMP: f64 = 104.0;
    // Cephes' split: 0.693359375 = 355/512 (9 significant bits), so n * LN2_HI is exact for |n| < 2^15.
    const LN2_HI: f64 = 0.693_359_375;
    const LN2_LO: f64 = -2.121_944_400_546_905_8e-4;

    wide_vector_ops!(f32x8, f32, 8);

    #[inline(always)]
    fn pow2i(k: Self) -> Self {
        // k + 2^23 + 127 lies in [2^23, 2^24), where the mantissa field holds exactly k + 127: shifting it up by
        // 23 moves it into the exponent field and pushes the rest out of the word.
        let t = k + f32x8::splat(8_388_608.0 + 127.0);
        cast(cast::<f32x8, u32x8>(t) << 23)
    }
    #[inline(always)]
    fn transpose_block(src: &[f32], src_stride: usize, dst: &mut [f32], dst_stride: usize) {
        let rows: [f32x8; 8] = std::array::from_fn(|i| Self::load(&src[i * src_stride..]));
        for (j, v) in f32x8::transpose(rows).into_iter().enumerate() {
            v.store(&mut dst[j * dst_stride..]);
        }
    }
}

impl SimdVec for f64x4 {
    type Elem = f64;
    const LANES: usize = 4;
    const EXP_DEGREE: usize = 13;
    const EXP_CLAMP: f64 = 746.0;
    // Cephes' split: LN2_HI has 21 significant bits, so n * LN2_HI is exact for |n| < 2^32.
    const LN2_HI: f64 = 6.931_457_519_531_25e-1;
    const LN2_LO: f64 = 1.428_606_820_309_417_3e-6;

    wide_vector_ops!(f64x4, f64, 4);

    #[inline(always)]
    fn pow2i(k: Self) -> Self {
        // As for f32: k + 2^52 + 1023 has k + 1023 in its mantissa field; shift it into the exponent field.
        let t = k + f64x4::splat(4_503_599_627_370_496.0 + 1023.0);
        cast(cast::<f64x4, u64x4>(t) << 52)
    }
}
