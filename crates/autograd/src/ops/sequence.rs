//! Concatenation and slicing on the sequence axis (axis 1 of [B, L, D]): the puzzle-embedding prefix is
//! concatenated in front of the token embeddings, and the logits drop it again.
//!
//! | op | forward | backward |
//! |---|---|---|
//! | concat_seq | `y[b] = [a[b]; c[b]]` (La then Lc positions) | `da[b] += dy[b, :La]`, `dc[b] += dy[b, La:]` (split) |
//! | slice_seq | `y[b] = x[b, s..s+n]` | `dx[b, s..s+n] += dy[b]`, zero elsewhere (pad) |
//!
//! Nothing is saved; the split points come from the input shapes and the slice's start from its metadata.

use crate::op::Op;
use crate::tape::{Ctx, Tape, Var};
use loopgrad_tensor::{kernels, Float, Shape, Tensor};

#[derive(Clone, Copy, Debug)]
pub struct SliceMeta {
    pub start: usize,
}

impl<E: Float> Tape<E> {
    /// Concatenation on the sequence axis: a [B, La, D], b [B, Lb, D] -> [B, La + Lb, D].
    pub fn concat_seq(&mut self, a: Var, b: Var) -> Var {
        let (at, bt) = (self.value(a), self.value(b));
        let (sa, sb) = (at.shape(), bt.shape());
        assert!(
            sa.rank() == 3 && sb.rank() == 3 && sa.dim(0) == sb.dim(0) && sa.dim(2) == sb.dim(2),
            "concat_seq: cannot concatenate {sa} and {sb} on axis 1 (expected [B, La, D] and [B, Lb, D])"
        );
        let (batch, la, lb, d) = (sa.dim(0), sa.dim(1), sb.dim(1), sa.dim(2));
        let mut out = Tensor::uninit([batch, la + lb, d]);
        let (na, nb) = (la * d, lb * d);
        for i in 0..batch {
            let o = &mut out.data_mut()[i * (na + nb)..(i + 1) * (na + nb)];
            o[..na].copy_from_slice(&at.data()[i * na..(i + 1) * na]);
            o[na..].copy_from_slice(&bt.data()[i * nb..(i + 1) * nb]);
        }
        self.push_op(Op::Concat, &[a, b], out, [], &[])
    }

    /// Positions start..start+len on the sequence axis: x [B, L, D] -> [B, len, D].
    pub fn slice_seq(&mut self, x: Var, start: usize, len: usize) -> Var {
        let xt = self.value(x);
        let s = xt.shape();
        assert!(
            s.rank() == 3 && start + len <= s.dim(1),
            "slice_seq: positions {start}..{} do not fit on axis 1 of {s} (expected [B, L, D])",
            start + len
        );
        let (batch, l, d) = (s.dim(0), s.dim(1), s.dim(2));
        let mut out = Tensor::uninit(Shape::new(&[batch, len, d]));
        for i in 0..batch {
            let src = &xt.data()[(i * l + start) * d..(i * l + start + len) * d];
            out.data_mut()[i * len * d..(i + 1) * len * d].copy_from_slice(src);
        }
        self.push_op(Op::Slice(SliceMeta { start }), &[x], out, [], &[])
    }
}

/// dst = src when beta is 0 (a fresh buffer), dst += src otherwise.
fn store<E: Float>(dst: &mut [E], src: &[E], beta: E) {
    if beta == E::ZERO {
        dst.copy_from_slice(src);
    } else {
        kernels::add_assign(dst, src);
    }
}

pub(crate) fn backward_concat<E: Float>(ctx: &mut Ctx<'_, E>) {
    let (g, a, b) = (ctx.gout.data(), ctx.input(0).shape(), ctx.input(1).shape());
    let (batch, na, nb) = (a.dim(0), a.dim(1) * a.dim(2), b.dim(1) * b.dim(2));
    if let Some((da, beta)) = ctx.grad_beta(0) {
        for i in 0..batch {
            store(&mut da[i * na..(i + 1) * na], &g[i * (na + nb)..i * (na + nb) + na], beta);
        }
    }
    if let Some((db, beta)) = ctx.grad_beta(1) {
        for i in 0..batch {
            store(&mut db[i * nb..(i + 1) * nb], &g[i * (na + nb) + na..(i + 1) * (na + nb)], beta);
        }
    }
}

