//! A steady-state training step and a steady-state evaluation batch make no heap allocation, through the code
//! `loopgrad train` and `loopgrad eval` run: [`Trainer::train_step`] (slot refills with fresh examples and carry
//! resets, the supervision step with its untaped recursions, the ACT loss, backward, both optimizers, EMA, the
//! halting decisions, epoch reshuffles) and [`evaluate_batch`] (N_sup untaped steps from the init carry, scored
//! at the last, with the EMA weights swapped in). Tensors come from the thread's pool, and every other buffer
//! lives across steps, so once the first steps have warmed them up nothing reaches the allocator.
//!
//! The counting allocator sees the whole process, so this file is its own test binary with a plain `main`
//! (`harness = false` in Cargo.toml: libtest's thread would allocate while the steps run). It runs on two
//! threads, as `loopgrad train` does.

use loopgrad_models::step::Batch;
use loopgrad_tensor::counting_alloc::{allocations, CountingAlloc};
use loopgrad_train::trainer::fill_row;
use loopgrad_train::{data, evaluate_batch, BatchScores, TrainConfig, Trainer};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Steps before counting: the tape's vectors, the pool's free lists and every buffer reach their size.
const WARMUP_STEPS: usize = 4;
/// Counted steps: with 40 training examples, 8 slots and N_sup 2, several epochs turn over.
const COUNTED_STEPS: usize = 24;

/// Tiny models on 4x4 Sudoku (16 tokens): TRM with the token MLP (the `smoke` preset), and HRM, whose
/// bootstrapped continue target adds a second untaped step and the last-step flags.
fn configs() -> Vec<(&'static str, TrainConfig)> {
    let common = ["data.train_count=40", "data.test_count=8", "run.batch_size=8", "model.halt_max_steps=2"];
    let hrm = [
        "data.sudoku_box=\"2x2\"",
        // 40 minimal 4x4 puzzles use up nearly every symmetry class (docs/config.md, heldout_disjoint).
        "data.heldout_disjoint=\"exact\"",
        "model.seq_len=16",
        "model.vocab_size=6",
        "model.hidden_size=16",
        "model.num_heads=2",
    ];
    let with = |preset: &str, extra: &[&str]| {
        let sets: Vec<String> = common.iter().chain(extra).map(|s| s.to_string()).collect();
        TrainConfig::preset(preset).unwrap().with_overrides(&sets).unwrap()
    };
    vec![("trm-mlp", with("smoke", &[])), ("hrm", with("sudoku6-hrm", &hrm))]
}

fn main() {
    steady_state_training_steps_and_evaluations_allocate_nothing();
    println!("steady_state_allocations: training steps and evaluations allocate nothing ... ok");
}

fn steady_state_training_steps_and_evaluations_allocate_nothing() {
    loopgrad_tensor::set_threads(2);
    for (name, config) in configs() {
        let (train_allocs, eval_allocs) = count_allocations(&config);
        assert_eq!(
            train_allocs, 0,
            "{name}: {COUNTED_STEPS} steady-state training steps allocated {train_allocs} times"
        );
        assert_eq!(eval_allocs, 0, "{name}: a steady-state evaluation batch allocated {eval_allocs} times");
    }
}

/// Heap allocations of [`COUNTED_STEPS`] training steps after [`WARMUP_STEPS`], and of a second evaluation of
/// one test batch at N_sup steps with the EMA weights.
fn count_allocations(config: &TrainConfig) -> (u64, u64) {
    let sets = data::load(&config.data).unwrap();
    let mut trainer = Trainer::new(config.clone(), &sets.train).unwrap();
    for _ in 0..WARMUP_STEPS {
        trainer.train_step(&sets.train).unwrap();
    }
    let before = allocations();
    for _ in 0..COUNTED_STEPS {
        trainer.train_step(&sets.train).unwrap();
    }
    let train_allocs = allocations() - before;
    assert_eq!(trainer.step(), (WARMUP_STEPS + COUNTED_STEPS) as u64);

    let (b, l) = (config.run.batch_size, sets.test.seq_len());
    let mut batch = Batch { inputs: vec![0; b * l], labels: vec![0; b * l], puzzle_ids: vec![0; b] };
    (0..b).for_each(|slot| fill_row(&mut batch, slot, &sets.test, slot));
    let steps = config.model.halt_max_steps();
    let mut scores = BatchScores::default();
    let mut evaluate = |t: &mut Trainer| {
        t.with_eval_weights(|model, tape| evaluate_batch(model, tape, &batch, steps, &mut scores));
    };
    evaluate(&mut trainer);
    let before = allocations();
    evaluate(&mut trainer);
    let eval_allocs = allocations() - before;
    assert_eq!(scores.accuracy.len(), b, "the evaluation scores every slot");
    (train_allocs, eval_allocs)
}
