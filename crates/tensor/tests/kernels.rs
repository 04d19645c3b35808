//! Every SIMD kernel against its scalar reference (`kernels::reference`), on random lengths that straddle the
//! vector widths, for f32 and f64. Case count: 64 by default; `PROPTEST_CASES=1000 cargo test ...` for more.
//!
//! Tolerances (E::EPSILON = one ulp at 1.0; see `common`):
//! - bit-identical: add, sub, mul, scale, the `_assign` kernels, fill, rsqrt, row_max, row_argmax, the
//!   broadcasts, scale_rows, col_sum_add, transpose;
//! - one fused multiply-add instead of a multiply and an add (axpy, mul_add_assign): 1 ulp of |y| + |a b|;
//! - sums of n terms in another order (sum, dot, sum_sq, row sums and dots): n ulp of the sum of |terms|;
//! - exp: 2 ulp of the result; sigmoid 3; silu 4; silu_mul 5; softmax (cols + 4) ulp;
//! - gradients (silu_grad_add, silu_mul_grad_add, softmax_rows_grad_add): 8 ulp (softmax: cols + 8) of the
//!   magnitudes that went into each element.
//!
//! The fused kernels of RMSNorm and SwiGLU are tested next to their ops, against the scalar specifications
//! there (loopgrad-autograd's `ops/rms_norm.rs`, `ops/swiglu.rs`).

mod common;

use common::*;
use loopgrad_tensor::compare::{assert_close, assert_same, assert_ulps};
use loopgrad_tensor::kernels::{self, reference};
use loopgrad_tensor::Float;
use proptest::prelude::*;

fn zeros<E: Float>(n: usize) -> Vec<E> {
    vec![E::ZERO; n]
}

fn elementwise<E: Float>(a: &[f64], b: &[f64], y: &[f64], s: f64) {
    let (a, b, y): (Vec<E>, Vec<E>, Vec<E>) = (cast(a), cast(b), cast(y));
    let s = E::from_f64(s);
    let n = a.len();
    let (mut got, mut want) = (zeros::<E>(n), zeros::<E>(n));

    macro_rules! binary {
        ($f:ident) => {
            kernels::$f(&a, &b, &mut got);
            reference::$f(&a, &b, &mut want);
            assert_same(stringify!($f), &got, &want);
        };
    }
    binary!(add);
    binary!(sub);
    binary!(mul);
    kernels::scale(&a, s, &mut got);
    reference::scale(&a, s, &mut want);
    assert_same("scale", &got, &want);
    let positive: Vec<E> = a.iter().map(|&x| x.abs() + E::from_f64(0.01)).collect();
    kernels::rsqrt(&positive, &mut got);
    reference::rsqrt(&positive, &mut want);
    assert_same("rsqrt", &got, &want);
    kernels::fill(&mut got, s);
    assert!(got.iter().all(|&v| v == s), "fill");

    macro_rules! in_place {
        ($f:ident, $arg:expr) => {
            got.copy_from_slice(&y);
            want.copy_from_slice(&y);
            kernels::$f(&mut got, $arg);
            reference::$f(&mut want, $arg);
            assert_same(stringify!($f), &got, &want);
        };
    }
    in_place!(add_assign, &a);
    in_place!(sub_assign, &a);
    in_place!(mul_assign, &a);
    in_place!(scale_assign, s);

    let f = |v: &[E]| v.iter().map(|x| x.to_f64()).collect::<Vec<f64>>();
    let (af, bf, yf, sf) = (f(&a), f(&b), f(&y), s.to_f64());
    got.copy_from_slice(&y);
    want.copy_from_slice(&y);
    kernels::axpy(s, &a, &mut got);
    reference::axpy(s, &a, &mut want);
    let scale: Vec<f64> = (0..n).map(|i| yf[i].abs() + (sf * af[i]).abs()).collect();
    assert_close("axpy", &got, &want, &scale, 1.0);
    got.copy_from_slice(&y);
    want.copy_from_slice(&y);
    kernels::mul_add_assign(&mut got, &a, &b);
    reference::mul_add_assign(&mut want, &a, &b);
    let scale: Vec<f64> = (0..n).map(|i| yf[i].abs() + (af[i] * bf[i]).abs()).collect();
    assert_close("mul_add_assign", &got, &want, &scale, 1.0);

    let terms = |t: f64| [(n as f64) * t];
    let sum_abs: f64 = af.iter().map(|x| x.abs()).sum();
    let dot_abs: f64 = af.iter().zip(&bf).map(|(x, y)| (x * y).abs()).sum();
    let sq: f64 = af.iter().map(|x| x * x).sum();
    assert_close("sum", &[kernels::sum(&a)], &[reference::sum(&a)], &terms(sum_abs), 1.0);
    assert_close("dot", &[kernels::dot(&a, &b)], &[reference::dot(&a, &b)], &terms(dot_abs), 1.0);
    assert_close("sum_sq", &[kernels::sum_sq(&a)], &[reference::sum_sq(&a)], &terms(sq), 1.0);
}

