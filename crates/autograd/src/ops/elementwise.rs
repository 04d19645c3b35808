//! Element-wise add, sub, mul and scale, and a row vector broadcast over rows (add and mul).
//!
//! | op | forward | backward |
//! |---|---|---|
//! | add | z = a + b | da += g, db += g |
//! | sub | z = a - b | da += g, db -= g |
//! | mul | z = a * b | da += g b, db += g a (inputs are on the tape, nothing extra saved) |
//! | scale | z = s a | da += s g |
//! | add_row | `z[r, j] = x[r, j] + v[j]` | `dx += g`, `dv[j] += sum_r g[r, j]` |
//! | mul_row | `z[r, j] = x[r, j] v[j]` | `dx[r, j] += g[r, j] v[j]`, `dv[j] += sum_r g[r, j] x[r, j]` |

use crate::op::Op;
use crate::tape::{Ctx, Tape, Var};
use loopgrad_tensor::{kernels, Float, Tensor};

#[derive(Clone, Copy, Debug)]
pub struct ScaleMeta {
    pub s: f64,
}

impl<E: Float> Tape<E> {
    /// z = a + b (same shapes).
    pub fn add(&mut self, a: Var, b: Var) -> Var {
        let out = self.binary("add", a, b, kernels::add);
        self.push_op(Op::Add, &[a, b], out, [], &[])
    }

    /// z = a - b (same shapes).
    pub fn sub(&mut self, a: Var, b: Var) -> Var {
        let out = self.binary("sub", a, b, kernels::sub);
        self.push_op(Op::Sub, &[a, b], out, [], &[])
    }

    /// z = a * b element-wise (same shapes).
    pub fn mul(&mut self, a: Var, b: Var) -> Var {
        let out = self.binary("mul", a, b, kernels::mul);
        self.push_op(Op::Mul, &[a, b], out, [], &[])
    }

    /// z = s * a.
    pub fn scale(&mut self, a: Var, s: f64) -> Var {
        let x = self.value(a);
        let mut out = Tensor::uninit(x.shape());
        kernels::scale(x.data(), E::from_f64(s), out.data_mut());
        self.push_op(Op::Scale(ScaleMeta { s }), &[a], out, [], &[])
    }

    /// z[r, :] = x[r, :] + v for a row vector v of the last axis' length.
    pub fn add_row(&mut self, x: Var, v: Var) -> Var {
        let (xt, vt) = (self.value(x), self.value(v));
        check_row("add_row", xt, vt);
        let mut out = Tensor::uninit(xt.shape());
        kernels::add_row_broadcast(xt.data(), vt.data(), out.data_mut());
        self.push_op(Op::AddRow, &[x, v], out, [], &[])
    }

    /// z[r, :] = x[r, :] * v for a row vector v of the last axis' length.
    pub fn mul_row(&mut self, x: Var, v: Var) -> Var {
        let (xt, vt) = (self.value(x), self.value(v));
        check_row("mul_row", xt, vt);
        let mut out = Tensor::uninit(xt.shape());
        for (orow, xrow) in out.data_mut().chunks_exact_mut(vt.numel()).zip(xt.data().chunks_exact(vt.numel())) {
            kernels::mul(xrow, vt.data(), orow);
        }
        self.push_op(Op::MulRow, &[x, v], out, [], &[])
    }

    fn binary(&self, op: &str, a: Var, b: Var, kernel: fn(&[E], &[E], &mut [E])) -> Tensor<E> {
        let (x, y) = (self.value(a), self.value(b));
        assert_eq!(x.shape(), y.shape(), "{op}: shapes {} and {} differ", x.shape(), y.shape());
        let mut out = Tensor::uninit(x.shape());
        kernel(x.data(), y.data(), out.data_mut());
        out
    }
}

fn check_row<E: Float>(op: &str, x: &Tensor<E>, v: &Tensor<E>) {
    assert!(
        v.shape().rank() == 1 && v.numel() == x.shape().last() && v.numel() > 0,
        "{op}: row vector of shape {} does not match the last axis of {}",
        v.shape(),
        x.shape()
    );
}

pub(crate) fn backward_add<E: Float>(ctx: &mut Ctx<'_, E>) {
    let g = ctx.gout.data();
    for k in 0..2 {
        pass_through(ctx, k, g, E::ONE);
    }
}

pub(crate) fn backward_sub<E: Float>(ctx: &mut Ctx<'_, E>) {
    let g = ctx.gout.data();
    pass_through(ctx, 0, g, E::ONE);
    pass_through(ctx, 1, g, -E::ONE);
}

/// Input k's gradient (+)= s g: a copy (or scaled copy) into a fresh buffer, an add otherwise. No zero-fill.
fn pass_through<E: Float>(ctx: &mut Ctx<'_, E>, k: usize, g: &[E], s: E) {
    match ctx.grad_beta(k) {
        None => {}
        Some((d, beta)) if beta == E::ZERO && s == E::ONE => d.copy_from_slice(g),
        Some((d, beta)) if beta == E::ZERO => kernels::scale(g, s, d),
        Some((d, _)) if s == E::ONE => kernels::add_assign(d, g),
        Some((d, _)) => kernels::axpy(s, g, d),
    }
}

