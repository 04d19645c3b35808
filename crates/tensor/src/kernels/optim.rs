//! Optimizer updates as one fused pass over a parameter, its gradient and its moments.

use super::{SyncPtr, V};
use crate::float::Float;
use crate::parallel::{for_chunks, PAR_MIN_ELEMS_STREAMING};
use crate::simd::{self, SimdVec};

/// The per-step constants of AdamATan2 (decoupled weight decay, no epsilon):
///
/// ```text
/// m = m + (1 - beta1) (g - m)             v = beta2 v + (1 - beta2) g^2
/// p = p decay - step_size atan2(m / bc1, sqrt(v) / sqrt(bc2))      decay = 1 - lr wd, step_size = lr
/// ```
#[derive(Clone, Copy, Debug)]
pub struct AdamAtan2Step<E> {
    pub decay: E,
    pub step_size: E,
    /// 1 / (1 - beta1^t).
    pub bc1_recip: E,
    /// sqrt(1 - beta2^t).
    pub bc2_sqrt: E,
    pub one_minus_beta1: E,
    pub beta2: E,
    pub one_minus_beta2: E,
}

/// One AdamATan2 step of a parameter `p` with gradient `g` (zeroed on the way: the step consumes it) and moments
/// `m`, `v`, all the same length; SIMD, split across threads for large parameters. The atan2 is
/// [`simd::atan2_nonneg_x`] (about one ulp; its denominator is never negative).
pub fn adam_atan2_step<E: Float>(p: &mut [E], g: &mut [E], m: &mut [E], v: &mut [E], c: &AdamAtan2Step<E>) {
    for (what, len) in [("grad", g.len()), ("exp_avg", m.len()), ("exp_avg_sq", v.len())] {
        // Not check_len(&format!(..)): formatting the name on every call would allocate on every step.
        assert_eq!(p.len(), len, "adam_atan2_step ({what}): length {} vs {len}", p.len());
    }
    let (gp, mp, vp) = (SyncPtr(g.as_mut_ptr()), SyncPtr(m.as_mut_ptr()), SyncPtr(v.as_mut_ptr()));
    for_chunks(p, V::<E>::LANES, 8, PAR_MIN_ELEMS_STREAMING, |off, pc| {
        // SAFETY: the chunks of p are disjoint ranges off..off + len; g, m and v have p's length (checked above)
        // and are exclusively borrowed for this call, so these ranges of them are disjoint too.
        let (g, m, v) = unsafe {
            let n = pc.len();
            (
                std::slice::from_raw_parts_mut(gp.get().add(off), n),
                std::slice::from_raw_parts_mut(mp.get().add(off), n),
                std::slice::from_raw_parts_mut(vp.get().add(off), n),
            )
        };
        step_serial(pc, g, m, v, c);
    })
}

fn step_serial<E: Float>(p: &mut [E], g: &mut [E], m: &mut [E], v: &mut [E], c: &AdamAtan2Step<E>) {
    let s = |x: E| V::<E>::splat(x);
    let (decay, step, bc1, bc2) = (s(c.decay), s(c.step_size), s(c.bc1_recip), s(c.bc2_sqrt));
    let (omb1, b2, omb2) = (s(c.one_minus_beta1), s(c.beta2), s(c.one_minus_beta2));
    let lane = |pv: V<E>, gv: V<E>, mv: V<E>, vv: V<E>| {
        let mv = omb1.mul_add(gv - mv, mv);
        let vv = vv.mul_add(b2, omb2 * gv * gv);
        let upd = simd::atan2_nonneg_x(bc1 * mv, vv.sqrt() / bc2);
        (pv.mul_add(decay, -(step * upd)), mv, vv)
    };
    let n = V::<E>::LANES;
    let whole = p.len() - p.len() % n;
    for i in (0..whole).step_by(n) {
        let (pv, mv, vv) =
            lane(V::<E>::load(&p[i..]), V::<E>::load(&g[i..]), V::<E>::load(&m[i..]), V::<E>::load(&v[i..]));
        pv.store(&mut p[i..]);
        mv.store(&mut m[i..]);
        vv.store(&mut v[i..]);
    }
    if whole < p.len() {
        let z = E::ZERO;
        let ld = |x: &[E]| simd::load_partial::<V<E>>(x, z);
        let (pv, mv, vv) = lane(ld(&p[whole..]), ld(&g[whole..]), ld(&m[whole..]), ld(&v[whole..]));
        simd::store_partial(pv, &mut p[whole..]);
        simd::store_partial(mv, &mut m[whole..]);
        simd::store_partial(vv, &mut v[whole..]);
    }
    g.fill(E::ZERO);
}
