//! Reductions of a whole tensor to a scalar (shape []): the last step of a loss.
//!
//! | op | forward | backward |
//! |---|---|---|
//! | sum | s = sum_i x_i | dx_i += ds |
//! | mean | m = sum_i x_i / n | dx_i += dm / n |
//!
//! The sum runs in f64 whatever the element type, so a loss over many positions does not lose digits in f32.
//! Nothing is saved: backward needs only the input's size.

use crate::op::Op;
use crate::tape::{Ctx, Tape, Var};
use loopgrad_tensor::{Float, Shape, Tensor};

impl<E: Float> Tape<E> {
    /// Sum of every element -> a scalar (shape []).
    pub fn sum(&mut self, x: Var) -> Var {
        let s = total(self.value(x).data());
        self.push_op(Op::Sum, &[x], Tensor::full(Shape::scalar(), E::from_f64(s)), [], &[])
    }

    /// Mean of every element -> a scalar (shape []).
    pub fn mean(&mut self, x: Var) -> Var {
        let xt = self.value(x);
        assert!(xt.numel() > 0, "mean: input of shape {} is empty", xt.shape());
        let m = total(xt.data()) / xt.numel() as f64;
        self.push_op(Op::Mean, &[x], Tensor::full(Shape::scalar(), E::from_f64(m)), [], &[])
    }
}

fn total<E: Float>(x: &[E]) -> f64 {
    x.iter().map(|v| v.to_f64()).sum()
}

pub(crate) fn backward_sum<E: Float>(ctx: &mut Ctx<'_, E>) {
    let g = ctx.gout.item();
    if let Some(dx) = ctx.grad(0) {
        dx.iter_mut().for_each(|d| *d += g);
    }
}

pub(crate) fn backward_mean<E: Float>(ctx: &mut Ctx<'_, E>) {
    let g = ctx.gout.item() / E::from_usize(ctx.input(0).numel());
    if let Some(dx) = ctx.grad(0) {
        dx.iter_mut().for_each(|d| *d += g);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::gradcheck;
    use crate::ops::test_support::standard_normal;
    use crate::ParamStore;
    use proptest::prelude::*;

    #[test]
    fn values_and_scalar_shape() {
        let mut tape = Tape::<f32>::new(ParamStore::new());
        let x = tape.constant(Tensor::from_vec(vec![1.0, 2.0, 3.0, 6.0], [2, 2]));
        let (s, m) = (tape.sum(x), tape.mean(x));
        assert_eq!(tape.value(s).dims(), &[] as &[usize]);
        assert_eq!(tape.value(s).item(), 12.0);
        assert_eq!(tape.value(m).item(), 3.0);
    }

    #[test]
    fn mean_backward_spreads_one_over_n() {
        let mut tape = Tape::<f64>::new(ParamStore::new());
        let x = tape.leaf(Tensor::zeros([4]));
        let m = tape.mean(x);
        tape.backward(m);
        assert_eq!(tape.grad(x).unwrap().data(), &[0.25; 4]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::gradcheck::proptest_cases()))]

        #[test]
        fn gradients_match_finite_differences(rows in 1usize..5, cols in 1usize..10, seed in 0u64..1000) {
            let x = standard_normal(&[rows, cols], seed);
            gradcheck("sum", std::slice::from_ref(&x), |t, v| t.sum(v[0])).unwrap();
            gradcheck("mean", std::slice::from_ref(&x), |t, v| t.mean(v[0])).unwrap();
            // A scalar feeding a product: the projection cannot hide a wrong broadcast.
            gradcheck("mean * x", &[x], |t, v| {
                let m = t.mean(v[0]);
                let sq = t.mul(v[0], v[0]);
                let s = t.sum(sq);
                t.mul(m, s)
            }).unwrap();
        }
    }
}
