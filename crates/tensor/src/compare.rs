//! Comparisons of a fast kernel's results with its scalar specification, in units of the element type's
//! epsilon (`E::EPSILON`, one ulp at 1.0), so that one stated bound is 2^29 times tighter for f64 than for f32.
//! Test helpers, public because the specifications of fused ops live next to their ops in other crates
//! (loopgrad-autograd's `ops::rms_norm::reference`, `ops::swiglu::reference`) and are tested there.

use crate::float::Float;

/// Bit-identical (the kernel does exactly the reference's operations).
#[track_caller]
pub fn assert_same<E: Float>(op: &str, got: &[E], want: &[E]) {
    assert_eq!(got.len(), want.len(), "{op}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            g == w || (g.to_f64().is_nan() && w.to_f64().is_nan()),
            "{op} ({}) [{i}]: {g} vs reference {w}",
            E::NAME
        );
    }
}

/// |got - want| <= ulps * eps * scale[i]: for results whose rounding error is bounded by the magnitudes that went
/// into them (`scale`), e.g. a fused multiply-add or a sum in another order, where cancellation makes a relative
/// bound meaningless.
#[track_caller]
pub fn assert_close<E: Float>(op: &str, got: &[E], want: &[E], scale: &[f64], ulps: f64) {
    assert_eq!(got.len(), want.len(), "{op}: lengths");
    for (i, ((g, w), s)) in got.iter().zip(want).zip(scale).enumerate() {
        let (g, w) = (g.to_f64(), w.to_f64());
        let tol = ulps * E::EPSILON.to_f64() * s;
        assert!((g - w).abs() <= tol, "{op} ({}) [{i}]: {g:e} vs reference {w:e}, tolerance {tol:e}", E::NAME);
    }
}

/// Within `ulps` units in the last place of the reference value (its spacing at `want`; denormal spacing
/// below the normal range). Infinities and NaNs must match exactly.
#[track_caller]
pub fn assert_ulps<E: Float>(op: &str, got: &[E], want: &[E], ulps: f64) {
    assert_eq!(got.len(), want.len(), "{op}: lengths");
    let eps = E::EPSILON.to_f64();
    let min_normal = if E::NAME == "f32" { f32::MIN_POSITIVE as f64 } else { f64::MIN_POSITIVE };
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let (g, w) = (g.to_f64(), w.to_f64());
        if !w.is_finite() || !g.is_finite() {
            assert!(g == w || (g.is_nan() && w.is_nan()), "{op} ({}) [{i}]: {g} vs reference {w}", E::NAME);
            continue;
        }
        let spacing = if w.abs() < min_normal { min_normal * eps } else { 2f64.powf(w.abs().log2().floor()) * eps };
        let err = (g - w).abs() / spacing;
        assert!(err <= ulps, "{op} ({}) [{i}]: {g:e} vs reference {w:e} is {err:.2} ulp > {ulps}", E::NAME);
    }
}
