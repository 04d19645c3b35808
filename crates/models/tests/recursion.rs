//! Whole-model gradient checks and recursion invariants, in f64 on tiny models.
//!
//! A truncated gradient (TRM's last recursion, HRM's 1-step) is not the gradient of the whole step, so it
//! cannot be checked against finite differences of the whole step. What it must be is the exact gradient of
//! the *recorded part*, with everything before it a constant: the state after the untaped calls is computed
//! once, and finite differences of "that state -> the recorded calls -> heads -> loss" (perturbing every
//! weight, which also moves x) must equal the gradient the real supervision step produced.

use loopgrad_autograd::gradcheck::GradCheck;
use loopgrad_autograd::{ParamStore, Recurrence, Tape, Var};
use loopgrad_models::{
    act_loss, BaselineConfig, Batch, Carry, GradWindow, HrmConfig, Model, ModelConfig, Reasoner, StepOutput, TrmConfig,
    TrmVariant,
};
use loopgrad_tensor::{Rng, Tensor};

fn tiny_trm(variant: TrmVariant, mlp_t: bool, grad_window: GradWindow) -> TrmConfig {
    let ModelConfig::Trm(c) = loopgrad_models::presets::get("trm-tiny").unwrap() else { unreachable!() };
    TrmConfig { variant, mlp_t, grad_window, num_layers: 2, h_cycles: 3, l_cycles: 2, ..c }
}

fn tiny_hrm(grad_window: GradWindow) -> HrmConfig {
    let ModelConfig::Hrm(c) = loopgrad_models::presets::get("hrm-sudoku").unwrap() else { unreachable!() };
    HrmConfig {
        seq_len: 6,
        vocab_size: 5,
        num_puzzle_identifiers: 3,
        hidden_size: 8,
        num_heads: 2,
        h_layers: 1,
        l_layers: 2,
        grad_window,
        ..c
    }
}

/// The model's tensors with the zero-initialised ones (q_head weight, puzzle embeddings) made random, so that
/// every gradient path is exercised.
fn randomise(store: &mut ParamStore<f64>, seed: u64) {
    let mut rng = Rng::new(seed);
    for name in ["inner.q_head.weight", "inner.puzzle_emb.weights"] {
        let p = store.get(name).unwrap();
        rng.fill_normal(store.value_mut(p).data_mut(), 0.5);
    }
}

fn batch() -> Batch {
    Batch {
        inputs: vec![1, 2, 3, 4, 1, 2, 4, 3, 2, 1, 1, 3],
        labels: vec![2, 3, 4, 2, 3, 4, 0, 0, 3, 2, 4, 1],
        puzzle_ids: vec![2, 0],
    }
}

/// A carry that differs from position to position (init vectors plus noise).
fn carry<R: Reasoner>(m: &R, store: &ParamStore<f64>, seed: u64) -> Carry<f64> {
    noisy(m.initial_carry(store, 2), seed)
}

/// `c` plus noise.
fn noisy(mut c: Carry<f64>, seed: u64) -> Carry<f64> {
    let mut rng = Rng::new(seed);
    for s in &mut c.states {
        s.data_mut().iter_mut().for_each(|v| *v += 0.3 * rng.normal());
    }
    c
}

/// The loss of a step's outputs, as the trainer computes it.
fn loss(tape: &mut Tape<f64>, logits: Var, q_halt: Var, q_continue: Var, b: &Batch) -> Var {
    let out = StepOutput { logits, q_halt, q_continue, carry: Carry::default(), recursion: None };
    act_loss(tape, &out, b, None, &mut Vec::new()).loss
}

