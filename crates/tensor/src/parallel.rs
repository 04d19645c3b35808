//! Threads: how many loopgrad uses, when a kernel is worth splitting, and the floating-point mode of the
//! threads that do the work.
//!
//! # How many: one rule
//! A program asks for a thread count once, at its start ([`use_threads`]): the command's own setting
//! (`run.threads`, `--threads`) when it is positive, else the `LOOPGRAD_THREADS` environment variable when it is,
//! else the cores this process may use ([`resolve_threads`]). That one count sizes both pools: the team below,
//! for the fine-grained splits of kernels and GEMMs, and rayon's global pool, for the coarse-grained loops
//! (generating and rating puzzles, augmenting ARC tasks, checking puzzle files), which never run during a step.
//!
//! # One team
//! Every parallel kernel and every GEMM runs on loopgrad's own team of worker threads (`team.rs`): [`run`]
//! splits a job into parts that the calling thread and the workers claim, and returns when all are done.
//! `matrixmultiply` is built without its own `threading` pool: a large GEMM is split into row (or column)
//! blocks, one single-threaded `sgemm` per block, and a batched GEMM splits its batch. The team replaced rayon
//! here because its workers spin between jobs instead of sleeping after a few microseconds (the measurements are
//! in `team.rs` and `docs/benchmarks.md`).
//!
//! # Thresholds
//! Below a set amount of work a kernel runs on the calling thread. With the team's workers spinning, a split
//! costs about 0.5-1 us, and `examples/par_threshold.rs` (each kernel serial against split in two, best of 31
//! interleaved rounds) sees the split win from about 12-16 K elements for `add`, 3-8 K for `silu` and 262 K
//! multiply-adds for a GEMM: the thresholds below sit at those crossovers (`docs/benchmarks.md`, "When to
//! split"). None of them changes a bit: every split kernel writes disjoint outputs, cut on SIMD-width units.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Streaming kernels (add, mul, axpy, copies, row sums: a few flops per element, memory-bound) split across
/// threads from this many elements on (`add` of this size: 1.88 us serial, 1.54 us split).
pub const PAR_MIN_ELEMS_STREAMING: usize = 1 << 14;
/// Kernels that evaluate `exp` per element (exp, sigmoid, SiLU, softmax, SwiGLU) split from this many elements
/// (`silu` of this size: 5.35 us serial, 3.32 us split).
pub const PAR_MIN_ELEMS_EXP: usize = 1 << 13;
/// A GEMM is split across threads from this many multiply-adds (`m * k * n`) on (3.35 us serial, 2.99 us split).
pub const PAR_MIN_GEMM_MACS: usize = 1 << 18;
/// The most threads [`set_threads`] accepts.
pub const MAX_THREADS: usize = 1024;

/// 0 until [`set_threads`] is called: then [`threads`] reports the number of CPUs.
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// The environment variable of the thread rule ([`resolve_threads`]).
pub const THREADS_ENV: &str = "LOOPGRAD_THREADS";

/// The thread rule: `requested` (a command's `run.threads` or `--threads`) when positive, else `env` (the value
/// of `LOOPGRAD_THREADS`, if set) when positive, else `cores`; 0 and an empty `env` mean "not said". The error
/// names what is out of range: `requested` or `env` above [`MAX_THREADS`], or an `env` that is not a number.
pub fn resolve_threads(requested: usize, env: Option<&str>, cores: usize) -> Result<usize, String> {
    if requested > MAX_THREADS {
        return Err(format!("{requested} threads is more than {MAX_THREADS}"));
    }
    let from_env = match env.map(str::trim).filter(|v| !v.is_empty()) {
        None => 0,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n <= MAX_THREADS => n,
            _ => return Err(format!("{THREADS_ENV}={v} is not a thread count in 0..={MAX_THREADS} (0 = every core)")),
        },
    };
    Ok([requested, from_env].into_iter().find(|&n| n > 0).unwrap_or(cores.clamp(1, MAX_THREADS)))
}

/// The thread rule ([`resolve_threads`]) with this process's `LOOPGRAD_THREADS` and cores, applied to nothing
/// (a study divides it among its jobs).
pub fn threads_for(requested: usize) -> Result<usize, String> {
    let env = std::env::var_os(THREADS_ENV).map(|v| v.to_string_lossy().into_owned());
    resolve_threads(requested, env.as_deref(), cpus())
}

/// Applies the thread rule ([`threads_for`]) at a program's start: sizes the team ([`set_threads`]) and rayon's
/// global pool to the count, and returns it. rayon's pool is
/// built once per process, by the first call (a later one, as in tests that run several commands in one process,
/// resizes only the team) or by the first rayon loop if that comes first: a library caller that never calls this
/// gets both pools' defaults, every core.
pub fn use_threads(requested: usize) -> Result<usize, String> {
    let n = threads_for(requested)?;
    set_threads(n);
    // Called on the main thread (a program's start), the caller is one of rayon's n threads, as it is one of the
    // team's: a loop it starts runs on it and n - 1 workers, and one thread means no other. Any other thread may
    // end before the process (a test's), so there the pool has n workers of its own.
    let mut pool = rayon::ThreadPoolBuilder::new().num_threads(n);
    if std::thread::current().name() == Some("main") {
        pool = pool.use_current_thread();
    }
    // An error means the pool exists already (see above); the loops it runs give the same results on any count.
    let _ = pool.build_global();
    Ok(n)
}

