//! Threads: how many loopgrad uses, when a kernel is worth splitting, and the floating-point mode of the
//! threads that do the work.
//!
//! # One pool
//! Every parallel kernel and every GEMM runs on rayon's global pool. `matrixmultiply` is built without its own
//! `threading` pool: a large GEMM is split into row (or column) blocks, one single-threaded `sgemm` per block,
//! and a batched GEMM splits its batch. Two pools on 2 cores would each assume they own the machine, and
//! matrixmultiply's worker threads could not be given flush-to-zero (it has no start hook). The measurements
//! behind this choice are in `docs/benchmarks.md` ("Tensor kernels").
//!
//! # Thresholds
//! Below a set amount of work a kernel runs on the calling thread. A split costs 0.01-1.6 us from inside the pool
//! and 5.3 us from outside it (measured by `examples/par_threshold.rs`), so each threshold sits where the serial
//! kernel takes 5-7 us: there a split can win when the second core is free and costs little when it is not. The
//! crossovers themselves could not be observed on the shared machine (see `docs/benchmarks.md`); re-run the
//! example on an idle one to refine them.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Streaming kernels (add, mul, axpy, copies, row sums: a few flops per element, memory-bound) split across
/// threads from this many elements on (a serial `add` of this size: 7.1 us).
pub const PAR_MIN_ELEMS_STREAMING: usize = 1 << 16;
/// Kernels that evaluate `exp` per element (exp, sigmoid, SiLU, softmax, SwiGLU) split from this many elements
/// (a serial `silu` of this size: 5.8 us).
pub const PAR_MIN_ELEMS_EXP: usize = 1 << 13;
/// A GEMM is split across threads from this many multiply-adds (`m * k * n`) on (serial: 4.8 us).
pub const PAR_MIN_GEMM_MACS: usize = 1 << 18;

/// 0 until [`set_threads`] is called: then [`threads`] reports rayon's global pool size.
static THREADS: AtomicUsize = AtomicUsize::new(0);
/// Set by [`flush_denormals`], read by the start handler of a pool that [`set_threads`] builds later.
static FLUSH_DENORMALS: AtomicBool = AtomicBool::new(false);

/// Sets how many threads loopgrad's kernels and GEMMs use, for the whole process. `1` keeps every kernel on the
/// calling thread (rayon is never entered); `n > 1` splits large kernels and GEMMs into `n` parts on rayon's
/// global pool. Benches and the CLI call this once at start-up; calling it again changes the split count.
///
/// The first call also sizes rayon's global pool to `n` workers if nothing has used rayon yet (rayon lets the
/// global pool be built only once; later calls leave its size alone). Panics if `n == 0`.
pub fn set_threads(n: usize) {
    assert!(n > 0, "set_threads: the thread count must be at least 1");
    THREADS.store(n, Ordering::Relaxed);
    // Err means the global pool exists already; then only the split count changes.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .start_handler(|_| {
            if FLUSH_DENORMALS.load(Ordering::Relaxed) {
                flush_denormals_on_current_thread();
            }
        })
        .build_global();
}

/// How many parts loopgrad splits large kernels and GEMMs into (see [`set_threads`]; by default the size of
/// rayon's global pool, i.e. the number of CPUs or `RAYON_NUM_THREADS`).
pub fn threads() -> usize {
    match THREADS.load(Ordering::Relaxed) {
        0 => rayon::current_num_threads(),
        n => n,
    }
}

/// Runs `f` on a worker of rayon's global pool while the calling thread waits, and returns its result. Run a
/// training loop inside it. A parallel kernel called from a pool worker queues its parts on that worker's own
/// deque, which allocates nothing; called from any other thread, they go through rayon's global injector, which
/// allocates a block every 63 jobs (about 17 allocations per 100 steps in `tests/alloc_free.rs`). Thread-local
/// buffer pools are then the worker's, so keep a whole loop inside one call. With one thread, `f` simply runs
/// here.
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if threads() <= 1 || rayon::current_thread_index().is_some() {
        return f();
    }
    rayon::scope(|_| f())
}

/// Into how many parts to split `work` units, given the smallest amount worth splitting for.
#[inline]
pub(crate) fn parts_for(work: usize, min_work: usize) -> usize {
    if work < min_work {
        1
    } else {
        threads()
    }
}

/// Runs `f(offset, chunk)` over `out` split into at most [`threads`] contiguous chunks whose lengths are
/// multiples of `unit` (except the last), in parallel when `out.len() * work_per_elem >= min_work`, else once
/// over the whole slice on the calling thread. `offset` is the chunk's first index in `out`, so `f` can slice
/// the inputs that line up with it.
#[inline]
pub(crate) fn for_chunks<T: Send>(
    out: &mut [T],
    unit: usize,
    work_per_elem: usize,
    min_work: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    use rayon::prelude::*;
    let parts = parts_for(out.len().saturating_mul(work_per_elem), min_work);
    let units = out.len().div_ceil(unit.max(1));
    if parts <= 1 || units < 2 {
        f(0, out);
        return;
    }
    let chunk = units.div_ceil(parts) * unit.max(1);
    out.par_chunks_mut(chunk).enumerate().for_each(|(i, c)| f(i * chunk, c));
}

