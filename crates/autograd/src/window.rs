//! The gradient window as one argument: which net calls of a recursion are recorded for backward.
//!
//! A recursion is `calls_per_recursion` net calls that update a carry (TRM: n calls z = net(z, y + x), then
//! y = net(y, z); HRM: L_cycles calls of the L net, then the H net). [`run_recursions`] runs T recursions,
//! T x c calls in order, and the window says which trailing calls are recorded:
//!
//! | window | recorded | used by |
//! |---|---|---|
//! | `one_step` | the last 2 calls | HRM's 1-step gradient: the last z_L = L(z_L, z_H + x) and z_H = H(z_H, z_L) |
//! | `last_recursion` | the last c calls | TRM: T-1 recursions without gradient, the last one with |
//! | `last_calls:k` | the last k calls | anything in between (k is clamped to T x c) |
//! | `full` | every call | backprop through all T recursions; all their activations alive at once |
//! | `full_recompute` | every call, one recursion at a time | the same gradients as `full` in bounded memory |
//!
//! Calls outside the window run as no-grad updates ([`Tape::no_grad_update`]): nothing is recorded or saved,
//! each call's intermediates go back to the pool when it returns, and the carry stays in the same arena slots,
//! so the memory of the unrecorded part does not grow with T. The carry entering the first recorded call is a
//! constant: backward stops there, exactly as if it had been detached.
//!
//! **Recomputation** (`full_recompute`): the forward runs the first T-1 recursions without recording but keeps
//! the carry entering each one (a checkpoint, one carry per recursion), and records only the last. After the
//! caller's `tape.backward(loss)`, [`RecursionRun::finish_backward`] walks back: for r = T-2 down to 0 it
//! rebuilds recursion r on the tape from checkpoint r (made a leaf), seeds backward with the gradient that
//! reached checkpoint r+1, runs [`Tape::backward_from`] over just those nodes (parameter gradients add into
//! their persistent buffers; the gradient reaching checkpoint r stays on it) and cuts the tape back
//! ([`Tape::truncate`]) before the next. Inputs recorded before the recursions (the embedded x) collect
//! gradient from every rebuilt recursion; a last [`Tape::backward_until`] pushes it through the graph that
//! produced them. Peak memory: T carries plus about two recursions' activations, instead of T recursions'.

use crate::tape::{Mark, Tape, Var};
use loopgrad_tensor::Float;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use std::str::FromStr;

/// Which net calls are recorded; see the module documentation. Serialised as `"one_step"`,
/// `"last_recursion"`, `{"last_calls": k}`, `"full"`, `"full_recompute"`; parsed from the command line as the
/// same names with `last_calls:k`. Deserialising accepts both spellings, so a `--set` override written as the
/// string `last_calls:3` lands in a config as well as the map does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GradWindow {
    OneStep,
    LastRecursion,
    LastCalls(usize),
    Full,
    FullRecompute,
}

impl GradWindow {
    /// How many of the `recursions x calls_per_recursion` calls are recorded.
    pub fn recorded_calls(self, recursions: usize, calls_per_recursion: usize) -> usize {
        let total = recursions * calls_per_recursion;
        match self {
            GradWindow::OneStep => 2,
            GradWindow::LastRecursion => calls_per_recursion,
            GradWindow::LastCalls(k) => k,
            GradWindow::Full | GradWindow::FullRecompute => total,
        }
        .min(total)
    }
}

impl<'de> Deserialize<'de> for GradWindow {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// The serialised form, as derived.
        #[derive(Deserialize)]
        #[serde(rename_all = "snake_case")]
        enum Tagged {
            OneStep,
            LastRecursion,
            LastCalls(usize),
            Full,
            FullRecompute,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Spelling {
            Text(String),
            Tagged(Tagged),
        }
        Ok(match Spelling::deserialize(d)? {
            Spelling::Text(s) => return s.parse().map_err(D::Error::custom),
            Spelling::Tagged(Tagged::OneStep) => GradWindow::OneStep,
            Spelling::Tagged(Tagged::LastRecursion) => GradWindow::LastRecursion,
            Spelling::Tagged(Tagged::LastCalls(k)) => GradWindow::LastCalls(k),
            Spelling::Tagged(Tagged::Full) => GradWindow::Full,
            Spelling::Tagged(Tagged::FullRecompute) => GradWindow::FullRecompute,
        })
    }
}

impl fmt::Display for GradWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let last_calls;
        f.pad(match self {
            GradWindow::OneStep => "one_step",
            GradWindow::LastRecursion => "last_recursion",
            GradWindow::LastCalls(k) => {
                last_calls = format!("last_calls:{k}");
                &last_calls
            }
            GradWindow::Full => "full",
            GradWindow::FullRecompute => "full_recompute",
        })
    }
}

