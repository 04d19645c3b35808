//! Whole-recursion gradient checks in f64, the bar: a 2-layer TRM-style net (attention and token-MLP
//! blocks) through T-1 no-grad recursions and one recorded latent recursion with shared weights, and HRM's
//! 1-step pattern. The gradients with respect to the weights, the token embeddings and the dense input x must
//! match finite differences, and the carry entering the recorded part must behave as a constant input.
//!
//! How the check is posed: a truncated gradient is the exact gradient of the recorded part with the carry c
//! entering it held fixed. So each test (1) runs the unrecorded prefix to get c, (2) gradchecks the recorded
//! part as a function of (x, c) and of every parameter, and (3) checks that the truncated run from the carry
//! init, through the window driver, gives bit for bit the gradients of (2) at c, and none to the carry init.

mod common;

use common::*;
use loopgrad_autograd::gradcheck::GradCheck;
use loopgrad_autograd::{run_recursions, GradWindow, Recurrence, Tape, Var};
use loopgrad_tensor::{Rng, Tensor};

const T: usize = 3;
const N: usize = 2;

fn check() -> GradCheck {
    GradCheck { max_per_tensor: 8, ..GradCheck::default() }
}

fn random(shape: &[usize], std: f64, seed: u64) -> Tensor<f64> {
    let mut t = Tensor::uninit(shape);
    Rng::new(seed).fill_normal(t.data_mut(), std);
    t
}

/// Backward of <proj, out>: the parameter gradients and the gradients of `leaves` (empty when none flowed).
fn gradients(tape: &mut Tape<f64>, out: Var, proj: &Tensor<f64>, leaves: &[Var]) -> (NamedGrads<f64>, NamedGrads<f64>) {
    tape.params.zero_grad();
    tape.backward_with(&mut [(out, proj.clone())]);
    let leaves = leaves
        .iter()
        .enumerate()
        .map(|(i, &v)| (format!("leaf {i}"), tape.grad(v).map_or(Vec::new(), |g| g.to_vec())))
        .collect();
    let params = param_grads(&tape.params);
    tape.reset();
    (params, leaves)
}

fn assert_bitwise_equal(a: &NamedGrads<f64>, b: &NamedGrads<f64>, what: &str) {
    for ((name, x), (_, y)) in a.iter().zip(b) {
        assert!(x.len() == y.len() && x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits()), "{what}: {name}");
    }
}

fn trm_last_recursion(variant: Variant) {
    let mut model = Model::<f64>::trm(SMALL, variant, 2, 31);
    let (ids, y0, z0) = model.inputs(32);
    let x_in = random(&[SMALL.batch, SMALL.seq, SMALL.d], 0.5, 33);
    let proj = random(&[SMALL.batch, SMALL.seq, SMALL.vocab], 1.0, 34);
    let mut tape = Tape::new(std::mem::take(&mut model.params));

    // (1) The carry entering the last recursion: T-1 recursions, none recorded.
    let x = tape.constant(x_in.clone());
    let x = embed(&mut tape, &model, &ids, Some(x));
    let rope = rope_consts(&mut tape, SMALL, variant);
    let rec = TrmRecursion { net: &model.net, n: N, x, rope };
    let mut c = [tape.constant(y0.clone()), tape.constant(z0.clone())];
    run_recursions(&mut tape, &rec, &mut c, T - 1, GradWindow::LastCalls(0));
    let (cy, cz) = (tape.take(c[0]), tape.take(c[1]));
    tape.reset();

    // (2) The recorded recursion as a function of x_in, the carry and every parameter.
    let last_recursion = |t: &mut Tape<f64>, v: &[Var]| {
        let x = embed(t, &model, &ids, Some(v[0]));
        let rope = rope_consts(t, SMALL, variant);
        let rec = TrmRecursion { net: &model.net, n: N, x, rope };
        let mut state = [v[1], v[2]];
        run_recursions(t, &rec, &mut state, 1, GradWindow::LastRecursion);
        head(t, &model, state[0])
    };
    let inputs = [x_in.clone(), cy.clone(), cz.clone()];
    check().check(&format!("TRM {variant:?} last recursion"), &mut tape, &inputs, last_recursion).unwrap();

    // (3) The truncated run from the carry init equals (2) at c, bit for bit; the init gets no gradient.
    let leaves: Vec<Var> = inputs.iter().map(|t| tape.leaf(t.clone())).collect();
    let out = last_recursion(&mut tape, &leaves);
    let (at_c, _) = gradients(&mut tape, out, &proj, &[]);
    let x_leaf = tape.leaf(x_in);
    let x = embed(&mut tape, &model, &ids, Some(x_leaf));
    let rope = rope_consts(&mut tape, SMALL, variant);
    let rec = TrmRecursion { net: &model.net, n: N, x, rope };
    let (y0, z0) = (tape.leaf(y0), tape.leaf(z0));
    let mut state = [y0, z0];
    run_recursions(&mut tape, &rec, &mut state, T, GradWindow::LastRecursion);
    let out = head(&mut tape, &model, state[0]);
    assert_eq!(tape.value(out).shape(), Tensor::<f64>::zeros([SMALL.batch, SMALL.seq, SMALL.vocab]).shape());
    let (truncated, leaf_grads) = gradients(&mut tape, out, &proj, &[x_leaf, y0, z0]);
    assert_bitwise_equal(&truncated, &at_c, "truncated run vs the recorded recursion at its carry");
    assert!(!leaf_grads[0].1.is_empty() && leaf_grads[1].1.is_empty() && leaf_grads[2].1.is_empty());
}

