//! Recursion at work: what a model answers for one example after every recursion of every supervision step, and
//! how sure its halting head is (`loopgrad trace`).
//!
//! ```text
//! carry = init vectors
//! for step in 1..=steps:                      # the outer loop (deep supervision), as evaluation runs it
//!     for r in 1..=T:                         # the recursions of one step (T; HRM: H_cycles; baseline: 1)
//!         state = recursion(state)
//!         answer[step][r] = argmax(lm_head(y)),  q_halt[step][r] = q_head(y[:, 0])
//! ```
//!
//! The last recursion of a step is the step's own output, bit for bit what [`crate::evaluate`] scores at that
//! step (tested below).

use crate::trainer::fill_row;
use loopgrad_autograd::ops::nograd::argmax_last;
use loopgrad_autograd::Tape;
use loopgrad_models::step::Batch;
use loopgrad_models::Model;
use loopgrad_puzzles::ExampleSet;
use serde::Serialize;

/// The heads' reading after one recursion.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Readout {
    /// The argmax token at every answer position `[L]`.
    pub tokens: Vec<u8>,
    /// The halting logit; the model halts (in training) when it is above 0.
    pub q_halt: f32,
}

/// One example's trace.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Trace {
    /// Which example of the set.
    pub index: usize,
    /// The question and the answer `[L]`, as tokens.
    pub inputs: Vec<u8>,
    pub labels: Vec<u8>,
    /// `steps[s][r]`: the reading after recursion r + 1 of supervision step s + 1.
    pub steps: Vec<Vec<Readout>>,
}

impl Trace {
    /// The answer of supervision step `s` (0-based): its last recursion's reading.
    pub fn answer(&self, s: usize) -> &Readout {
        self.steps[s].last().expect("a supervision step has at least one recursion")
    }
}

/// Runs example `index` of `set` for `steps` supervision steps from the init carry, without a tape, reading the
/// heads after every recursion. Panics if `index` is out of range (callers check it and name the flag).
pub fn trace_example(model: &Model, tape: &mut Tape<f32>, set: &ExampleSet, index: usize, steps: usize) -> Trace {
    assert!(index < set.len(), "trace_example: example {index} of a set of {}", set.len());
    let l = set.seq_len();
    let mut batch = Batch { inputs: vec![0; l], labels: vec![0; l], puzzle_ids: vec![0] };
    fill_row(&mut batch, 0, set, index);
    let mut carry = model.initial_carry(&tape.params, 1);
    let mut readouts = Vec::new();
    let mut argmax = vec![0usize; l];
    let mut trace =
        Trace { index, inputs: set.inputs(index).to_vec(), labels: set.labels(index).to_vec(), steps: Vec::new() };
    for _ in 0..steps {
        readouts.clear();
        carry = model.traced_step(tape, carry, &batch, &mut readouts);
        tape.reset();
        let step = readouts
            .iter()
            .map(|(logits, q_halt)| {
                argmax_last(logits, &mut argmax);
                Readout { tokens: argmax.iter().map(|&t| t as u8).collect(), q_halt: q_halt.data()[0] }
            })
            .collect();
        trace.steps.push(step);
    }
    trace
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{data, evaluate, TrainConfig, Trainer};

    /// The last reading of every step is what evaluation scores after that many steps, token for token and bit
    /// for bit in q_halt; the recursions in between are real intermediate states (they differ from the answer).
    #[test]
    fn each_step_ends_on_what_evaluation_scores() {
        let config = TrainConfig::preset("smoke").unwrap();
        let sets = data::load(&config.data).unwrap();
        let mut t = Trainer::new(config, &sets.train).unwrap();
        for _ in 0..3 {
            t.train_step(&sets.train).unwrap();
        }
        let (index, steps) = (2, 3);
        let trace = trace_example(&t.model, &mut t.tape, &sets.test, index, steps);
        assert_eq!(trace.steps.len(), steps);
        let recursions = trace.steps[0].len();
        assert!(recursions > 1, "the smoke model recurses, so a step has several readings");
        for s in 0..steps {
            // Evaluating examples 0..=index for s + 1 steps in one batch per example gives example `index`'s
            // answer at that step.
            let (_, predictions) = evaluate(&t.model, &mut t.tape, &sets.test, index + 1, s + 1, 1);
            assert_eq!(trace.answer(s).tokens, predictions.tokens[index], "step {}", s + 1);
            assert_eq!(trace.answer(s).q_halt as f64, predictions.q_halt[index], "step {}", s + 1);
        }
        let first = &trace.steps[0];
        assert!(
            first[..recursions - 1].iter().any(|r| r.q_halt != first[recursions - 1].q_halt),
            "intermediate readings equal to the step's answer: the recursions were not read separately"
        );
    }
}