/// The cores this process may use. Asked once: on Linux the answer reads the cgroup's CPU quota from files,
/// which allocates.
fn cpus() -> usize {
    static CPUS: OnceLock<usize> = OnceLock::new();
    *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_THREADS))
}

/// Sets how many threads loopgrad's kernels and GEMMs use, for the whole process. `1` keeps every kernel on the
/// calling thread; `n > 1` splits large kernels and GEMMs into `n` parts, run by the calling thread and `n - 1`
/// workers, which this call starts (if fewer have been started so far) so that no later call allocates for
/// them; if the OS refuses a thread, the parts run on the threads there are. Calling it again changes the split
/// count (extra workers stay parked). Panics if `n` is 0 or more than [`MAX_THREADS`].
pub fn set_threads(n: usize) {
    assert!((1..=MAX_THREADS).contains(&n), "set_threads: the thread count must be in 1..={MAX_THREADS}, not {n}");
    crate::team::ensure_workers(n - 1);
    THREADS.store(n, Ordering::Relaxed);
}

/// How many parts loopgrad splits large kernels and GEMMs into (see [`set_threads`]; by default the number of
/// CPUs the process may use).
pub fn threads() -> usize {
    match THREADS.load(Ordering::Relaxed) {
        0 => cpus(),
        n => n,
    }
}

