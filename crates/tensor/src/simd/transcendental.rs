//! A vectorised `exp`, and the logistic functions built on it.
//!
//! `exp(x) = 2^n * exp(r)` with `n = round(x / ln 2)` and `r = x - n ln 2` (Cody-Waite: `ln 2` split in a short
//! head, so that `n * LN2_HI` is exact, and a tail), `|r| <= ln(2) / 2`. `exp(r)` is its Taylor polynomial of
//! degree 7 (f32) or 13 (f64), whose truncation error there is below 0.05 ulp; the rest is Horner rounding.
//! `2^n` is applied as two factors `2^h * 2^(n-h)` with `h = floor(n / 2)`, so that neither factor leaves the
//! normal range: results that overflow become `+inf`, results below the normal range round once into
//! denormals (or zero) like `f32::exp`, and NaN stays NaN.
//!
//! Error bound, asserted by `tests::exp_error_sweep` over 400 001 points spanning the normal range: at most
//! 2 ulp. Measured worst case: 0.86 ulp for f32 (against exp computed in f64) and 1.0 ulp for f64 (against
//! `f64::exp`, itself within 1 ulp).

use super::SimdVec;

/// 1/k! for k = 0..=13, the Taylor coefficients of exp.
const INV_FACTORIAL: [f64; 14] = [
    1.0,
    1.0,
    1.0 / 2.0,
    1.0 / 6.0,
    1.0 / 24.0,
    1.0 / 120.0,
    1.0 / 720.0,
    1.0 / 5_040.0,
    1.0 / 40_320.0,
    1.0 / 362_880.0,
    1.0 / 3_628_800.0,
    1.0 / 39_916_800.0,
    1.0 / 479_001_600.0,
    1.0 / 6_227_020_800.0,
];

/// Lane-wise `exp` (see the module doc for the method and its error bound).
#[inline(always)]
pub fn exp<V: SimdVec>(x: V) -> V {
    let xc = x.max(V::konst(-V::EXP_CLAMP)).min(V::konst(V::EXP_CLAMP));
    let n = (xc * V::konst(std::f64::consts::LOG2_E)).round();
    let r = n.mul_add(V::konst(-V::LN2_HI), xc);
    let r = n.mul_add(V::konst(-V::LN2_LO), r);
    let mut p = V::konst(INV_FACTORIAL[V::EXP_DEGREE]);
    for k in (0..V::EXP_DEGREE).rev() {
        p = p.mul_add(r, V::konst(INV_FACTORIAL[k]));
    }
    let h = (n * V::konst(0.5)).floor();
    let y = p * V::pow2i(h) * V::pow2i(n - h);
    V::blend(x.nan_mask(), x, y)
}

/// Lane-wise logistic function `1 / (1 + exp(-x))`, computed from `e = exp(-|x|)` so that it never overflows:
/// `1 / (1 + e)` for `x >= 0`, `e / (1 + e)` below (the same branches as [`crate::kernels::sigmoid_scalar`]).
#[inline(always)]
pub fn sigmoid<V: SimdVec>(x: V) -> V {
    let one = V::konst(1.0);
    let e = exp(-x.abs());
    let r = one / (one + e);
    V::blend(x.ge_mask(V::konst(0.0)), r, e * r)
}

