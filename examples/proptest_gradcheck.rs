//! Property-testing your own composite function: proptest draws shapes and values, `gradcheck` compares the
//! tape's backward with central differences in f64 on each draw. The same property run on a version with a
//! deliberately wrong backward must fail, or the test would prove nothing.
//!
//! Run: `cargo run --release --example proptest_gradcheck`

use loopgrad::autograd::gradcheck::gradcheck;
use loopgrad::autograd::{Tape, Var};
use loopgrad::tensor::{Rng, Tensor};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Your composite function: a gated residual, y = rms_norm(x + swiglu(x W^T)), x [rows, d], W [2d, d] -> y
/// [rows, d] (the SwiGLU turns W's 2d outputs, gate and up, back into d). Built from tape ops, so its backward is
/// theirs, composed by the tape.
fn gated_residual(tape: &mut Tape<f64>, v: &[Var]) -> Var {
    let (x, w) = (v[0], v[1]);
    let gate_up = tape.linear(x, w, None); // [rows, 2d]
    let gated = tape.swiglu(gate_up); // [rows, d]
    let h = tape.add(x, gated);
    tape.rms_norm(h, 1e-5)
}

/// The same numbers with a deliberately wrong backward: a "cheaper" version that feeds the gate a detached copy
/// of x, as if x were a constant there. The forward is identical; the gradient loses the path through W to x.
fn gated_residual_wrong(tape: &mut Tape<f64>, v: &[Var]) -> Var {
    let (x, w) = (v[0], v[1]);
    let x_const = tape.detach(x);
    let gate_up = tape.linear(x_const, w, None);
    let gated = tape.swiglu(gate_up);
    let h = tape.add(x, gated);
    tape.rms_norm(h, 1e-5)
}

/// Inputs for one draw: x [rows, d] and W [2d, d], standard normal from `seed`.
fn inputs(rows: usize, d: usize, seed: u64) -> Vec<Tensor<f64>> {
    let mut rng = Rng::new(seed);
    let mut normal = |shape: &[usize]| {
        let mut t = Tensor::uninit(shape);
        rng.fill_normal(t.data_mut(), 1.0);
        t
    };
    vec![normal(&[rows, d]), normal(&[2 * d, d])]
}

/// Draws (rows 1..=3, width 2..=6, seed) and checks `f`'s backward on each; the first failing draw, shrunk to the
/// smallest proptest finds, is the error.
fn check_property(
    name: &str,
    f: fn(&mut Tape<f64>, &[Var]) -> Var,
) -> Result<(), proptest::test_runner::TestError<(usize, usize, u64)>> {
    // A fixed seed, so that a run is repeatable (`TestRunner::new(config)` draws afresh each run).
    let mut runner = TestRunner::new_with_rng(
        Config { cases: 24, failure_persistence: None, ..Config::default() },
        proptest::test_runner::TestRng::deterministic_rng(proptest::test_runner::RngAlgorithm::ChaCha),
    );
    runner.run(&(1usize..=3, 2usize..=6, any::<u64>()), |(rows, d, seed)| {
        gradcheck(name, &inputs(rows, d, seed), f).map_err(|e| TestCaseError::fail(e.to_string()))
    })
}

fn main() {
    match check_property("gated_residual", gated_residual) {
        Ok(()) => println!("gated_residual: backward matches finite differences on 24 random shapes and inputs"),
        Err(e) => panic!("{e}"),
    }
    match check_property("gated_residual_wrong", gated_residual_wrong) {
        Ok(()) => panic!("the wrong backward passed: the property proves nothing"),
        Err(e) => println!("gated_residual_wrong: caught, as it must be:\n  {e}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn right_backward_passes_and_wrong_backward_is_caught() {
        super::main();
    }
}
