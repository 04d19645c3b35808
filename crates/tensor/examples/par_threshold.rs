//! Measures where splitting a kernel across two threads starts to pay, to set the thresholds in
//! `loopgrad_tensor::parallel` (`PAR_MIN_ELEMS_STREAMING`, `PAR_MIN_ELEMS_EXP`, `PAR_MIN_GEMM_MACS`).
//!
//!     cargo run --release -p loopgrad-tensor --example par_threshold
//!
//! For each size it times the kernel on one thread and split in two halves on loopgrad's team with
//! `parallel::chunks_mut` (what the library does above its thresholds), interleaving the two so that load from
//! other processes hits both alike, and prints the best (minimum) time of each over the rounds and their ratio:
//! on a shared machine the best round is the one where both cores happened to be free, the situation the
//! thresholds are for. The crossover is the first size where the split wins. The kernel inside each half runs
//! on its thread alone (a call from inside a part does not split again).

use loopgrad_tensor::parallel::chunks_mut;
use loopgrad_tensor::{gemm, kernels, set_threads, MatMut, MatRef};
use std::hint::black_box;
use std::time::Instant;

/// Best over `rounds` of the mean time of `reps` calls, for `serial` and `split` alternately.
fn compare(rounds: usize, reps: usize, mut serial: impl FnMut(), mut split: impl FnMut()) -> (f64, f64) {
    let (mut ts, mut tp) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        for _ in 0..reps {
            serial();
        }
        ts.push(t.elapsed().as_secs_f64() / reps as f64);
        let t = Instant::now();
        for _ in 0..reps {
            split();
        }
        tp.push(t.elapsed().as_secs_f64() / reps as f64);
    }
    (best(&ts), best(&tp))
}

fn best(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn report(what: &str, size: usize, (serial, split): (f64, f64)) {
    let verdict = if split < serial { "split wins" } else { "" };
    println!(
        "{what:>6} {size:>9}: 1 thread {:>9.2} us, 2 threads {:>9.2} us, ratio {:.2} {verdict}",
        serial * 1e6,
        split * 1e6,
        serial / split
    );
}

/// Runs `f` with the library's own splitting off, for the one-thread side of a comparison.
fn serial(f: impl FnOnce()) {
    set_threads(1);
    f();
    set_threads(2);
}

fn main() {
    set_threads(2);
    loopgrad_tensor::flush_denormals();
    let rounds = 31;

    for shift in 10..=20 {
        for n in [1usize << shift, 3 << (shift - 1)] {
            let a: Vec<f32> = (0..n).map(|i| (i % 97) as f32 * 0.01).collect();
            let b = a.clone();
            let mut out = vec![0.0f32; n];
            let reps = (1 << 22) / n + 1;
            let h = n / 2;
            let mut o2 = out.clone();
            let t = compare(
                rounds,
                reps,
                || serial(|| kernels::add(&a, &b, black_box(&mut out))),
                || chunks_mut(&mut o2, h, |i, o| kernels::add(&a[i * h..][..o.len()], &b[i * h..][..o.len()], o)),
            );
            report("add", n, t);
            let t = compare(
                rounds,
                reps.div_ceil(4),
                || serial(|| kernels::silu(&a, black_box(&mut out))),
                || chunks_mut(&mut o2, h, |i, o| kernels::silu(&a[i * h..][..o.len()], o)),
            );
            report("silu", n, t);
        }
    }

    // Square-ish GEMMs [m, k] x [k, n] around the threshold, split by rows of C.
    for &(m, k, n) in &[
        (16, 32, 32),
        (32, 32, 32),
        (32, 64, 64),
        (64, 64, 64),
        (64, 96, 96),
        (96, 128, 96),
        (128, 128, 128),
        (192, 192, 192),
    ] {
        let a = vec![0.5f32; m * k];
        let b = vec![0.25f32; k * n];
        let mut c = vec![0.0f32; m * n];
        let mut c2 = c.clone();
        let reps = (1 << 25) / (m * k * n) + 1;
        let h = m / 2;
        let t = compare(
            rounds,
            reps,
            || {
                serial(|| {
                    gemm(1.0, MatRef::new(&a, m, k), MatRef::new(&b, k, n), 0.0, MatMut::new(black_box(&mut c), m, n))
                })
            },
            || {
                chunks_mut(&mut c2, h * n, |i, ci| {
                    let (ai, rows) = (&a[i * h * k..][..ci.len() / n * k], ci.len() / n);
                    gemm(1.0, MatRef::new(ai, rows, k), MatRef::new(&b, k, n), 0.0, MatMut::new(ci, rows, n))
                })
            },
        );
        report("gemm", m * k * n, t);
    }
}
