//! This machine's f32 FMA peak, measured: the yardstick for "what fraction of the machine does a GEMM or a
//! training step use". The GEMM bench (`benches/gemm.rs`) and `loopgrad bench` both run [`fma_chains_f32x8`], so
//! their fractions are of the same loop.
//!
//! The loop runs independent multiply-add chains on `f32x8` (AVX2 + FMA, the width of loopgrad's kernels). On CPUs
//! with AVX-512 a 512-bit loop can be faster (Intel server cores with two 512-bit FMA units); on Zen 4 it is not
//! (its 512-bit FMAs run as two 256-bit halves). The GEMM bench measures that one too; it stays out of the library
//! because its intrinsics need a newer compiler than the workspace's minimum (1.89 vs 1.85).

use crate::float::Float;
use crate::simd::SimdVec;
use std::hint::black_box;
use std::time::Instant;

/// Independent FMA chains per thread: enough to cover FMA latency (4 cycles) times two FMA ports.
pub const CHAINS: usize = 12;

/// Runs `iters` rounds of [`CHAINS`] independent f32x8 FMAs on the calling thread and returns the flops done
/// (time it with the clock of your choice).
pub fn fma_chains_f32x8(iters: usize) -> f64 {
    type V = <f32 as Float>::Simd;
    let (x, y) = (V::splat(0.999_999), V::splat(1e-7));
    let mut acc = [V::splat(1.0); CHAINS];
    for _ in 0..iters {
        for a in acc.iter_mut() {
            *a = a.mul_add(x, y);
        }
    }
    black_box(acc);
    (iters * CHAINS * 2 * V::LANES) as f64
}

/// GFLOP/s (wall clock) of `f`, which returns its flop count, run on `threads` OS threads at once.
pub fn gflops_on_threads(threads: usize, f: impl Fn() -> f64 + Sync) -> f64 {
    let t = Instant::now();
    let flops = std::thread::scope(|s| {
        let others: Vec<_> = (1..threads.max(1)).map(|_| s.spawn(&f)).collect();
        f() + others.into_iter().map(|h| h.join().unwrap()).sum::<f64>()
    });
    flops / t.elapsed().as_secs_f64() / 1e9
}

/// The f32x8 FMA peak of `threads` threads in GFLOP/s: the best of `rounds` rounds of about 20 ms each (noise
/// from other processes only ever slows a round down, so the best round estimates the idle machine).
pub fn fma_peak_gflops(threads: usize, rounds: usize) -> f64 {
    // 12 chains x 16 flops x 9M = 1.7 GFLOP per thread: about 17 ms per round on a 100 GFLOP/s core.
    const ITERS: usize = 9_000_000;
    (0..rounds.max(1)).map(|_| gflops_on_threads(threads, || fma_chains_f32x8(ITERS))).fold(0.0, f64::max)
}
