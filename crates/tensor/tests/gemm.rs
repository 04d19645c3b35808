//! GEMM and batched GEMM against a naive triple loop in f64, with transposed and strided (non-contiguous)
//! operands, strided outputs, and alpha/beta including beta = 1 (accumulate) and beta = 0 (C's old contents,
//! NaN here, are ignored). 64 cases by default (`PROPTEST_CASES` for more).
//!
//! Tolerance: each C element within (k + 2) ulp of the magnitudes that went into it,
//! |alpha| sum_p |a_ip| |b_pj| + |beta| |c_ij| (any summation order, with or without FMA, stays inside it).

mod common;

use loopgrad_tensor::{gemm, gemm_batched, BatchMut, BatchRef, Float, MatMut, MatRef};
use proptest::prelude::*;

type Operand = common::Operand<f64>;

/// An operand with random layout: padding 0..3 beyond the minimal leading dimension, maybe transposed.
fn operand(rows: usize, cols: usize) -> impl Strategy<Value = Operand> {
    (any::<bool>(), 0usize..3, any::<u64>()).prop_map(move |(transposed, pad, seed)| {
        let mut rng = loopgrad_tensor::Rng::new(seed);
        Operand::new(rows, cols, transposed, pad, || rng.uniform_in(-2.0, 2.0))
    })
}

fn dim() -> impl Strategy<Value = usize> {
    prop_oneof![prop::sample::select(vec![1usize, 7, 8, 9, 16, 17, 33]), 0usize..24, 60usize..90]
}

fn coefficient() -> impl Strategy<Value = f64> {
    prop_oneof![Just(0.0), Just(1.0), Just(-1.0), -2.0..2.0f64]
}

/// Runs C = alpha A B + beta C in type E and checks every element of C's buffer: inside the view against the
/// naive product, outside it unchanged.
fn check<E: Float>(alpha: f64, a: &Operand, b: &Operand, beta: f64, c: &Operand) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let (ae, be): (Vec<E>, Vec<E>) = (common::cast(&a.buf), common::cast(&b.buf));
    let mut ce: Vec<E> = common::cast(&c.buf);
    if beta == 0.0 {
        for i in 0..m {
            for j in 0..n {
                ce[c.at(i, j)] = E::from_f64(f64::NAN);
            }
        }
    }
    let before = ce.clone();
    let (rs, cs) = c.strides();
    let cv = MatMut { data: &mut ce, rows: m, cols: n, rs, cs };
    gemm(E::from_f64(alpha), a.view(&ae), b.view(&be), E::from_f64(beta), cv);

    let eps = E::EPSILON.to_f64();
    let mut inside = vec![false; ce.len()];
    for i in 0..m {
        for j in 0..n {
            let (mut want, mut mag) = (0.0, 0.0);
            for p in 0..k {
                let (x, y) = (ae[a.at(i, p)].to_f64(), be[b.at(p, j)].to_f64());
                want += x * y;
                mag += (x * y).abs();
            }
            let c0 = if beta == 0.0 { 0.0 } else { before[c.at(i, j)].to_f64() };
            let want = alpha * want + beta * c0;
            let tol = (k as f64 + 2.0) * eps * (alpha.abs() * mag + beta.abs() * c0.abs());
            let got = ce[c.at(i, j)].to_f64();
            assert!(
                (got - want).abs() <= tol,
                "gemm {} [{m}, {k}] x [{k}, {n}], alpha {alpha}, beta {beta}: C[{i}, {j}] = {got:e}, naive {want:e}",
                E::NAME
            );
            inside[c.at(i, j)] = true;
        }
    }
    for (idx, (x, y)) in ce.iter().zip(&before).enumerate() {
        assert!(inside[idx] || x.to_f64().to_bits() == y.to_f64().to_bits(), "gemm wrote outside C at {idx}");
    }
}

fn problem() -> impl Strategy<Value = (f64, Operand, Operand, f64, Operand)> {
    (dim(), dim(), dim())
        .prop_flat_map(|(m, k, n)| (coefficient(), operand(m, k), operand(k, n), coefficient(), operand(m, n)))
}

proptest! {
    #![proptest_config(common::config())]

    #[test]
    fn gemm_matches_the_naive_product((alpha, a, b, beta, c) in problem()) {
        check::<f32>(alpha, &a, &b, beta, &c);
        check::<f64>(alpha, &a, &b, beta, &c);
    }

    #[test]
    fn gemm_batched_matches_the_naive_product(
        (batch, m, k, n, ta, tb, bcast_a, bcast_b, alpha, beta, seed) in
            (0usize..5, dim(), 0usize..20, dim(), any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>(),
             coefficient(), coefficient(), any::<u64>())
    ) {
        batched::<f32>(batch, m, k, n, (ta, tb), (bcast_a, bcast_b), alpha, beta, seed);
        batched::<f64>(batch, m, k, n, (ta, tb), (bcast_a, bcast_b), alpha, beta, seed);
    }
}

