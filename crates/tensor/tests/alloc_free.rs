//! A loop of identical-shape tensor operations allocates nothing after its first iteration: every buffer comes
//! back from the pool. A counting global allocator sees every heap allocation of this test binary.
//!
//! GEMMs too, on a CPU with AVX-512 (loopgrad's own f32 GEMM keeps its packing buffers per thread). Elsewhere,
//! and for f64, `matrixmultiply` allocates its packing buffer on every call (one allocation per single-threaded
//! GEMM block): measured here so that it cannot grow unnoticed.
//!
//! A plain `main` (`harness = false` in Cargo.toml): the counter counts every thread of the process, and only
//! the measuring thread and the team's workers run here, so nothing else's allocations land in the counts.

use loopgrad_tensor::counting_alloc::{allocations, CountingAlloc};
use loopgrad_tensor::kernels;
use loopgrad_tensor::pool::PoolSpan;
use loopgrad_tensor::{gemm, gemm_batched, BatchMut, BatchRef, Rng, Tensor};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// One "step" of element-wise and row work on a [rows, cols] activation, shaped like a transformer block's
/// non-GEMM part: SwiGLU, residual add, RMSNorm statistics, softmax, a transpose, and their gradients.
fn step(x: &Tensor<f32>, w: &Tensor<f32>) -> f32 {
    let (rows, cols) = (x.dims()[0], x.dims()[1]);
    let mut gate_up = Tensor::<f32>::uninit([rows, 2 * cols]);
    kernels::add(x.data(), x.data(), &mut gate_up.data_mut()[..rows * cols]);
    kernels::silu(x.data(), &mut gate_up.data_mut()[rows * cols..]);
    let mut h = Tensor::<f32>::uninit([rows, cols]);
    kernels::swiglu_rows(gate_up.data(), cols, h.data_mut());
    let mut y = Tensor::<f32>::uninit([rows, cols]);
    kernels::add_row_broadcast(x.data(), w.data(), y.data_mut());
    kernels::add_assign(y.data_mut(), h.data());
    let mut ms = Tensor::<f32>::uninit([rows]);
    kernels::row_mean_sq(y.data(), cols, ms.data_mut());
    let mut inv = Tensor::<f32>::uninit([rows]);
    kernels::rsqrt(ms.data(), inv.data_mut());
    let mut normed = Tensor::<f32>::uninit([rows, cols]);
    kernels::scale_rows(y.data(), inv.data(), normed.data_mut());
    let mut probs = Tensor::<f32>::uninit([rows, cols]);
    kernels::softmax_rows(normed.data(), cols, probs.data_mut());
    let t = probs.transpose_last2();
    let mut d_gate_up = Tensor::<f32>::zeros([rows, 2 * cols]);
    kernels::swiglu_rows_grad_add(gate_up.data(), t.data(), cols, d_gate_up.data_mut());
    let mut bias_grad = Tensor::<f32>::zeros([cols]);
    kernels::col_sum_add(normed.data(), bias_grad.data_mut());
    kernels::sum(bias_grad.data()) + kernels::sum(d_gate_up.data())
}

fn main() {
    a_steady_loop_allocates_nothing_after_its_first_iteration();
    println!("alloc_free: a steady loop allocates nothing after its first iteration ... ok");
}

fn a_steady_loop_allocates_nothing_after_its_first_iteration() {
    let mut rng = Rng::new(1);
    let mut x = Tensor::<f32>::uninit([64, 96]);
    rng.fill_normal(x.data_mut(), 1.0);
    let mut w = Tensor::<f32>::uninit([96]);
    rng.fill_normal(w.data_mut(), 1.0);

    // Serial kernels (one thread): nothing at all after the first iteration.
    loopgrad_tensor::set_threads(1);
    let first = step(&x, &w);
    let span = PoolSpan::<f32>::start();
    let before = allocations();
    for _ in 0..20 {
        assert_eq!(step(&x, &w), first);
    }
    assert_eq!(allocations() - before, 0, "element-wise and row kernels allocated in a steady loop");
    let d = span.delta();
    assert_eq!((d.misses, d.live_change), (0, 0), "pool: {d:?}");
    assert!(d.hits > 0 && d.peak_extra > 0);

    // GEMMs: nothing with AVX-512; otherwise one allocation per call (matrixmultiply's packing buffer).
    let (a, b) = (Tensor::<f32>::full([64, 96], 0.5), Tensor::<f32>::full([96, 80], 0.25));
    let mut c = Tensor::<f32>::zeros([64, 80]);
    let mut bc = Tensor::<f32>::zeros([4, 16, 16]);
    let mut gemms = || {
        gemm(1.0, a.as_mat(), b.as_mat(), 0.0, loopgrad_tensor::MatMut::new(c.data_mut(), 64, 80));
        let (av, bv) = (BatchRef::new(&a.data()[..1024], 4, 16, 16), BatchRef::new(&b.data()[..1024], 4, 16, 16));
        gemm_batched(1.0, av, bv.t(), 1.0, BatchMut::new(bc.data_mut(), 4, 16, 16));
    };
    gemms();
    let before = allocations();
    for _ in 0..10 {
        gemms();
    }
    let per_call = if own_f32_gemm() { 0 } else { 1 };
    assert_eq!(allocations() - before, 10 * (1 + 4) * per_call, "GEMMs allocated more than their packing buffers");

    // Two threads, above the parallel thresholds: nothing after the first step. `set_threads` starts the
    // team's worker and waits until it has started (a thread allocates while it starts).
    loopgrad_tensor::set_threads(2);
    let mut x = Tensor::<f32>::uninit([512, 384]);
    rng.fill_normal(x.data_mut(), 1.0);
    let w = Tensor::<f32>::full([384], 0.1);
    let (wm, mut y) = (Tensor::<f32>::full([384, 256], 0.01), Tensor::<f32>::zeros([512, 256]));
    let steady = {
        let mut step_and_gemm = || {
            // 512 x 384 x 256 multiply-adds: split in two blocks, one per thread.
            gemm(1.0, x.as_mat(), wm.as_mat(), 0.0, loopgrad_tensor::MatMut::new(y.data_mut(), 512, 256));
            step(&x, &w)
        };
        let first = step_and_gemm();
        let before = allocations();
        for _ in 0..100 {
            assert_eq!(step_and_gemm(), first);
        }
        allocations() - before
    };
    let per_call = if own_f32_gemm() { 0 } else { 2 };
    assert_eq!(steady, 100 * per_call, "parallel kernels allocated in a steady loop on two threads");
}

/// Whether f32 GEMMs run one of loopgrad's own kernels (`src/gemm/avx512`, `src/gemm/avx2.rs`), which allocate
/// nothing.
fn own_f32_gemm() -> bool {
    loopgrad_tensor::own_f32_kernel().is_some()
}
