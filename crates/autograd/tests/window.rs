//! The gradient window driver on a 2-layer TRM-style net: recomputation gives the gradients of full backprop,
//! and the memory of each window behaves as designed when the number of recursions T grows.
//!
//! Run with `--nocapture` to see the peak-memory table.

mod common;

use common::*;
use loopgrad_autograd::{run_recursions, GradWindow, Tape};
use loopgrad_tensor::{pool, Rng, Tensor};

/// Gradients of one TRM supervision step: every parameter's, and those of the dense input x_in and of the
/// carry init (y0, z0), all leaves.
struct StepGrads {
    params: NamedGrads<f64>,
    leaves: NamedGrads<f64>,
}

/// One step: x = embed(ids) + x_in, T latent recursions of n = 2 net calls + 1 under `window`, logits, a fixed
/// projection of them as the loss, backward (and the recomputation, if any).
fn step(model: &mut Model<f64>, variant: Variant, recursions: usize, window: GradWindow) -> StepGrads {
    let dims = model.dims;
    let (ids, y0, z0) = model.inputs(11);
    let mut rng = Rng::new(5);
    let mut x_in = Tensor::uninit([dims.batch, dims.seq, dims.d]);
    rng.fill_normal(x_in.data_mut(), 0.5);
    let mut proj = Tensor::uninit([dims.batch, dims.seq, dims.vocab]);
    rng.fill_normal(proj.data_mut(), 1.0);

    let mut tape = Tape::new(std::mem::take(&mut model.params));
    tape.params.zero_grad();
    let x_in = tape.leaf(x_in);
    let x = embed(&mut tape, model, &ids, Some(x_in));
    let rope = rope_consts(&mut tape, dims, variant);
    let (y0, z0) = (tape.leaf(y0), tape.leaf(z0));
    let mut state = [y0, z0];
    let rec = TrmRecursion { net: &model.net, n: 2, x, rope };
    let run = run_recursions(&mut tape, &rec, &mut state, recursions, window);
    let logits = head(&mut tape, model, state[0]);
    let proj = tape.constant(proj);
    let weighted = tape.mul(logits, proj);
    let loss = tape.sum(weighted);
    tape.backward(loss);
    run.finish_backward(&mut tape, &rec);

    let leaf = |tape: &Tape<f64>, name: &str, v| (name.to_string(), tape.grad(v).map_or(Vec::new(), |g| g.to_vec()));
    let leaves = vec![leaf(&tape, "x_in", x_in), leaf(&tape, "y0", y0), leaf(&tape, "z0", z0)];
    let params = param_grads(&tape.params);
    tape.reset();
    model.params = std::mem::take(&mut tape.params);
    StepGrads { params, leaves }
}

#[test]
fn full_recompute_gives_the_gradients_of_full_backprop() {
    for variant in [Variant::Attention, Variant::Mlp] {
        for recursions in [1, 2, 3, 5] {
            let mut model = Model::<f64>::trm(SMALL, variant, 2, 7);
            let full = step(&mut model, variant, recursions, GradWindow::Full);
            let recomputed = step(&mut model, variant, recursions, GradWindow::FullRecompute);
            let (dp, dl) =
                (max_rel_diff(&recomputed.params, &full.params), max_rel_diff(&recomputed.leaves, &full.leaves));
            assert!(dp < 1e-12 && dl < 1e-12, "{variant:?}, T = {recursions}: params {dp:e}, inputs {dl:e}");
            // The gradient really reaches the embeddings, x and the carry init through all T recursions.
            for (name, g) in full.params.iter().chain(&full.leaves) {
                assert!(g.iter().any(|v| v.abs() > 1e-8), "{variant:?}, T = {recursions}: {name} has no gradient");
            }
        }
    }
}

#[test]
fn truncated_windows_stop_at_the_carry() {
    let mut model = Model::<f64>::trm(SMALL, Variant::Attention, 2, 7);
    let last = step(&mut model, Variant::Attention, 3, GradWindow::LastRecursion);
    let (y0, z0) = (&last.leaves[1].1, &last.leaves[2].1);
    assert!(y0.is_empty() && z0.is_empty(), "no gradient may reach the carry init through no-grad recursions");
    let full = step(&mut model, Variant::Attention, 3, GradWindow::Full);
    assert!(max_rel_diff(&last.params, &full.params) > 1e-6, "the windows must differ on T = 3");
    // A window covering every call is full backprop.
    let all = step(&mut model, Variant::Attention, 3, GradWindow::LastCalls(9));
    assert!(max_rel_diff(&all.params, &full.params) == 0.0);
}

/// The peak number of pool elements live during one step, above what was live before it.
fn peak_elements(model: &mut Model<f64>, recursions: usize, window: GradWindow) -> usize {
    pool::reset_high_water::<f64>();
    let before = pool::stats::<f64>().live;
    step(model, Variant::Attention, recursions, window);
    pool::stats::<f64>().high_water - before
}

#[test]
fn peak_memory_by_window_as_recursions_grow() {
    let dims = Dims { batch: 4, seq: 16, d: 32, heads: 4, inter: 64, inter_seq: 32, vocab: 10 };
    let mut model = Model::<f64>::trm(dims, Variant::Attention, 2, 3);
    let carry = 2 * dims.batch * dims.seq * dims.d;
    let windows = [GradWindow::LastRecursion, GradWindow::Full, GradWindow::FullRecompute];
    println!("peak pool elements per step (carry [y, z] = {carry} elements), n = 2, 2 layers");
    println!("{:>3} {:>15} {:>15} {:>15}", "T", "last_recursion", "full", "full_recompute");
    let mut peaks = Vec::new();
    for recursions in [2, 4, 8, 16] {
        let row: Vec<usize> = windows.iter().map(|&w| peak_elements(&mut model, recursions, w)).collect();
        println!("{recursions:>3} {:>15} {:>15} {:>15}", row[0], row[1], row[2]);
        peaks.push((recursions, row));
    }
    let (first, last) = (&peaks[0].1, &peaks[3].1);
    let growth = |i: usize| last[i] as f64 / first[i] as f64;
    assert!((growth(0) - 1.0).abs() < 0.05, "last_recursion: T = 2 -> 16 changes the peak by {:.3}x", growth(0));
    // Recomputation keeps one carry per recursion and about two recursions' activations: from T = 2 to 16 its
    // peak may grow by the 14 extra checkpoints, and by nothing else.
    let extra = last[2] as i64 - first[2] as i64;
    assert!(extra <= 14 * carry as i64, "full_recompute grew by {extra} elements, more than 14 carries");
    // Full backprop keeps every recursion's activations: it grows far faster.
    assert!(last[1] > 3 * last[2], "full {} vs full_recompute {}", last[1], last[2]);
}
