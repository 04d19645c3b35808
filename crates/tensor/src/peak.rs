//! This machine's arithmetic peaks, measured: the yardsticks for "what fraction of the machine does a GEMM or a
//! training step use". The GEMM bench (`benches/gemm.rs`) and `loopgrad bench` run the same loops, so their
//! fractions are of the same thing.
//!
//! Each loop runs [`CHAINS`] independent multiply-add chains per thread, enough to cover the instruction's
//! latency (4-6 cycles) times two issue ports:
//! - [`fma_chains_f32x8`]: `f32x8` FMAs (AVX2 + FMA), the width of loopgrad's element-wise kernels;
//! - [`fma_chains_f32x16`]: 512-bit FMAs (AVX-512F), the widest f32 FMA of an AVX-512 CPU and the width of its f32
//!   GEMM. An Intel server core with two 512-bit FMA units runs it at twice the `f32x8` rate; Zen 4 runs its
//!   512-bit FMAs as two 256-bit halves, so there the two are equal;
//! - [`dot_chains_bf16`]: `vdpbf16ps` (AVX512_BF16), 16 lanes each adding two bf16 products to an f32 sum: the
//!   peak of the bf16 GEMM ([`crate::gemm::gemm_bf16`]) on a CPU without AMX;
//! - [`tile_chains_bf16`]: `tdpbf16ps` (AMX-BF16), a 16 x 32 by 32 x 16 bf16 tile product into 16 x 16 f32 sums
//!   per instruction: the peak of the bf16 GEMM where it runs on AMX tiles.
//!
//! [`f32_peak_gflops`] picks the widest f32 loop the CPU runs, so `peak_fraction` is of what the machine can do.

use crate::float::Float;
use crate::simd::SimdVec;
use std::hint::black_box;
use std::time::Instant;

/// Independent chains per thread: enough to cover the latency (4 cycles for an FMA) times two ports.
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

/// Which loop a peak was measured with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeakKind {
    /// `f32x8` FMAs (AVX2 + FMA or their portable emulation).
    F32x8,
    /// 512-bit f32 FMAs (AVX-512F).
    F32x16,
    /// `vdpbf16ps` (AVX512_BF16): bf16 pairs into f32 sums.
    Bf16Dot,
    /// `tdpbf16ps` (AMX-BF16): bf16 tiles into f32 tiles.
    Bf16Tile,
}

impl PeakKind {
    /// The name `loopgrad bench` prints.
    pub fn name(self) -> &'static str {
        match self {
            PeakKind::F32x8 => "f32 FMA, 256-bit (f32x8)",
            PeakKind::F32x16 => "f32 FMA, 512-bit (AVX-512F)",
            PeakKind::Bf16Dot => "bf16 dot product, 512-bit (AVX512_BF16 vdpbf16ps)",
            PeakKind::Bf16Tile => "bf16 tile product (AMX-BF16 tdpbf16ps)",
        }
    }
}

/// Runs `iters` rounds of [`CHAINS`] independent 512-bit f32 FMAs on the calling thread and returns the flops
/// done, or `None` on a CPU without AVX-512F.
pub fn fma_chains_f32x16(iters: usize) -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx512f") {
        // SAFETY: AVX-512F was detected just above.
        return Some(unsafe { x86::fma_f32x16(iters) });
    }
    let _ = iters;
    None
}

/// Runs `iters` rounds of [`CHAINS`] independent `vdpbf16ps` on the calling thread and returns the flops done
/// (2 per product: 64 per instruction), or `None` on a CPU without AVX512_BF16.
pub fn dot_chains_bf16(iters: usize) -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    if crate::gemm::bf16_kernel_available() {
        // SAFETY: AVX-512F and AVX512_BF16 were detected just above.
        return Some(unsafe { x86::dot_bf16(iters) });
    }
    let _ = iters;
    None
}