impl FromStr for GradWindow {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let expected = "expected one_step, last_recursion, last_calls:K, full or full_recompute";
        match s.trim() {
            "one_step" => Ok(GradWindow::OneStep),
            "last_recursion" => Ok(GradWindow::LastRecursion),
            "full" => Ok(GradWindow::Full),
            "full_recompute" => Ok(GradWindow::FullRecompute),
            other => match other.strip_prefix("last_calls:") {
                Some(k) => k
                    .trim()
                    .parse()
                    .map(GradWindow::LastCalls)
                    .map_err(|_| format!("gradient window {s:?}: {k:?} is not a call count ({expected})")),
                None => Err(format!("gradient window {s:?}: {expected}")),
            },
        }
    }
}

/// One recursion of a model, as the window driver sees it: `calls_per_recursion` net calls, each updating the
/// carry `state` in place (e.g. `[y, z]`). Anything else a call reads (the embedded input x, parameters) is
/// captured by the implementor. A call must be a pure function of the carry, the captured values and the
/// parameters: recomputation runs it again and must get the same numbers.
pub trait Recurrence<E: Float> {
    fn calls_per_recursion(&self) -> usize;
    /// Call number `call` (0-based, within the recursion): replace entries of `state` with new values.
    fn call(&self, tape: &mut Tape<E>, state: &mut [Var], call: usize);

    /// One whole recursion: its calls in order, as the tape's recording flag says (TRM's `latent_recursion`).
    fn recursion(&self, tape: &mut Tape<E>, state: &mut [Var]) {
        for call in 0..self.calls_per_recursion() {
            self.call(tape, state, call);
        }
    }
}

/// What [`run_recursions`] did, and what [`RecursionRun::finish_backward`] needs to complete a recomputed
/// backward.
#[derive(Debug)]
pub struct RecursionRun {
    window: GradWindow,
    recursions: usize,
    recorded_calls: usize,
    /// The tape before the recursions: nodes before it produced their inputs (e.g. the embedded x).
    start: Mark,
    /// `full_recompute`: the carry entering recursion r is `checkpoints[r * k..(r + 1) * k]`, k = the carry's
    /// length; r = 0 is the caller's carry. Empty for the other windows.
    checkpoints: Vec<Var>,
    carry_len: usize,
}

impl RecursionRun {
    pub fn window(&self) -> GradWindow {
        self.window
    }
    pub fn recursions(&self) -> usize {
        self.recursions
    }
    /// How many net calls were recorded (for `full_recompute`, the last recursion's).
    pub fn recorded_calls(&self) -> usize {
        self.recorded_calls
    }

    /// Completes backward after the caller's `tape.backward(loss)`: a no-op except for `full_recompute`, where
    /// it rebuilds the earlier recursions one at a time (see the module documentation). Afterwards parameter
    /// gradients, and the gradients of leaves the recursion read, equal those of `full`. Values the caller
    /// recorded after `run_recursions` (heads, loss) are untouched; the rebuilt recursions are freed.
    pub fn finish_backward<E: Float, R: Recurrence<E> + ?Sized>(self, tape: &mut Tape<E>, rec: &R) {
        if self.window != GradWindow::FullRecompute || self.recursions < 2 {
            return;
        }
        let k = self.carry_len;
        let mut state = self.checkpoints[..k].to_vec();
        let mut seeds = Vec::with_capacity(k);
        for r in (0..self.recursions - 1).rev() {
            let input = &self.checkpoints[r * k..(r + 1) * k];
            let reached = &self.checkpoints[(r + 1) * k..(r + 2) * k];
            if r > 0 {
                input.iter().for_each(|&v| tape.set_needs_grad(v, true));
            }
            let mark = tape.mark();
            state.copy_from_slice(input);
            rec.recursion(tape, &mut state);
            seeds.clear();
            for (&out, &ckpt) in state.iter().zip(reached) {
                if let Some(g) = tape.take_grad(ckpt) {
                    seeds.push((out, g));
                }
            }
            tape.backward_from(mark, &mut seeds);
            tape.truncate(mark);
        }
        tape.backward_until(self.start);
    }
}

/// Runs `recursions` recursions of `rec` on the carry `state` (updated in place to the final carry), recording
/// only the calls inside `window`. Call [`RecursionRun::finish_backward`] after backward (required for
/// `full_recompute`, a no-op otherwise).
pub fn run_recursions<E: Float, R: Recurrence<E> + ?Sized>(
    tape: &mut Tape<E>,
    rec: &R,
    state: &mut [Var],
    recursions: usize,
    window: GradWindow,
) -> RecursionRun {
    let calls = rec.calls_per_recursion();
    assert!(calls > 0, "run_recursions: a recursion must make at least one net call");
    let start = tape.mark();
    let mut run = RecursionRun {
        window,
        recursions,
        recorded_calls: window.recorded_calls(recursions, calls),
        start,
        checkpoints: Vec::new(),
        carry_len: state.len(),
    };
    if window == GradWindow::FullRecompute {
        run_with_checkpoints(tape, rec, state, &mut run);
        return run;
    }
    // TRM's deep_recursion, with the window in place of its `torch.no_grad()` block: T recursions of c calls,
    // call number i (counting over all of them) recorded only from `first_recorded` on.
    let first_recorded = recursions * calls - run.recorded_calls;
    for r in 0..recursions {
        for call in 0..calls {
            if r * calls + call < first_recorded {
                tape.no_grad_update(start, state, |t, s| rec.call(t, s, call));
            } else {
                rec.call(tape, state, call);
            }
        }
    }
    run
}