fn transcendental<E: Float>(x: &[f64], wide: &[f64], up: &[f64], dy: &[f64]) {
    let (x, wide, up, dy): (Vec<E>, Vec<E>, Vec<E>, Vec<E>) = (cast(x), cast(wide), cast(up), cast(dy));
    let n = x.len();
    let (mut got, mut want) = (zeros::<E>(n), zeros::<E>(n));
    kernels::exp(&wide, &mut got);
    reference::exp(&wide, &mut want);
    assert_ulps("exp", &got, &want, 2.0);
    kernels::sigmoid(&wide, &mut got);
    reference::sigmoid(&wide, &mut want);
    assert_ulps("sigmoid", &got, &want, 3.0);
    kernels::silu(&x, &mut got);
    reference::silu(&x, &mut want);
    assert_ulps("silu", &got, &want, 4.0);
    kernels::silu_mul(&x, &up, &mut got);
    reference::silu_mul(&x, &up, &mut want);
    assert_ulps("silu_mul", &got, &want, 5.0);

    // Gradients: silu'(x) = s (1 + x (1 - s)) cancels near x = -1.28, so bound by the magnitudes instead.
    let f = |v: &[E]| v.iter().map(|x| x.to_f64()).collect::<Vec<f64>>();
    let (xf, uf, df) = (f(&x), f(&up), f(&dy));
    let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
    let dsilu_mag: Vec<f64> = xf.iter().map(|&v| sig(v) * (1.0 + v.abs() * (1.0 - sig(v)))).collect();
    got.copy_from_slice(&up);
    want.copy_from_slice(&up);
    kernels::silu_grad_add(&x, &dy, &mut got);
    reference::silu_grad_add(&x, &dy, &mut want);
    let scale: Vec<f64> = (0..n).map(|i| uf[i].abs() + df[i].abs() * dsilu_mag[i]).collect();
    assert_close("silu_grad_add", &got, &want, &scale, 8.0);

    let (mut g_gate, mut g_up) = (up.clone(), dy.clone());
    let (mut w_gate, mut w_up) = (up.clone(), dy.clone());
    kernels::silu_mul_grad_add(&x, &up, &dy, &mut g_gate, &mut g_up);
    reference::silu_mul_grad_add(&x, &up, &dy, &mut w_gate, &mut w_up);
    let scale: Vec<f64> = (0..n).map(|i| uf[i].abs() + (df[i] * uf[i]).abs() * dsilu_mag[i]).collect();
    assert_close("silu_mul_grad_add (gate)", &g_gate, &w_gate, &scale, 8.0);
    let scale: Vec<f64> = (0..n).map(|i| df[i].abs() + (df[i] * xf[i]).abs() * sig(xf[i])).collect();
    assert_close("silu_mul_grad_add (up)", &g_up, &w_up, &scale, 8.0);
}

