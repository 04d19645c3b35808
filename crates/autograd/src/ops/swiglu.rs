//! Fused SwiGLU on TRM/HRM's fused gate-up projection: gate_up [.., 2I] = [g | u] (gate first, as in
//! `gate, up = self.gate_up_proj(x).chunk(2, dim=-1)`) -> h = silu(g) * u [.., I].
//!
//! With s = sigmoid(g) and silu(g) = g s:
//!
//! ```text
//! f:  h = g s(g) u
//! f': dg = dh u s(g) (1 + g (1 - s(g))),   du = dh silu(g)
//! ```
//!
//! (silu'(g) = s + g s (1 - s)). **Reuses:** the input gate_up only; s(g) is recomputed in backward, which
//! costs one exp per element and saves an [.., I] buffer per recorded call. Both directions are one fused SIMD
//! pass over the rows (`kernels::swiglu_rows`, `kernels::swiglu_rows_grad`), split across threads by rows.
//! Their specification is [`reference`] below: f and f' as plain loops, which the kernels are tested against
//! here.
//!
//! `linear_swiglu` is the projection and the SwiGLU together. Recorded, it is the two ops (backward needs
//! gate_up); untaped (TRM's T - 1 no-grad recursions, and evaluation) it is one pass, `gemm_swiglu` (or
//! `gemm_swiglu_packed`, when the weight is a parameter's `PackedWeight`), that gates each register tile of the
//! product and never stores the [.., 2I] tensor. The bits are the same either way.
//! With the tape in bf16 the untaped path is `Precision::Bf16.gemm_swiglu`: fused on AMX tiles (K up to 512),
//! elsewhere the bf16 product followed by the gate; again the recorded path's bits.

use super::matmul::with_last;
use super::store_for;
use crate::op::Op;
use crate::tape::{Ctx, Tape, Var};
use loopgrad_tensor::{kernels, Float, MatRef, Tensor};

impl<E: Float> Tape<E> {
    /// SwiGLU on a fused projection: gate_up [.., 2I] = [g, u] (gate first) -> silu(g) * u [.., I].
    pub fn swiglu(&mut self, gate_up: Var) -> Var {
        let x = self.value(gate_up);
        let shape = x.shape();
        let inner = shape.last() / 2;
        assert!(
            shape.rank() >= 1 && inner > 0 && 2 * inner == shape.last(),
            "swiglu: gate_up has shape {shape}, expected [.., 2I] with I > 0"
        );
        let mut out_dims = [0; loopgrad_tensor::shape::MAX_RANK];
        out_dims[..shape.rank()].copy_from_slice(shape.dims());
        out_dims[shape.rank() - 1] = inner;
        let mut out = Tensor::uninit(&out_dims[..shape.rank()]);
        kernels::swiglu_rows(x.data(), inner, out.data_mut());
        self.push_op(Op::SwiGlu, &[gate_up], out, [], &[])
    }
}

impl<E: Float> Tape<E> {
    /// swiglu(x W^T) for a bias-free gate/up projection: x [.., in], W [2I, in] (gate rows first) -> [.., I].
    /// Recorded: [`Tape::linear`] then [`Tape::swiglu`]. Untaped: one fused pass (see the module doc).
    pub fn linear_swiglu(&mut self, x: Var, w: Var) -> Var {
        if self.should_record(&[x, w]) {
            let gate_up = self.linear(x, w, None);
            return self.swiglu(gate_up);
        }
        let (xt, wt) = (self.value(x), self.value(w));
        let (xs, ws) = (xt.shape(), wt.shape());
        assert!(
            ws.rank() == 2 && ws.dim(0) > 0 && ws.dim(0) % 2 == 0 && xs.rank() >= 1 && xs.last() == ws.dim(1),
            "linear_swiglu: input of shape {xs} does not fit a gate/up weight of shape {ws} ([2I, in])"
        );
        let (rows, n_in, inner) = (xs.rows(), ws.dim(1), ws.dim(0) / 2);
        let mut h = Tensor::uninit(with_last(xs, inner));
        let w_t = MatRef::new(wt.data(), 2 * inner, n_in).t();
        // A parameter's packed forms (packed once per update) serve where the kernel reads them: f32, the gate/up
        // pair form; bf16, its bf16 form when the product is not fused.
        let (xm, precision) = (MatRef::new(xt.data(), rows, n_in), self.precision());
        match self.packed_weight(w) {
            Some(packed) => precision.gemm_swiglu_packed(xm, packed.as_mat().t(), h.data_mut()),
            None => precision.gemm_swiglu(xm, w_t, h.data_mut()),
        }
        // Untaped: there is nothing to record, so the result is a plain value.
        self.constant(h)
    }
}

