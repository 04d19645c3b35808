//! GEMM at TRM shapes, on 1 and 2 threads: criterion's timings (its "thrpt" in elem/s counts flops, so
//! Gelem/s reads as GFLOP/s; one thread is timed in thread CPU time, two in wall time), then a summary measured
//! in the same run that puts each GEMM next to this machine's FMA peak:
//!
//!     cargo bench --bench gemm
//!
//! After it, the same shapes with bf16 operands (`gemm_batched_bf16`) on one thread, against the peak of the
//! instruction the bf16 kernel runs on here (AMX `tdpbf16ps` or `vdpbf16ps`) and against the f32 GEMM.
//!
//! The peak is measured by FMA-bound loops of independent multiply-add chains: one with `f32x8` (AVX2, the
//! width of loopgrad's own kernels) and, where the CPU has it, one with AVX-512 (the width matrixmultiply's
//! kernels use at runtime on such CPUs). The machine is shared, so every summary line is the median of
//! interleaved rounds (peak, GEMM, peak, GEMM, ...): load from other processes hits both sides of each ratio.
//! On one thread each round also runs `matrixmultiply::sgemm` on the same operands, and the line ends with
//! loopgrad's speed as a multiple of its (the median of the per-round ratios).

#[path = "support/cpu_time.rs"]
mod cpu_time;

use cpu_time::{thread_cpu_seconds, wall_seconds};
use criterion::measurement::Measurement;
use criterion::{BenchmarkId, Criterion, Throughput};
use loopgrad_tensor::gemm::amx_kernel_available;
use loopgrad_tensor::peak::{dot_chains_bf16, fma_chains_f32x8 as fma_loop_f32x8, tile_chains_bf16, CHAINS};
use loopgrad_tensor::{gemm_batched, gemm_batched_bf16, set_threads, BatchMut, BatchRef, Rng};
use std::hint::black_box;
use std::time::Duration;

/// One benchmarked product: `batch` x ([m, k] x [k, n]); `ta` / `tb`: the operand is stored transposed.
struct Shape {
    name: &'static str,
    batch: usize,
    m: usize,
    k: usize,
    n: usize,
    ta: bool,
    tb: bool,
}

const SHAPES: &[Shape] = &[
    Shape { name: "x[2048,512] W[512,1536]", batch: 1, m: 2048, k: 512, n: 1536, ta: false, tb: false },
    Shape { name: "x[2048,512] W[512,3072]", batch: 1, m: 2048, k: 512, n: 3072, ta: false, tb: false },
    Shape { name: "x[2048,1536] W[1536,512]", batch: 1, m: 2048, k: 1536, n: 512, ta: false, tb: false },
    Shape { name: "dW = x^T dy [512,2048][2048,1536]", batch: 1, m: 512, k: 2048, n: 1536, ta: true, tb: false },
    Shape { name: "skinny x[64,512] W[512,512]", batch: 1, m: 64, k: 512, n: 512, ta: false, tb: false },
    Shape { name: "scores 64 x q[97,64] k^T[64,97]", batch: 64, m: 97, k: 64, n: 97, ta: false, tb: true },
    Shape { name: "values 64 x p[97,97] v[97,64]", batch: 64, m: 97, k: 97, n: 64, ta: false, tb: false },
    Shape { name: "token up x[4096,40] W^T[40,512]", batch: 1, m: 4096, k: 40, n: 512, ta: false, tb: true },
    Shape { name: "narrow x[4096,512] W^T[512,97]", batch: 1, m: 4096, k: 512, n: 97, ta: false, tb: true },
    Shape { name: "narrow x[2560,256] W^T[256,64]", batch: 1, m: 2560, k: 256, n: 64, ta: false, tb: true },
];

/// Operands and output of one shape, filled once.
struct Problem {
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
}

