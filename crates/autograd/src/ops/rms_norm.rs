//! RMSNorm without gain over the last axis (TRM/HRM's post-norm; eps 1e-5 in the models).
//!
//! For each row x of length D:
//!
//! ```text
//! f:  y = x r,  r = 1 / sqrt(mean(x^2) + eps)
//! f': dx = r (dy - y mean(dy y))
//! ```
//!
//! Derivation: dr/dx_j = -r^3 x_j / D, so dx_j = r dy_j - r^3 x_j sum_i(dy_i x_i) / D, and r^3 x_j sum(dy x) / D
//! = r y_j mean(dy y) because y = r x. **Reuses:** the output y (the node's output value, `ctx.out`) and r, one
//! scalar per row, saved by forward. Nothing of size D is saved beyond the output the tape already holds.
//!
//! `add_rms_norm(a, b)` = `rms_norm(a + b)` (the post-norm block's residual step) as one op: the sum is not
//! stored, and da = db = ds, the RMSNorm gradient above.
//!
//! Both directions dispatch to fused SIMD kernels in `loopgrad_tensor::kernels` (`rms_norm_rows`,
//! `add_rms_norm_rows`, `rms_norm_rows_grad`), split across threads by rows. Their specification is [`reference`]
//! below: the same formulas as plain loops, which the kernels are tested against here.

use super::store_for;
use crate::op::Op;
use crate::tape::{Ctx, Tape, Var};
use loopgrad_tensor::kernels::{self, Store};
use loopgrad_tensor::{Float, Tensor};

impl<E: Float> Tape<E> {
    /// RMSNorm without gain over the last axis: y = x / sqrt(mean(x^2) + eps).
    pub fn rms_norm(&mut self, x: Var, eps: f64) -> Var {
        let xt = self.value(x);
        let (rows, d) = (xt.shape().rows(), xt.shape().last());
        assert!(d > 0, "rms_norm: x has shape {}, the normalised (last) axis is empty", xt.shape());
        let mut r = Tensor::uninit([rows]);
        let mut out = Tensor::uninit(xt.shape());
        kernels::rms_norm_rows(xt.data(), d, E::from_f64(eps), out.data_mut(), r.data_mut());
        let saved = self.should_record(&[x]).then_some(r);
        self.push_op(Op::RmsNorm, &[x], out, saved, &[])
    }

    /// The post-norm residual step rms_norm(a + b) as one op: the sum is never stored (backward does not need
    /// it), and the gradient reaches a and b in one pass. Same numbers as `rms_norm(add(a, b))`, bit for bit.
    pub fn add_rms_norm(&mut self, a: Var, b: Var, eps: f64) -> Var {
        let (at, bt) = (self.value(a), self.value(b));
        assert_eq!(at.shape(), bt.shape(), "add_rms_norm: shapes {} and {} differ", at.shape(), bt.shape());
        let (rows, d) = (at.shape().rows(), at.shape().last());
        assert!(d > 0, "add_rms_norm: shape {} has an empty normalised (last) axis", at.shape());
        let mut r = Tensor::uninit([rows]);
        let mut out = Tensor::uninit(at.shape());
        kernels::add_rms_norm_rows(at.data(), bt.data(), d, E::from_f64(eps), out.data_mut(), r.data_mut());
        let saved = self.should_record(&[a, b]).then_some(r);
        self.push_op(Op::AddRmsNorm, &[a, b], out, saved, &[])
    }
}

pub(crate) fn backward<E: Float>(ctx: &mut Ctx<'_, E>) {
    let (gout, y, saved) = (ctx.gout, ctx.out, ctx.saved);
    let r = &saved[0];
    let Some((dx, beta)) = ctx.grad_beta(0) else { return };
    kernels::rms_norm_rows_grad(gout.data(), y.data(), r.data(), y.shape().last(), dx, store_for(beta));
}

