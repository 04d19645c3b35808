//! Matrix products, each one GEMM (or one per batch entry): `linear`, the layer product with PyTorch's
//! [out, in] weight layout, and batched `matmul`.
//!
//! | op | forward | backward |
//! |---|---|---|
//! | linear | Y = X W^T + b; X [R, in] (all leading axes flattened into R rows), W [out, in], b `[out]` | dX += dY W, dW += dY^T X, `db[j] += sum_r dY[r, j]` |
//! | matmul | C_i = A_i B_i; A_i [m, k], B_i [k, n] | dA_i += dC_i B_i^T, dB_i += A_i^T dC_i |
//! | matmul, `trans_b` | C_i = A_i B_i^T; B_i [n, k] | dA_i += dC_i B_i, dB_i += dC_i^T A_i |
//!
//! Transposed operands are stride swaps (no copy). Parameter gradients are written by GEMM with beta = 1
//! straight into their persistent buffers; a fresh input gradient is written with beta = 0 (no zero-fill).
//! Nothing is saved: X, W and b are the node's inputs, which the tape keeps anyway.
//!
//! Every product runs in the tape's [`Precision`]: with bf16, the operands of the forward and backward products
//! are rounded to bf16 and summed in f32 ([`Precision::gemm`]), as the TRM reference's autocast forward does. A
//! parameter's W comes packed from its [`PackedWeight`] ([`weight_product`]), in the form of the tape's precision.
//!
//! A 2-D `b` with a batched `a` is broadcast over the batch: then the batch is flattened into rows, as in
//! `linear`, and every product is again a single GEMM.

use crate::op::Op;
use crate::params::Param;
use crate::tape::{Ctx, Tape, Var};
use loopgrad_tensor::{
    kernels, BatchMut, BatchRef, Float, MatMut, MatRef, PackedRef, PackedWeight, Precision, Shape, Tensor,
};

#[derive(Clone, Copy, Debug)]
pub struct MatMulMeta {
    pub trans_b: bool,
}

#[derive(Clone, Copy, Debug)]
pub struct LinearMeta {
    pub bias: bool,
}

impl<E: Float> Tape<E> {
    /// `v`'s value as a [`PackedWeight`], if it is a parameter.
    pub(crate) fn packed_weight(&self, v: Var) -> Option<&PackedWeight<E>> {
        match v {
            Var::Param(p) => Some(self.params.packed_weight(Param(p))),
            Var::Value(_) => None,
        }
    }

    /// y = x W^T (+ b): x `[.., in]`, w `[out, in]` (PyTorch layout), b `[out]` -> `[.., out]`.
    pub fn linear(&mut self, x: Var, w: Var, b: Option<Var>) -> Var {
        let (xt, wt) = (self.value(x), self.value(w));
        let (xs, ws) = (xt.shape(), wt.shape());
        assert!(
            ws.rank() == 2 && xs.rank() >= 1 && xs.last() == ws.dim(1),
            "linear: input of shape {xs} does not fit a weight of shape {ws} ([out, in])"
        );
        let (rows, n_in, n_out) = (xs.rows(), ws.dim(1), ws.dim(0));
        let mut y = Tensor::uninit(with_last(xs, n_out));
        let xm = MatRef::new(xt.data(), rows, n_in);
        let wm = MatRef::new(wt.data(), n_out, n_in).t();
        let packed = self.packed_weight(w).map(|p| p.as_mat().t());
        weight_product(self.precision(), xm, wm, packed, E::ZERO, MatMut::new(y.data_mut(), rows, n_out));
        match b {
            None => self.push_op(Op::Linear(LinearMeta { bias: false }), &[x, w], y, [], &[]),
            Some(b) => {
                let bt = self.value(b);
                assert!(
                    bt.shape().rank() == 1 && bt.numel() == n_out,
                    "linear: bias of shape {} does not fit a weight of shape {ws}",
                    bt.shape()
                );
                for row in y.data_mut().chunks_exact_mut(n_out) {
                    kernels::add_assign(row, bt.data());
                }
                self.push_op(Op::Linear(LinearMeta { bias: true }), &[x, w, b], y, [], &[])
            }
        }
    }