pub(crate) fn backward_mul<E: Float>(ctx: &mut Ctx<'_, E>) {
    let (g, a, b) = (ctx.gout.data(), ctx.input(0).data(), ctx.input(1).data());
    if let Some(d) = ctx.grad(0) {
        kernels::mul_add_assign(d, g, b);
    }
    if let Some(d) = ctx.grad(1) {
        kernels::mul_add_assign(d, g, a);
    }
}

pub(crate) fn backward_scale<E: Float>(m: &ScaleMeta, ctx: &mut Ctx<'_, E>) {
    let g = ctx.gout.data();
    if let Some(d) = ctx.grad(0) {
        kernels::axpy(E::from_f64(m.s), g, d);
    }
}

pub(crate) fn backward_add_row<E: Float>(ctx: &mut Ctx<'_, E>) {
    let g = ctx.gout.data();
    if let Some(d) = ctx.grad(0) {
        kernels::add_assign(d, g);
    }
    if let Some(d) = ctx.grad(1) {
        kernels::col_sum_add(g, d);
    }
}

pub(crate) fn backward_mul_row<E: Float>(ctx: &mut Ctx<'_, E>) {
    let (g, x, v) = (ctx.gout.data(), ctx.input(0).data(), ctx.input(1).data());
    let cols = v.len();
    if let Some(d) = ctx.grad(0) {
        for (drow, grow) in d.chunks_exact_mut(cols).zip(g.chunks_exact(cols)) {
            kernels::mul_add_assign(drow, grow, v);
        }
    }
    if let Some(d) = ctx.grad(1) {
        for (grow, xrow) in g.chunks_exact(cols).zip(x.chunks_exact(cols)) {
            kernels::mul_add_assign(d, grow, xrow);
        }
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
    fn forward_values() {
        let mut tape = Tape::<f32>::new(ParamStore::new());
        let a = tape.constant(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], [2, 2]));
        let b = tape.constant(Tensor::from_vec(vec![10.0, 20.0], [2]));
        let s = tape.add_row(a, b);
        assert_eq!(tape.value(s).data(), &[11.0, 22.0, 13.0, 24.0]);
        let m = tape.mul_row(a, b);
        assert_eq!(tape.value(m).data(), &[10.0, 40.0, 30.0, 80.0]);
        let p = tape.mul(a, a);
        let q = tape.scale(p, 0.5);
        let d = tape.sub(q, a);
        assert_eq!(tape.value(d).data(), &[-0.5, 0.0, 1.5, 4.0]);
        assert_eq!(tape.num_nodes(), 0, "constants only: nothing recorded");
    }

    #[test]
    #[should_panic(expected = "add: shapes [2, 3] and [3, 2] differ")]
    fn shape_mismatch_names_the_op_and_shapes() {
        let mut tape = Tape::<f32>::new(ParamStore::new());
        let a = tape.constant(Tensor::zeros([2, 3]));
        let b = tape.constant(Tensor::zeros([3, 2]));
        tape.add(a, b);
    }

    #[test]
    fn fan_out_accumulates() {
        // z = x * x + x: dz/dx = 2x + 1, with x used three times.
        let mut tape = Tape::<f64>::new(ParamStore::new());
        let x = tape.leaf(Tensor::from_vec(vec![3.0], [1]));
        let sq = tape.mul(x, x);
        let z = tape.add(sq, x);
        tape.backward(z);
        assert_eq!(tape.grad(x).unwrap().data(), &[7.0]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::gradcheck::proptest_cases()))]

        #[test]
        fn gradients_match_finite_differences(rows in 1usize..5, cols in 1usize..11, seed in 0u64..1000) {
            let shape = [rows, cols];
            let (a, b) = (standard_normal(&shape, seed), standard_normal(&shape, seed + 1));
            let v = standard_normal(&[cols], seed + 2);
            gradcheck("add", &[a.clone(), b.clone()], |t, x| t.add(x[0], x[1])).unwrap();
            gradcheck("sub", &[a.clone(), b.clone()], |t, x| t.sub(x[0], x[1])).unwrap();
            gradcheck("mul", &[a.clone(), b.clone()], |t, x| t.mul(x[0], x[1])).unwrap();
            gradcheck("scale", std::slice::from_ref(&a), |t, x| t.scale(x[0], -1.7)).unwrap();
            gradcheck("add_row", &[a.clone(), v.clone()], |t, x| t.add_row(x[0], x[1])).unwrap();
            gradcheck("mul_row", &[a.clone(), v.clone()], |t, x| t.mul_row(x[0], x[1])).unwrap();
        }
    }
}