/// Checks the truncated gradient of `m`'s window against finite differences of its recorded part.
fn check_window<R: Reasoner>(what: &str, m: &R, mut store: ParamStore<f64>) {
    randomise(&mut store, 11);
    let b = batch();
    let c0 = carry(m, &store, 5);
    let mut tape = Tape::new(store);

    // 1. The real step's gradient.
    let mut out = m.supervision_step(&mut tape, c0.clone(), &b);
    let l = loss(&mut tape, out.logits, out.q_halt, out.q_continue, &b);
    m.backward(&mut tape, l, &mut out);
    let ids: Vec<_> = tape.params.ids().filter(|&p| tape.params.is_trainable(p)).collect();
    let step_grads: Vec<Tensor<f64>> = ids.iter().map(|&p| tape.params.grad(p).clone()).collect();
    tape.reset();

    // 2. The state after the untaped calls, computed once.
    let x = m.io().input_embeddings(&mut tape, &b);
    let rope = m.io().rope_constants(&mut tape);
    let calls = m.calls::<f64>(x, rope);
    let per = calls.calls_per_recursion();
    let total = per * m.recursions();
    let first_recorded = total - m.window().recorded_calls(m.recursions(), per);
    let mut state: Vec<Var> = c0.states.iter().map(|t| tape.constant(t.clone())).collect();
    tape.no_grad(|t| (0..first_recorded).for_each(|i| calls.call(t, &mut state, i % per)));
    let frozen: Vec<Tensor<f64>> = state.iter().map(|&v| tape.value(v).clone()).collect();
    drop(calls);
    tape.reset();

    // 3. The recorded part as a function of the weights, from the frozen state.
    let recorded_part = |t: &mut Tape<f64>, _: &[Var]| {
        let x = m.io().input_embeddings(t, &b);
        let rope = m.io().rope_constants(t);
        let calls = m.calls::<f64>(x, rope);
        let mut s: Vec<Var> = frozen.iter().map(|v| t.constant(v.clone())).collect();
        (first_recorded..total).for_each(|i| calls.call(t, &mut s, i % per));
        let (logits, q_halt, q_continue) = m.io().heads(t, m.answer(&s));
        loss(t, logits, q_halt, q_continue, &b)
    };
    let check = GradCheck { max_per_tensor: 3, ..GradCheck::default() };
    check.check(what, &mut tape, &[], recorded_part).unwrap_or_else(|e| panic!("{e}"));

    // 4. The real step's gradient is that function's gradient (the check seeded backward with its random
    // projection, so run it once more with seed 1).
    tape.reset();
    tape.params.zero_grad();
    let l = recorded_part(&mut tape, &[]);
    tape.backward(l);
    for (&p, g) in ids.iter().zip(&step_grads) {
        let name = tape.params.name(p).to_string();
        let want = tape.params.grad(p);
        let diff = g.data().iter().zip(want.data()).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(diff < 1e-12, "{what}: {name}: the step's gradient differs from the recorded part's by {diff:e}");
    }
    assert!(step_grads.iter().all(|g| g.data().iter().any(|&v| v != 0.0)), "{what}: a zero gradient proves nothing");
}

fn trm(c: TrmConfig) -> (loopgrad_models::trm::Trm, ParamStore<f64>) {
    let (model, store) = Model::build::<f64>(&ModelConfig::Trm(c), 3);
    let Model::Trm(m) = model else { unreachable!() };
    (m, store)
}

#[test]
fn trm_last_recursion_gradient_is_exact_for_the_recorded_recursion() {
    for mlp_t in [true, false] {
        let (m, store) = trm(tiny_trm(TrmVariant::YZ, mlp_t, GradWindow::LastRecursion));
        check_window(&format!("trm mlp_t={mlp_t}"), &m, store);
    }
}

#[test]
fn trm_variants_and_windows_have_exact_gradients() {
    for (variant, window) in [
        (TrmVariant::SingleZ, GradWindow::LastRecursion),
        (TrmVariant::MultiScaleZ, GradWindow::LastRecursion),
        (TrmVariant::SeparateNets, GradWindow::LastRecursion),
        (TrmVariant::YZ, GradWindow::OneStep),
        (TrmVariant::YZ, GradWindow::LastCalls(5)),
        (TrmVariant::YZ, GradWindow::Full),
        (TrmVariant::YZ, GradWindow::FullRecompute),
    ] {
        let (m, store) = trm(tiny_trm(variant, false, window));
        check_window(&format!("trm {variant:?} {window}"), &m, store);
    }
}

#[test]
fn hrm_one_step_gradient_is_exact_for_the_last_two_calls() {
    let (model, store) = Model::build::<f64>(&ModelConfig::Hrm(tiny_hrm(GradWindow::OneStep)), 4);
    let Model::Hrm(m) = model else { unreachable!() };
    check_window("hrm one_step", &m, store);
}

#[test]
fn hrm_full_window_and_the_baseline_have_exact_gradients() {
    let (model, store) = Model::build::<f64>(&ModelConfig::Hrm(tiny_hrm(GradWindow::Full)), 4);
    let Model::Hrm(m) = model else { unreachable!() };
    check_window("hrm full", &m, store);
    let ModelConfig::Baseline(b) = loopgrad_models::presets::get("baseline-sudoku6-cpu").unwrap() else {
        unreachable!()
    };
    for mlp_t in [true, false] {
        let config = BaselineConfig {
            seq_len: 6,
            vocab_size: 5,
            num_puzzle_identifiers: 3,
            hidden_size: 8,
            num_heads: 2,
            num_layers: 3,
            mlp_t,
            ..b.clone()
        };
        let (model, store) = Model::build::<f64>(&ModelConfig::Baseline(config), 5);
        let Model::Baseline(m) = model else { unreachable!() };
        check_window(&format!("baseline mlp_t={mlp_t}"), &m, store);
    }
}