    /// Batched product over equal leading axes: a [.., m, k] times b [.., k, n] (or b [.., n, k] when
    /// `trans_b`) -> [.., m, n]. A 2-D `b` is broadcast over a's leading axes.
    pub fn matmul(&mut self, a: Var, b: Var, trans_b: bool) -> Var {
        let (at, bt) = (self.value(a), self.value(b));
        let g = Geometry::new(at.shape(), bt.shape(), trans_b);
        let mut c = Tensor::uninit(with_last(at.shape(), g.n));
        let (m, k, n, prec) = (g.m, g.k, g.n, self.precision());
        if g.broadcast_b {
            let bm = g.b_as_kn(bt.data());
            let am = MatRef::new(at.data(), g.batch * m, k);
            prec.gemm(E::ONE, am, bm, E::ZERO, MatMut::new(c.data_mut(), g.batch * m, n));
        } else {
            let (am, bm) = (g.a_batch(at.data()), g.b_batch(bt.data()));
            prec.gemm_batched(E::ONE, am, bm, E::ZERO, BatchMut::new(c.data_mut(), g.batch, m, n));
        }
        self.push_op(Op::MatMul(MatMulMeta { trans_b }), &[a, b], c, [], &[])
    }
}

/// The sizes of a (possibly batched) product, checked once.
struct Geometry {
    batch: usize,
    m: usize,
    k: usize,
    n: usize,
    trans_b: bool,
    broadcast_b: bool,
}

impl Geometry {
    fn new(a: Shape, b: Shape, trans_b: bool) -> Self {
        let fail = || -> ! { panic!("matmul: cannot multiply {a} by {b} (trans_b = {trans_b})") };
        if a.rank() < 2 || b.rank() < 2 {
            fail();
        }
        let (m, k) = (a.dim(-2), a.dim(-1));
        let (bk, n) = if trans_b { (b.dim(-1), b.dim(-2)) } else { (b.dim(-2), b.dim(-1)) };
        let broadcast_b = b.rank() == 2;
        let leading_ok = broadcast_b || a.dims()[..a.rank() - 2] == b.dims()[..b.rank() - 2];
        if bk != k || !leading_ok {
            fail();
        }
        let batch = a.dims()[..a.rank() - 2].iter().product();
        Geometry { batch, m, k, n, trans_b, broadcast_b }
    }

    /// A batched a as its batch x [m, k] views.
    fn a_batch<'a, E: Float>(&self, a: &'a [E]) -> BatchRef<'a, E> {
        BatchRef::new(a, self.batch, self.m, self.k)
    }

    /// A batched b as batch x [k, n] views (a stride swap when it is stored [n, k]).
    fn b_batch<'a, E: Float>(&self, b: &'a [E]) -> BatchRef<'a, E> {
        if self.trans_b {
            BatchRef::new(b, self.batch, self.n, self.k).t()
        } else {
            BatchRef::new(b, self.batch, self.k, self.n)
        }
    }

    /// The product (or its gradient) as batch x [m, n] views.
    fn c_batch<'a, E: Float>(&self, c: &'a [E]) -> BatchRef<'a, E> {
        BatchRef::new(c, self.batch, self.m, self.n)
    }

    /// A broadcast b seen as the [k, n] right operand (a stride swap when it is stored [n, k]).
    fn b_as_kn<'a, E: Float>(&self, b: &'a [E]) -> MatRef<'a, E> {
        if self.trans_b {
            MatRef::new(b, self.n, self.k).t()
        } else {
            MatRef::new(b, self.k, self.n)
        }
    }
}

/// C = A B + beta C in `precision`, B being a weight: `packed` is B itself as a parameter's [`PackedWeight`]
/// when it is one, whose packed form for `precision` the product uses ([`Precision::gemm_packed`], the same bits
/// as [`Precision::gemm`]).
fn weight_product<E: Float>(
    precision: Precision,
    a: MatRef<'_, E>,
    b: MatRef<'_, E>,
    packed: Option<PackedRef<'_, E>>,
    beta: E,
    c: MatMut<'_, E>,
) {
    match packed {
        Some(packed) => precision.gemm_packed(E::ONE, a, packed, beta, c),
        None => precision.gemm(E::ONE, a, b, beta, c),
    }
}