pub(crate) fn backward<E: Float>(ctx: &mut Ctx<'_, E>) {
    let (gout, x) = (ctx.gout, ctx.input(0));
    let inner = gout.shape().last();
    let Some((dx, beta)) = ctx.grad_beta(0) else { return };
    kernels::swiglu_rows_grad(x.data(), gout.data(), inner, dx, store_for(beta));
}

/// The specification of the fused kernels above, as plain loops over rows: what `kernels::swiglu_rows` and
/// `kernels::swiglu_rows_grad` compute (with SIMD `exp`, split across threads by rows), written as the module
/// doc's f and f' read. The tests below hold the kernels to them. Written for clarity, not speed: nothing but
/// tests and benches should call them.
pub mod reference {
    use loopgrad_tensor::kernels::{sigmoid_scalar, silu_grad_scalar};
    use loopgrad_tensor::Float;

    /// `out[r, :] = silu(g) * u` for each row `gate_up[r, :] = [g (inner), u (inner)]`.
    pub fn swiglu_rows<E: Float>(gate_up: &[E], inner: usize, out: &mut [E]) {
        assert!(
            inner > 0 && gate_up.len().is_multiple_of(2 * inner) && out.len() * 2 == gate_up.len(),
            "swiglu_rows: {} inputs and {} outputs are not rows of 2 x {inner} and {inner}",
            gate_up.len(),
            out.len()
        );
        for (orow, row) in out.chunks_exact_mut(inner).zip(gate_up.chunks_exact(2 * inner)) {
            let (g, u) = row.split_at(inner);
            for j in 0..inner {
                orow[j] = g[j] * sigmoid_scalar(g[j]) * u[j];
            }
        }
    }