/// The row kernels on a [rows, cols] matrix `x` (and `y` of the same shape, `row` of length cols).
fn rows<E: Float>(cols: usize, x: &[f64], y: &[f64], row: &[f64]) {
    let (x, y, row): (Vec<E>, Vec<E>, Vec<E>) = (cast(x), cast(y), cast(row));
    let n = x.len();
    let r = n / cols;
    let f = |v: &[E]| v.iter().map(|x| x.to_f64()).collect::<Vec<f64>>();
    let (xf, yf) = (f(&x), f(&y));
    let per_row = |g: &dyn Fn(usize) -> f64| (0..r).map(|i| cols as f64 * g(i)).collect::<Vec<f64>>();
    let row_abs = |v: &[f64], i: usize| v[i * cols..(i + 1) * cols].iter().map(|t| t.abs()).sum::<f64>();
    let (mut got, mut want) = (zeros::<E>(r), zeros::<E>(r));

    kernels::row_sum(&x, cols, &mut got);
    reference::row_sum(&x, cols, &mut want);
    assert_close("row_sum", &got, &want, &per_row(&|i| row_abs(&xf, i)), 1.0);
    let sq: Vec<f64> = xf.iter().map(|v| v * v).collect();
    kernels::row_sum_sq(&x, cols, &mut got);
    reference::row_sum_sq(&x, cols, &mut want);
    assert_close("row_sum_sq", &got, &want, &per_row(&|i| row_abs(&sq, i)), 1.0);
    kernels::row_mean_sq(&x, cols, &mut got);
    reference::row_mean_sq(&x, cols, &mut want);
    assert_close("row_mean_sq", &got, &want, &per_row(&|i| row_abs(&sq, i) / cols as f64 * 2.0), 1.0);
    let prod: Vec<f64> = xf.iter().zip(&yf).map(|(p, q)| p * q).collect();
    kernels::row_dot(&x, &y, cols, &mut got);
    reference::row_dot(&x, &y, cols, &mut want);
    assert_close("row_dot", &got, &want, &per_row(&|i| row_abs(&prod, i)), 1.0);
    kernels::row_max(&x, cols, &mut got);
    reference::row_max(&x, cols, &mut want);
    assert_same("row_max", &got, &want);
    let (mut gi, mut wi) = (vec![0usize; r], vec![0usize; r]);
    kernels::row_argmax(&x, cols, &mut gi);
    reference::row_argmax(&x, cols, &mut wi);
    assert_eq!(gi, wi, "row_argmax ({})", E::NAME);

    let (mut got, mut want) = (zeros::<E>(n), zeros::<E>(n));
    kernels::softmax_rows(&x, cols, &mut got);
    reference::softmax_rows(&x, cols, &mut want);
    let wf = f(&want);
    assert_close("softmax_rows", &got, &want, &wf, cols as f64 + 4.0);
    let sm = want.clone();
    let mut gdx = x.clone();
    let mut wdx = x.clone();
    kernels::softmax_rows_grad_add(&sm, &y, cols, &mut gdx);
    reference::softmax_rows_grad_add(&sm, &y, cols, &mut wdx);
    let scale: Vec<f64> = (0..n)
        .map(|i| {
            let d: f64 = (0..cols).map(|j| (wf[i / cols * cols + j] * yf[i / cols * cols + j]).abs()).sum();
            xf[i].abs() + wf[i] * (yf[i].abs() + d)
        })
        .collect();
    assert_close("softmax_rows_grad_add", &gdx, &wdx, &scale, cols as f64 + 8.0);

    macro_rules! same {
        ($name:literal, $call:expr, $refcall:expr) => {
            $call(&mut got);
            $refcall(&mut want);
            assert_same($name, &got, &want);
        };
    }
    same!("add_row_broadcast", |o: &mut [E]| kernels::add_row_broadcast(&x, &row, o), |o: &mut [E]| {
        reference::add_row_broadcast(&x, &row, o)
    });
    same!("mul_row_broadcast", |o: &mut [E]| kernels::mul_row_broadcast(&x, &row, o), |o: &mut [E]| {
        reference::mul_row_broadcast(&x, &row, o)
    });
    let s = &y[..r];
    same!("scale_rows", |o: &mut [E]| kernels::scale_rows(&x, s, o), |o: &mut [E]| reference::scale_rows(&x, s, o));
    let (mut ga, mut wa) = (row.clone(), row.clone());
    kernels::col_sum_add(&x, &mut ga);
    reference::col_sum_add(&x, &mut wa);
    assert_same("col_sum_add", &ga, &wa);
    same!("transpose", |o: &mut [E]| kernels::transpose(&x, 1, r, cols, o), |o: &mut [E]| {
        reference::transpose(&x, 1, r, cols, o)
    });
}

