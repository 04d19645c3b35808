//! Transpose of the last two axes, materialised: the token-mixing MLP ("mlp_t") turns [B, L, D] into
//! [B, D, L] so that its linear layers mix positions, then turns it back.
//!
//! | op | forward | backward |
//! |---|---|---|
//! | transpose | y[.., j, i] = x[.., i, j] | dx[.., i, j] += dy[.., j, i] (transpose back) |
//!
//! Materialised rather than a strided view because every kernel downstream (RMSNorm, SwiGLU, the GEMM over
//! flattened rows) wants contiguous rows. Nothing is saved.

use crate::op::Op;
use crate::tape::{Ctx, Tape, Var};
use loopgrad_tensor::{kernels, Float};

impl<E: Float> Tape<E> {
    /// Swaps the last two axes: [.., m, n] -> [.., n, m] (materialised).
    pub fn transpose(&mut self, x: Var) -> Var {
        let xt = self.value(x);
        assert!(xt.shape().rank() >= 2, "transpose: shape {} has fewer than 2 axes", xt.shape());
        let out = xt.transpose_last2();
        self.push_op(Op::Transpose, &[x], out, [], &[])
    }
}

pub(crate) fn backward<E: Float>(ctx: &mut Ctx<'_, E>) {
    // gout has the output's shape [.., n, m]; transposing it back gives x's layout [.., m, n].
    let g = ctx.gout;
    let (rows, cols) = (g.shape().dim(-2), g.shape().dim(-1));
    let batch = g.numel().checked_div(rows * cols).unwrap_or(0);
    let Some((dx, beta)) = ctx.grad_beta(0) else { return };
    if beta == E::ZERO {
        kernels::transpose(g.data(), batch, rows, cols, dx);
    } else {
        transpose_add(g.data(), batch, rows, cols, dx);
    }
}

/// out[b, j, i] += x[b, i, j] for x of shape [batch, rows, cols] (the accumulating twin of
/// `kernels::transpose`, used when the input's gradient already holds something).
fn transpose_add<E: Float>(x: &[E], batch: usize, rows: usize, cols: usize, out: &mut [E]) {
    let n = rows * cols;
    for (xs, os) in x.chunks_exact(n.max(1)).zip(out.chunks_exact_mut(n.max(1))).take(batch) {
        for i in 0..rows {
            for j in 0..cols {
                os[j * rows + i] += xs[i * cols + j];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::gradcheck;
    use crate::ops::test_support::standard_normal;
    use crate::ParamStore;
    use loopgrad_tensor::Tensor;
    use proptest::prelude::*;

    #[test]
    fn swaps_the_last_two_axes() {
        let mut tape = Tape::<f32>::new(ParamStore::new());
        let x = tape.constant(Tensor::<f32>::arange(12).reshape([2, 2, 3]));
        let y = tape.transpose(x);
        assert_eq!(tape.value(y).dims(), &[2, 3, 2]);
        assert_eq!(tape.value(y).data(), &[0.0, 3.0, 1.0, 4.0, 2.0, 5.0, 6.0, 9.0, 7.0, 10.0, 8.0, 11.0]);
        let z = tape.transpose(y);
        assert_eq!(tape.value(z), tape.value(x));
    }

    #[test]
    #[should_panic(expected = "transpose: shape [4] has fewer than 2 axes")]
    fn rank_one_is_rejected_with_its_shape() {
        let mut tape = Tape::<f32>::new(ParamStore::new());
        let x = tape.constant(Tensor::zeros([4]));
        tape.transpose(x);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::gradcheck::proptest_cases()))]

        #[test]
        fn gradients_match_finite_differences(
            batch in 1usize..4, m in 1usize..9, n in 1usize..10, seed in 0u64..1000
        ) {
            let x = standard_normal(&[batch, m, n], seed);
            gradcheck("transpose", std::slice::from_ref(&x), |t, v| t.transpose(v[0])).unwrap();
            // x used directly and through a transpose: the second gradient write is the accumulating one.
            gradcheck("transpose(fan-out)", &[x], |t, v| {
                let y = t.transpose(v[0]);
                let back = t.transpose(y);
                t.mul(back, v[0])
            }).unwrap();
        }
    }
}
