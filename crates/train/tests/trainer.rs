//! The trainer end to end on a tiny preset: resume continues bit for bit, a non-finite loss stops the run,
//! evaluation runs exactly the asked number of supervision steps.

use loopgrad_models::step::{Batch, IGNORE_LABEL};
use loopgrad_train::{data, evaluate, TrainConfig, Trainer};
use std::path::PathBuf;

fn smoke() -> (TrainConfig, data::Datasets) {
    let config = TrainConfig::preset("smoke").unwrap();
    let sets = data::load(&config.data).unwrap();
    (config, sets)
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("loopgrad-trainer-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn weights(t: &Trainer) -> Vec<(String, Vec<f32>)> {
    let s = &t.tape.params;
    s.ids().map(|p| (s.name(p).to_string(), s.value(p).to_vec())).collect()
}

#[test]
fn train_k_save_resume_equals_training_straight_through() {
    let (config, sets) = smoke();
    let config = config.with_overrides(&["run.steps=8".into()]).unwrap();
    let mut straight = Trainer::new(config.clone(), &sets.train).unwrap();
    for _ in 0..8 {
        straight.train_step(&sets.train).unwrap();
    }

    let dir = tmp("resume");
    let path = dir.join("checkpoint.safetensors");
    let mut first = Trainer::new(config.clone(), &sets.train).unwrap();
    for _ in 0..3 {
        first.train_step(&sets.train).unwrap();
    }
    first.save_checkpoint(&path).unwrap();
    drop(first);
    let mut resumed = Trainer::new(Trainer::checkpoint_config(&path).unwrap(), &sets.train).unwrap();
    resumed.load_checkpoint(&path, sets.train.len()).unwrap();
    assert_eq!(resumed.step(), 3);
    let mut last = None;
    for _ in 3..8 {
        last = Some(resumed.train_step(&sets.train).unwrap());
    }
    assert_eq!(last.unwrap().step, 8);
    assert_eq!(weights(&resumed), weights(&straight), "resumed weights differ from the uninterrupted run");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_non_finite_loss_stops_with_the_step_number_and_leaves_the_weights_alone() {
    let (config, sets) = smoke();
    // A learning rate this large overflows the weights within a few steps.
    let config = config.with_overrides(&["optim.lr=1e30".into(), "optim.schedule.warmup_steps=0".into()]).unwrap();
    let mut t = Trainer::new(config, &sets.train).unwrap();
    let mut failure = None;
    for _ in 0..20 {
        let before = weights(&t);
        match t.train_step(&sets.train) {
            Ok(_) => {}
            Err(e) => {
                assert_eq!(weights(&t), before, "a failed step must not update the weights");
                failure = Some(e.to_string());
                break;
            }
        }
    }
    let msg = failure.expect("the loss never became non-finite");
    assert!(msg.contains("at step") && msg.contains("optim.lr = 1e30"), "{msg}");
}

#[test]
fn evaluation_runs_exactly_the_requested_supervision_steps() {
    let (config, sets) = smoke();
    let mut t = Trainer::new(config, &sets.train).unwrap();
    t.train_step(&sets.train).unwrap();
    let n = 5;
    let (eval, _) = evaluate(&t.model, &mut t.tape, &sets.test, n, 3, 4);
    assert_eq!((eval.examples, eval.steps), (n, 3));
    // The same by hand: 3 no-grad steps from the init carry on the first 5 examples, loss at the last one.
    let l = sets.test.seq_len();
    let mut batch = Batch { inputs: vec![0; n * l], labels: vec![0; n * l], puzzle_ids: vec![0; n] };
    for i in 0..n {
        loopgrad_train::trainer::fill_row(&mut batch, i, &sets.test, i);
    }
    let mut carry = t.model.initial_carry(&t.tape.params, n);
    let mut losses = Vec::new();
    for _ in 0..3 {
        let (next, ce) = t.tape.no_grad(|tape| {
            let out = t.model.supervision_step(tape, carry, &batch);
            let ce = tape.stablemax_ce(out.logits, &batch.labels, IGNORE_LABEL);
            (out.carry, tape.value(ce).to_vec())
        });
        t.tape.reset();
        carry = next;
        losses = ce;
    }
    let mean = losses.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
    assert_eq!(eval.loss, mean);
    let (two, _) = evaluate(&t.model, &mut t.tape, &sets.test, n, 2, 4);
    assert_ne!(two.loss, eval.loss, "2 and 3 supervision steps must differ");
}

/// Replaces the `train.state` metadata of a checkpoint with `edit` applied to it (offsets are relative to the end
/// of the header, so the tensor bytes are kept as they are).
fn edit_state(path: &std::path::Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let mut state: serde_json::Value =
        serde_json::from_str(header["__metadata__"]["train.state"].as_str().unwrap()).unwrap();
    edit(&mut state);
    header["__metadata__"]["train.state"] = serde_json::Value::String(state.to_string());
    let text = header.to_string();
    let out = [&(text.len() as u64).to_le_bytes()[..], text.as_bytes(), &bytes[8 + n..]].concat();
    std::fs::write(path, out).unwrap();
}

#[test]
fn a_tampered_train_state_that_would_hang_or_overflow_is_refused_naming_the_field() {
    let (config, sets) = smoke();
    let dir = tmp("tampered");
    let path = dir.join("checkpoint.safetensors");
    let mut t = Trainer::new(config.clone(), &sets.train).unwrap();
    t.train_step(&sets.train).unwrap();
    t.save_checkpoint(&path).unwrap();
    let pristine = std::fs::read(&path).unwrap();
    type Edit = fn(&mut serde_json::Value);
    let cases: [(Edit, &str); 3] = [
        // Was: a hang (an all-zero xoshiro state only ever draws 0, and `Rng::below` rejects 0 forever).
        (|s| s["rng"] = serde_json::json!([0, 0, 0, 0]), "rng is all zeros, a state the generator never leaves"),
        // Was: "attempt to add with overflow" counting the slot's next step.
        (
            |s| s["slots"]["steps"][3] = serde_json::json!(u32::MAX),
            "slot 3 has taken 4294967295 steps, more than N_sup = 2",
        ),
        // Was: "attempt to add with overflow" starting the next epoch.
        (|s| s["stream_epoch"] = serde_json::json!(u64::MAX), "stream_epoch 18446744073709551615 leaves no next epoch"),
    ];
    for (edit, want) in cases {
        std::fs::write(&path, &pristine).unwrap();
        edit_state(&path, edit);
        let mut resumed = Trainer::new(config.clone(), &sets.train).unwrap();
        let err = resumed.load_checkpoint(&path, sets.train.len()).unwrap_err().to_string();
        assert_eq!(err, format!("{}: metadata `train.state`: {want}", path.display()));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