/// The outputs of one step, copied out.
fn step_values(model: &Model, tape: &mut Tape<f64>, c: Carry<f64>, no_grad: bool) -> Vec<Tensor<f64>> {
    let b = batch();
    let out =
        if no_grad { tape.no_grad(|t| model.supervision_step(t, c, &b)) } else { model.supervision_step(tape, c, &b) };
    let mut v =
        vec![tape.value(out.logits).clone(), tape.value(out.q_halt).clone(), tape.value(out.q_continue).clone()];
    v.extend(out.carry.states);
    tape.reset();
    v
}

#[test]
fn no_grad_forward_equals_the_recorded_forward_bit_for_bit() {
    for config in [
        ModelConfig::Trm(tiny_trm(TrmVariant::YZ, true, GradWindow::LastRecursion)),
        ModelConfig::Trm(tiny_trm(TrmVariant::YZ, false, GradWindow::Full)),
        ModelConfig::Hrm(tiny_hrm(GradWindow::OneStep)),
    ] {
        let (model, store) = Model::build::<f64>(&config, 1);
        let c = model.initial_carry(&store, 2);
        let mut tape = Tape::new(store);
        let recorded = step_values(&model, &mut tape, c.clone(), false);
        let untaped = step_values(&model, &mut tape, c.clone(), true);
        assert_eq!(recorded, untaped, "{}", config.arch());
        // Neither does the window change the forward.
        let other = match &config {
            ModelConfig::Trm(t) => ModelConfig::Trm(TrmConfig { grad_window: GradWindow::OneStep, ..t.clone() }),
            ModelConfig::Hrm(h) => ModelConfig::Hrm(HrmConfig { grad_window: GradWindow::FullRecompute, ..h.clone() }),
            ModelConfig::Baseline(_) => unreachable!(),
        };
        let (model2, _) = Model::build::<f64>(&other, 1);
        assert_eq!(
            step_values(&model2, &mut tape, c, false),
            recorded,
            "{}: window changed the forward",
            config.arch()
        );
    }
}

#[test]
fn full_recompute_gives_the_gradients_of_full() {
    let grads = |window| {
        let (model, mut store) = Model::build::<f64>(&ModelConfig::Trm(tiny_trm(TrmVariant::YZ, false, window)), 2);
        randomise(&mut store, 3);
        let b = batch();
        let c = model.initial_carry(&store, 2);
        let mut tape = Tape::new(store);
        let mut out = model.supervision_step(&mut tape, c, &b);
        let l = act_loss(&mut tape, &out, &b, None, &mut Vec::new()).loss;
        model.backward(&mut tape, l, &mut out);
        tape.params.ids().map(|p| tape.params.grad(p).clone()).collect::<Vec<_>>()
    };
    let (full, recompute, last) =
        (grads(GradWindow::Full), grads(GradWindow::FullRecompute), grads(GradWindow::LastRecursion));
    for (a, b) in full.iter().zip(&recompute) {
        let diff = a.data().iter().zip(b.data()).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
        assert!(diff < 1e-12, "full_recompute differs from full by {diff:e}");
    }
    assert_ne!(full, last, "full and last_recursion must differ, or this test compares nothing");
}

#[test]
fn memory_of_the_untaped_recursions_is_flat_in_t() {
    let live_after_step = |h_cycles| {
        let c = TrmConfig { h_cycles, ..tiny_trm(TrmVariant::YZ, false, GradWindow::LastRecursion) };
        let (model, store) = Model::build::<f32>(&ModelConfig::Trm(c), 0);
        let carry = model.initial_carry(&store, 2);
        let mut tape = Tape::new(store);
        let _out = model.supervision_step(&mut tape, carry, &batch());
        (tape.num_values(), tape.num_nodes())
    };
    assert_eq!(live_after_step(2), live_after_step(8));
}