/// `full_recompute`'s forward: T-1 recursions without recording, each one's input carry kept as a checkpoint,
/// then the last recursion recorded from its checkpoint made a leaf.
fn run_with_checkpoints<E: Float, R: Recurrence<E> + ?Sized>(
    tape: &mut Tape<E>,
    rec: &R,
    state: &mut [Var],
    run: &mut RecursionRun,
) {
    if run.recursions == 0 {
        return;
    }
    let calls = rec.calls_per_recursion();
    run.checkpoints.reserve(run.recursions * state.len());
    run.checkpoints.extend_from_slice(state);
    for _ in 0..run.recursions - 1 {
        let floor = tape.mark();
        for call in 0..calls {
            tape.no_grad_update(floor, state, |t, s| rec.call(t, s, call));
        }
        // A checkpoint owns its values: an entry the recursion left unchanged is copied, so that making this
        // checkpoint a leaf later never touches the caller's values or an earlier checkpoint.
        for v in state.iter_mut() {
            let owned = matches!(*v, Var::Value(i) if floor.values() <= i as usize);
            if !owned {
                let copy = tape.value(*v).clone();
                *v = tape.constant(copy);
            }
        }
        run.checkpoints.extend_from_slice(state);
    }
    if run.recursions > 1 {
        state.iter().for_each(|&v| tape.set_needs_grad(v, true));
    }
    rec.recursion(tape, state);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ParamStore;
    use loopgrad_tensor::Tensor;
    use std::cell::RefCell;

    #[test]
    fn parses_and_prints_every_window() {
        for (s, w) in [
            ("one_step", GradWindow::OneStep),
            ("last_recursion", GradWindow::LastRecursion),
            ("last_calls:3", GradWindow::LastCalls(3)),
            ("full", GradWindow::Full),
            ("full_recompute", GradWindow::FullRecompute),
        ] {
            assert_eq!(s.parse::<GradWindow>().unwrap(), w);
            assert_eq!(w.to_string(), s);
        }
        let err = "last_calls:x".parse::<GradWindow>().unwrap_err();
        assert!(err.contains("\"x\" is not a call count"), "{err}");
        assert!("everything".parse::<GradWindow>().unwrap_err().contains("expected one_step"));
    }

    #[test]
    fn serialises_with_lowercase_names() {
        let ws = [GradWindow::OneStep, GradWindow::LastCalls(4), GradWindow::FullRecompute];
        let json = serde_json::to_string(&ws).unwrap();
        assert_eq!(json, r#"["one_step",{"last_calls":4},"full_recompute"]"#);
        assert_eq!(serde_json::from_str::<Vec<GradWindow>>(&json).unwrap(), ws);
        // The command-line spelling is accepted too, and a bad one says what is expected.
        assert_eq!(serde_json::from_str::<GradWindow>(r#""last_calls:3""#).unwrap(), GradWindow::LastCalls(3));
        let err = serde_json::from_str::<GradWindow>(r#""two_steps""#).unwrap_err().to_string();
        assert!(err.contains("expected one_step, last_recursion"), "{err}");
    }

    /// Multiplies the carry by a parameter (2, 2) each call and logs (call index, recording?).
    struct Logged {
        w: crate::Param,
        log: RefCell<Vec<(usize, bool)>>,
    }

    impl Recurrence<f64> for Logged {
        fn calls_per_recursion(&self) -> usize {
            3
        }
        fn call(&self, tape: &mut Tape<f64>, state: &mut [Var], call: usize) {
            self.log.borrow_mut().push((call, tape.is_recording()));
            state[0] = tape.mul_row(state[0], tape.param(self.w));
        }
    }

    #[test]
    fn each_window_records_the_trailing_calls_it_names() {
        for (window, recorded) in [
            (GradWindow::OneStep, 2),
            (GradWindow::LastRecursion, 3),
            (GradWindow::LastCalls(5), 5),
            (GradWindow::LastCalls(50), 12),
            (GradWindow::Full, 12),
        ] {
            let mut params = ParamStore::new();
            let w = params.add("w", Tensor::full([2], 2.0));
            let mut tape = Tape::new(params);
            let rec = Logged { w, log: RefCell::new(Vec::new()) };
            let mut state = [tape.constant(Tensor::full([1, 2], 1.0))];
            let run = run_recursions(&mut tape, &rec, &mut state, 4, window);
            let log = rec.log.into_inner();
            assert_eq!(log.iter().map(|&(c, _)| c).collect::<Vec<_>>(), [0, 1, 2].repeat(4));
            assert!(log[..12 - recorded].iter().all(|&(_, r)| !r) && log[12 - recorded..].iter().all(|&(_, r)| r));
            assert_eq!((run.recorded_calls(), tape.num_nodes()), (recorded, recorded), "{window}");
            assert_eq!(tape.value(state[0]).data(), &[4096.0, 4096.0]);
        }
    }
}
