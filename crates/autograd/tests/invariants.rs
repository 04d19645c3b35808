//! Tape invariants under recursion, on a 2-layer TRM-style net (attention and token-MLP variants): what the
//! design promises about no-grad scopes, depth, determinism and memory.

mod common;

use common::*;
use loopgrad_autograd::{run_recursions, GradWindow, Tape, Var};
use loopgrad_tensor::{pool, Float, Tensor};

/// The final carry and logits of T = 3 recursions (n = 2) under `window`, and the parameter gradients of a
/// fixed projection of the logits.
fn run<E: Float>(variant: Variant, window: GradWindow, seed: u64) -> (Vec<E>, Vec<E>, NamedGrads<E>) {
    let mut model = Model::<E>::trm(SMALL, variant, 2, seed);
    let (ids, y0, z0) = model.inputs(seed + 1);
    let mut tape = Tape::new(std::mem::take(&mut model.params));
    let x = embed(&mut tape, &model, &ids, None);
    let rope = rope_consts(&mut tape, SMALL, variant);
    let mut state = [tape.constant(y0), tape.constant(z0)];
    let rec = TrmRecursion { net: &model.net, n: 2, x, rope };
    run_recursions(&mut tape, &rec, &mut state, 3, window);
    let logits = head(&mut tape, &model, state[0]);
    let sq = tape.mul(logits, logits);
    let loss = tape.mean(sq);
    let carry = [tape.value(state[0]).to_vec(), tape.value(state[1]).to_vec()].concat();
    let out = tape.value(logits).to_vec();
    if tape.num_nodes() > 0 {
        tape.backward(loss);
    }
    (carry, out, param_grads(&tape.params))
}

#[test]
fn no_grad_forward_equals_recorded_forward_bit_for_bit() {
    for variant in [Variant::Attention, Variant::Mlp] {
        // LastCalls(0) runs every call in no-grad updates; Full records every call.
        let (c0, l0, _) = run::<f32>(variant, GradWindow::LastCalls(0), 1);
        let (c1, l1, _) = run::<f32>(variant, GradWindow::Full, 1);
        assert!(c0 == c1 && l0 == l1, "{variant:?} f32: recorded and no-grad forwards differ");
        let (c0, l0, _) = run::<f64>(variant, GradWindow::LastCalls(0), 1);
        let (c1, l1, _) = run::<f64>(variant, GradWindow::LastRecursion, 1);
        assert!(c0 == c1 && l0 == l1, "{variant:?} f64: recorded and no-grad forwards differ");
    }
}

#[test]
fn a_fixed_seed_gives_bit_identical_gradients() {
    for variant in [Variant::Attention, Variant::Mlp] {
        let (_, _, g0) = run::<f32>(variant, GradWindow::LastRecursion, 9);
        let (_, _, g1) = run::<f32>(variant, GradWindow::LastRecursion, 9);
        assert!(g0.iter().all(|(_, g)| g.iter().any(|&v| v != 0.0)), "{variant:?}: a parameter got no gradient");
        for ((name, a), (_, b)) in g0.iter().zip(&g1) {
            let same = a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same, "{variant:?}: the gradient of {name} differs between two runs with the same seed");
        }
    }
}

#[test]
fn a_thousand_no_grad_net_calls_record_nothing_and_do_not_grow_the_pool() {
    let mut model = Model::<f32>::trm(SMALL, Variant::Attention, 2, 4);
    let (ids, y0, z0) = model.inputs(5);
    let mut tape = Tape::new(std::mem::take(&mut model.params));
    let x = embed(&mut tape, &model, &ids, None);
    let rope = rope_consts(&mut tape, SMALL, Variant::Attention);
    let rec = TrmRecursion { net: &model.net, n: 2, x, rope };
    let mut carry = [tape.constant(y0), tape.constant(z0)];
    let floor = tape.mark();
    let nodes_before = tape.num_nodes();
    let mut after_warmup = (0, 0);
    for i in 0..1000 {
        tape.no_grad_update(floor, &mut carry, |t, c| loopgrad_autograd::Recurrence::call(&rec, t, c, i % 3));
        if i == 4 {
            after_warmup = (pool::stats::<f32>().high_water, tape.num_values());
        }
    }
    assert_eq!(tape.num_nodes(), nodes_before, "a no-grad call recorded a node");
    assert_eq!(tape.num_nodes(), 2, "only the embedding and its scaling, recorded before the loop");
    assert_eq!(pool::stats::<f32>().high_water, after_warmup.0, "the pool's high-water mark grew after call 5");
    assert_eq!(tape.num_values(), after_warmup.1, "the value arena grew");
    assert!(tape.value(carry[0]).all_finite() && tape.value(carry[1]).all_finite());
}

#[test]
fn ten_thousand_recorded_ops_backprop_on_a_small_stack() {
    // x_{i+1} = x_i * 1.0001, 10,000 times: dx_10000 / dx_0 = 1.0001^10000. Run on a 64 KiB stack: any
    // recursion over the graph depth (in backward or in dropping the tape) would overflow it.
    let child = std::thread::Builder::new()
        .stack_size(64 * 1024)
        .spawn(|| {
            let mut tape = Tape::<f64>::new(Default::default());
            let x0 = tape.leaf(Tensor::from_vec(vec![1.0, -2.0], [2]));
            let mut x: Var = x0;
            for _ in 0..10_000 {
                x = tape.scale(x, 1.0001);
            }
            let loss = tape.sum(x);
            tape.backward(loss);
            assert_eq!(tape.num_nodes(), 10_001);
            let g = tape.grad(x0).unwrap().to_vec();
            drop(tape);
            g
        })
        .unwrap();
    let g = child.join().expect("backward through 10,000 ops overflowed a 64 KiB stack");
    let expected = 1.0001f64.powi(10_000);
    assert!(g.iter().all(|&v| (v - expected).abs() < 1e-9 * expected), "{g:?} vs {expected}");
}

#[test]
fn reset_keeps_the_tape_usable_and_the_pool_warm() {
    let mut model = Model::<f32>::trm(SMALL, Variant::Mlp, 2, 4);
    let (ids, y0, z0) = model.inputs(5);
    let mut tape = Tape::new(std::mem::take(&mut model.params));
    let (mut y, mut z) = (y0, z0);
    let mut misses = Vec::new();
    for _ in 0..4 {
        let before = pool::stats::<f32>().misses;
        let x = embed(&mut tape, &model, &ids, None);
        let rec = TrmRecursion { net: &model.net, n: 2, x, rope: None };
        let mut state = [tape.constant(y), tape.constant(z)];
        run_recursions(&mut tape, &rec, &mut state, 3, GradWindow::LastRecursion);
        let logits = head(&mut tape, &model, state[0]);
        let loss = tape.mean(logits);
        tape.backward(loss);
        (y, z) = (tape.take(state[0]), tape.take(state[1]));
        tape.reset();
        assert_eq!(tape.num_nodes() + tape.num_values(), 0);
        misses.push(pool::stats::<f32>().misses - before);
    }
    assert!(misses[0] > 0 && misses[2..].iter().all(|&m| m == 0), "pool misses per step: {misses:?}");
}
