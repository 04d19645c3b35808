//! The one `Op` enum and the one backward `match`. Each arm calls into the op's module, where its forward
//! kernel, backward kernel and tests sit together. What an op needs in backward beyond its inputs and output
//! is in its variant (small, `Copy` metadata defined by the op's module) and in the tensors it saved.

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
    Embedding(embedding::Meta),
    Concat(sequence::ConcatMeta),
    Slice(sequence::SliceMeta),
    Transpose(transpose::Meta),
    Sum(reduce::Meta),
    Mean(reduce::Meta),
    RmsNorm(rms_norm::Meta),
    /// rms_norm(a + b): the post-norm residual step as one op.
    AddRmsNorm(rms_norm::Meta),
    SwiGlu(swiglu::Meta),
    Rope(rope::Meta),
    Attention(attention::Meta),
    StablemaxCe(losses::CeMeta),
    SoftmaxCe(losses::CeMeta),
    BceLogits(losses::BceMeta),
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
        Op::Embedding(m) => embedding::backward(m, ctx),
        Op::Concat(m) => sequence::backward_concat(m, ctx),
        Op::Slice(m) => sequence::backward_slice(m, ctx),
        Op::Transpose(m) => transpose::backward(m, ctx),
        Op::Sum(m) => reduce::backward_sum(m, ctx),
        Op::Mean(m) => reduce::backward_mean(m, ctx),
        Op::RmsNorm(m) => rms_norm::backward(m, ctx),
        Op::AddRmsNorm(m) => rms_norm::backward_add(m, ctx),
        Op::SwiGlu(m) => swiglu::backward(m, ctx),
        Op::Rope(m) => rope::backward(m, ctx),
        Op::Attention(m) => attention::backward(m, ctx),
        Op::StablemaxCe(m) => losses::backward_stablemax_ce(m, ctx),
        Op::SoftmaxCe(m) => losses::backward_softmax_ce(m, ctx),
        Op::BceLogits(m) => losses::backward_bce_logits(m, ctx),
        #[cfg(test)]
        Op::WrongScale(m) => m.backward(ctx),
    }
}
