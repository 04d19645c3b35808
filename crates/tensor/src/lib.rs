//! # loopgrad-tensor
//!
//! The bottom layer of loopgrad: contiguous row-major tensors of `f32` (training) or `f64` (gradient checks),
//! element-wise and row kernels (SIMD through `wide`), GEMM (f32 on AVX-512 by its own kernel, with the same bits
//! as `matrixmultiply`; otherwise `matrixmultiply`), the worker team that splits kernels and GEMMs across threads
//! ([`parallel`]), a buffer pool keyed by length so that a training step after the first allocates nothing, and a
//! seeded RNG that gives the same numbers on every machine; and, as the crate every other one builds on, the one
//! atomic file writer ([`atomic_file`]).
//!
//! Everything above (the tape, the layers, TRM and HRM) is written against the slice-level kernels in
//! [`kernels`] and [`gemm`](mod@gemm), so that a kernel can be made faster without touching the code that calls it.

pub mod atomic_file;
pub mod compare;
pub mod counting_alloc;
pub mod cpu;
pub mod float;
pub mod gemm;
pub mod kernels;
pub mod parallel;
pub mod peak;
pub mod pool;
pub mod rng;
pub mod shape;
pub mod simd;
mod team;
pub mod tensor;

pub use float::Float;
pub use gemm::{
    gemm, gemm_batched, gemm_batched_bf16, gemm_bf16, gemm_bf16_serial, gemm_packed, gemm_serial, gemm_swiglu,
    gemm_swiglu_packed, own_f32_kernel, round_bf16, BatchMut, BatchRef, MatMut, MatRef, PackedRef, PackedWeight,
    Precision,
};
pub use parallel::{denormals_flushed, flush_denormals, flush_denormals_on_current_thread, set_threads, threads};
pub use pool::PoolStats;
pub use rng::Rng;
pub use shape::Shape;
pub use tensor::Tensor;