pub(crate) fn backward_add<E: Float>(ctx: &mut Ctx<'_, E>) {
    let (gout, y, saved) = (ctx.gout, ctx.out, ctx.saved);
    let r = &saved[0];
    let d = y.shape().last();
    match (ctx.wants(0), ctx.wants(1)) {
        (false, false) => {}
        // One input wants the gradient: the kernel writes (or adds) straight into its buffer.
        (true, false) | (false, true) => {
            let k = if ctx.wants(0) { 0 } else { 1 };
            let (ds, beta) = ctx.grad_beta(k).expect("wanted");
            kernels::rms_norm_rows_grad(gout.data(), y.data(), r.data(), d, ds, store_for(beta));
        }
        (true, true) => {
            let mut ds = Tensor::<E>::uninit(y.shape());
            kernels::rms_norm_rows_grad(gout.data(), y.data(), r.data(), d, ds.data_mut(), Store::Write);
            for k in 0..2 {
                let (g, beta) = ctx.grad_beta(k).expect("wanted");
                if beta == E::ZERO {
                    g.copy_from_slice(ds.data());
                } else {
                    kernels::add_assign(g, ds.data());
                }
            }
        }
    }
}

/// The specification of the fused kernels above, as plain loops over rows: what `kernels::rms_norm_rows`,
/// `kernels::add_rms_norm_rows` and `kernels::rms_norm_rows_grad` compute (with SIMD sums in another order, split
/// across threads by rows), written the way the derivation in the module doc reads. The tests below hold the
/// kernels to them. Written for clarity, not speed: nothing but tests and benches should call them.
pub mod reference {
    use loopgrad_tensor::Float;

    /// `out[r, :] = x[r, :] rr[r]`, `rr[r] = 1 / sqrt(mean_j x[r, j]^2 + eps)`: the forward, and the one scalar
    /// per row that backward reuses.
    pub fn rms_norm_rows<E: Float>(x: &[E], cols: usize, eps: E, out: &mut [E], rr: &mut [E]) {
        assert!(cols > 0 && x.len() == out.len() && x.len() == rr.len() * cols, "rms_norm_rows: shapes do not fit");
        let inv = E::ONE / E::from_usize(cols);
        for ((orow, xrow), r) in out.chunks_exact_mut(cols).zip(x.chunks_exact(cols)).zip(rr.iter_mut()) {
            let mean_sq = xrow.iter().map(|&v| v * v).sum::<E>() * inv;
            *r = (mean_sq + eps).sqrt().recip();
            for (o, &v) in orow.iter_mut().zip(xrow) {
                *o = v * *r;
            }
        }
    }

    /// `out = rms_norm_rows(a + b)`: the post-norm residual step.
    pub fn add_rms_norm_rows<E: Float>(a: &[E], b: &[E], cols: usize, eps: E, out: &mut [E], rr: &mut [E]) {
        assert_eq!(a.len(), b.len(), "add_rms_norm_rows: lengths");
        let sum: Vec<E> = a.iter().zip(b).map(|(&x, &y)| x + y).collect();
        rms_norm_rows(&sum, cols, eps, out, rr)
    }

