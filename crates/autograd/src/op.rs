//! The one `Op` enum and the one backward `match`. Each arm calls into the op's module, where its forward
//! kernel, backward kernel and tests sit together. What an op needs in backward beyond its inputs and output
//! is in its variant (small, `Copy` metadata defined by the op's module; none when it needs none) and in the
//! tensors it saved.

use crate::ops::*;
use crate::tape::Ctx;
use loopgrad_tensor::Float;

#[derive(Clone, Debug)]
pub enum Op {
    Add,
    Sub,
    Mul,
    Scale(elementwise::ScaleMeta),
    /// x `[.., D]` + a row vector `[D]` broadcast over rows.
    AddRow,
    /// x `[.., D]` * a row vector `[D]` broadcast over rows.
    MulRow,
    MatMul(matmul::MatMulMeta),
    Linear(matmul::LinearMeta),
    /// Rows of a table `[V, D]` gathered by the ids saved with the node.
    Embedding,
    Concat,
    Slice(sequence::SliceMeta),
    Transpose,
    Sum,
    Mean,
    RmsNorm,
    /// rms_norm(a + b): the post-norm residual step as one op.
    AddRmsNorm,
    SwiGlu,
    Rope,
    Attention(attention::Meta),
    StablemaxCe(losses::CeMeta),
    SoftmaxCe(losses::CeMeta),
    BceLogits,
    /// Test only: `scale` with a deliberately wrong backward, the negative control of the gradient checker.
    #[cfg(test)]
    WrongScale(crate::gradcheck::tests::WrongScale),
}

/// Dispatches backward for one node.
pub(crate) fn backward<E: Float>(op: &Op, ctx: &mut Ctx<'_, E>) {
    match op {
        Op::Add => elementwise::backward_add(ctx),
        Op::Sub => elementwise::backward_sub(ctx),
        Op::Mul => elementwise::backward_mul(ctx),
        Op::Scale(m) => elementwise::backward_scale(m, ctx),
        Op::AddRow => elementwise::backward_add_row(ctx),
        Op::MulRow => elementwise::backward_mul_row(ctx),
        Op::MatMul(m) => matmul::backward_matmul(m, ctx),
        Op::Linear(m) => matmul::backward_linear(m, ctx),
        Op::Embedding => embedding::backward(ctx),
        Op::Concat => sequence::backward_concat(ctx),
        Op::Slice(m) => sequence::backward_slice(m, ctx),
        Op::Transpose => transpose::backward(ctx),
        Op::Sum => reduce::backward_sum(ctx),
        Op::Mean => reduce::backward_mean(ctx),
        Op::RmsNorm => rms_norm::backward(ctx),
        Op::AddRmsNorm => rms_norm::backward_add(ctx),
        Op::SwiGlu => swiglu::backward(ctx),
        Op::Rope => rope::backward(ctx),
        Op::Attention(m) => attention::backward(m, ctx),
        Op::StablemaxCe(m) => losses::backward_stablemax_ce(m, ctx),
        Op::SoftmaxCe(m) => losses::backward_softmax_ce(m, ctx),
        Op::BceLogits => losses::backward_bce_logits(ctx),
        #[cfg(test)]
        Op::WrongScale(m) => m.backward(ctx),
    }
}
