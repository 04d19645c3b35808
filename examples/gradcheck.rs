//! Gradient checking: check a small graph of ops against central differences in f64, use the fast mode, and
//! watch the negative control fail, as it must, or the checker would prove nothing.
//!
//! Run: `cargo run --example gradcheck`

use loopgrad::autograd::gradcheck::{gradcheck, GradCheck};
use loopgrad::autograd::{ParamStore, Tape};
use loopgrad::tensor::{Rng, Tensor};

fn random(shape: &[usize], seed: u64) -> Tensor<f64> {
    let mut t = Tensor::uninit(shape);
    Rng::new(seed).fill_normal(t.data_mut(), 1.0);
    t
}

fn main() {
    // 1. A post-norm SwiGLU sublayer, x [2, 3, 8] -> [2, 3, 8], with the weights as plain inputs: every
    //    element of every input is perturbed by +-1e-6 and the central difference compared with backward.
    let (x, w_gu, w_down) = (random(&[2, 3, 8], 1), random(&[24, 8], 2), random(&[8, 12], 3));
    let sublayer = |t: &mut Tape<f64>, v: &[loopgrad::autograd::Var]| {
        let gu = t.linear(v[0], v[1], None);
        let s = t.swiglu(gu);
        let m = t.linear(s, v[2], None);
        let r = t.add(v[0], m);
        t.rms_norm(r, 1e-5)
    };
    match gradcheck("swiglu sublayer", &[x.clone(), w_gu.clone(), w_down.clone()], sublayer) {
        Ok(()) => println!("swiglu sublayer: every element matches finite differences"),
        Err(e) => panic!("{e}"),
    }

    // 2. The fast mode: one directional derivative v^T J u along a random u, two forwards whatever the size.
    let mut tape = Tape::new(ParamStore::new());
    GradCheck::default().check_fast("swiglu sublayer", &mut tape, &[x, w_gu, w_down], sublayer).unwrap();
    println!("swiglu sublayer: the fast mode agrees too");

    // 3. The negative control: f(x) = x * x written as x * detach(x). Backward treats the detached copy as a
    //    constant and returns x, but the numbers say 2x. The checker must reject it, and say where.
    let x = random(&[5], 4);
    match gradcheck("x * detach(x)", &[x], |t, v| {
        let d = t.detach(v[0]);
        t.mul(v[0], d)
    }) {
        Ok(()) => panic!("the negative control passed: the gradient checker is broken"),
        Err(e) => println!("negative control rejected, as it must be:\n  {e}"),
    }
}