/// Enables flush-to-zero (denormal results become 0) and denormals-are-zero (denormal inputs read as 0) on the
/// calling thread. Denormal arithmetic takes a microcode assist costing ~100 cycles per operation on x86: a
/// PyTorch run on this project's machine slowed 15x when activations went denormal. Returns `false` on
/// platforms where this is not implemented (then nothing changes).
///
/// x86-64: sets MXCSR bits FTZ (15) and DAZ (6). aarch64: sets FPCR.FZ (bit 24), which does both.
pub fn flush_denormals_on_current_thread() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        set_mxcsr(mxcsr() | MXCSR_FTZ | MXCSR_DAZ);
        true
    }
    #[cfg(target_arch = "aarch64")]
    {
        set_fpcr(fpcr() | FPCR_FZ);
        true
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// [`flush_denormals_on_current_thread`] on the calling thread and on every worker of rayon's global pool (now,
/// and on workers of a pool that [`set_threads`] builds later). Call it on the thread that trains, at start-up.
pub fn flush_denormals() -> bool {
    FLUSH_DENORMALS.store(true, Ordering::Relaxed);
    rayon::broadcast(|_| flush_denormals_on_current_thread());
    flush_denormals_on_current_thread()
}

/// Whether the calling thread flushes denormals (both FTZ and DAZ on x86-64).
pub fn denormals_flushed() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        mxcsr() & (MXCSR_FTZ | MXCSR_DAZ) == MXCSR_FTZ | MXCSR_DAZ
    }
    #[cfg(target_arch = "aarch64")]
    {
        fpcr() & FPCR_FZ != 0
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

#[cfg(target_arch = "x86_64")]
const MXCSR_FTZ: u32 = 1 << 15;
#[cfg(target_arch = "x86_64")]
const MXCSR_DAZ: u32 = 1 << 6;

#[cfg(target_arch = "x86_64")]
fn mxcsr() -> u32 {
    let mut csr: u32 = 0;
    // SAFETY: stmxcsr stores the 32-bit MXCSR register into `csr`, a valid, writable u32.
    unsafe { std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack, preserves_flags)) };
    csr
}

#[cfg(target_arch = "x86_64")]
fn set_mxcsr(csr: u32) {
    // SAFETY: ldmxcsr loads MXCSR from a valid u32; the values written only add the FTZ/DAZ mode bits to the
    // current register, which cannot fault (reserved bits are untouched).
    unsafe { std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack, preserves_flags, readonly)) };
}

#[cfg(target_arch = "aarch64")]
const FPCR_FZ: u64 = 1 << 24;

#[cfg(target_arch = "aarch64")]
fn fpcr() -> u64 {
    let v: u64;
    // SAFETY: reading FPCR has no side effects.
    unsafe { std::arch::asm!("mrs {}, fpcr", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

#[cfg(target_arch = "aarch64")]
fn set_fpcr(v: u64) {
    // SAFETY: writing FPCR with only the FZ bit added changes the rounding of denormals, nothing else.
    unsafe { std::arch::asm!("msr fpcr, {}", in(reg) v, options(nomem, nostack, preserves_flags)) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hint::black_box;

    #[test]
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    fn flushing_turns_denormals_into_zero_on_this_thread_only() {
        // A thread of its own: the mode is per thread, and other tests must not see it.
        std::thread::spawn(|| {
            let tiny = black_box(f32::MIN_POSITIVE);
            let denormal = black_box(f32::MIN_POSITIVE / 4.0);
            assert!(!denormals_flushed());
            assert!(black_box(tiny) * black_box(0.5f32) > 0.0, "without FTZ the product is a denormal");
            assert!(flush_denormals_on_current_thread());
            assert!(denormals_flushed());
            assert_eq!(black_box(tiny) * black_box(0.5f32), 0.0, "FTZ: denormal results flush to zero");
            assert_eq!(black_box(denormal) * black_box(1.0f32), 0.0, "DAZ: denormal inputs read as zero");
            assert_eq!(black_box(f64::MIN_POSITIVE) * black_box(0.5f64), 0.0, "f64 too");
        })
        .join()
        .unwrap();
        assert!(!denormals_flushed(), "the test thread's mode is untouched");
    }

    #[test]
    fn chunks_cover_the_slice_once_on_unit_boundaries() {
        let mut v = vec![0u32; 1000];
        for_chunks(&mut v, 8, 1, 0, |off, c| {
            assert_eq!(off % 8, 0);
            for (i, x) in c.iter_mut().enumerate() {
                *x += (off + i) as u32;
            }
        });
        assert!(v.iter().enumerate().all(|(i, &x)| x == i as u32));
    }
}
