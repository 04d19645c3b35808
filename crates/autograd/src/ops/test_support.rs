//! Inputs shared by the ops' unit tests (each op's tests stay in its own module; only the input makers live
//! here). Test-only: compiled under `#[cfg(test)]`.

use loopgrad_tensor::{Rng, Tensor};

/// An f64 tensor of `shape` (any rank; row-major like every `Tensor`) filled with independent N(0, std^2)
/// samples, drawn in order from `Rng::new(seed)`: the same `(shape, std, seed)` gives the same tensor on every
/// machine, so a failing property-test case can be replayed from its seed.
pub(crate) fn normal(shape: &[usize], std: f64, seed: u64) -> Tensor<f64> {
    let mut t = Tensor::uninit(shape);
    Rng::new(seed).fill_normal(t.data_mut(), std);
    t
}

/// [`normal`] with std 1: an f64 tensor of `shape` filled with N(0, 1) samples from `Rng::new(seed)`
/// (deterministic per seed), the default input of the ops' tests (`torch.randn(shape)` with a fixed generator).
pub(crate) fn standard_normal(shape: &[usize], seed: u64) -> Tensor<f64> {
    normal(shape, 1.0, seed)
}

/// `xs` in the element type under test (a kernel's inputs are drawn in f64 and cast once).
pub(crate) fn cast<E: loopgrad_tensor::Float>(xs: &[f64]) -> Vec<E> {
    xs.iter().map(|&x| E::from_f64(x)).collect()
}