#[test]
fn halted_slots_reset_to_the_init_vectors_and_others_keep_their_state() {
    let (model, store) =
        Model::build::<f32>(&ModelConfig::Trm(tiny_trm(TrmVariant::YZ, true, GradWindow::LastRecursion)), 0);
    let init = model.initial_carry(&store, 2);
    let y_init = store.value(store.get("inner.H_init").unwrap()).data().to_vec();
    assert!(init.states[0].data().chunks(8).all(|row| row == y_init), "every position of every slot is y_init");
    let mut tape = Tape::new(store);
    let mut c = model.supervision_step(&mut tape, init.clone(), &batch()).carry;
    let stepped = c.clone();
    model.reset_carry(&tape.params, &mut c, &[true, false]);
    let half = c.states[0].numel() / 2;
    for (s, (after, (before, init))) in c.states.iter().zip(stepped.states.iter().zip(&init.states)).enumerate() {
        assert_eq!(after.data()[..half], init.data()[..half], "state {s}: slot 0 is reset");
        assert_eq!(after.data()[half..], before.data()[half..], "state {s}: slot 1 keeps its state");
        assert_ne!(before.data()[half..], init.data()[half..]);
    }
}

/// HRM's computation is TRM's with separate nets: H_cycles recursions of L_cycles updates of z_L = L(z_L, z_H + x)
/// and one z_H = H(z_H, z_L), read out from z_H, as TRM's `separate_nets` runs T recursions of n updates of
/// z = f_L(z, y + x) and one y = f_H(y, z), read out from y. What set the two papers' models apart besides that is
/// the gradient window, the halting target and the prefix. So at equal settings of those, and given the same
/// weights, the two must agree bit for bit: outputs, continue targets, carries and gradients alike. The study's
/// hierarchy conditions (`plans/generalisation-hierarchy-lr.toml`) rest on it. HRM has attention only, so this runs
/// with attention; the study's nets mix tokens with the MLP, through the same recursion code (`TrmCalls`).
#[test]
fn hrm_is_trm_with_separate_nets_at_the_same_window_halting_and_prefix() {
    let step = |config: &ModelConfig, weights: Option<&ParamStore<f64>>| {
        let (model, mut store) = Model::build::<f64>(config, 4);
        match weights {
            Some(w) => {
                let names = |s: &ParamStore<f64>| s.ids().map(|p| s.name(p).to_string()).collect::<Vec<_>>();
                assert_eq!(names(&store), names(w), "{}: the same tensors, in the same order", config.arch());
                for p in w.ids() {
                    *store.value_mut(p) = w.value(p).clone();
                }
            }
            None => randomise(&mut store, 9),
        }
        let b = batch();
        let c = noisy(model.initial_carry(&store, 2), 6);
        let mut tape = Tape::new(store);
        let target = tape.no_grad(|t| model.q_continue_target(t, &c, &b, &[false, true]));
        let mut out = model.supervision_step(&mut tape, c, &b);
        let l = act_loss(&mut tape, &out, &b, Some(target.data()), &mut Vec::new()).loss;
        let mut values = vec![tape.value(l).clone(), tape.value(out.logits).clone(), tape.value(out.q_halt).clone()];
        values.extend([tape.value(out.q_continue).clone(), target]);
        model.backward(&mut tape, l, &mut out);
        values.extend(out.carry.states.iter().cloned());
        values.extend(tape.params.ids().map(|p| tape.params.grad(p).clone()));
        (values, tape.params)
    };
    let mut seen: Vec<Vec<Tensor<f64>>> = Vec::new();
    let settings = [(GradWindow::OneStep, true), (GradWindow::LastRecursion, false), (GradWindow::OneStep, false)];
    for (grad_window, q_continue) in settings {
        let hrm = HrmConfig {
            h_layers: 2,
            l_layers: 2,
            h_cycles: 2,
            l_cycles: 3,
            puzzle_emb_len: 2,
            halt_max_steps: 3,
            q_continue,
            ..tiny_hrm(grad_window)
        };
        let trm = TrmConfig {
            num_heads: hrm.num_heads,
            expansion: hrm.expansion,
            h_cycles: hrm.h_cycles,
            l_cycles: hrm.l_cycles,
            puzzle_emb_len: hrm.puzzle_emb_len,
            halt_max_steps: hrm.halt_max_steps,
            halt_exploration_prob: hrm.halt_exploration_prob,
            q_continue,
            ..tiny_trm(TrmVariant::SeparateNets, false, grad_window)
        };
        assert_eq!((trm.seq_len, trm.vocab_size, trm.hidden_size), (hrm.seq_len, hrm.vocab_size, hrm.hidden_size));
        let (hrm_values, weights) = step(&ModelConfig::Hrm(hrm), None);
        let (trm_values, _) = step(&ModelConfig::Trm(trm), Some(&weights));
        assert!(hrm_values == trm_values, "{grad_window}, q_continue {q_continue}: HRM and TRM's separate nets differ");
        seen.push(hrm_values);
    }
    // The window alone changes what a step computes (its gradients), so the comparison above can tell windows apart.
    assert_ne!(seen[1], seen[2], "the 1-step and last-recursion windows gave the same step");
}
