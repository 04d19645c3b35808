//! GEMM at TRM shapes, on 1 and 2 threads: criterion's timings (its "thrpt" in elem/s counts flops, so
//! Gelem/s reads as GFLOP/s), then a summary measured in the same run that puts each GEMM next to this
//! machine's FMA peak:
//!
//!     cargo bench --bench gemm
//!
//! The peak is measured by FMA-bound loops of independent multiply-add chains: one with `f32x8` (AVX2, the
//! width of loopgrad's own kernels) and, where the CPU has it, one with AVX-512 (the width matrixmultiply's
//! kernels use at runtime on such CPUs). The machine is shared, so every summary line is the median of
//! interleaved rounds (peak, GEMM, peak, GEMM, ...): load from other processes hits both sides of each ratio.

use criterion::{BenchmarkId, Criterion, Throughput};
use loopgrad_tensor::simd::SimdVec;
use loopgrad_tensor::{gemm_batched, set_threads, Float, Rng};
use std::hint::black_box;
use std::time::{Duration, Instant};

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
        let (m, k, n) = (self.m, self.k, self.n);
        gemm_batched(self.batch, m, k, n, 1.0, &p.a, self.ta, m * k, &p.b, self.tb, k * n, 0.0, &mut p.c);
        black_box(&p.c);
    }
}

/// Independent FMA chains per thread: enough to cover FMA latency (4 cycles) times two FMA ports.
const CHAINS: usize = 12;

/// GFLOP/s of one thread running `iters` rounds of CHAINS independent f32x8 FMAs (the library's own vector
/// type for f32, `wide::f32x8`).
fn fma_loop_f32x8(iters: usize) -> f64 {
    type V = <f32 as Float>::Simd;
    let (x, y) = (V::splat(0.999_999), V::splat(1e-7));
    let mut acc = [V::splat(1.0); CHAINS];
    let t = Instant::now();
    for _ in 0..iters {
        for a in acc.iter_mut() {
            *a = a.mul_add(x, y);
        }
    }
    let dt = t.elapsed().as_secs_f64();
    black_box(acc);
    (iters * CHAINS * 2 * V::LANES) as f64 / dt / 1e9
}

/// The same with 512-bit vectors (16 f32 lanes), or `None` when the CPU lacks AVX-512F. (AVX-512 intrinsics
/// need Rust 1.89, as do matrixmultiply's AVX-512 kernels, which it silently leaves out on older compilers.)
#[allow(clippy::incompatible_msrv)]
fn fma_loop_avx512(iters: usize) -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f")]
        unsafe fn run(iters: usize) -> f64 {
            use std::arch::x86_64::{_mm512_fmadd_ps, _mm512_set1_ps};
            let (x, y) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
            let mut acc = [_mm512_set1_ps(1.0); CHAINS];
            let t = Instant::now();
            for _ in 0..iters {
                for a in acc.iter_mut() {
                    *a = _mm512_fmadd_ps(*a, x, y);
                }
            }
            let dt = t.elapsed().as_secs_f64();
            black_box(acc);
            (iters * CHAINS * 32) as f64 / dt / 1e9
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, checked just above.
            return Some(unsafe { run(iters) });
        }
    }
    let _ = iters;
    None
}

/// Total GFLOP/s of `f` run on `threads` threads at once (the machine's peak for that many threads).
fn on_threads(threads: usize, f: impl Fn() -> f64 + Sync) -> f64 {
    std::thread::scope(|s| {
        let others: Vec<_> = (1..threads).map(|_| s.spawn(&f)).collect();
        f() + others.into_iter().map(|h| h.join().unwrap()).sum::<f64>()
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The summary: for each shape and thread count, the median over interleaved rounds of GEMM GFLOP/s and of
/// its ratio to the FMA peaks measured in the same round.
fn peak_summary() {
    const ROUNDS: usize = 9;
    const PEAK_ITERS: usize = 2_000_000; // about 15 ms per peak loop
    println!("\nGEMM f32 against this machine's FMA peak (median of {ROUNDS} interleaved rounds):");
    for threads in [1, 2] {
        set_threads(threads);
        for shape in SHAPES {
            let mut p = shape.problem();
            shape.run(&mut p);
            let reps = ((0.05e12 / shape.flops()) as usize).max(2);
            let (mut gf, mut r256, mut r512, mut p256, mut p512) = (vec![], vec![], vec![], vec![], vec![]);
            for _ in 0..ROUNDS {
                let peak256 = on_threads(threads, || fma_loop_f32x8(PEAK_ITERS));
                let peak512 = fma_loop_avx512(1).map(|_| on_threads(threads, || fma_loop_avx512(PEAK_ITERS).unwrap()));
                let t = Instant::now();
                for _ in 0..reps {
                    shape.run(&mut p);
                }
                let g = shape.flops() * reps as f64 / t.elapsed().as_secs_f64() / 1e9;
                gf.push(g);
                r256.push(g / peak256);
                p256.push(peak256);
                if let Some(pk) = peak512 {
                    r512.push(g / pk);
                    p512.push(pk);
                }
            }
            let avx512 = if r512.is_empty() {
                String::from("no AVX-512")
            } else {
                format!("{:3.0}% of the AVX-512 peak ({:.0})", 100.0 * median(r512), median(p512))
            };
            println!(
                "  {threads} thread{} {:<34} {:6.1} GFLOP/s = {:3.0}% of the f32x8 FMA peak ({:.0}), {avx512}",
                if threads == 1 { " " } else { "s" },
                shape.name,
                median(gf),
                100.0 * median(r256),
                median(p256),
            );
        }
    }
}

fn criterion_benches(c: &mut Criterion) {
    for threads in [1, 2] {
        set_threads(threads);
        let mut group = c.benchmark_group(format!("gemm_f32_{threads}t"));
        for shape in SHAPES {
            let mut p = shape.problem();
            group.throughput(Throughput::Elements(shape.flops() as u64));
            group.bench_function(BenchmarkId::from_parameter(shape.name), |bch| bch.iter(|| shape.run(&mut p)));
        }
        group.finish();
    }
}

fn main() {
    // Size rayon's pool for two threads first; each part below then picks its split count.
    set_threads(2);
    loopgrad_tensor::flush_denormals();
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .configure_from_args();
    criterion_benches(&mut c);
    c.final_summary();
    // `cargo test --benches` runs each benchmark once in test mode; the summary is for real runs only.
    if !std::env::args().any(|a| a == "--test" || a == "--list") {
        peak_summary();
    }
}