pub(crate) fn backward_slice<E: Float>(m: &SliceMeta, ctx: &mut Ctx<'_, E>) {
    let (g, s) = (ctx.gout, ctx.input(0).shape());
    let (batch, l, d) = (s.dim(0), s.dim(1), s.dim(2));
    let len = g.shape().dim(1);
    let Some(dx) = ctx.grad(0) else { return };
    for i in 0..batch {
        let dst = &mut dx[(i * l + m.start) * d..(i * l + m.start + len) * d];
        kernels::add_assign(dst, &g.data()[i * len * d..(i + 1) * len * d]);
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
    fn slice_undoes_concat() {
        let mut tape = Tape::<f32>::new(ParamStore::new());
        let a = tape.constant(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], [2, 1, 2]));
        let b = tape.constant(Tensor::from_vec(vec![5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0], [2, 2, 2]));
        let c = tape.concat_seq(a, b);
        assert_eq!(tape.value(c).data(), &[1.0, 2.0, 5.0, 6.0, 7.0, 8.0, 3.0, 4.0, 9.0, 10.0, 11.0, 12.0]);
        let front = tape.slice_seq(c, 0, 1);
        let back = tape.slice_seq(c, 1, 2);
        assert_eq!(tape.value(front), tape.value(a));
        assert_eq!(tape.value(back), tape.value(b));
    }

    #[test]
    fn slice_gradient_is_zero_outside_the_slice() {
        let mut tape = Tape::<f64>::new(ParamStore::new());
        let x = tape.leaf(Tensor::zeros([1, 3, 1]));
        let y = tape.slice_seq(x, 1, 1);
        tape.backward_with(&mut [(y, Tensor::full([1, 1, 1], 5.0))]);
        assert_eq!(tape.grad(x).unwrap().data(), &[0.0, 5.0, 0.0]);
    }

    #[test]
    #[should_panic(expected = "concat_seq: cannot concatenate [2, 1, 3] and [2, 2, 4] on axis 1")]
    fn concat_mismatch_names_both_shapes() {
        let mut tape = Tape::<f32>::new(ParamStore::new());
        let a = tape.constant(Tensor::zeros([2, 1, 3]));
        let b = tape.constant(Tensor::zeros([2, 2, 4]));
        tape.concat_seq(a, b);
    }

    #[test]
    #[should_panic(expected = "slice_seq: positions 2..5 do not fit on axis 1 of [1, 4, 2]")]
    fn slice_out_of_range_names_the_range_and_shape() {
        let mut tape = Tape::<f32>::new(ParamStore::new());
        let x = tape.constant(Tensor::zeros([1, 4, 2]));
        tape.slice_seq(x, 2, 3);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::gradcheck::proptest_cases()))]

        #[test]
        fn gradients_match_finite_differences(
            batch in 1usize..4, la in 1usize..5, lb in 1usize..8, d in 1usize..10, seed in 0u64..1000
        ) {
            let (a, b) = (standard_normal(&[batch, la, d], seed), standard_normal(&[batch, lb, d], seed + 1));
            gradcheck("concat_seq", &[a.clone(), b.clone()], |t, x| t.concat_seq(x[0], x[1])).unwrap();
            let start = (seed as usize) % lb;
            let len = 1 + (seed as usize / 7) % (lb - start);
            gradcheck("slice_seq", std::slice::from_ref(&b), |t, x| t.slice_seq(x[0], start, len)).unwrap();
            // Both halves of a concat feeding back into one input: the fresh-buffer copy, then an add.
            gradcheck("concat_seq(x, x)", &[a], |t, x| {
                let c = t.concat_seq(x[0], x[0]);
                t.slice_seq(c, la / 2, la)
            }).unwrap();
        }
    }
}
