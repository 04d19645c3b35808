//! # loopgrad-puzzles
//!
//! Sudoku, Maze and ARC-AGI as first-class data for recursive reasoning models: generators, solvers, loaders,
//! augmentation, scoring, and the [`ExampleSet`] every trainer reads. See `docs/puzzles.md` for formats,
//! token conventions and decisions.
//!
//! It depends on the tensor crate for its seeded [`Rng`] only.

pub mod arc;
pub mod cache;
pub mod csv;
pub mod dihedral;
pub mod error;
pub mod example_set;
pub mod maze;
pub mod rng;
pub mod sampler;
pub mod sudoku;

pub use error::{DataError, Location};
pub use example_set::{ExampleSet, ExampleSetBuilder, Identifiers};
pub use rng::Rng;
pub use sampler::{BatchSampler, SampleOrder};
