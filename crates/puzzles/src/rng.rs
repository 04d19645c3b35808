//! The seeded random number generator of the tensor crate (xoshiro256**, seeded through splitmix64), re-exported.
//!
//! Every generator in this crate derives one independent stream per item (`Rng::for_item(seed, i)`), so a data
//! set is the same whether it is built on one thread or many, and item `i` does not depend on how many items came
//! before it.

pub use loopgrad_tensor::Rng;