/// Two AdamATan2 steps against the scalar reference with `std`'s atan2.
fn adam_atan2<E: Float>(p0: &[f64], g0: &[f64], m0: &[f64]) {
    let c = kernels::AdamAtan2Step {
        decay: E::from_f64(1.0 - 1e-3),
        step_size: E::from_f64(1e-2),
        bc1_recip: E::from_f64(1.0 / 0.19),
        bc2_sqrt: E::from_f64(0.0975f64.sqrt()),
        one_minus_beta1: E::from_f64(0.1),
        beta2: E::from_f64(0.95),
        one_minus_beta2: E::from_f64(0.05),
    };
    let (mut p, mut m, mut v): (Vec<E>, Vec<E>, Vec<E>) =
        (cast(p0), cast(m0), m0.iter().map(|x| E::from_f64(x * x)).collect());
    let (mut pr, mut mr, mut vr) = (p.clone(), m.clone(), v.clone());
    for _ in 0..2 {
        let (mut g, mut gr): (Vec<E>, Vec<E>) = (cast(g0), cast(g0));
        kernels::adam_atan2_step(&mut p, &mut g, &mut m, &mut v, &c);
        reference::adam_atan2_step(&mut pr, &mut gr, &mut mr, &mut vr, &c);
        assert!(g.iter().all(|&x| x == E::ZERO), "the step consumes the gradient");
    }
    // m, v: a fused multiply-add instead of a multiply and an add; p: |p| + lr pi/2 bounds what went in.
    let scale = |x: &[f64]| x.iter().map(|v| 4.0 * (v.abs() + 1.0)).collect::<Vec<f64>>();
    assert_close("adam_atan2_step (m)", &m, &mr, &scale(m0), 8.0);
    assert_close("adam_atan2_step (v)", &v, &vr, &scale(&m0.iter().map(|x| x * x + 1.0).collect::<Vec<_>>()), 8.0);
    assert_close("adam_atan2_step (p)", &p, &pr, &scale(p0), 8.0);
}

type Vecs = (Vec<f64>, Vec<f64>, Vec<f64>);

/// Three vectors of one random length: inputs, a second input, an accumulator.
fn three(lo: f64, hi: f64) -> impl Strategy<Value = Vecs> {
    len().prop_flat_map(move |n| (values(n, lo, hi), values(n, lo, hi), values(n, lo, hi)))
}

/// A [rows, cols] matrix, a second one, and a row vector of length cols.
fn matrix() -> impl Strategy<Value = (usize, Vecs)> {
    (1usize..70, 1usize..12)
        .prop_flat_map(|(c, r)| (Just(c), (values(c * r, -6.0, 6.0), values(c * r, -6.0, 6.0), values(c, -6.0, 6.0))))
}

proptest! {
    #![proptest_config(common::config())]

    #[test]
    fn elementwise_kernels_match_the_reference((a, b, y) in three(-8.0, 8.0), s in -3.0..3.0f64) {
        elementwise::<f32>(&a, &b, &y, s);
        elementwise::<f64>(&a, &b, &y, s);
    }

    #[test]
    fn transcendental_kernels_match_the_reference((x, up, dy) in three(-12.0, 12.0), seed in any::<u64>()) {
        // Inputs for exp and sigmoid reach past both ends of f32's range: overflow, underflow, denormals.
        let mut rng = loopgrad_tensor::Rng::new(seed);
        let wide: Vec<f64> = (0..x.len()).map(|_| rng.uniform_in(-110.0, 110.0)).collect();
        transcendental::<f32>(&x, &wide, &up, &dy);
        transcendental::<f64>(&x, &wide, &up, &dy);
    }

    #[test]
    fn row_kernels_match_the_reference((cols, (x, y, row)) in matrix()) {
        rows::<f32>(cols, &x, &y, &row);
        rows::<f64>(cols, &x, &y, &row);
    }

    #[test]
    fn adam_atan2_matches_the_reference((p, g, m) in three(-3.0, 3.0)) {
        adam_atan2::<f32>(&p, &g, &m);
        adam_atan2::<f64>(&p, &g, &m);
    }

}

