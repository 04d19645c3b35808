//! A vectorised `atan2(y, x)` for `x >= 0`: the form AdamATan2's update takes (`atan2(m, sqrt(v) / c)`, whose
//! denominator is never negative), so the result lies in [-pi/2, pi/2].
//!
//! Method (Cephes `atan`): with a = |y|, the quotient of the smaller of (a, x) by the larger is t in [0, 1], and
//! atan2 = atan(t), or pi/2 - atan(t) when a > x. Above t = 0.66, atan(t) = pi/4 + atan((t - 1) / (t + 1)), so the
//! rational approximation u + u z P(z) / Q(z), z = u^2, only ever sees |u| <= 0.66, where it is good to about
//! one ulp in f64 (and, rounded to f32, in f32). The sign is y's.
//!
//! Edge cases: atan2(0, 0) = 0 and atan2(-0, x) = +0 (the sign of a zero result is not kept); x = +inf with finite
//! y gives 0, y = +-inf with finite x gives +-pi/2; NaN in, NaN out.

use super::SimdVec;

/// Cephes `atan.c` numerator P (highest power first) and monic denominator Q, with Cephes' published digits.
#[allow(clippy::excessive_precision)]
const P: [f64; 5] = [
    -8.750_608_600_031_904_122_785e-1,
    -1.615_753_718_733_365_076_637e1,
    -7.500_855_792_314_704_667_340e1,
    -1.228_866_684_490_136_173_410e2,
    -6.485_021_904_942_025_371_773e1,
];
#[allow(clippy::excessive_precision)]
const Q: [f64; 5] = [
    2.485_846_490_142_306_297_962e1,
    1.650_270_098_316_988_542_046e2,
    4.328_810_604_912_902_668_951e2,
    4.853_903_996_359_136_964_868e2,
    1.945_506_571_482_613_964_425e2,
];

/// atan(t) for t in [0, 1].
#[inline(always)]
fn atan_unit<V: SimdVec>(t: V) -> V {
    let one = V::konst(1.0);
    let big = t.ge_mask(V::konst(0.66));
    let u = V::blend(big, (t - one) / (t + one), t);
    let base = V::blend(big, V::konst(std::f64::consts::FRAC_PI_4), V::konst(0.0));
    let z = u * u;
    let mut p = V::konst(P[0]);
    for &c in &P[1..] {
        p = p.mul_add(z, V::konst(c));
    }
    let mut q = z + V::konst(Q[0]);
    for &c in &Q[1..] {
        q = q.mul_add(z, V::konst(c));
    }
    base + (u * z).mul_add(p / q, u)
}

/// Lane-wise atan2(y, x) for x >= 0 (see the module doc).
#[inline(always)]
pub fn atan2_nonneg_x<V: SimdVec>(y: V, x: V) -> V {
    let zero = V::konst(0.0);
    let a = y.abs();
    let swap = a.ge_mask(x); // |y| >= x: atan2 = pi/2 - atan(x / |y|)
    let (num, den) = (V::blend(swap, x, a), V::blend(swap, a, x));
    // 0 / 0 (both zero) would be NaN: the answer there is 0, so divide by 1 instead.
    let both_zero = zero.ge_mask(den);
    let t = num / V::blend(both_zero, V::konst(1.0), den);
    let r = atan_unit(t);
    let r = V::blend(swap, V::konst(std::f64::consts::FRAC_PI_2) - r, r);
    let r = V::blend(both_zero, zero, r);
    let r = V::blend(y.ge_mask(zero), r, -r);
    // NaN in either input: ge_mask is false for NaN, so make sure a NaN comes out.
    V::blend(y.nan_mask(), y, V::blend(x.nan_mask(), x, r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wide::{f32x8, f64x4};

    fn ulps_f64(got: f64, want: f64) -> f64 {
        (got - want).abs() / (f64::EPSILON * want.abs().max(f64::MIN_POSITIVE))
    }

    /// Against `std`'s atan2 over a grid of quotients from 1e-6 to 1e6 and both signs of y: within 2 ulp in f64
    /// and 2 ulp (of f32) in f32; and the edge cases of the module doc.
    #[test]
    fn matches_std_atan2_and_its_edge_cases() {
        let (mut worst64, mut worst32) = (0.0f64, 0.0f64);
        for i in 0..=4000 {
            let q = 10f64.powf(-6.0 + 12.0 * i as f64 / 4000.0);
            for (y, x) in [(q, 1.0), (-q, 1.0), (1.0, q), (-1.0, q), (q * 3.7, 3.7)] {
                let got = atan2_nonneg_x(f64x4::splat(y), f64x4::splat(x)).to_array()[0];
                worst64 = worst64.max(ulps_f64(got, y.atan2(x)));
                let (y32, x32) = (y as f32, x as f32);
                let got32 = atan2_nonneg_x(f32x8::splat(y32), f32x8::splat(x32)).to_array()[0] as f64;
                let want32 = (y32 as f64).atan2(x32 as f64);
                worst32 = worst32.max((got32 - want32).abs() / (f32::EPSILON as f64 * want32.abs()));
            }
        }
        assert!(worst64 <= 2.0, "f64: {worst64} ulp");
        assert!(worst32 <= 2.0, "f32: {worst32} ulp");
        let one = |y: f64, x: f64| atan2_nonneg_x(f64x4::splat(y), f64x4::splat(x)).to_array()[0];
        let pi2 = std::f64::consts::FRAC_PI_2;
        assert_eq!([one(0.0, 0.0), one(0.0, 5.0), one(5.0, 0.0), one(-5.0, 0.0)], [0.0, 0.0, pi2, -pi2]);
        assert_eq!([one(1.0, f64::INFINITY), one(f64::INFINITY, 1.0), one(f64::NEG_INFINITY, 0.0)], [0.0, pi2, -pi2]);
        assert!(one(f64::NAN, 1.0).is_nan() && one(1.0, f64::NAN).is_nan());
    }
}