/// Runs `iters` rounds of four independent `tdpbf16ps` on the calling thread and returns the flops done (16,384
/// per instruction), or `None` where the bf16 GEMM does not run on AMX tiles (no AMX, no grant from the OS, or
/// `LOOPGRAD_AMX=0`).
pub fn tile_chains_bf16(iters: usize) -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    if crate::gemm::amx_kernel_available() {
        // SAFETY: the AMX kernel's checks (CPUID and the OS's grant) passed just above.
        return Some(unsafe { crate::gemm::amx_peak_chains(iters) });
    }
    let _ = iters;
    None
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::CHAINS;
    use std::arch::x86_64::*;
    use std::hint::black_box;

    /// # Safety
    /// AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn fma_f32x16(iters: usize) -> f64 {
        let (x, y) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
        let mut acc = [_mm512_set1_ps(1.0); CHAINS];
        for _ in 0..iters {
            for a in acc.iter_mut() {
                *a = _mm512_fmadd_ps(*a, x, y);
            }
        }
        black_box(acc);
        (iters * CHAINS * 2 * 16) as f64
    }

    /// # Safety
    /// AVX-512F and AVX512_BF16.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn dot_bf16(iters: usize) -> f64 {
        let x = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3), _mm512_set1_ps(-1e-3));
        let mut acc = [_mm512_set1_ps(1.0); CHAINS];
        for _ in 0..iters {
            for a in acc.iter_mut() {
                *a = _mm512_dpbf16_ps(*a, x, x);
            }
        }
        black_box(acc);
        (iters * CHAINS * 2 * 32) as f64
    }
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

/// The best of `rounds` rounds of `f` on `threads` threads, in GFLOP/s (noise from other processes only ever
/// slows a round down, so the best round estimates the idle machine).
fn best_of(threads: usize, rounds: usize, f: impl Fn() -> f64 + Sync) -> f64 {
    (0..rounds.max(1)).map(|_| gflops_on_threads(threads, &f)).fold(0.0, f64::max)
}

/// Rounds of a peak loop: 12 chains x 16 flops x 9M = 1.7 GFLOP per thread for f32x8, about 17 ms on a
/// 100 GFLOP/s core; the wider loops do the same number of instructions, so more flops in about the same time.
const ITERS: usize = 9_000_000;

/// The f32x8 FMA peak of `threads` threads in GFLOP/s: the best of `rounds` rounds of about 20 ms each.
pub fn fma_peak_gflops(threads: usize, rounds: usize) -> f64 {
    best_of(threads, rounds, || fma_chains_f32x8(ITERS))
}

/// The widest f32 FMA peak this CPU runs (512-bit with AVX-512F, else f32x8), on `threads` threads, best of
/// `rounds`: the yardstick of an f32 training step.
pub fn f32_peak_gflops(threads: usize, rounds: usize) -> (f64, PeakKind) {
    if fma_chains_f32x16(1).is_some() {
        (best_of(threads, rounds, || fma_chains_f32x16(ITERS).unwrap_or(0.0)), PeakKind::F32x16)
    } else {
        (fma_peak_gflops(threads, rounds), PeakKind::F32x8)
    }
}

/// The bf16 dot-product peak (`vdpbf16ps`) on `threads` threads, best of `rounds`, or `None` without
/// AVX512_BF16: the yardstick of a bf16 training step on a CPU without AMX.
pub fn bf16_peak_gflops(threads: usize, rounds: usize) -> Option<f64> {
    dot_chains_bf16(1)?;
    Some(best_of(threads, rounds, || dot_chains_bf16(ITERS).unwrap_or(0.0)))
}

/// Rounds of the AMX loop: each `tdpbf16ps` takes about 16 cycles, so 1/16 of [`ITERS`] instructions (4 per
/// round) take about as long as the other loops.
const TILE_ITERS: usize = ITERS / 64;

/// The AMX tile peak (`tdpbf16ps`) on `threads` threads, best of `rounds`, or `None` where the bf16 GEMM does
/// not use AMX: the yardstick of a bf16 training step where it does.
pub fn tile_peak_gflops(threads: usize, rounds: usize) -> Option<f64> {
    tile_chains_bf16(1)?;
    Some(best_of(threads, rounds, || tile_chains_bf16(TILE_ITERS).unwrap_or(0.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loops_count_their_flops() {
        assert_eq!(fma_chains_f32x8(10), (10 * CHAINS * 16) as f64);
        if let Some(f) = fma_chains_f32x16(10) {
            assert_eq!(f, (10 * CHAINS * 32) as f64);
        }
        if let Some(f) = dot_chains_bf16(10) {
            assert_eq!(f, (10 * CHAINS * 64) as f64);
        }
        if let Some(f) = tile_chains_bf16(10) {
            assert_eq!(f, (10 * 4 * 16384) as f64);
        }
    }
}