    /// The gradient, accumulated: `d_gate_up[r, :] += [dh u silu'(g), dh silu(g)]` with
    /// silu'(g) = s (1 + g (1 - s)), s = sigmoid(g).
    pub fn swiglu_rows_grad_add<E: Float>(gate_up: &[E], d_out: &[E], inner: usize, d_gate_up: &mut [E]) {
        assert!(
            inner > 0 && gate_up.len().is_multiple_of(2 * inner) && d_out.len() * 2 == gate_up.len(),
            "swiglu_rows_grad_add: {} inputs and {} output gradients are not rows of 2 x {inner} and {inner}",
            gate_up.len(),
            d_out.len()
        );
        assert_eq!(d_gate_up.len(), gate_up.len(), "swiglu_rows_grad_add: the gradient's length");
        let rows =
            gate_up.chunks_exact(2 * inner).zip(d_out.chunks_exact(inner)).zip(d_gate_up.chunks_exact_mut(2 * inner));
        for ((row, dh), drow) in rows {
            let (g, u) = row.split_at(inner);
            let (dg, du) = drow.split_at_mut(inner);
            for j in 0..inner {
                dg[j] += dh[j] * u[j] * silu_grad_scalar(g[j]);
                du[j] += dh[j] * g[j] * sigmoid_scalar(g[j]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::gradcheck;
    use crate::ops::test_support::{cast, normal};
    use crate::ParamStore;
    use loopgrad_tensor::compare::{assert_close, assert_ulps};
    use loopgrad_tensor::kernels::Store;
    use proptest::prelude::*;

    #[test]
    fn forward_values() {
        // g = [0, 1], u = [5, 3]: silu(0) = 0, silu(1) = 1 / (1 + e^-1).
        let mut tape = Tape::<f64>::new(ParamStore::new());
        let x = tape.constant(Tensor::from_vec(vec![0.0, 1.0, 5.0, 3.0], [1, 1, 4]));
        let h = tape.swiglu(x);
        assert_eq!(tape.value(h).dims(), &[1, 1, 2]);
        let want = [0.0, 3.0 / (1.0 + (-1f64).exp())];
        for (got, want) in tape.value(h).data().iter().zip(want) {
            assert!((got - want).abs() < 1e-15, "{got} vs {want}");
        }
    }

    #[test]
    fn f32_matches_f64_and_no_grad_matches_recorded() {
        let x = normal(&[3, 5, 2 * 19], 2.0, 5);
        let mut tape = Tape::<f64>::new(ParamStore::new());
        let xv = tape.leaf(x.clone());
        let y = tape.swiglu(xv);
        assert_eq!(tape.num_nodes(), 1);
        let recorded = tape.value(y).clone();
        let y_free = tape.no_grad(|t| t.swiglu(xv));
        assert_eq!(tape.num_nodes(), 1, "no_grad recorded a node");
        assert_eq!(&recorded, tape.value(y_free));
        // A scalar loop written from the definition.
        for (r, row) in x.data().chunks(38).enumerate() {
            for i in 0..19 {
                let want = row[i] / (1.0 + (-row[i]).exp()) * row[19 + i];
                assert!((recorded.data()[r * 19 + i] - want).abs() < 1e-12);
            }
        }

        let mut t32 = Tape::<f32>::new(ParamStore::new());
        let x32 = t32.constant(x.cast());
        let y32 = t32.swiglu(x32);
        for (a, b) in t32.value(y32).data().iter().zip(recorded.data()) {
            assert!((a.to_f64() - b).abs() < 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }

    #[test]
    fn linear_swiglu_untaped_has_the_bits_of_linear_then_swiglu() {
        // x [2, 37, 40] W [2 x 50, 40]: above the fused kernel's thread split, with edge tiles in rows and columns.
        let (x, w) = (normal(&[2, 37, 40], 1.0, 1).cast::<f32>(), normal(&[100, 40], 0.3, 2).cast::<f32>());
        let mut tape = Tape::<f32>::new(ParamStore::new());
        let (xv, wv) = (tape.leaf(x), tape.leaf(w));
        let recorded = tape.linear_swiglu(xv, wv);
        assert_eq!(tape.num_nodes(), 2, "recorded: linear and swiglu");
        let fused = tape.no_grad(|t| t.linear_swiglu(xv, wv));
        assert_eq!(tape.num_nodes(), 2, "untaped: no node");
        assert_eq!(tape.value(fused).dims(), &[2, 37, 50]);
        let bits = |v: Var, t: &Tape<f32>| t.value(v).data().iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(fused, &tape), bits(recorded, &tape));
    }

    #[test]
    #[should_panic(expected = "linear_swiglu: input of shape [3, 8] does not fit a gate/up weight of shape [5, 8]")]
    fn linear_swiglu_names_both_shapes() {
        let mut tape = Tape::<f32>::new(ParamStore::new());
        let (x, w) = (tape.constant(Tensor::zeros([3, 8])), tape.constant(Tensor::zeros([5, 8])));
        tape.linear_swiglu(x, w);
    }

    #[test]
    #[should_panic(expected = "swiglu: gate_up has shape [2, 7], expected [.., 2I]")]
    fn odd_width_names_the_shape() {
        let mut tape = Tape::<f32>::new(ParamStore::new());
        let x = tape.constant(Tensor::zeros([2, 7]));
        tape.swiglu(x);
    }

    /// The kernels against [`reference`] on [rows, 2 inner] gate/up rows: the forward within 5 ulp, the gradient
    /// (accumulated, and written) within 8 ulp of the magnitudes that went into each element (E::EPSILON = one
    /// ulp at 1.0; silu' cancels near g = -1.28, so a relative bound would be meaningless there).
    fn kernels_match_the_reference<E: Float>(inner: usize, gate_up: &[f64], d_out: &[f64], acc0: &[f64]) {
        let (gu, d, acc): (Vec<E>, Vec<E>, Vec<E>) = (cast(gate_up), cast(d_out), cast(acc0));
        let (mut got, mut want) = (vec![E::ZERO; gu.len() / 2], vec![E::ZERO; gu.len() / 2]);
        kernels::swiglu_rows(&gu, inner, &mut got);
        reference::swiglu_rows(&gu, inner, &mut want);
        assert_ulps("swiglu_rows", &got, &want, 5.0);
        let (mut g, mut w) = (acc.clone(), acc.clone());
        kernels::swiglu_rows_grad(&gu, &d, inner, &mut g, Store::Add);
        reference::swiglu_rows_grad_add(&gu, &d, inner, &mut w);
        // |d| (|u| + |g|) (1 + |g|) bounds both halves' magnitudes (silu' <= 1.1 (1 + |g|), silu(g) <= |g|).
        let scale: Vec<f64> = (0..gu.len())
            .map(|i| {
                let (row, j) = (i / (2 * inner), i % (2 * inner) % inner);
                let (gv, uv) = (gate_up[row * 2 * inner + j], gate_up[row * 2 * inner + inner + j]);
                acc0[i].abs() + 1.2 * d_out[row * inner + j].abs() * (uv.abs() + gv.abs()) * (1.0 + gv.abs())
            })
            .collect();
        assert_close("swiglu_rows_grad (add)", &g, &w, &scale, 8.0);
        let (mut g, mut w) = (acc.clone(), vec![E::ZERO; gu.len()]);
        kernels::swiglu_rows_grad(&gu, &d, inner, &mut g, Store::Write);
        reference::swiglu_rows_grad_add(&gu, &d, inner, &mut w);
        assert_close("swiglu_rows_grad (write)", &g, &w, &scale, 8.0);
    }

    /// [rows, 2 inner] gate/up rows in [-6, 6), a [rows, inner] output gradient and a [rows, 2 inner]
    /// accumulator in [-3, 3).
    fn rows() -> impl Strategy<Value = (usize, Vec<f64>, Vec<f64>, Vec<f64>)> {
        (1usize..40, 1usize..6).prop_flat_map(|(i, r)| {
            let values = |n: usize, lim: f64| prop::collection::vec(-lim..lim, n);
            (Just(i), values(2 * i * r, 6.0), values(i * r, 3.0), values(2 * i * r, 3.0))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::gradcheck::proptest_cases()))]

        #[test]
        fn gradients_match_finite_differences(rows in 1usize..5, inner in 1usize..12, seed in 0u64..1000) {
            let x = normal(&[rows, 2 * inner], 2.0, seed);
            gradcheck("swiglu", &[x], |t, v| t.swiglu(v[0])).unwrap();
        }

        #[test]
        fn linear_swiglu_gradients_match_finite_differences(
            rows in 1usize..5, n_in in 1usize..6, inner in 1usize..6, seed in 0u64..1000,
        ) {
            let (x, w) = (normal(&[rows, n_in], 1.0, seed), normal(&[2 * inner, n_in], 1.0, seed + 1));
            gradcheck("linear_swiglu", &[x, w], |t, v| t.linear_swiglu(v[0], v[1])).unwrap();
        }

        #[test]
        fn kernels_match_the_reference_in_f32_and_f64((inner, gu, d, acc) in rows()) {
            kernels_match_the_reference::<f32>(inner, &gu, &d, &acc);
            kernels_match_the_reference::<f64>(inner, &gu, &d, &acc);
        }
    }
}
