//! Deep supervision's per-slot bookkeeping, as plain data so it can be tested, saved and resumed.
//!
//! A batch is B slots. Each slot keeps its example, its carry (held by the trainer) and its step count across
//! optimizer steps. After a step, a slot halts at N_sup steps, or (training, N_sup > 1) when its Q-head says
//! so, unless exploration drew a minimum step count it has not reached yet. Before the next step, halted slots
//! take fresh examples and their carry resets to the init vectors; the others keep theirs.
//!
//! This is TRM's `TinyRecursiveReasoningModel_ACTV1.forward` halting logic, one decision per slot.

use loopgrad_models::SlotStats;
use loopgrad_tensor::Rng;
use serde::{Deserialize, Serialize};

/// An endless stream of example indices: every epoch is a fresh seeded permutation of 0..n, so the position
/// (epoch, offset) is the whole state. A new epoch reshuffles in the same buffer (no allocation).
#[derive(Clone, Debug)]
pub struct ExampleStream {
    n: usize,
    seed: u64,
    pub epoch: u64,
    pub offset: usize,
    perm: Vec<usize>,
}

impl ExampleStream {
    pub fn new(n: usize, seed: u64) -> Self {
        assert!(n > 0, "ExampleStream: no examples");
        Self::at(n, seed, 0, 0)
    }

    /// The stream positioned at (epoch, offset), as saved in a checkpoint.
    pub fn at(n: usize, seed: u64, epoch: u64, offset: usize) -> Self {
        let mut stream = ExampleStream { n, seed, epoch, offset: offset.min(n), perm: Vec::with_capacity(n) };
        stream.shuffle();
        stream
    }

    pub fn next_index(&mut self) -> usize {
        if self.offset == self.n {
            self.epoch += 1;
            self.offset = 0;
            self.shuffle();
        }
        self.offset += 1;
        self.perm[self.offset - 1]
    }

    /// The epoch's order: 0..n shuffled by the epoch's own seed (`Rng::permutation`, in place).
    fn shuffle(&mut self) {
        self.perm.clear();
        self.perm.extend(0..self.n);
        Rng::new(self.seed ^ self.epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15)).shuffle(&mut self.perm);
    }
}

/// The ACT settings of a run.
#[derive(Clone, Copy, Debug)]
pub struct Halting {
    /// N_sup: the most supervision steps per example.
    pub max_steps: u32,
    /// Probability that a slot draws a minimum of 2..=N_sup steps before it may halt.
    pub exploration_prob: f64,
    /// Halt when q_halt > q_continue (HRM, learned continue) instead of q_halt > 0 (TRM).
    pub use_q_continue: bool,
    /// Adaptive halting on; off, every slot runs exactly `max_steps` steps.
    pub adaptive: bool,
}

/// Every slot's example, step count and halted flag.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Slots {
    pub example: Vec<usize>,
    pub steps: Vec<u32>,
    pub halted: Vec<bool>,
}

impl Slots {
    /// B slots, all halted (so the first step fills every one).
    pub fn new(batch: usize) -> Self {
        Slots { example: vec![0; batch], steps: vec![0; batch], halted: vec![true; batch] }
    }

    pub fn len(&self) -> usize {
        self.example.len()
    }

    pub fn is_empty(&self) -> bool {
        self.example.is_empty()
    }

    /// Halted slots take the next examples of `stream` and restart at step 0. `reset` receives which slots
    /// that was (their carry must go back to the init vectors); keep it across steps to reuse its capacity.
    pub fn refill(&mut self, stream: &mut ExampleStream, reset: &mut Vec<bool>) {
        reset.clone_from(&self.halted);
        for i in 0..self.len() {
            if self.halted[i] {
                self.example[i] = stream.next_index();
                self.steps[i] = 0;
                self.halted[i] = false;
            }
        }
    }

    /// After a supervision step: count it, and decide which slots halt, from the Q-head logits (`q_halt`,
    /// `q_continue`) of the step's per-slot `stats`. Exploration draws from `rng` for every slot, halted or not,
    /// so the stream of random numbers does not depend on the model's outputs' history beyond this step.
    pub fn advance(&mut self, stats: &[SlotStats], act: &Halting, training: bool, rng: &mut Rng) {
        assert_eq!(stats.len(), self.len(), "Slots::advance: {} slot results for {} slots", stats.len(), self.len());
        for (i, q) in stats.iter().enumerate() {
            self.steps[i] += 1;
            let last = self.steps[i] >= act.max_steps;
            let mut halted = last;
            if training && act.adaptive && act.max_steps > 1 {
                let wants = if act.use_q_continue { q.q_halt > q.q_continue } else { q.q_halt > 0.0 };
                halted |= wants;
                let explore = rng.uniform() < act.exploration_prob;
                let min_steps = 2 + rng.below(act.max_steps as usize - 1) as u32; // uniform in 2..=N_sup
                if explore && self.steps[i] < min_steps {
                    halted = false;
                }
            }
            self.halted[i] = halted;
        }
    }

