//! One module per differentiable op (or family of ops): forward as a `Tape` method, backward as a function
//! called from `op::backward`, the derivative in the doc comment, and the tests, side by side.

pub mod attention;
pub mod elementwise;
pub mod embedding;
pub mod losses;
pub mod matmul;
pub mod nograd;
pub mod reduce;
pub mod rms_norm;
pub mod rope;
pub mod sequence;
pub mod swiglu;
#[cfg(test)]
pub(crate) mod test_support;
pub mod transpose;

use loopgrad_tensor::{kernels::Store, Float};

/// How a backward kernel should store into the buffer [`crate::tape::Ctx::grad_beta`] handed out with `beta`:
/// overwrite a fresh one (beta 0: no zero-fill first), add into one that holds something (beta 1).
pub(crate) fn store_for<E: Float>(beta: E) -> Store {
    if beta == E::ZERO {
        Store::Write
    } else {
        Store::Add
    }
}