#[test]
fn trm_attention_blocks_last_recursion_matches_finite_differences() {
    trm_last_recursion(Variant::Attention);
}

#[test]
fn trm_mlp_blocks_last_recursion_matches_finite_differences() {
    trm_last_recursion(Variant::Mlp);
}

#[test]
fn hrm_one_step_gradient_matches_finite_differences() {
    let mut model = Model::<f64>::hrm(SMALL, 2, 41);
    let (ids, zh0, zl0) = model.inputs(42);
    let x_in = random(&[SMALL.batch, SMALL.seq, SMALL.d], 0.5, 43);
    let proj = random(&[SMALL.batch, SMALL.seq, SMALL.vocab], 1.0, 44);
    let h_net = model.h_net.clone().unwrap();
    let mut tape = Tape::new(std::mem::take(&mut model.params));
    let hrm =
        |x: Var, rope: Option<(Var, Var)>| HrmRecursion { l_net: &model.net, h_net: &h_net, l_cycles: 2, x, rope };

    // (1) Two H cycles of three calls each; the carry before the last two calls.
    let x = tape.constant(x_in.clone());
    let x = embed(&mut tape, &model, &ids, Some(x));
    let rope = rope_consts(&mut tape, SMALL, Variant::Attention);
    let rec = hrm(x, rope);
    let mut c = [tape.constant(zh0.clone()), tape.constant(zl0.clone())];
    run_recursions(&mut tape, &rec, &mut c, 1, GradWindow::LastCalls(0));
    tape.no_grad(|t| rec.call(t, &mut c, 0));
    let (ch, cl) = (tape.take(c[0]), tape.take(c[1]));
    tape.reset();

    // (2) The 1-step part: z_L = L(z_L, z_H + x), then z_H = H(z_H, z_L); outputs from z_H.
    let one_step = |t: &mut Tape<f64>, v: &[Var]| {
        let x = embed(t, &model, &ids, Some(v[0]));
        let rope = rope_consts(t, SMALL, Variant::Attention);
        let rec = hrm(x, rope);
        let mut state = [v[1], v[2]];
        rec.call(t, &mut state, 1);
        rec.call(t, &mut state, 2);
        head(t, &model, state[0])
    };
    let inputs = [x_in.clone(), ch, cl];
    check().check("HRM 1-step", &mut tape, &inputs, one_step).unwrap();

    // (3) The window driver's one_step over two full cycles equals (2) at c, bit for bit.
    let leaves: Vec<Var> = inputs.iter().map(|t| tape.leaf(t.clone())).collect();
    let out = one_step(&mut tape, &leaves);
    let (at_c, _) = gradients(&mut tape, out, &proj, &[]);
    let x_leaf = tape.leaf(x_in);
    let x = embed(&mut tape, &model, &ids, Some(x_leaf));
    let rope = rope_consts(&mut tape, SMALL, Variant::Attention);
    let rec = hrm(x, rope);
    let (zh0, zl0) = (tape.leaf(zh0), tape.leaf(zl0));
    let mut state = [zh0, zl0];
    let run = run_recursions(&mut tape, &rec, &mut state, 2, GradWindow::OneStep);
    assert_eq!(run.recorded_calls(), 2);
    let out = head(&mut tape, &model, state[0]);
    let (windowed, leaf_grads) = gradients(&mut tape, out, &proj, &[x_leaf, zh0, zl0]);
    assert_bitwise_equal(&windowed, &at_c, "one_step run vs the 1-step part at its carry");
    assert!(!leaf_grads[0].1.is_empty() && leaf_grads[1].1.is_empty() && leaf_grads[2].1.is_empty());
}

#[test]
fn full_backprop_through_two_recursions_matches_finite_differences() {
    // No truncation: the finite differences run through both recursions, carry init included.
    for variant in [Variant::Attention, Variant::Mlp] {
        let mut model = Model::<f64>::trm(SMALL, variant, 2, 51);
        let (ids, y0, z0) = model.inputs(52);
        let x_in = random(&[SMALL.batch, SMALL.seq, SMALL.d], 0.5, 53);
        let mut tape = Tape::new(std::mem::take(&mut model.params));
        let inputs = [x_in, y0, z0];
        check()
            .check(&format!("TRM {variant:?} full"), &mut tape, &inputs, |t, v| {
                let x = embed(t, &model, &ids, Some(v[0]));
                let rope = rope_consts(t, SMALL, variant);
                let rec = TrmRecursion { net: &model.net, n: N, x, rope };
                let mut state = [v[1], v[2]];
                run_recursions(t, &rec, &mut state, 2, GradWindow::Full);
                head(t, &model, state[0])
            })
            .unwrap();
    }
}