impl Shape {
    fn flops(&self) -> f64 {
        2.0 * (self.batch * self.m * self.k * self.n) as f64
    }
    fn problem(&self) -> Problem {
        let mut rng = Rng::new(1);
        let mut draw = |len: usize| {
            let mut v = vec![0.0f32; len];
            rng.fill_uniform(&mut v, -1.0, 1.0);
            v
        };
        Problem {
            a: draw(self.batch * self.m * self.k),
            b: draw(self.batch * self.k * self.n),
            c: draw(self.batch * self.m * self.n),
        }
    }
    fn run(&self, p: &mut Problem) {
        self.run_in(false, p)
    }
    /// The product with f32 operands, or (`bf16`) with bf16 operands and f32 sums.
    fn run_in(&self, bf16: bool, p: &mut Problem) {
        let (m, k, n) = (self.m, self.k, self.n);
        let batch = self.batch;
        let a = if self.ta { BatchRef::new(&p.a, batch, k, m).t() } else { BatchRef::new(&p.a, batch, m, k) };
        let b = if self.tb { BatchRef::new(&p.b, batch, n, k).t() } else { BatchRef::new(&p.b, batch, k, n) };
        let c = BatchMut::new(&mut p.c, batch, m, n);
        if bf16 {
            gemm_batched_bf16(1.0, a, b, 0.0, c)
        } else {
            gemm_batched(1.0, a, b, 0.0, c)
        }
        black_box(&p.c);
    }
    /// The same product by `matrixmultiply::sgemm`, one call per batch item on the calling thread.
    fn run_matrixmultiply(&self, p: &mut Problem) {
        let (m, k, n) = (self.m, self.k, self.n);
        let (rsa, csa) = if self.ta { (1, m as isize) } else { (k as isize, 1) };
        let (rsb, csb) = if self.tb { (1, k as isize) } else { (n as isize, 1) };
        for i in 0..self.batch {
            let (a, b, c) = (&p.a[i * m * k..], &p.b[i * k * n..], &mut p.c[i * m * n..]);
            // SAFETY: item i's operands are [m, k], [k, n] and [m, n] blocks inside their vectors (`problem`).
            unsafe {
                #[rustfmt::skip]
                matrixmultiply::sgemm(
                    m, k, n, 1.0, a.as_ptr(), rsa, csa, b.as_ptr(), rsb, csb, 0.0, c.as_mut_ptr(), n as isize, 1,
                );
            }
        }
        black_box(&p.c);
    }
}

/// The same with 512-bit vectors (16 f32 lanes), or `None` when the CPU lacks AVX-512F.
fn fma_loop_avx512(iters: usize) -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f")]
        unsafe fn run(iters: usize) -> f64 {
            use std::arch::x86_64::{_mm512_fmadd_ps, _mm512_set1_ps};
            let (x, y) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
            let mut acc = [_mm512_set1_ps(1.0); CHAINS];
            for _ in 0..iters {
                for a in acc.iter_mut() {
                    *a = _mm512_fmadd_ps(*a, x, y);
                }
            }
            black_box(acc);
            (iters * CHAINS * 32) as f64
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, checked just above.
            return Some(unsafe { run(iters) });
        }
    }
    let _ = iters;
    None
}

