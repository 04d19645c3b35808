//! The whole-model oracle: one supervision step of a small TRM-MLP, TRM-Att and HRM against the independent
//! PyTorch implementation in `tests/oracle/trm_reference.py` (fixtures committed under `tests/oracle/fixtures/`;
//! the script's docstring says how to regenerate them). The same weights, carry and batch go in; the logits,
//! Q-values, new carry, loss, HRM's continue target and the gradient of every trained tensor must come out
//! equal: to 1e-4 relative in f32 and 1e-12 in f64 (PyTorch ran in f64 from the f32 weights).

use loopgrad_autograd::Tape;
use loopgrad_models::{act_loss, Batch, Carry, GradWindow, HrmConfig, Model, ModelConfig, TrmConfig};
use loopgrad_tensor::{Float, Tensor};
use safetensors::{Dtype, SafeTensors};
use std::path::PathBuf;

struct Fixture {
    name: &'static str,
    bytes: Vec<u8>,
}

impl Fixture {
    fn load(name: &'static str) -> Fixture {
        let path =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../tests/oracle/fixtures/{name}.safetensors"));
        let bytes =
            std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (the fixture is committed)", path.display()));
        Fixture { name, bytes }
    }

    fn tensors(&self) -> SafeTensors<'_> {
        SafeTensors::deserialize(&self.bytes).unwrap_or_else(|e| panic!("{}: {e}", self.name))
    }

    fn config(&self) -> ModelConfig {
        let (_, meta) = SafeTensors::read_metadata(&self.bytes).unwrap();
        let json = &meta.metadata().as_ref().expect("metadata")["config"];
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{}: config {json}: {e}", self.name))
    }

    fn has(&self, key: &str) -> bool {
        self.tensors().names().iter().any(|n| *n == key)
    }

    /// (values as f64, shape) of any float or integer tensor.
    fn get(&self, key: &str) -> (Vec<f64>, Vec<usize>) {
        let st = self.tensors();
        let t = st.tensor(key).unwrap_or_else(|e| panic!("{}: tensor {key}: {e}", self.name));
        let d = t.data();
        let v: Vec<f64> = match t.dtype() {
            Dtype::F32 => d.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap()) as f64).collect(),
            Dtype::F64 => d.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap())).collect(),
            Dtype::I64 => d.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap()) as f64).collect(),
            other => panic!("{}: tensor {key}: unexpected dtype {other:?}", self.name),
        };
        (v, t.shape().to_vec())
    }

    fn tensor<E: Float>(&self, key: &str) -> Tensor<E> {
        let (v, shape) = self.get(key);
        Tensor::from_vec(v.into_iter().map(E::from_f64).collect(), &shape)
    }

    fn ints(&self, key: &str) -> Vec<usize> {
        self.get(key).0.into_iter().map(|x| x as usize).collect()
    }
}

/// The largest |actual - expected| over the tensor, relative to the tensor's largest |expected|.
fn rel_err<E: Float>(actual: &[E], expected: &[f64]) -> f64 {
    assert_eq!(actual.len(), expected.len());
    let scale = expected.iter().fold(0.0f64, |m, x| m.max(x.abs())).max(1e-30);
    actual.iter().zip(expected).map(|(a, e)| (a.to_f64() - e).abs()).fold(0.0, f64::max) / scale
}