/// `s` with its last axis replaced by `n`.
pub(crate) fn with_last(s: Shape, n: usize) -> Shape {
    let mut dims = [0; loopgrad_tensor::shape::MAX_RANK];
    let r = s.rank();
    dims[..r].copy_from_slice(s.dims());
    dims[r - 1] = n;
    Shape::new(&dims[..r])
}

pub(crate) fn backward_linear<E: Float>(m: &LinearMeta, ctx: &mut Ctx<'_, E>) {
    let (g, x, w) = (ctx.gout, ctx.input(0), ctx.input(1));
    let (n_out, n_in) = (w.dims()[0], w.dims()[1]);
    let rows = x.shape().rows();
    let gm = MatRef::new(g.data(), rows, n_out);
    let (packed, prec) = (ctx.packed_weight(1).map(|p| p.as_mat()), ctx.precision);
    if let Some((dx, beta)) = ctx.grad_beta(0) {
        let (wm, dxm) = (MatRef::new(w.data(), n_out, n_in), MatMut::new(dx, rows, n_in));
        weight_product(prec, gm, wm, packed, beta, dxm);
    }
    if let Some((dw, beta)) = ctx.grad_beta(1) {
        prec.gemm(E::ONE, gm.t(), MatRef::new(x.data(), rows, n_in), beta, MatMut::new(dw, n_out, n_in));
    }
    if m.bias {
        if let Some(db) = ctx.grad(2) {
            kernels::col_sum_add(g.data(), db);
        }
    }
}

