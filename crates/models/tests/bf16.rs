//! The bf16 path on whole models: one supervision step's loss in bf16 (every product with bf16 operands and f32
//! sums) against the same step in f32, from the same weights, carry and batch.
//!
//! The bound. bf16 rounding has unit roundoff u = 2^-8, so each rounded product is off by at most 2u relative to
//! the sum of its terms' magnitudes (`loopgrad_autograd::gradcheck::gradcheck_bf16`'s doc). The RMS norms after
//! every residual add rescale each row, so relative errors do not grow with the activations' size, but they do
//! add up over the products in sequence: these shapes (T 2, n 2, 2 layers of 2 MLPs of 2 products each, then
//! the heads) run about 50 products in sequence. Worst case in the same direction each time, the logits would
//! move by up to 50 x 2u = 0.39 of their largest magnitude; rounding errors of random sign grow like the square
//! root of their count instead: sqrt(50) x 2u = 0.055, the estimate used here. The cross-entropy is
//! logsumexp(z) - z_label per position, a difference of two functions that each move by at most max |dz| (both
//! are 1-Lipschitz in the largest-element norm), and the halting BCE likewise in q; so the loss moves by at
//! most 2 max |dz|, and the test allows |loss_bf16 - loss_f32| <= 2 x 0.055 x max |z|.

use loopgrad_autograd::Tape;
use loopgrad_models::{act_loss, Batch, Model, ModelConfig};
use loopgrad_tensor::{Precision, Rng};

fn loss(config: &ModelConfig, precision: Precision) -> (f32, f32) {
    let (model, store) = Model::build::<f32>(config, 3);
    let mut tape = Tape::new(store);
    tape.set_precision(precision);
    let (b, l) = (8, config.io().seq_len);
    let vocab = config.io().vocab_size;
    let mut rng = Rng::new(11);
    let batch = Batch {
        inputs: (0..b * l).map(|_| 1 + rng.below(vocab - 1)).collect(),
        labels: (0..b * l).map(|_| 2 + rng.below(vocab - 2)).collect(),
        puzzle_ids: vec![0; b],
    };
    let carry = model.initial_carry(&tape.params, b);
    let out = model.supervision_step(&mut tape, carry, &batch);
    let logits = tape.value(out.logits);
    let largest = logits.data().iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let loss = act_loss(&mut tape, &out, &batch, None, &mut Vec::new()).loss;
    (tape.value(loss).item(), largest)
}

#[test]
fn a_bf16_step_has_the_f32_steps_loss_within_the_rounding_bound() {
    for name in ["trm-mlp-sudoku6-cpu", "trm-att-sudoku6-cpu", "hrm-sudoku6-cpu"] {
        let config = loopgrad_models::presets::get(name).unwrap();
        let (f32_loss, largest) = loss(&config, Precision::F32);
        let (bf16_loss, _) = loss(&config, Precision::Bf16);
        let bound = 2.0 * 0.055 * largest;
        let diff = (bf16_loss - f32_loss).abs();
        assert!(diff <= bound, "{name}: bf16 loss {bf16_loss} vs f32 {f32_loss}: {diff:.2e} > {bound:.2e}");
        assert!(diff > 0.0, "{name}: the bf16 step gave the f32 loss to the bit (did it round anything?)");
        eprintln!("{name}: f32 loss {f32_loss}, bf16 {bf16_loss}, |diff| {diff:.2e}, bound {bound:.2e}");
    }
}