    /// Writes into `last` which slots' current step is their last one whatever the Q-head says (HRM's bootstrap
    /// target); keep it across steps to reuse its capacity.
    pub fn is_last_step(&self, act: &Halting, last: &mut Vec<bool>) {
        last.clear();
        last.extend(self.steps.iter().map(|&s| s + 1 >= act.max_steps));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACT: Halting = Halting { max_steps: 4, exploration_prob: 0.0, use_q_continue: false, adaptive: true };

    /// A step's per-slot results with these Q-head logits.
    fn q(halt: &[f64], cont: &[f64]) -> Vec<SlotStats> {
        halt.iter()
            .zip(cont)
            .map(|(&q_halt, &q_continue)| SlotStats { q_halt, q_continue, ..SlotStats::default() })
            .collect()
    }

    #[test]
    fn a_slot_that_halts_takes_a_new_example_and_one_that_does_not_keeps_its_own() {
        let mut stream = ExampleStream::new(100, 7);
        let mut slots = Slots::new(3);
        let mut reset = Vec::new();
        slots.refill(&mut stream, &mut reset);
        assert_eq!(reset, [true, true, true]);
        let first = slots.example.clone();
        let mut rng = Rng::new(1);
        // Slot 1 wants to halt, the others do not.
        slots.advance(&q(&[-1.0, 2.0, -3.0], &[0.0; 3]), &ACT, true, &mut rng);
        assert_eq!(slots.halted, [false, true, false]);
        slots.refill(&mut stream, &mut reset);
        assert_eq!(reset, [false, true, false]);
        assert_eq!(slots.example[0], first[0]);
        assert_eq!(slots.example[2], first[2]);
        assert_ne!(slots.example[1], first[1]);
        assert_eq!(slots.steps, [1, 0, 1]);
    }

    #[test]
    fn every_slot_halts_at_n_sup_and_evaluation_ignores_the_q_head() {
        let mut slots = Slots::new(2);
        let mut stream = ExampleStream::new(10, 0);
        slots.refill(&mut stream, &mut Vec::new());
        let mut rng = Rng::new(2);
        for step in 1..=4 {
            slots.advance(&q(&[5.0, 5.0], &[0.0; 2]), &ACT, false, &mut rng);
            assert_eq!(slots.halted, [step == 4; 2], "step {step}");
        }
    }

    #[test]
    fn exploration_delays_halting_to_at_least_two_steps() {
        let act = Halting { max_steps: 16, exploration_prob: 1.0, use_q_continue: false, adaptive: true };
        let mut rng = Rng::new(3);
        let mut halted_at_one = 0;
        for _ in 0..200 {
            let mut slots = Slots::new(1);
            slots.refill(&mut ExampleStream::new(5, 0), &mut Vec::new());
            slots.advance(&q(&[10.0], &[0.0]), &act, true, &mut rng);
            halted_at_one += slots.halted[0] as usize;
        }
        assert_eq!(halted_at_one, 0, "with exploration on, no slot halts after one step");
    }

    #[test]
    fn without_act_every_slot_runs_n_sup_steps() {
        let act = Halting { max_steps: 3, exploration_prob: 0.0, use_q_continue: false, adaptive: false };
        let mut slots = Slots::new(2);
        slots.refill(&mut ExampleStream::new(5, 0), &mut Vec::new());
        let mut rng = Rng::new(0);
        for step in 1..=3 {
            slots.advance(&q(&[9.0, 9.0], &[0.0; 2]), &act, true, &mut rng);
            assert_eq!(slots.halted, [step == 3; 2], "step {step}");
        }
    }

    #[test]
    fn q_continue_mode_compares_the_two_heads() {
        let act = Halting { max_steps: 8, exploration_prob: 0.0, use_q_continue: true, adaptive: true };
        let mut slots = Slots::new(2);
        slots.refill(&mut ExampleStream::new(5, 0), &mut Vec::new());
        slots.advance(&q(&[1.0, 1.0], &[2.0, 0.5]), &act, true, &mut Rng::new(0));
        assert_eq!(slots.halted, [false, true]);
    }

    #[test]
    fn the_stream_visits_every_example_once_per_epoch_and_resumes_exactly() {
        let mut s = ExampleStream::new(7, 11);
        let mut seen: Vec<usize> = (0..7).map(|_| s.next_index()).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..7).collect::<Vec<_>>());
        for _ in 0..3 {
            s.next_index();
        }
        let mut resumed = ExampleStream::at(7, 11, s.epoch, s.offset);
        for _ in 0..20 {
            assert_eq!(s.next_index(), resumed.next_index());
        }
    }

    #[test]
    fn every_epoch_is_the_seeded_permutation_of_its_own_seed() {
        // The order runs and checkpoints were recorded with: `Rng::permutation` of the epoch's seed.
        let mut s = ExampleStream::new(9, 5);
        for epoch in 0..3u64 {
            let want = Rng::new(5 ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15)).permutation(9);
            assert_eq!((0..9).map(|_| s.next_index()).collect::<Vec<_>>(), want, "epoch {epoch}");
        }
    }
}
