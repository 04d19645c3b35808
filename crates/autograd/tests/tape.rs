//! The tape's scope and recomputation primitives: release_from, no_grad_update, backward_from, truncate and
//! backward_until, on hand-sized graphs whose gradients can be checked by hand.

use loopgrad_autograd::{ParamStore, Tape, Var};
use loopgrad_tensor::Tensor;

fn t(xs: &[f64]) -> Tensor<f64> {
    Tensor::from_slice(xs, [xs.len()])
}

#[test]
fn release_from_keeps_values_in_any_order_and_frees_the_rest() {
    let mut tape = Tape::<f64>::new(ParamStore::new());
    let floor = tape.mark();
    let a = tape.constant(t(&[1.0]));
    let _b = tape.constant(t(&[2.0]));
    let c = tape.leaf(t(&[3.0]));
    // Keep c before a, and a twice: both must survive with their flags, in position order.
    let mut keep = [c, a, a];
    tape.release_from(floor, &mut keep);
    assert_eq!(keep, [Var::Value(1), Var::Value(0), Var::Value(0)]);
    assert_eq!(tape.num_values(), 2);
    assert_eq!(tape.value(keep[0]).data(), &[3.0]);
    assert_eq!(tape.value(keep[1]).data(), &[1.0]);
    assert!(tape.needs_grad(keep[0]) && !tape.needs_grad(keep[1]));
}

#[test]
fn no_grad_update_reuses_the_same_slots() {
    let mut tape = Tape::<f64>::new(ParamStore::new());
    let x = tape.constant(t(&[1.0, 2.0]));
    let floor = tape.mark();
    let mut carry = [x];
    for _ in 0..100 {
        tape.no_grad_update(floor, &mut carry, |t, c| {
            let twice = t.add(c[0], c[0]);
            c[0] = t.scale(twice, 0.25);
        });
    }
    assert_eq!(carry, [Var::Value(1)]);
    assert_eq!(tape.num_values(), 2, "the input and one carry");
    assert_eq!(tape.value(x).data(), &[1.0, 2.0], "the caller's input is not released");
    assert!(tape.value(carry[0]).data()[1] < 1e-20);
}

#[test]
#[should_panic(expected = "release_from would free values that recorded nodes use")]
fn release_from_refuses_to_free_recorded_values() {
    let mut tape = Tape::<f64>::new(ParamStore::new());
    let mark = tape.mark();
    let x = tape.leaf(t(&[1.0]));
    let y = tape.scale(x, 2.0);
    tape.release_from(mark, &mut [y]);
}

#[test]
fn backward_from_adds_to_earlier_gradients_and_truncate_frees_the_rest() {
    // y = 3x recorded, then twice (once per "recursion") z = y * y after a mark, backprop, truncate.
    let mut tape = Tape::<f64>::new(ParamStore::new());
    let x = tape.leaf(t(&[2.0]));
    let y = tape.scale(x, 3.0);
    let after_y = tape.mark();
    for _ in 0..2 {
        let mark = tape.mark();
        let z = tape.mul(y, y);
        tape.backward_from(mark, &mut [(z, t(&[1.0]))]);
        tape.truncate(mark);
        assert_eq!(tape.num_nodes(), 1);
        assert_eq!(tape.num_values(), 2);
    }
    // dz/dy = 2y = 12 per pass, accumulated twice on y; then y's node passes 3 * 24 to x.
    assert_eq!(tape.grad(y).unwrap().data(), &[24.0]);
    tape.backward_until(after_y);
    assert_eq!(tape.grad(x).unwrap().data(), &[72.0]);
}
