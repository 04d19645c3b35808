//! # loopgrad-models
//!
//! TRM (arXiv:2510.04871) and its variants, HRM (arXiv:2506.21734) and a non-recursive baseline, built from
//! the layers of `loopgrad-nn` with the parameter names of the PyTorch references, so that checkpoints move
//! between the two.
//!
//! - [`config`]: one serde struct per model; every recursion hyper-parameter is a field.
//! - [`presets`]: the paper configurations (exact parameter counts) and CPU-scale ones.
//! - [`trm`], [`hrm`], [`baseline`]: the recursions, written like the papers' pseudocode.
//! - [`model`]: the supervision step they share and [`Model`], the type the trainer drives.
//! - [`step`]: batches, carries, the ACT loss and the accuracy metrics.
//! - [`cost`]: the FLOPs of a supervision step, from the config (for compute-matched comparisons).
//!
//! One supervision step, as the trainer runs it:
//! ```no_run
//! use loopgrad_autograd::Tape;
//! use loopgrad_models::{presets, step::{act_loss, Batch}, Model};
//!
//! let config = presets::get("trm-mlp-sudoku6-cpu").unwrap();
//! let (model, store) = Model::build::<f32>(&config, 0);
//! let mut tape = Tape::new(store);
//! let batch = Batch { inputs: vec![1; 2 * 36], labels: vec![2; 2 * 36], puzzle_ids: vec![0, 0] };
//! let carry = model.initial_carry(&tape.params, 2);
//! let mut out = model.supervision_step(&mut tape, carry, &batch);
//! let mut slots = Vec::new(); // per-slot results, reused from step to step
//! let loss = act_loss(&mut tape, &out, &batch, None, &mut slots);
//! model.backward(&mut tape, loss.loss, &mut out);
//! let carry = out.carry; // detached; reset halted slots with model.reset_carry
//! tape.reset();
//! ```

/// `match` on a [`Model`] or a [`ModelConfig`] that runs the same expression, `$e` with `$m` bound to the
/// architecture's own model or config, whatever the architecture (used inside their `impl`s, where `Self` names
/// the enum).
macro_rules! dispatch {
    ($self:expr, $m:ident => $e:expr) => {
        match $self {
            Self::Trm($m) => $e,
            Self::Hrm($m) => $e,
            Self::Baseline($m) => $e,
        }
    };
}

pub mod baseline;
pub mod config;
pub mod cost;
pub mod hrm;
pub mod io;
pub mod model;
pub mod presets;
pub mod step;
pub mod trm;

pub use config::{BaselineConfig, ForwardDtype, HrmConfig, ModelConfig, TrmConfig, TrmVariant};
pub use loopgrad_autograd::window::GradWindow;
pub use model::{Model, Reasoner};
pub use step::{act_loss, Batch, Carry, CarryVars, Loss, SlotStats, StepOutput};