#[allow(clippy::too_many_arguments)]
fn batched<E: Float>(
    batch: usize,
    m: usize,
    k: usize,
    n: usize,
    (ta, tb): (bool, bool),
    (bcast_a, bcast_b): (bool, bool),
    alpha: f64,
    beta: f64,
    seed: u64,
) {
    let mut rng = loopgrad_tensor::Rng::new(seed);
    let a_stride = if bcast_a { 0 } else { m * k };
    let b_stride = if bcast_b { 0 } else { k * n };
    let mut draw = |len: usize| (0..len).map(|_| E::from_f64(rng.uniform_in(-2.0, 2.0))).collect::<Vec<E>>();
    let a = draw(if bcast_a { m * k } else { batch * m * k });
    let b = draw(if bcast_b { k * n } else { batch * k * n });
    let mut c = draw(batch * m * n);
    if beta == 0.0 {
        c.fill(E::from_f64(f64::NAN));
    }
    let before = c.clone();
    let (ea, eb) = (E::from_f64(alpha), E::from_f64(beta));
    // Stored [k, m] (or [n, k]) when transposed; one matrix seen `batch` times when broadcast.
    fn view<E: Float>(data: &[E], batch: usize, bcast: bool, (rows, cols): (usize, usize), t: bool) -> BatchRef<'_, E> {
        let (r, c) = if t { (cols, rows) } else { (rows, cols) };
        let v =
            if bcast { BatchRef::broadcast(MatRef::new(data, r, c), batch) } else { BatchRef::new(data, batch, r, c) };
        if t {
            v.t()
        } else {
            v
        }
    }
    let (av, bv) = (view(&a, batch, bcast_a, (m, k), ta), view(&b, batch, bcast_b, (k, n), tb));
    gemm_batched(ea, av, bv, eb, BatchMut::new(&mut c, batch, m, n));
    let eps = E::EPSILON.to_f64();
    for t in 0..batch {
        let (ab, bb) = (&a[t * a_stride..], &b[t * b_stride..]);
        for i in 0..m {
            for j in 0..n {
                let (mut want, mut mag) = (0.0, 0.0);
                for p in 0..k {
                    let x = if ta { ab[p * m + i] } else { ab[i * k + p] }.to_f64();
                    let y = if tb { bb[j * k + p] } else { bb[p * n + j] }.to_f64();
                    want += x * y;
                    mag += (x * y).abs();
                }
                let c0 = if beta == 0.0 { 0.0 } else { before[t * m * n + i * n + j].to_f64() };
                let want = alpha * want + beta * c0;
                let tol = (k as f64 + 2.0) * eps * (alpha.abs() * mag + beta.abs() * c0.abs());
                let got = c[t * m * n + i * n + j].to_f64();
                assert!(
                    (got - want).abs() <= tol,
                    "gemm_batched {}: item {t} C[{i}, {j}] = {got:e}, naive {want:e}",
                    E::NAME
                );
            }
        }
    }
}

/// Shapes big enough to be split across threads, along rows (m >= n) and along columns (n > m), into a
/// column-major C, accumulating with beta = 1; and a batch big enough to be split by items.
#[test]
fn split_gemms_match_the_naive_product() {
    loopgrad_tensor::set_threads(2);
    let mut rng = loopgrad_tensor::Rng::new(9);
    let mut op = |rows: usize, cols: usize, transposed: bool| {
        Operand::new(rows, cols, transposed, 1, || rng.uniform_in(-1.0, 1.0))
    };
    for &(m, k, n) in &[(300, 70, 40), (33, 90, 310)] {
        let (a, b, c) = (op(m, k, true), op(k, n, false), op(m, n, true));
        check::<f32>(0.5, &a, &b, 1.0, &c);
        check::<f64>(-1.5, &a, &b, 0.0, &c);
    }
    batched::<f32>(13, 33, 64, 35, (false, true), (false, false), 1.0, 1.0, 4);
    batched::<f64>(13, 33, 64, 35, (true, false), (false, true), 0.3, 0.0, 5);
}

#[test]
#[should_panic(expected = "gemm: cannot multiply [2, 3] by [4, 5] into [2, 5]")]
fn gemm_names_all_three_shapes() {
    let (a, b, mut c) = (vec![0.0f32; 6], vec![0.0f32; 20], vec![0.0f32; 10]);
    gemm(1.0, MatRef::new(&a, 2, 3), MatRef::new(&b, 4, 5), 0.0, MatMut::new(&mut c, 2, 5));
}

#[test]
#[should_panic(expected = "gemm_batched: cannot multiply 2 x [2, 2] by 2 x [2, 3] into 2 x [3, 3]")]
fn gemm_batched_names_all_three_shapes() {
    let (a, b, mut c) = (vec![0.0f64; 8], vec![0.0f64; 12], vec![0.0f64; 18]);
    gemm_batched(1.0, BatchRef::new(&a, 2, 2, 2), BatchRef::new(&b, 2, 2, 3), 0.0, BatchMut::new(&mut c, 2, 3, 3));
}

#[test]
#[should_panic(expected = "BatchMut::new: 11 elements for 2 x [2, 3]")]
fn a_batch_view_names_its_shape() {
    let mut c = vec![0.0f64; 11];
    BatchMut::new(&mut c, 2, 2, 3);
}

#[test]
#[should_panic(expected = "gemm_batched: 3 x [2, 2] (A: 8 elements, strides (4, 2, 1)) overruns its slice")]
fn gemm_batched_names_an_overrun_operand() {
    let (a, b, mut c) = (vec![0.0f64; 8], vec![0.0f64; 18], vec![0.0f64; 18]);
    let a = BatchRef { data: &a, batch: 3, rows: 2, cols: 2, bs: 4, rs: 2, cs: 1 };
    gemm_batched(1.0, a, BatchRef::new(&b, 3, 2, 3), 0.0, BatchMut::new(&mut c, 3, 2, 3));
}
