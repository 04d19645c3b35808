//! Element-wise and row kernels in GB/s (criterion's throughput counts the bytes each kernel must read and
//! write), SIMD on 1 and 2 threads and the scalar reference on 1 (one thread timed in thread CPU time, two in
//! wall time: see `support/cpu_time.rs`), at two sizes of a [rows, 512] f32
//! activation: 97 rows (one TRM sequence, 194 KiB per operand: cache-resident, below the parallel thresholds)
//! and 2048 rows (4 MiB per operand: memory traffic, split across threads).
//!
//!     cargo bench --bench kernels
//!     cargo bench --bench kernels -- 2048x512_1t      # one group

#[path = "support/cpu_time.rs"]
mod cpu_time;

use criterion::measurement::Measurement;
use criterion::{BenchmarkId, Criterion, Throughput};
use loopgrad_autograd::ops::swiglu::reference as swiglu_reference;
use loopgrad_tensor::kernels::{self, reference};
use loopgrad_tensor::{set_threads, Rng};
use std::hint::black_box;
use std::time::Duration;

const COLS: usize = 512;

/// Inputs and outputs of every kernel for one [rows, COLS] size.
struct Data {
    rows: usize,
    a: Vec<f32>,
    b: Vec<f32>,
    row: Vec<f32>,
    out: Vec<f32>,
    /// [rows, 2 COLS] for SwiGLU's fused gate/up input.
    gate_up: Vec<f32>,
    per_row: Vec<f32>,
}

impl Data {
    fn new(rows: usize) -> Self {
        let mut rng = Rng::new(3);
        let mut draw = |len: usize| {
            let mut v = vec![0.0f32; len];
            rng.fill_uniform(&mut v, 0.1, 4.0);
            v
        };
        let n = rows * COLS;
        Data { rows, a: draw(n), b: draw(n), row: draw(COLS), out: draw(n), gate_up: draw(2 * n), per_row: draw(rows) }
    }
}

/// A kernel run on `Data`, and the bytes it must move per element of a [rows, COLS] operand.
type Kernel = (&'static str, usize, fn(&mut Data));

/// The same list of kernels from `kernels` (SIMD) or `reference` (scalar): the modules share every name, but for
/// SwiGLU, whose scalar form is its op's specification (`$swiglu`: `loopgrad_autograd::ops::swiglu::reference`).
macro_rules! kernel_list {
    ($m:ident, $swiglu:path) => {{
        let list: Vec<Kernel> = vec![
            ("add", 12, |d| $m::add(&d.a, &d.b, &mut d.out)),
            ("axpy", 12, |d| $m::axpy(0.5, &d.a, &mut d.out)),
            ("mul_add_assign", 16, |d| $m::mul_add_assign(&mut d.out, &d.a, &d.b)),
            ("exp", 8, |d| $m::exp(&d.a, &mut d.out)),
            ("sigmoid", 8, |d| $m::sigmoid(&d.a, &mut d.out)),
            ("silu", 8, |d| $m::silu(&d.a, &mut d.out)),
            ("rsqrt", 8, |d| $m::rsqrt(&d.a, &mut d.out)),
            ("swiglu_rows", 12, |d| $swiglu(&d.gate_up, COLS, &mut d.out)),
            ("softmax_rows", 8, |d| $m::softmax_rows(&d.a, COLS, &mut d.out)),
            ("row_sum", 4, |d| $m::row_sum(&d.a, COLS, &mut d.per_row)),
            ("row_mean_sq", 4, |d| $m::row_mean_sq(&d.a, COLS, &mut d.per_row)),
            ("add_row_broadcast", 8, |d| $m::add_row_broadcast(&d.a, &d.row, &mut d.out)),
            ("col_sum_add", 4, |d| $m::col_sum_add(&d.a, &mut d.row)),
            ("transpose", 8, |d| $m::transpose(&d.a, 1, d.rows, COLS, &mut d.out)),
        ];
        list
    }};
}

fn bench_group<M: Measurement>(c: &mut Criterion<M>, label: &str, rows: usize, list: &[Kernel]) {
    let mut d = Data::new(rows);
    let mut group = c.benchmark_group(label);
    for &(name, bytes_per_elem, f) in list {
        group.throughput(Throughput::Bytes((bytes_per_elem * rows * COLS) as u64));
        group.bench_function(BenchmarkId::from_parameter(name), |bch| {
            bch.iter(|| {
                f(&mut d);
                black_box(&d.out);
            })
        });
    }
    group.finish();
}

fn main() {
    // One thread in thread CPU time (immune to being descheduled on a shared machine), two in wall time.
    let (mut cpu, mut wall) = cpu_time::criterions(Duration::from_millis(200), Duration::from_millis(500));
    for rows in [97, 2048] {
        set_threads(1);
        bench_group(
            &mut cpu,
            &format!("reference_{rows}x{COLS}"),
            rows,
            &kernel_list!(reference, swiglu_reference::swiglu_rows),
        );
        bench_group(&mut cpu, &format!("simd_{rows}x{COLS}_1t"), rows, &kernel_list!(kernels, kernels::swiglu_rows));
        set_threads(2);
        bench_group(&mut wall, &format!("simd_{rows}x{COLS}_2t"), rows, &kernel_list!(kernels, kernels::swiglu_rows));
    }
    wall.final_summary();
}