    /// The gradient, accumulated: `ds[r, :] += rr[r] (dy[r, :] - y[r, :] mean_j(dy[r, j] y[r, j]))`, from the
    /// output y and the saved scales rr (see the derivation in the module doc).
    pub fn rms_norm_rows_grad_add<E: Float>(dy: &[E], y: &[E], rr: &[E], cols: usize, ds: &mut [E]) {
        assert!(
            cols > 0 && dy.len() == y.len() && dy.len() == ds.len() && dy.len() == rr.len() * cols,
            "rms_norm_rows_grad_add: shapes do not fit"
        );
        let inv = E::ONE / E::from_usize(cols);
        let rows = ds.chunks_exact_mut(cols).zip(dy.chunks_exact(cols)).zip(y.chunks_exact(cols)).zip(rr);
        for (((d, g), yr), &r) in rows {
            let mean = g.iter().zip(yr).map(|(&p, &q)| p * q).sum::<E>() * inv;
            for ((o, &gv), &yv) in d.iter_mut().zip(g).zip(yr) {
                *o += r * (gv - yv * mean);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::gradcheck;
    use crate::ops::test_support::{cast, standard_normal};
    use crate::ParamStore;
    use loopgrad_tensor::compare::{assert_close, assert_ulps};
    use proptest::prelude::*;

    #[test]
    fn forward_values() {
        // Row [3, 4]: mean square 12.5; row [0, 0]: stays 0 (eps keeps r finite).
        let mut tape = Tape::<f64>::new(ParamStore::new());
        let x = tape.constant(Tensor::from_vec(vec![3.0, 4.0, 0.0, 0.0], [2, 2]));
        let y = tape.rms_norm(x, 1e-5);
        let r = 1.0 / (12.5f64 + 1e-5).sqrt();
        let want = [3.0 * r, 4.0 * r, 0.0, 0.0];
        for (got, want) in tape.value(y).data().iter().zip(want) {
            assert!((got - want).abs() < 1e-15, "{got} vs {want}");
        }
    }

    #[test]
    fn rows_have_unit_mean_square_and_d_equal_one_gives_the_sign() {
        let mut tape = Tape::<f64>::new(ParamStore::new());
        let x = tape.constant(standard_normal(&[3, 2, 9], 4));
        let y = tape.rms_norm(x, 0.0);
        for row in tape.value(y).data().chunks(9) {
            let ms = row.iter().map(|v| v * v).sum::<f64>() / 9.0;
            assert!((ms - 1.0).abs() < 1e-12, "{ms}");
        }
        let x1 = tape.constant(Tensor::from_vec(vec![-2.5, 0.5], [2, 1]));
        let y1 = tape.rms_norm(x1, 0.0);
        assert_eq!(tape.value(y1).data(), &[-1.0, 1.0]);
    }

    #[test]
    fn f32_matches_f64_and_no_grad_matches_recorded() {
        let x = standard_normal(&[4, 7, 33], 9);
        let mut tape = Tape::<f64>::new(ParamStore::new());
        let xv = tape.leaf(x.clone());
        let y = tape.rms_norm(xv, 1e-5);
        assert_eq!(tape.num_nodes(), 1);
        let recorded = tape.value(y).clone();
        let y_free = tape.no_grad(|t| t.rms_norm(xv, 1e-5));
        assert_eq!(tape.num_nodes(), 1, "no_grad recorded a node");
        assert_eq!(&recorded, tape.value(y_free));

        let mut t32 = Tape::<f32>::new(ParamStore::new());
        let x32 = t32.constant(x.cast());
        let y32 = t32.rms_norm(x32, 1e-5);
        for (a, b) in t32.value(y32).data().iter().zip(recorded.data()) {
            assert!((a.to_f64() - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    #[test]
    fn fused_add_equals_add_then_norm_bit_for_bit() {
        let (a, b) = (standard_normal(&[3, 4, 21], 1), standard_normal(&[3, 4, 21], 2));
        let mut tape = Tape::<f32>::new(ParamStore::new());
        let (av, bv) = (tape.constant(a.cast()), tape.constant(b.cast()));
        let s = tape.add(av, bv);
        let two_ops = tape.rms_norm(s, 1e-5);
        let fused = tape.add_rms_norm(av, bv, 1e-5);
        assert_eq!(tape.value(two_ops), tape.value(fused));
    }

    #[test]
    #[should_panic(expected = "add_rms_norm: shapes [2, 3] and [3, 2] differ")]
    fn fused_add_names_both_shapes() {
        let mut tape = Tape::<f32>::new(ParamStore::new());
        let (a, b) = (tape.constant(Tensor::zeros([2, 3])), tape.constant(Tensor::zeros([3, 2])));
        tape.add_rms_norm(a, b, 1e-5);
    }

    /// The kernels against [`reference`] on a random [rows, cols] matrix, alone and after a residual add, the
    /// gradient written and accumulated. Tolerances (E::EPSILON = one ulp at 1.0): the forward and r within
    /// (cols + 4) ulp (a sum of squares in another order, then exact steps); the gradient within (cols + 8) ulp of
    /// the magnitudes that went into each element.
    fn kernels_match_the_reference<E: Float>(cols: usize, x: &[f64], b: &[f64], dy: &[f64]) {
        let (x, b, g): (Vec<E>, Vec<E>, Vec<E>) = (cast(x), cast(b), cast(dy));
        let (rows, eps) = (x.len() / cols, E::from_f64(1e-5));
        let zeros = |n: usize| vec![E::ZERO; n];
        let (mut got, mut want, mut r, mut rr) = (zeros(x.len()), zeros(x.len()), zeros(rows), zeros(rows));
        kernels::rms_norm_rows(&x, cols, eps, &mut got, &mut r);
        reference::rms_norm_rows(&x, cols, eps, &mut want, &mut rr);
        assert_ulps("rms_norm_rows", &got, &want, (cols + 4) as f64);
        assert_ulps("rms_norm_rows (r)", &r, &rr, (cols + 4) as f64);
        kernels::add_rms_norm_rows(&x, &b, cols, eps, &mut got, &mut r);
        reference::add_rms_norm_rows(&x, &b, cols, eps, &mut want, &mut rr);
        assert_ulps("add_rms_norm_rows", &got, &want, (cols + 4) as f64);
        assert_ulps("add_rms_norm_rows (r)", &r, &rr, (cols + 4) as f64);
        // |y| <= sqrt(cols), so r (|dy| + sqrt(cols) mean |dy y|) bounds each element; sums of cols terms.
        let scale: Vec<f64> = (0..x.len())
            .map(|i| {
                let row = i / cols;
                let dots: f64 = (0..cols).map(|j| (g[row * cols + j] * want[row * cols + j]).to_f64().abs()).sum();
                2.0 + r[row].to_f64() * (g[i].to_f64().abs() + want[i].to_f64().abs() * dots / cols as f64)
            })
            .collect();
        let (mut d_write, mut d_add, mut d_ref) = (cast::<E>(dy), cast::<E>(dy), cast::<E>(dy));
        kernels::rms_norm_rows_grad(&g, &want, &r, cols, &mut d_write, Store::Write);
        kernels::rms_norm_rows_grad(&g, &want, &r, cols, &mut d_add, Store::Add);
        reference::rms_norm_rows_grad_add(&g, &want, &r, cols, &mut d_ref);
        assert_close("rms_norm_rows_grad (add)", &d_add, &d_ref, &scale, (cols + 8) as f64);
        let mut d_zero = zeros(x.len());
        reference::rms_norm_rows_grad_add(&g, &want, &r, cols, &mut d_zero);
        assert_close("rms_norm_rows_grad (write)", &d_write, &d_zero, &scale, (cols + 8) as f64);
    }

    /// A [rows, cols] matrix and a second one, values in [-6, 6).
    fn matrices() -> impl Strategy<Value = (usize, Vec<f64>, Vec<f64>)> {
        (1usize..70, 1usize..12).prop_flat_map(|(c, r)| {
            let values = || prop::collection::vec(-6.0..6.0f64, c * r);
            (Just(c), values(), values())
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::gradcheck::proptest_cases()))]

        #[test]
        fn gradients_match_finite_differences(rows in 1usize..5, d in 1usize..12, seed in 0u64..1000) {
            let x = standard_normal(&[rows, d], seed);
            gradcheck("rms_norm", &[x], |t, v| t.rms_norm(v[0], 1e-5)).unwrap();
        }

        #[test]
        fn fused_add_gradients_match_finite_differences(rows in 1usize..5, d in 1usize..12, seed in 0u64..1000) {
            let (a, b) = (standard_normal(&[rows, d], seed), standard_normal(&[rows, d], seed + 1));
            gradcheck("add_rms_norm", &[a.clone(), b], |t, v| t.add_rms_norm(v[0], v[1], 1e-5)).unwrap();
            // One input a constant; and a fan-out (a + a) whose two gradients land in one buffer.
            gradcheck("add_rms_norm(a, const)", std::slice::from_ref(&a), |t, v| {
                let c = t.constant(Tensor::full([rows, d], 0.25));
                t.add_rms_norm(v[0], c, 1e-5)
            }).unwrap();
            gradcheck("add_rms_norm(a, a)", &[a], |t, v| t.add_rms_norm(v[0], v[0], 1e-5)).unwrap();
        }

        #[test]
        fn kernels_match_the_reference_in_f32_and_f64((cols, x, b) in matrices()) {
            let dy: Vec<f64> = b.iter().rev().map(|v| 0.5 * v).collect();
            kernels_match_the_reference::<f32>(cols, &x, &b, &dy);
            kernels_match_the_reference::<f64>(cols, &x, &b, &dy);
        }
    }
}
