//! Whole steps at the main job's shape (TRM-MLP D 64, batch 64, 36 tokens + 4 prefix positions, T 2, n 2), on 1
//! and 2 threads: the no-grad latent recursion (n + 1 = 3 net calls without a tape) and the supervision training
//! step `loopgrad bench` times, which is `Trainer::train_step` itself (forward with T-1 untaped recursions and the
//! recorded one, ACT loss, backward, AdamATan2, sign-SGD, EMA, slot bookkeeping). One thread is timed in thread
//! CPU time, two in wall time (`support/cpu_time.rs`). The paper-size step (seconds each) is `loopgrad bench`'s
//! job, not criterion's.
//!
//!     cargo bench --bench step

#[path = "support/cpu_time.rs"]
mod cpu_time;

use criterion::measurement::Measurement;
use criterion::{BenchmarkId, Criterion, Throughput};
// The step of `loopgrad bench`: the trainer's own `Trainer::train_step`.
use loopgrad_tensor::set_threads;
use loopgrad_train::bench::{BenchShape, BenchStep};
use std::time::Duration;

fn benches<M: Measurement>(c: &mut Criterion<M>, threads: usize) {
    set_threads(threads);
    let shape = BenchShape::main_job();
    let mut bench = BenchStep::new(&shape).expect("the main job's benchmark step");
    let mut group = c.benchmark_group(format!("step_{threads}t"));
    // Throughput in examples per second.
    group.throughput(Throughput::Elements(shape.batch as u64));
    group.bench_function(BenchmarkId::from_parameter("latent recursion, no grad (main job)"), |b| {
        b.iter(|| bench.latent_recursion_no_grad())
    });
    group.bench_function(BenchmarkId::from_parameter("supervision step (main job)"), |b| {
        b.iter(|| bench.train_step().expect("a finite loss"))
    });
    group.finish();
}

fn main() {
    // One thread in thread CPU time (immune to being descheduled on a shared machine), two in wall time.
    let (mut cpu, mut wall) = cpu_time::criterions(Duration::from_millis(500), Duration::from_secs(3));
    benches(&mut cpu, 1);
    benches(&mut wall, 2);
    wall.final_summary();
}