/// Lane-wise SiLU `x * sigmoid(x)`.
#[inline(always)]
pub fn silu<V: SimdVec>(x: V) -> V {
    x * sigmoid(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::{map1, SimdVec};
    use wide::{f32x8, f64x4};

    /// Distance from `got` to the exact `want` in units of `got`'s type's spacing at `want` (denormal spacing
    /// below the normal range).
    fn ulps(got: f64, want: f64, eps: f64, min_normal: f64) -> f64 {
        if got == want {
            return 0.0;
        }
        let spacing =
            if want.abs() < min_normal { min_normal * eps } else { 2f64.powf(want.abs().log2().floor()) * eps };
        (got - want).abs() / spacing
    }

    fn exp_f32(xs: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0; xs.len()];
        map1::<f32x8>(xs, &mut out, exp);
        out
    }

    fn exp_f64(xs: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; xs.len()];
        map1::<f64x4>(xs, &mut out, exp);
        out
    }

    /// The bound stated in the module doc: exp within 2 ulp over the whole range where the result is normal,
    /// measured against exp in f64 (for f32) and against `f64::exp` (for f64, itself within 1 ulp).
    #[test]
    fn exp_error_sweep() {
        let n = 400_000;
        let xs: Vec<f32> = (0..=n).map(|i| -87.3 + 175.9 * i as f32 / n as f32).collect();
        let worst32 = xs
            .iter()
            .zip(exp_f32(&xs))
            .map(|(&x, y)| ulps(y as f64, (x as f64).exp(), f32::EPSILON as f64, f32::MIN_POSITIVE as f64))
            .fold(0.0, f64::max);
        let xs: Vec<f64> = (0..=n).map(|i| -708.0 + 1417.0 * i as f64 / n as f64).collect();
        let worst64 = xs
            .iter()
            .zip(exp_f64(&xs))
            .map(|(&x, y)| ulps(y, x.exp(), f64::EPSILON, f64::MIN_POSITIVE))
            .fold(0.0, f64::max);
        println!("exp: worst error {worst32:.3} ulp (f32), {worst64:.3} ulp (f64)");
        assert!(worst32 <= 2.0, "f32 exp is off by {worst32} ulp");
        assert!(worst64 <= 2.0, "f64 exp is off by {worst64} ulp");
    }

    #[test]
    fn exp_edges_match_std() {
        let xs = [0.0f32, -0.0, 1.0, 88.72, 88.73, 89.0, 1e30, f32::INFINITY, -87.3, -100.0, -103.9, -104.0, -1e30];
        for (x, y) in xs.iter().zip(exp_f32(&xs)) {
            let want = x.exp();
            let ok = if want.is_infinite() || want == 0.0 {
                y == want
            } else {
                (y - want).abs() <= 2.0 * want * f32::EPSILON
            };
            assert!(ok, "exp({x}) = {y}, std {want}");
        }
        let specials = exp_f32(&[f32::NEG_INFINITY, f32::NAN]);
        assert_eq!(specials[0], 0.0);
        assert!(specials[1].is_nan());
        let xs = [0.0f64, 709.78, 709.79, 1e300, -708.4, -745.0, -746.0, f64::NEG_INFINITY];
        for (x, y) in xs.iter().zip(exp_f64(&xs)) {
            let want = x.exp();
            let ok = if want.is_infinite() || want == 0.0 {
                y == want
            } else {
                (y - want).abs() <= 2.0 * want * f64::EPSILON
            };
            assert!(ok, "exp({x}) = {y}, std {want}");
        }
        assert!(exp_f64(&[f64::NAN])[0].is_nan());
    }

    #[test]
    fn exp_underflows_gradually_like_std() {
        // Results in the denormal range are rounded once, so they match std to within one denormal step.
        let xs: Vec<f32> = (0..1000).map(|i| -87.4 - 16.0 * i as f32 / 1000.0).collect();
        for (x, y) in xs.iter().zip(exp_f32(&xs)) {
            let want = (*x as f64).exp();
            assert!((y as f64 - want).abs() <= 1.5e-45, "exp({x}) = {y:e}, exact {want:e}");
        }
    }

    #[test]
    fn horizontal_reductions_and_pow2() {
        let v = f32x8::from([1.0, -2.0, 3.0, 9.5, 0.5, -7.0, 2.0, 1.0]);
        assert_eq!(v.reduce_sum(), 8.0);
        assert_eq!(SimdVec::reduce_max(v), 9.5);
        let k = f64x4::from([-1022.0, -1.0, 0.0, 1023.0]);
        assert_eq!(f64x4::pow2i(k).to_array(), [f64::MIN_POSITIVE, 0.5, 1.0, 2f64.powi(1023)]);
        let k = f32x8::from([-126.0, -1.0, 0.0, 1.0, 10.0, 64.0, 100.0, 127.0]);
        let want = [-126, -1, 0, 1, 10, 64, 100, 127].map(|e| 2f32.powi(e));
        assert_eq!(f32x8::pow2i(k).to_array(), want);
    }
}
