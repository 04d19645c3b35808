//! A first tape: a tiny expression, backward, the gradients; then the same tape driving a small recursion
//! under two gradient windows.
//!
//! Run: `cargo run --example first_tape`

use loopgrad::autograd::{run_recursions, GradWindow, ParamStore, Recurrence, Tape, Var};
use loopgrad::tensor::Tensor;

fn main() {
    // Parameters live outside the tape, in a named store with persistent gradient buffers.
    let mut params = ParamStore::<f64>::new();
    let w = params.add("w", Tensor::from_vec(vec![1.0, -1.0, 0.5, 2.0], [2, 2]));
    let mut tape = Tape::new(params);

    // L = sum(y * y) with y = x W^T. `leaf` asks for x's gradient; `constant` would not.
    let x = tape.leaf(Tensor::from_vec(vec![1.0, 2.0], [1, 2]));
    let wv = tape.param(w);
    let y = tape.linear(x, wv, None); // [1 - 2, 0.5 + 4] = [-1, 4.5]
    let y2 = tape.mul(y, y);
    let loss = tape.sum(y2); // 1 + 20.25
    println!("y = {:?}", tape.value(y));
    println!("L = {}  ({} nodes recorded)", tape.value(loss).item(), tape.num_nodes());

    // One reverse loop over the recorded nodes. dL/dy = 2y = [-2, 9], so
    // dL/dx = 2y W = [2.5, 20] and dL/dW = (2y)^T x = [[-2, -4], [9, 18]].
    tape.backward(loss);
    println!("dL/dx = {:?}", tape.grad(x).unwrap());
    println!("dL/dW = {:?}", tape.params.grad(w));

    // Inside no_grad the same ops compute the same numbers and record nothing.
    tape.reset();
    let x = tape.constant(Tensor::from_vec(vec![1.0, 2.0], [1, 2]));
    let y = tape.no_grad(|t| {
        let wv = t.param(w);
        t.linear(x, wv, None)
    });
    println!("no-grad y = {:?}  ({} nodes recorded)", tape.value(y), tape.num_nodes());

    // A recursion: h <- h W^T + x, four times. The window decides which calls are recorded.
    for window in [GradWindow::LastRecursion, GradWindow::Full] {
        tape.reset();
        tape.params.zero_grad();
        let x = tape.constant(Tensor::from_vec(vec![0.1, -0.2], [1, 2]));
        let rec = Affine { w, x };
        let mut state = [tape.constant(Tensor::from_vec(vec![1.0, 1.0], [1, 2]))];
        let run = run_recursions(&mut tape, &rec, &mut state, 4, window);
        let h2 = tape.mul(state[0], state[0]);
        let loss = tape.sum(h2);
        tape.backward(loss);
        run.finish_backward(&mut tape, &rec);
        println!("{window:>15}: {} nodes, dL/dW = {:?}", tape.num_nodes(), tape.params.grad(w));
    }
}

/// One net call per recursion: h = h W^T + x.
struct Affine {
    w: loopgrad::autograd::Param,
    x: Var,
}

impl Recurrence<f64> for Affine {
    fn calls_per_recursion(&self) -> usize {
        1
    }
    fn call(&self, tape: &mut Tape<f64>, state: &mut [Var], _call: usize) {
        let w = tape.param(self.w);
        let hw = tape.linear(state[0], w, None);
        state[0] = tape.add(hw, self.x);
    }
}
