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

use crate::op::Op;
use crate::tape::{Ctx, Tape, Var};
use loopgrad_tensor::{kernels, Float, Tensor};

#[derive(Clone, Copy, Debug)]
pub struct Meta {}

impl<E: Float> Tape<E> {
    /// RMSNorm without gain over the last axis: y = x / sqrt(mean(x^2) + eps).
    pub fn rms_norm(&mut self, x: Var, eps: f64) -> Var {
        let xt = self.value(x);
        let (rows, d) = (xt.shape().rows(), xt.shape().last());
        assert!(d > 0, "rms_norm: x has shape {}, the normalised (last) axis is empty", xt.shape());
        let mut r = Tensor::uninit([rows]);
        kernels::row_mean_sq(xt.data(), d, r.data_mut());
        for v in r.data_mut() {
            *v = (*v + E::from_f64(eps)).sqrt().recip();
        }
        let mut out = Tensor::uninit(xt.shape());
        for ((orow, xrow), &rr) in out.data_mut().chunks_exact_mut(d).zip(xt.data().chunks_exact(d)).zip(r.data()) {
            kernels::scale(xrow, rr, orow);
        }
        let saved = self.should_record(&[x]).then_some(r);
        self.push_op(Op::RmsNorm(Meta {}), &[x], out, saved, &[])
    }
}

pub(crate) fn backward<E: Float>(_m: &Meta, ctx: &mut Ctx<'_, E>) {
    let (gout, y, saved) = (ctx.gout, ctx.out, ctx.saved);
    let d = y.shape().last();
    let inv_d = E::ONE / E::from_usize(d);
    let Some(dx) = ctx.grad(0) else { return };
    let rows = dx.chunks_exact_mut(d).zip(gout.data().chunks_exact(d)).zip(y.data().chunks_exact(d));
    for (((dx_row, dy_row), y_row), &r) in rows.zip(saved[0].data()) {
        let mean_dy_y = dy_row.iter().zip(y_row).map(|(&a, &b)| a * b).sum::<E>() * inv_d;
        kernels::axpy(r, dy_row, dx_row);
        kernels::axpy(-(r * mean_dy_y), y_row, dx_row);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::gradcheck;
    use crate::ParamStore;
    use loopgrad_tensor::Rng;
    use proptest::prelude::*;

    fn random(shape: &[usize], seed: u64) -> Tensor<f64> {
        let mut t = Tensor::uninit(shape);
        Rng::new(seed).fill_normal(t.data_mut(), 1.0);
        t
    }

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
        let x = tape.constant(random(&[3, 2, 9], 4));
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
        let x = random(&[4, 7, 33], 9);
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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::gradcheck::proptest_cases()))]

        #[test]
        fn gradients_match_finite_differences(rows in 1usize..5, d in 1usize..12, seed in 0u64..1000) {
            let x = random(&[rows, d], seed);
            gradcheck("rms_norm", &[x], |t, v| t.rms_norm(v[0], 1e-5)).unwrap();
        }
    }
}
