//! A recursive model of your own, written against the public API: a small net looped over a latent z, the
//! gradient window chosen on the command line, trained for a few steps on a toy task.
//!
//! The task: from x [B, 8] (entries +-1), predict the running sums y_i = (x_1 + ... + x_i) / sqrt(i). The model:
//!
//! ```text
//! z = 0
//! repeat T times:  z = net(z, x)  (n calls)         net(z, x) = rms_norm(z + W_down swiglu(W_gate_up (z + x_in)))
//! y_hat = W_out z                                     x_in = W_in x
//! ```
//!
//! Run: `cargo run --release --example my_recursive_model -- last_recursion` (or `one_step`, `last_calls:3`,
//! `full`, `full_recompute`: which of the T x n net calls backward goes through).

use loopgrad::autograd::{run_recursions, GradWindow, ParamStore, Recurrence, Tape, Var};
use loopgrad::nn::layers::{Builder, Linear};
use loopgrad::nn::optim::{trainable_except, AdamW, AdamWConfig, Optimizer};
use loopgrad::tensor::{Rng, Tensor};

const D_IN: usize = 8;
const WIDTH: usize = 32;
/// Recursions per step, and net calls per recursion.
const T: usize = 3;
const N: usize = 3;

/// The model's layers. Each holds `Param` handles; the tensors live in the `ParamStore`.
struct LoopNet {
    input: Linear,   // x [B, 8] -> [B, WIDTH], once per step
    gate_up: Linear, // [B, WIDTH] -> [B, 2 * WIDTH], the SwiGLU's gate and up halves
    down: Linear,    // [B, WIDTH] -> [B, WIDTH]
    output: Linear,  // z -> y_hat [B, 8]
}

/// One recursion for the window driver: N calls of z = net(z, x_in). `x_in` is captured; the carry is `[z]`.
struct Calls<'a> {
    net: &'a LoopNet,
    x_in: Var,
}

impl Recurrence<f32> for Calls<'_> {
    fn calls_per_recursion(&self) -> usize {
        N
    }
    fn call(&self, tape: &mut Tape<f32>, state: &mut [Var], _call: usize) {
        let h = tape.add(state[0], self.x_in);
        let gu = self.net.gate_up.forward(tape, h);
        let m = tape.swiglu(gu); // silu(gate) * up: [B, 2W] -> [B, W]
        let m = self.net.down.forward(tape, m);
        let r = tape.add(state[0], m);
        state[0] = tape.rms_norm(r, 1e-5);
    }
}

/// A batch of the toy task: x [B, 8] of +-1 and its running sums y [B, 8].
fn batch(rng: &mut Rng, b: usize) -> (Tensor<f32>, Tensor<f32>) {
    let x: Vec<f32> = (0..b * D_IN).map(|_| if rng.below(2) == 0 { -1.0 } else { 1.0 }).collect();
    let mut y = vec![0.0; b * D_IN];
    for (xs, ys) in x.chunks(D_IN).zip(y.chunks_mut(D_IN)) {
        let mut sum = 0.0;
        for (i, (&xi, yi)) in xs.iter().zip(ys).enumerate() {
            sum += xi;
            *yi = sum / ((i + 1) as f32).sqrt();
        }
    }
    (Tensor::from_vec(x, [b, D_IN]), Tensor::from_vec(y, [b, D_IN]))
}

/// Trains `steps` steps under `window`; returns the loss of each step.
fn train(window: GradWindow, steps: usize) -> Vec<f32> {
    let (mut store, mut rng) = (ParamStore::new(), Rng::new(0));
    let mut b = Builder::new(&mut store, &mut rng);
    let net = LoopNet {
        input: Linear::new(&mut b, "input", D_IN, WIDTH, false),
        gate_up: Linear::new(&mut b, "gate_up", WIDTH, 2 * WIDTH, false),
        down: Linear::new(&mut b, "down", WIDTH, WIDTH, false),
        output: Linear::new(&mut b, "output", WIDTH, D_IN, true),
    };
    let mut optim =
        AdamW::new(&store, trainable_except(&store, &[]), AdamWConfig { weight_decay: 0.0, ..Default::default() });
    let mut tape = Tape::new(store);
    let mut data = Rng::new(1);
    let mut losses = Vec::new();
    for _ in 0..steps {
        let (x, y) = batch(&mut data, 64);
        let x = tape.constant(x);
        let x_in = net.input.forward(&mut tape, x);
        let calls = Calls { net: &net, x_in };
        let mut state = [tape.constant(Tensor::zeros([64, WIDTH]))];
        // T recursions of N calls; only the calls inside `window` are recorded for backward.
        let run = run_recursions(&mut tape, &calls, &mut state, T, window);
        let y_hat = net.output.forward(&mut tape, state[0]);
        let y = tape.constant(y);
        let err = tape.sub(y_hat, y);
        let sq = tape.mul(err, err);
        let loss = tape.mean(sq);
        losses.push(tape.value(loss).item());
        tape.backward(loss);
        run.finish_backward(&mut tape, &calls); // only `full_recompute` has work left here
        optim.step(&mut tape.params, 3e-3); // consumes (zeroes) the gradients
        tape.reset(); // the next step records afresh; buffers go back to the pool
    }
    losses
}

fn main() -> Result<(), String> {
    let window: GradWindow = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => GradWindow::LastRecursion,
    };
    let losses = train(window, 150);
    for (step, loss) in losses.iter().enumerate().step_by(30) {
        println!("window {window}, step {step:>3}: mse {loss:.4}");
    }
    println!("window {window}, step {:>3}: mse {:.4}", losses.len() - 1, losses.last().unwrap());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Under every window the model learns: the last 10 steps' loss is under a third of the first 10 steps'.
    #[test]
    fn every_window_trains() {
        for window in ["one_step", "last_recursion", "last_calls:3", "full", "full_recompute"] {
            let losses = train(window.parse().unwrap(), 150);
            let (first, last) = (losses[..10].iter().sum::<f32>(), losses[losses.len() - 10..].iter().sum::<f32>());
            assert!(last < first / 3.0, "{window}: loss {first} -> {last}");
        }
    }
}