/// GFLOP/s of `f` (which returns its flop count) run on `threads` threads at once, timed by `clock`.
fn gflops_on(threads: usize, clock: fn() -> f64, f: impl Fn() -> f64 + Sync) -> f64 {
    let t0 = clock();
    let flops = std::thread::scope(|s| {
        let others: Vec<_> = (1..threads).map(|_| s.spawn(&f)).collect();
        f() + others.into_iter().map(|h| h.join().unwrap()).sum::<f64>()
    });
    flops / (clock() - t0) / 1e9
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn best(v: &[f64]) -> f64 {
    v.iter().copied().fold(0.0, f64::max)
}

/// The summary: for each shape and thread count, rounds of (f32x8 peak, GEMM, AVX-512 peak), each about 20 ms,
/// so that the load of other processes changes little within a round. One thread is timed in thread CPU time
/// (immune to being descheduled), two threads in wall time (the only clock for a speed-up). Printed: the median
/// GEMM GFLOP/s, and its ratio to each peak (and, on one thread, to matrixmultiply) as the median of the
/// per-round ratios.
fn peak_summary() {
    const ROUNDS: usize = 15;
    // 12 chains x 16 flops x 9M = 1.7 GFLOP per thread (f32x8; twice that with AVX-512): about 20 ms each.
    const PEAK_ITERS: usize = 9_000_000;
    println!("\nGEMM f32 against this machine's FMA peak, median of {ROUNDS} interleaved rounds:");
    for threads in [1, 2] {
        set_threads(threads);
        let clock: fn() -> f64 = if threads == 1 { thread_cpu_seconds } else { wall_seconds };
        let clock_name = if threads == 1 { "thread CPU time" } else { "wall time" };
        println!("  {threads} thread{} ({clock_name}):", if threads == 1 { "" } else { "s" });
        for shape in SHAPES {
            let mut p = shape.problem();
            shape.run(&mut p);
            let reps = ((2e9 / shape.flops()) as usize).max(1);
            let (mut gf, mut r256, mut r512, mut p256, mut p512, mut mm) =
                (vec![], vec![], vec![], vec![], vec![], vec![]);
            for _ in 0..ROUNDS {
                let peak256 = gflops_on(threads, clock, || fma_loop_f32x8(PEAK_ITERS));
                let t0 = clock();
                for _ in 0..reps {
                    shape.run(&mut p);
                }
                let g = shape.flops() * reps as f64 / (clock() - t0) / 1e9;
                let avx512 = fma_loop_avx512(1).is_some();
                let peak512 = avx512.then(|| gflops_on(threads, clock, || fma_loop_avx512(PEAK_ITERS).unwrap()));
                if threads == 1 {
                    let t0 = clock();
                    for _ in 0..reps {
                        shape.run_matrixmultiply(&mut p);
                    }
                    mm.push(g / (shape.flops() * reps as f64 / (clock() - t0) / 1e9));
                }
                gf.push(g);
                r256.push(g / peak256);
                p256.push(peak256);
                if let Some(pk) = peak512 {
                    r512.push(g / pk);
                    p512.push(pk);
                }
            }
            let avx512 = if p512.is_empty() {
                String::from("(no AVX-512)")
            } else {
                format!("{:4.0}% of the AVX-512 peak ({:.0})", 100.0 * median(r512), median(p512))
            };
            let vs_mm = if mm.is_empty() { String::new() } else { format!(", {:.2}x matrixmultiply", median(mm)) };
            println!(
                "    {:<34} {:6.1} GFLOP/s (best {:5.1}) = {:4.0}% of the f32x8 FMA peak ({:.0}), {avx512}{vs_mm}",
                shape.name,
                median(gf.clone()),
                best(&gf),
                100.0 * median(r256),
                median(p256),
            );
        }
    }
}

/// The bf16 products on one thread (thread CPU time), on whichever kernel runs here (`cpu::kernels`): rounds of
/// (the peak loop of that kernel's instruction, the bf16 GEMM, the f32 GEMM on the same operands), each about
/// 20 ms. Printed: the median bf16 GFLOP/s, its fraction of that peak, and its speed over the f32 GEMM, as medians
/// of the per-round ratios.
fn bf16_summary() {
    const ROUNDS: usize = 15;
    // The tile loop does 64x the flops of the dot-product loop per iteration, at about 1/16 of its rate.
    let (peak, iters): (fn(usize) -> Option<f64>, usize) =
        if amx_kernel_available() { (tile_chains_bf16, 9_000_000 / 64) } else { (dot_chains_bf16, 9_000_000) };
    let kernel = loopgrad_tensor::cpu::kernels().bf16_gemm;
    if peak(1).is_none() {
        println!(
            "
bf16 GEMM: {kernel}; no bf16 instruction to measure it against"
        );
        return;
    }
    println!(
        "
GEMM bf16 ({kernel}), 1 thread (thread CPU time), median of {ROUNDS} interleaved rounds:"
    );
    set_threads(1);
    for shape in SHAPES {
        let mut p = shape.problem();
        shape.run_in(true, &mut p);
        let reps = ((2e9 / shape.flops()) as usize).max(1);
        let (mut gf, mut of_peak, mut pk, mut vs_f32) = (vec![], vec![], vec![], vec![]);
        for _ in 0..ROUNDS {
            let peak = gflops_on(1, thread_cpu_seconds, || peak(iters).unwrap_or(0.0));
            let timed = |bf16: bool, p: &mut Problem| {
                let t0 = thread_cpu_seconds();
                for _ in 0..reps {
                    shape.run_in(bf16, p);
                }
                shape.flops() * reps as f64 / (thread_cpu_seconds() - t0) / 1e9
            };
            let (g, f32) = (timed(true, &mut p), timed(false, &mut p));
            gf.push(g);
            of_peak.push(g / peak);
            pk.push(peak);
            vs_f32.push(g / f32);
        }
        println!(
            "    {:<34} {:6.1} GFLOP/s (best {:6.1}) = {:4.1}% of its instruction's peak ({:.0}), {:.2}x the f32 GEMM",
            shape.name,
            median(gf.clone()),
            best(&gf),
            100.0 * median(of_peak),
            median(pk),
            median(vs_f32),
        );
    }
}

/// Criterion timings: one thread in thread CPU time, two threads in wall time (see `support/cpu_time.rs`).
fn criterion_benches<M: Measurement>(c: &mut Criterion<M>, threads: usize) {
    set_threads(threads);
    let mut group = c.benchmark_group(format!("gemm_f32_{threads}t"));
    for shape in SHAPES {
        let mut p = shape.problem();
        group.throughput(Throughput::Elements(shape.flops() as u64));
        group.bench_function(BenchmarkId::from_parameter(shape.name), |bch| bch.iter(|| shape.run(&mut p)));
    }
    group.finish();
}

fn main() {
    // One thread in thread CPU time (immune to being descheduled on a shared machine), two in wall time.
    let (mut cpu, mut wall) = cpu_time::criterions(Duration::from_millis(300), Duration::from_secs(1));
    criterion_benches(&mut cpu, 1);
    criterion_benches(&mut wall, 2);
    wall.final_summary();
    // `cargo test --benches` runs each benchmark once in test mode; the summary is for real runs only.
    if !std::env::args().any(|a| a == "--test" || a == "--list") {
        peak_summary();
        bf16_summary();
    }
}