/// Runs the fixture's step in precision E and returns every comparison as (what, relative error).
fn run<E: Float>(fx: &Fixture, config: &ModelConfig) -> Vec<(String, f64)> {
    let (model, mut store) = Model::build::<E>(config, 0);
    // Every tensor the model declares comes from the fixture, with its shape checked.
    for p in store.ids().collect::<Vec<_>>() {
        let name = store.name(p).to_string();
        let t = fx.tensor::<E>(&name);
        assert_eq!(t.shape(), store.shape(p), "{}: {name}", fx.name);
        store.value_mut(p).copy_from(&t);
    }
    let declared = store.len();
    let in_fixture = fx.tensors().names().iter().filter(|n| n.starts_with("inner.")).count();
    assert_eq!(declared, in_fixture, "{}: the fixture holds tensors the model does not declare", fx.name);

    let batch = Batch {
        inputs: fx.ints("batch.inputs"),
        labels: fx.ints("batch.labels"),
        puzzle_ids: fx.ints("batch.puzzle_identifiers"),
    };
    let carry = Carry { states: vec![fx.tensor::<E>("carry.0"), fx.tensor::<E>("carry.1")] };
    let mut tape = Tape::new(store);
    let mut out = model.supervision_step(&mut tape, carry, &batch);
    let target = fx.has("batch.is_last_step").then(|| {
        let last: Vec<bool> = fx.ints("batch.is_last_step").iter().map(|&x| x == 1).collect();
        model.q_continue_target(&mut tape, &out.carry, &batch, &last)
    });
    let loss = act_loss(&mut tape, &out, &batch, target.as_ref().map(|t| t.data()), &mut Vec::new());
    model.backward(&mut tape, loss.loss, &mut out);

    let mut errs = vec![
        ("logits".to_string(), rel_err(tape.value(out.logits).data(), &fx.get("out.logits").0)),
        ("q_halt".to_string(), rel_err(tape.value(out.q_halt).data(), &fx.get("out.q_halt").0)),
        ("q_continue".to_string(), rel_err(tape.value(out.q_continue).data(), &fx.get("out.q_continue").0)),
        ("loss".to_string(), rel_err(tape.value(loss.loss).data(), &fx.get("out.loss").0)),
    ];
    for (i, state) in out.carry.states.iter().enumerate() {
        errs.push((format!("carry.{i}"), rel_err(state.data(), &fx.get(&format!("out.carry.{i}")).0)));
    }
    if let Some(t) = &target {
        errs.push(("target_q_continue".to_string(), rel_err(t.data(), &fx.get("out.target_q_continue").0)));
    }
    let mut grads = 0;
    for p in tape.params.ids() {
        let name = tape.params.name(p);
        if tape.params.is_trainable(p) {
            let expected = fx.get(&format!("grad.{name}")).0;
            assert!(
                expected.iter().any(|&g| g != 0.0),
                "{}: grad.{name} is all zero: the test would prove nothing",
                fx.name
            );
            errs.push((format!("grad.{name}"), rel_err(tape.params.grad(p).data(), &expected)));
            grads += 1;
        }
    }
    assert!(grads >= 8, "{}: only {grads} gradients compared", fx.name);
    errs
}

fn check(name: &'static str) {
    let fx = Fixture::load(name);
    let config = fx.config();
    for (precision, tol, errs) in [("f64", 1e-12, run::<f64>(&fx, &config)), ("f32", 1e-4, run::<f32>(&fx, &config))] {
        let worst = errs.iter().cloned().fold((String::new(), 0.0), |a, b| if b.1 > a.1 { b } else { a });
        println!("{name} {precision}: {} tensors compared, worst {} at {:.2e}", errs.len(), worst.0, worst.1);
        for (what, err) in &errs {
            assert!(
                *err <= tol,
                "{name} {precision}: {what} differs from PyTorch by {err:.3e} relative (tolerance {tol:e})"
            );
        }
    }
}

#[test]
fn trm_mlp_matches_pytorch() {
    check("trm_mlp");
}

#[test]
fn trm_att_matches_pytorch() {
    check("trm_att");
}

#[test]
fn hrm_matches_pytorch() {
    check("hrm");
}

/// The negative control: the same fixture with the wrong gradient window (full backprop for TRM, TRM's last
/// recursion for HRM) must fail, or matching proves nothing about the window.
#[test]
fn a_wrong_gradient_window_does_not_match() {
    for name in ["trm_att", "hrm"] {
        let fx = Fixture::load(name);
        let wrong = match fx.config() {
            ModelConfig::Trm(c) => ModelConfig::Trm(TrmConfig { grad_window: GradWindow::Full, ..c }),
            ModelConfig::Hrm(c) => ModelConfig::Hrm(HrmConfig { grad_window: GradWindow::LastRecursion, ..c }),
            other => panic!("unexpected {other:?}"),
        };
        let errs = run::<f64>(&fx, &wrong);
        let forward_ok = errs.iter().filter(|(w, _)| !w.starts_with("grad.")).all(|(_, e)| *e < 1e-12);
        let worst_grad = errs.iter().filter(|(w, _)| w.starts_with("grad.")).map(|(_, e)| *e).fold(0.0, f64::max);
        assert!(forward_ok, "{name}: the window must not change the forward");
        assert!(worst_grad > 1e-2, "{name}: a wrong window gave gradients within {worst_grad:e}");
    }
}
