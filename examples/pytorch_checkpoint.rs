//! Loading a PyTorch safetensors checkpoint and evaluating it.
//!
//! The file is `tests/oracle/fixtures/eval/trm_mlp_sudoku6.safetensors`: a TRM-MLP trained for a few seconds by an
//! independent PyTorch implementation (`tests/oracle/trm_reference.py`) and saved with the reference's tensor
//! names (`inner.L_level.layers.0.mlp.gate_up_proj.weight`, ...), no loopgrad config inside. loopgrad declares
//! the same names, so loading is "build the model, read every parameter by name". Then 3 supervision steps on
//! 16 6x6 Sudoku puzzles, scored as PyTorch scored them (`expected.json` beside the checkpoint).
//!
//! Run: `cargo run --release --example pytorch_checkpoint`

use loopgrad::autograd::Tape;
use loopgrad::models::{presets, Model};
use loopgrad::nn::checkpoint::{CheckpointReader, Policy};
use loopgrad::train::{data, evaluate, EvalResult};
use std::path::Path;

/// Evaluates the PyTorch checkpoint for `steps` supervision steps.
fn evaluate_pytorch_checkpoint(steps: usize) -> Result<EvalResult, Box<dyn std::error::Error>> {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/fixtures/eval");

    // 1. The architecture: the file has weights only, so say which model they are (the preset PyTorch mirrored).
    let config = presets::get("trm-mlp-sudoku6-cpu")?;
    let mut reader = CheckpointReader::open(&fixtures.join("trm_mlp_sudoku6.safetensors"))?;
    // Checked from the file's header alone: every tensor the model declares is there with its shape.
    config.check_weights(&reader)?;

    // 2. Build it (the random init is overwritten) and read every parameter by name. A missing or misshapen
    //    tensor is an error naming it; nothing is written unless everything fits.
    let (model, store) = Model::build::<f32>(&config, 0);
    let mut tape = Tape::new(store);
    reader.load_params(&mut tape.params, Policy::Error)?;
    // Any tensor of the file that no parameter took (none here) is listed, not silently dropped.
    let ignored = reader.finish(Policy::Ignore)?;
    println!("loaded {} tensors; ignored {ignored:?}", tape.params.ids().count());

    // 3. The puzzles (a CSV of `loopgrad data`'s format) and the evaluation: `steps` supervision steps without a
    //    tape from the init carry, batch 16, scored at the last step.
    let puzzles = data::load_test_file("sudoku", &fixtures.join("sudoku6.csv"), 0)?;
    let (result, _predictions) = evaluate(&model, &mut tape, &puzzles, 0, steps, 16);
    Ok(result)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let r = evaluate_pytorch_checkpoint(3)?;
    println!(
        "{} puzzles, {} supervision steps: loss {:.6}, exact {:.4}, tokens {:.4}",
        r.examples, r.steps, r.loss, r.exact_accuracy, r.token_accuracy
    );
    // What PyTorch computed for the same weights and puzzles (tests/oracle/fixtures/eval/expected.json).
    println!("PyTorch:                          loss 1.406548, exact 0.3125, tokens 0.5938");
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The numbers PyTorch computed (`expected.json`, run "steps": 3): exact and token accuracy exactly (no argmax
    /// is near a tie), the loss to 1e-4 relative (PyTorch ran in float64).
    #[test]
    fn matches_pytorch() {
        let r = super::evaluate_pytorch_checkpoint(3).unwrap();
        assert_eq!((r.examples, r.exact_accuracy, r.token_accuracy), (16, 0.3125, 0.59375));
        assert!((r.loss - 1.4065478914960825).abs() < 1e-4 * 1.41, "loss {}", r.loss);
    }
}