#[test]
fn transpose_is_batched_and_blocked() {
    // Larger than one 32 x 32 tile in both directions, odd sizes, three batch items.
    let (batch, rows, cols) = (3, 37, 70);
    let x: Vec<f32> = (0..batch * rows * cols).map(|i| i as f32).collect();
    let (mut got, mut want) = (vec![0.0; x.len()], vec![0.0; x.len()]);
    kernels::transpose(&x, batch, rows, cols, &mut got);
    reference::transpose(&x, batch, rows, cols, &mut want);
    assert_same("transpose", &got, &want);
}

#[test]
fn argmax_takes_the_first_of_equal_maxima() {
    let x = [1.0f32, 3.0, 3.0, 2.0, /* row 2 */ 5.0, 5.0, 5.0, 5.0];
    let mut out = [9usize; 2];
    kernels::row_argmax(&x, 4, &mut out);
    assert_eq!(out, [1, 0]);
}

#[test]
fn large_inputs_split_across_threads_give_the_serial_results() {
    // Above every parallel threshold; the split must not change a single bit.
    let n = 3 * loopgrad_tensor::parallel::PAR_MIN_ELEMS_STREAMING + 13;
    let cols = 1000;
    let a: Vec<f32> = (0..n).map(|i| ((i * 7919) % 1000) as f32 / 100.0 - 5.0).collect();
    let b: Vec<f32> = (0..n).map(|i| ((i * 104_729) % 977) as f32 / 97.7 - 5.0).collect();
    let run = |threads: usize| {
        loopgrad_tensor::set_threads(threads);
        let mut outs: Vec<Vec<f32>> = Vec::new();
        let mut o = vec![0.0f32; n];
        kernels::add(&a, &b, &mut o);
        outs.push(o.clone());
        kernels::silu(&a, &mut o);
        outs.push(o.clone());
        let mut y = b.clone();
        kernels::axpy(0.5, &a, &mut y);
        outs.push(y);
        let m = n - n % cols;
        kernels::softmax_rows(&a[..m], cols, &mut o[..m]);
        outs.push(o.clone());
        let mut rs = vec![0.0f32; m / cols];
        kernels::row_sum(&a[..m], cols, &mut rs);
        outs.push(rs);
        let mut acc = vec![1.0f32; cols];
        kernels::col_sum_add(&a[..m], &mut acc);
        outs.push(acc);
        kernels::transpose(&a[..m], 1, m / cols, cols, &mut o[..m]);
        outs.push(o);
        outs
    };
    let (serial, split) = (run(1), run(2));
    loopgrad_tensor::set_threads(2);
    for (k, (s, p)) in serial.iter().zip(&split).enumerate() {
        assert_same(&format!("kernel #{k} split over threads"), p, s);
    }
}

#[test]
#[should_panic(expected = "add: length 3 vs 4")]
fn add_names_both_lengths() {
    kernels::add(&[1.0f32; 3], &[1.0; 4], &mut [0.0; 3]);
}

#[test]
#[should_panic(expected = "softmax_rows: length 10 is not rows of 3")]
fn softmax_rows_names_length_and_cols() {
    kernels::softmax_rows(&[0.0f64; 10], 3, &mut [0.0; 10]);
}

#[test]
#[should_panic(expected = "row_sum: length 6 vs 4")]
fn row_sum_names_row_count_and_output_length() {
    kernels::row_sum(&[0.0f32; 12], 2, &mut [0.0; 4]);
}

#[test]
#[should_panic(expected = "silu_mul_grad_add: d_up has length 2, gate 3")]
fn silu_mul_grad_add_names_the_odd_one_out() {
    let mut dg = [0.0f32; 3];
    kernels::silu_mul_grad_add(&[0.0; 3], &[0.0; 3], &[0.0; 3], &mut dg, &mut [0.0; 2]);
}

#[test]
#[should_panic(expected = "swiglu_rows: output has 5 elements, expected [2, 3]")]
fn swiglu_rows_names_the_output_length() {
    kernels::swiglu_rows(&[0.0f32; 12], 3, &mut [0.0; 5]);
}