pub(crate) fn backward_matmul<E: Float>(meta: &MatMulMeta, ctx: &mut Ctx<'_, E>) {
    let (dc, a, b) = (ctx.gout.data(), ctx.input(0), ctx.input(1));
    let g = Geometry::new(a.shape(), b.shape(), meta.trans_b);
    let (batch, m, k, n, tb, prec) = (g.batch, g.m, g.k, g.n, meta.trans_b, ctx.precision);
    if g.broadcast_b {
        let rows = batch * m;
        let (am, dcm) = (MatRef::new(a.data(), rows, k), MatRef::new(dc, rows, n));
        if let Some((da, beta)) = ctx.grad_beta(0) {
            // dA = dC B^T, B^T being [n, k].
            prec.gemm(E::ONE, dcm, g.b_as_kn(b.data()).t(), beta, MatMut::new(da, rows, k));
        }
        if let Some((db, beta)) = ctx.grad_beta(1) {
            if tb {
                prec.gemm(E::ONE, dcm.t(), am, beta, MatMut::new(db, n, k));
            } else {
                prec.gemm(E::ONE, am.t(), dcm, beta, MatMut::new(db, k, n));
            }
        }
        return;
    }
    let (am, bm, dcm) = (g.a_batch(a.data()), g.b_batch(b.data()), g.c_batch(dc));
    if let Some((da, beta)) = ctx.grad_beta(0) {
        // dA = dC B^T: [m, n] x [n, k], B^T being a stride swap.
        prec.gemm_batched(E::ONE, dcm, bm.t(), beta, BatchMut::new(da, batch, m, k));
    }
    if let Some((db, beta)) = ctx.grad_beta(1) {
        if tb {
            // B is stored [n, k]: dB = dC^T A, [n, m] x [m, k].
            prec.gemm_batched(E::ONE, dcm.t(), am, beta, BatchMut::new(db, batch, n, k));
        } else {
            // dB = A^T dC, [k, m] x [m, n].
            prec.gemm_batched(E::ONE, am.t(), dcm, beta, BatchMut::new(db, batch, k, n));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{gradcheck, gradcheck_bf16, GradCheck};
    use crate::ops::test_support::standard_normal;
    use crate::ParamStore;
    use loopgrad_tensor::gemm;
    use proptest::prelude::*;

    #[test]
    fn linear_forward_matches_pytorch_layout() {
        let mut tape = Tape::<f32>::new(ParamStore::new());
        let x = tape.constant(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3]));
        let w = tape.constant(Tensor::from_vec(vec![1.0, 0.0, 0.0, 0.0, 1.0, -1.0], [2, 3]));
        let b = tape.constant(Tensor::from_vec(vec![10.0, 20.0], [2]));
        let y = tape.linear(x, w, Some(b));
        assert_eq!(tape.value(y).dims(), &[2, 2]);
        assert_eq!(tape.value(y).data(), &[11.0, 19.0, 14.0, 19.0]);
    }

    #[test]
    fn matmul_trans_b_equals_matmul_of_the_transpose() {
        let mut tape = Tape::<f64>::new(ParamStore::new());
        let a = tape.constant(standard_normal(&[3, 2, 4], 1));
        let bt = standard_normal(&[3, 5, 4], 2);
        let b = tape.constant(bt.transpose_last2());
        let b_t = tape.constant(bt);
        let c1 = tape.matmul(a, b, false);
        let c2 = tape.matmul(a, b_t, true);
        assert_eq!(tape.value(c1).dims(), &[3, 2, 5]);
        assert_eq!(tape.value(c1), tape.value(c2));
    }

    #[test]
    fn broadcast_b_equals_per_batch_products() {
        let mut tape = Tape::<f64>::new(ParamStore::new());
        let at = standard_normal(&[2, 3, 4], 3);
        let bt = standard_normal(&[4, 5], 4);
        let a = tape.constant(at.clone());
        let b = tape.constant(bt.clone());
        let c = tape.matmul(a, b, false);
        for i in 0..2 {
            let ai = tape.constant(Tensor::from_slice(&at.data()[i * 12..(i + 1) * 12], [3, 4]));
            let ci = tape.matmul(ai, b, false);
            assert_eq!(&tape.value(c).data()[i * 15..(i + 1) * 15], tape.value(ci).data());
        }
    }

    /// A parameter's packed forms (x W^T, dY W, the untaped SwiGLU's pairs) follow its value: after an update
    /// as an optimizer makes it (`value_and_grad_mut`, W -= lr dW from the last backward), a write through
    /// `value_mut`, and a swap of the whole tensor as EMA's evaluation does, the three products equal plain GEMMs
    /// of the new values (f32, so that on an AVX-512 CPU the packed path runs; K = 300 spans two rounding blocks,
    /// and on two threads x W^T and dY W split by columns, so a block starts past column 0 of the packed form).
    #[test]
    fn a_changed_parameter_is_repacked() {
        let (rows, n_in, n_out) = (40, 300, 96);
        let mut params = ParamStore::new();
        let w = params.add("w", standard_normal(&[n_out, n_in], 1).cast::<f32>());
        let mut tape = Tape::new(params);
        let (xt, gt) = (standard_normal(&[rows, n_in], 2).cast::<f32>(), standard_normal(&[rows, n_out], 3).cast());
        let product = |a: MatRef<'_, f32>, b: MatRef<'_, f32>| {
            let mut c = vec![0.0f32; a.rows * b.cols];
            gemm(1.0, a, b, 0.0, MatMut::new(&mut c, a.rows, b.cols));
            c
        };
        let same = |got: &[f32], want: &[f32], what: &str| {
            let first = got.iter().zip(want).position(|(g, w)| g.to_bits() != w.to_bits());
            assert!(first.is_none(), "{what}: element {first:?} differs from a plain GEMM of the current weight");
        };
        for change in 0..4 {
            match change {
                1 => {
                    let (value, grad) = tape.params.value_and_grad_mut(w);
                    assert!(grad.data().iter().any(|&g| g != 0.0), "the backward left no gradient to step by");
                    value.data_mut().iter_mut().zip(grad.data()).for_each(|(v, g)| *v -= 0.5 * g);
                }
                2 => tape.params.value_mut(w).data_mut().iter_mut().for_each(|v| *v *= -2.0),
                3 => {
                    let mut shadow = standard_normal(&[n_out, n_in], 4).cast::<f32>();
                    std::mem::swap(tape.params.value_mut(w), &mut shadow);
                }
                _ => {}
            }
            let wv = tape.params.value(w).clone();
            let (wm, xm) = (MatRef::new(wv.data(), n_out, n_in), MatRef::new(xt.data(), rows, n_in));
            let x = tape.leaf(xt.clone());
            let y = tape.linear(x, w.into(), None);
            same(tape.value(y).data(), &product(xm, wm.t()), &format!("x W^T after change {change}"));
            tape.backward_with(&mut [(y, gt.clone())]);
            let dx = product(MatRef::new(gt.data(), rows, n_out), wm);
            same(tape.grad(x).unwrap().data(), &dx, &format!("dY W after change {change}"));
            let h = tape.no_grad(|t| t.linear_swiglu(x, w.into()));
            let mut want = vec![0.0f32; rows * n_out / 2];
            loopgrad_tensor::kernels::swiglu_rows(&product(xm, wm.t()), n_out / 2, &mut want);
            same(tape.value(h).data(), &want, &format!("linear_swiglu after change {change}"));
            tape.reset();
        }
    }

    /// In bf16 the forward products are those of the operands rounded to bf16 (the check that rounding happens
    /// at all: the f32 result differs), and a linear layer's f32 packed weight is not used.
    #[test]
    fn bf16_products_take_rounded_operands() {
        let (rows, n_in, n_out) = (9, 70, 33);
        let mut params = ParamStore::new();
        let w = params.add("w", standard_normal(&[n_out, n_in], 4).cast::<f32>());
        let mut tape = Tape::new(params);
        let xt = standard_normal(&[rows, n_in], 5).cast::<f32>();
        let x = tape.constant(xt.clone());
        let exact = tape.linear(x, w.into(), None);
        tape.set_precision(Precision::Bf16);
        let y = tape.linear(x, w.into(), None);
        let round =
            |t: &Tensor<f32>| t.data().iter().map(|&v| loopgrad_tensor::round_bf16(v) as f64).collect::<Vec<_>>();
        let (xr, wr) = (round(&xt), round(tape.params.value(w)));
        let mut want = vec![0.0f64; rows * n_out];
        gemm(
            1.0,
            MatRef::new(&xr, rows, n_in),
            MatRef::new(&wr, n_out, n_in).t(),
            0.0,
            MatMut::new(&mut want, rows, n_out),
        );
        let got = tape.value(y).data();
        for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
            // The same exact products, summed in f32 (the kernel) or f64: k u_f32 sum |terms| apart at most.
            assert!((g as f64 - w).abs() <= 1e-5 * (1.0 + w.abs()), "element {i}: {g} vs {w}");
        }
        assert!(got.iter().zip(tape.value(exact).data()).any(|(a, b)| a != b), "bf16 gave the f32 result");
    }

    #[test]
    #[should_panic(expected = "linear: input of shape [2, 3] does not fit a weight of shape [4, 2] ([out, in])")]
    fn linear_shape_mismatch_names_both_shapes() {
        let mut tape = Tape::<f32>::new(ParamStore::new());
        let x = tape.constant(Tensor::zeros([2, 3]));
        let w = tape.constant(Tensor::zeros([4, 2]));
        tape.linear(x, w, None);
    }

    #[test]
    #[should_panic(expected = "matmul: cannot multiply [2, 3, 4] by [3, 5, 4] (trans_b = false)")]
    fn matmul_shape_mismatch_names_both_shapes() {
        let mut tape = Tape::<f32>::new(ParamStore::new());
        let a = tape.constant(Tensor::zeros([2, 3, 4]));
        let b = tape.constant(Tensor::zeros([3, 5, 4]));
        tape.matmul(a, b, false);
    }

    #[test]
    fn weight_gradient_accumulates_into_the_parameter_buffer() {
        // y = sum(x W^T) twice with the same weight: dW = 2 * (column sums of x), broadcast over the rows of W.
        let mut params = ParamStore::new();
        let w = params.add("w", Tensor::<f64>::zeros([2, 3]));
        let mut tape = Tape::new(params);
        let x = tape.constant(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3]));
        let wv = tape.param(w);
        let y1 = tape.linear(x, wv, None);
        let y2 = tape.linear(x, wv, None);
        let y = tape.add(y1, y2);
        let s = tape.sum(y);
        tape.backward(s);
        assert_eq!(tape.params.grad(w).data(), &[10.0, 14.0, 18.0, 10.0, 14.0, 18.0]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::gradcheck::proptest_cases()))]

        #[test]
        fn linear_gradients_match_finite_differences(
            batch in 1usize..4, rows in 1usize..4, n_in in 1usize..10, n_out in 1usize..10, seed in 0u64..1000
        ) {
            let x = standard_normal(&[batch, rows, n_in], seed);
            let (w, b) = (standard_normal(&[n_out, n_in], seed + 1), standard_normal(&[n_out], seed + 2));
            gradcheck("linear", &[x.clone(), w.clone()], |t, v| t.linear(v[0], v[1], None)).unwrap();
            gradcheck("linear+bias", &[x.clone(), w.clone(), b.clone()], |t, v| t.linear(v[0], v[1], Some(v[2]))).unwrap();
            // Fan-out of x (beta = 0 then 1 on its gradient) and the weight as a parameter (beta = 1).
            let mut params = ParamStore::new();
            let (pw, pb) = (params.add("w", w), params.add("b", b));
            let mut tape = Tape::new(params);
            GradCheck::default().check("linear(param)", &mut tape, &[x], |t, v| {
                let (w, b) = (t.param(pw), t.param(pb));
                let y1 = t.linear(v[0], w, Some(b));
                let y2 = t.linear(v[0], w, None);
                t.mul(y1, y2)
            }).unwrap();
        }

        /// The bf16 path: every input's gradient is one rounded product (dX = dY W, dW = dY^T X, ...), so the
        /// bound is one product's (`gradcheck_bf16`'s doc derives it).
        #[test]
        fn bf16_gradients_stay_within_the_rounding_bound(
            batch in 1usize..4, m in 1usize..8, k in 1usize..10, n in 1usize..8, seed in 0u64..1000
        ) {
            let a = standard_normal(&[batch, m, k], seed);
            let (b, bt) = (standard_normal(&[batch, k, n], seed + 1), standard_normal(&[batch, n, k], seed + 2));
            let w = standard_normal(&[n, k], seed + 3);
            gradcheck_bf16("linear", &[a.clone(), w.clone()], 1, |t, v| t.linear(v[0], v[1], None)).unwrap();
            gradcheck_bf16("matmul", &[a.clone(), b], 1, |t, v| t.matmul(v[0], v[1], false)).unwrap();
            gradcheck_bf16("matmul trans_b", &[a.clone(), bt], 1, |t, v| t.matmul(v[0], v[1], true)).unwrap();
            gradcheck_bf16("matmul broadcast", &[a, w], 1, |t, v| t.matmul(v[0], v[1], true)).unwrap();
        }

        #[test]
        fn matmul_gradients_match_finite_differences(
            batch in 1usize..4, m in 1usize..8, k in 1usize..10, n in 1usize..8, seed in 0u64..1000
        ) {
            let a = standard_normal(&[batch, m, k], seed);
            let (b, bt) = (standard_normal(&[batch, k, n], seed + 1), standard_normal(&[batch, n, k], seed + 2));
            let b2 = standard_normal(&[k, n], seed + 3);
            gradcheck("matmul", &[a.clone(), b], |t, v| t.matmul(v[0], v[1], false)).unwrap();
            gradcheck("matmul trans_b", &[a.clone(), bt], |t, v| t.matmul(v[0], v[1], true)).unwrap();
            gradcheck("matmul broadcast", &[a.clone(), b2.clone()], |t, v| t.matmul(v[0], v[1], false)).unwrap();
            let b2t = b2.transpose_last2();
            gradcheck("matmul broadcast trans_b", &[a, b2t], |t, v| t.matmul(v[0], v[1], true)).unwrap();
        }
    }
}
