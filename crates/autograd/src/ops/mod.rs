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
pub mod transpose;
