//! `loopgrad bench` times the trainer's own step: the loss it reports is the loss `Trainer::train_step` gives on
//! the same seed, for TRM and HRM.

mod common;

use common::{loopgrad, tmp};
use loopgrad::train::bench::BenchShape;
use loopgrad::train::Trainer;
use serde_json::Value;

/// `loopgrad bench` with these flags; its JSON line.
fn bench(args: &[&str], name: &str) -> Value {
    let d = tmp("bench", name);
    let out = loopgrad(args, &d);
    assert!(out.status.success(), "bench failed: {}", String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(&d);
    serde_json::from_slice(&out.stdout).expect("bench prints one JSON line")
}

#[test]
fn bench_loss_equals_the_trainers_on_the_same_seed() {
    // The bench's thread count here too, so that both split their products alike.
    loopgrad::tensor::set_threads(1);
    let flags = ["--hidden", "16", "--heads", "2", "--T", "2", "--n", "2", "--seq", "16", "--vocab", "6"];
    let flags = [&flags[..], &["--prefix", "2", "--batch", "4", "--seed", "7", "--threads", "1"]].concat();
    for (model, arch) in [("trm", "mlp"), ("trm", "att"), ("hrm", "att")] {
        // One warm-up step and two timed ones: the reported loss is the third step's.
        let args = [&["bench", "--model", model, "--arch", arch, "--warmup", "1", "--steps", "2"], &flags[..]].concat();
        let line = bench(&args, &format!("{model}-{arch}"));

        let shape = BenchShape { seed: 7, ..BenchShape::tiny(model == "hrm", arch == "mlp") };
        let train = shape.examples();
        let mut trainer = Trainer::new(shape.train_config(), &train).unwrap();
        let losses: Vec<f64> = (0..3).map(|_| trainer.train_step(&train).unwrap().loss).collect();
        let rounded = (losses[2] * 1e6).round() / 1e6;
        assert_eq!(line["loss"].as_f64(), Some(rounded), "{model} {arch}: bench {line} vs trainer {losses:?}");
        assert_ne!(losses[0], losses[2], "{model} {arch}: the steps train");
        // Every figure says which kernels made it, the element-wise width included.
        for key in ["gemm", "f32_gemm", "bf16_gemm", "amx", "elementwise"] {
            assert!(line["kernels"][key].as_str().is_some_and(|k| !k.is_empty()), "kernels.{key} in {line}");
        }
    }
}