/// Runs `f(0)`, ..., `f(parts - 1)` in parallel on the team (the calling thread takes parts too), and returns
/// when all have finished; each part's panic, if any, is re-raised here. Parts are claimed in order, one at a
/// time, so `parts` may exceed [`threads`] to balance uneven parts. With one thread, or when called from inside
/// a part or while another thread's job runs, the parts run here, in order: a job's result must not depend on
/// which thread ran which part (every caller splits into disjoint outputs).
pub fn run(parts: usize, f: impl Fn(usize) + Sync) {
    match parts {
        0 => {}
        1 => f(0),
        _ => crate::team::run(parts, threads() - 1, &f),
    }
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

/// Runs `f(i, chunk)` for the `i`-th run of `chunk` elements of `out` (the last may be shorter), in parallel
/// ([`run`]).
pub fn chunks_mut<T: Send>(out: &mut [T], chunk: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    let (len, ptr) = (out.len(), SendPtr(out.as_mut_ptr()));
    run(len.div_ceil(nonzero("chunks_mut", chunk)), |i| {
        // SAFETY: part i alone sees this run of `out`, which is exclusively borrowed for this call.
        f(i, unsafe { ptr.run(i, chunk, len) })
    });
}

/// [`chunks_mut`] over two slices in step: `f(i, a_chunk, b_chunk)` for the `i`-th runs of `a_chunk` elements of
/// `a` and `b_chunk` of `b`, which must make as many runs.
pub fn chunk_pairs_mut<A: Send, B: Send>(
    a: &mut [A],
    a_chunk: usize,
    b: &mut [B],
    b_chunk: usize,
    f: impl Fn(usize, &mut [A], &mut [B]) + Sync,
) {
    let parts = a.len().div_ceil(nonzero("chunk_pairs_mut", a_chunk));
    assert_eq!(
        parts,
        b.len().div_ceil(nonzero("chunk_pairs_mut", b_chunk)),
        "parallel::chunk_pairs_mut: {} x {a_chunk} and {} x {b_chunk} make different numbers of runs",
        a.len(),
        b.len()
    );
    let (a_len, a_ptr, b_len, b_ptr) = (a.len(), SendPtr(a.as_mut_ptr()), b.len(), SendPtr(b.as_mut_ptr()));
    run(parts, |i| {
        // SAFETY: part i alone sees these runs of `a` and `b`, both exclusively borrowed for this call.
        f(i, unsafe { a_ptr.run(i, a_chunk, a_len) }, unsafe { b_ptr.run(i, b_chunk, b_len) })
    });
}

fn nonzero(op: &str, chunk: usize) -> usize {
    assert!(chunk > 0, "parallel::{op}: the chunk length must be positive");
    chunk
}

/// A slice's start, shared by the parts of one [`run`], each of which takes its own run of it.
#[derive(Clone, Copy)]
struct SendPtr<T>(*mut T);
// SAFETY: only the address crosses threads; `run` hands each part a disjoint range.
unsafe impl<T: Send> Sync for SendPtr<T> {}
impl<T> SendPtr<T> {
    /// The `i`-th run of `chunk` elements of the `len`-element slice (the last may be shorter).
    ///
    /// # Safety
    /// The slice is exclusively borrowed for as long as the result lives, and no other live reference covers
    /// this run; `i * chunk < len`.
    #[allow(clippy::mut_from_ref)]
    unsafe fn run<'a>(&self, i: usize, chunk: usize, len: usize) -> &'a mut [T] {
        let lo = i * chunk;
        std::slice::from_raw_parts_mut(self.0.add(lo), chunk.min(len - lo))
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
    let parts = parts_for(out.len().saturating_mul(work_per_elem), min_work);
    let units = out.len().div_ceil(unit.max(1));
    if parts <= 1 || units < 2 {
        f(0, out);
        return;
    }
    let chunk = units.div_ceil(parts) * unit.max(1);
    chunks_mut(out, chunk, |i, c| f(i * chunk, c));
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

/// [`flush_denormals_on_current_thread`], for the thread that trains: call it there at start-up. The team's
/// workers run each part in the mode of the thread that started the job, so they follow.
pub fn flush_denormals() -> bool {
    flush_denormals_on_current_thread()
}

/// Sets (or clears) flush-to-zero and denormals-are-zero on the calling thread: how a team worker takes on the
/// mode of the thread whose job it runs. No-op where [`flush_denormals_on_current_thread`] is one.
pub(crate) fn set_denormal_flush(on: bool) {
    #[cfg(target_arch = "x86_64")]
    {
        let csr = mxcsr() & !(MXCSR_FTZ | MXCSR_DAZ);
        set_mxcsr(if on { csr | MXCSR_FTZ | MXCSR_DAZ } else { csr });
    }
    #[cfg(target_arch = "aarch64")]
    {
        let cr = fpcr() & !FPCR_FZ;
        set_fpcr(if on { cr | FPCR_FZ } else { cr });
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let _ = on;
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
    // SAFETY: ldmxcsr loads MXCSR from a valid u32; the values written only set or clear the FTZ/DAZ mode bits
    // of the current register, which cannot fault (reserved bits are untouched).
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
    // SAFETY: writing FPCR with only the FZ bit set or cleared changes the handling of denormals, nothing else.
    unsafe { std::arch::asm!("msr fpcr, {}", in(reg) v, options(nomem, nostack, preserves_flags)) };
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_thread_rule_takes_the_command_then_the_environment_then_the_cores() {
        use super::{resolve_threads as rule, MAX_THREADS};
        assert_eq!(rule(3, Some("5"), 2), Ok(3), "the command's own setting wins");
        assert_eq!(rule(0, Some("5"), 2), Ok(5), "then LOOPGRAD_THREADS");
        assert_eq!(rule(0, Some(" 1 "), 2), Ok(1));
        assert_eq!(rule(0, None, 2), Ok(2), "then the cores");
        assert_eq!(rule(0, Some(""), 2), Ok(2), "an empty variable is unset");
        assert_eq!(rule(0, Some("0"), 2), Ok(2), "0 means every core, as run.threads = 0 does");
        assert_eq!(rule(0, None, 0), Ok(1), "at least one");
        assert_eq!(rule(0, None, 5000), Ok(MAX_THREADS));
        assert_eq!(rule(MAX_THREADS, None, 2), Ok(MAX_THREADS));
        assert_eq!(rule(MAX_THREADS + 1, Some("2"), 2), Err("1025 threads is more than 1024".into()));
        for bad in ["two", "-1", "1.5", "1025"] {
            let e = rule(0, Some(bad), 2).unwrap_err();
            assert_eq!(e, format!("LOOPGRAD_THREADS={bad} is not a thread count in 0..=1024 (0 = every core)"));
        }
        assert_eq!(
            rule(2, Some("two"), 2),
            Err("LOOPGRAD_THREADS=two is not a thread count in 0..=1024 (0 = every core)".into()),
            "a bad variable is an error even when the command says"
        );
    }

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
    fn chunk_runs_cover_both_slices_in_step_whatever_their_lengths() {
        for (len, chunk) in [(0, 3), (1, 3), (7, 3), (9, 3), (5, 100)] {
            let (mut a, mut b) = (vec![0usize; len], vec![0usize; 2 * len]);
            chunk_pairs_mut(&mut a, chunk, &mut b, 2 * chunk, |i, ac, bc| {
                assert_eq!(bc.len(), 2 * ac.len(), "run {i}");
                ac.iter_mut().for_each(|x| *x += i + 1);
                bc.iter_mut().for_each(|x| *x += i + 1);
            });
            let runs = |v: &[usize], c: usize| v.iter().enumerate().all(|(j, &x)| x == j / c + 1);
            assert!(runs(&a, chunk) && runs(&b, 2 * chunk), "len {len}, chunk {chunk}: {a:?} {b:?}");
        }
    }

    #[test]
    #[should_panic(expected = "parallel::chunk_pairs_mut: 6 x 3 and 6 x 2 make different numbers of runs")]
    fn chunk_pairs_that_do_not_line_up_are_refused() {
        chunk_pairs_mut(&mut [0u8; 6], 3, &mut [0u8; 6], 2, |_, _, _| {});
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
