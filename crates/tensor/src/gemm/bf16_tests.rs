use super::*;
use crate::gemm::gemm;
use crate::rng::Rng;

#[test]
fn rounding_is_to_nearest_even_at_the_eighth_bit() {
    let ulp = 2f32.powi(-7); // bf16's spacing in [1, 2)
    assert_eq!(round_bf16(1.0), 1.0);
    assert_eq!(round_bf16(1.0 + ulp / 2.0), 1.0, "a tie goes to the even neighbour (1.0)");
    assert_eq!(round_bf16(1.0 + 1.5 * ulp), 1.0 + 2.0 * ulp, "a tie goes to the even neighbour (1 + 2 ulp)");
    assert_eq!(round_bf16(1.0 + 0.51 * ulp), 1.0 + ulp);
    assert_eq!(round_bf16(-3.0 - 0.49 * 2.0 * ulp), -3.0);
    assert_eq!(round_bf16(f32::MAX), f32::INFINITY);
    assert_eq!(round_bf16(1e-40).to_bits(), 0, "a subnormal is treated as zero, as vcvtne2ps2bf16 does");
    assert!(round_bf16(f32::NAN).is_nan());
}

#[test]
fn f64_rounding_gives_the_f32_roundings_value() {
    let mut rng = Rng::new(7);
    for _ in 0..10_000 {
        let x = (rng.uniform_in(-1.0, 1.0) * 2f64.powi(rng.below(60) as i32 - 30)) as f32;
        assert_eq!(round_bf16_f64(x as f64), round_bf16(x) as f64, "{x:e}");
    }
}

/// A [rows, cols] operand, stored transposed when asked (so the view has column stride `rows`), values with a
/// spread of magnitudes (normal numbers only: subnormal sums are flushed by the kernel).
fn operand(rows: usize, cols: usize, transposed: bool, rng: &mut Rng) -> (Vec<f32>, usize, usize, bool) {
    let data = (0..rows * cols).map(|_| (rng.uniform_in(-2.0, 2.0) * rng.uniform_in(0.5, 4.0)) as f32).collect();
    (data, rows, cols, transposed)
}

fn view(o: &(Vec<f32>, usize, usize, bool)) -> MatRef<'_, f32> {
    let (data, rows, cols, t) = o;
    if *t {
        MatRef::new(data, *cols, *rows).t()
    } else {
        MatRef::new(data, *rows, *cols)
    }
}

/// Every shape class the kernels have: partial tiles in both directions, odd K (a padded pair), K past one
/// 512-term block, both operand layouts, and alpha / beta as the tape uses them (attention's scaled products,
/// gradient accumulation).
const SHAPES: [(usize, usize, usize); 9] = [
    (1, 1, 1),
    (14, 2, 32),
    (15, 3, 33),
    (40, 64, 97),
    (97, 97, 64),
    (29, 1100, 50),
    (3, 513, 130),
    (33, 40, 17),
    (300, 64, 70),
];
const LAYOUTS: [(bool, bool, f32, f32); 3] =
    [(false, false, 1.0, 0.0), (true, false, 1.0, 1.0), (false, true, 0.125, 1.0)];

/// C = alpha A B + beta C on one thread through `kernel`, one of the x86-64 bf16 kernels' entry points.
#[cfg(target_arch = "x86_64")]
fn run_kernel(
    kernel: super::super::avx512::bf16::Kernel,
    alpha: f32,
    a: MatRef<'_, f32>,
    b: MatRef<'_, f32>,
    beta: f32,
    c: MatMut<'_, f32>,
) {
    a.check("test (A)");
    b.check("test (B)");
    assert!(a.cols == b.rows && c.rows == a.rows && c.cols == b.cols && c.data.len() >= c.rows * c.cols);
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let (ap, bp, cp) = (a.data.as_ptr(), b.data.as_ptr(), c.data.as_mut_ptr());
    // SAFETY: the views were checked just above; C is a unique borrow of a contiguous [m, n] block; the callers
    // check that the kernel runs on this CPU.
    unsafe { kernel(m, k, n, alpha, ap, a.rs, a.cs, bp, b.rs, b.cs, None, beta, cp, c.rs, c.cs) }
}

/// The `vdpbf16ps` kernel is its scalar reference, bit for bit (on an AMX CPU too, where it is not the default).
#[cfg(target_arch = "x86_64")]
#[test]
fn the_dot_product_kernel_matches_its_scalar_reference_bit_for_bit() {
    if !bf16_kernel_available() {
        eprintln!("skipped: this CPU has no AVX512_BF16 (the rounded-copy path is tested below)");
        return;
    }
    let mut rng = Rng::new(1);
    for (case, &(m, k, n)) in SHAPES.iter().enumerate() {
        for (ta, tb, alpha, beta) in LAYOUTS {
            let (a, b) = (operand(m, k, ta, &mut rng), operand(k, n, tb, &mut rng));
            let c0: Vec<f32> = (0..m * n).map(|_| rng.uniform_in(-1.0, 1.0) as f32).collect();
            let (mut got, mut want) = (c0.clone(), c0);
            let kernel = super::super::avx512::bf16::dot_gemm;
            run_kernel(kernel, alpha, view(&a), view(&b), beta, MatMut::new(&mut got, m, n));
            gemm_bf16_reference(alpha, view(&a), view(&b), beta, MatMut::new(&mut want, m, n));
            let first = got.iter().zip(&want).position(|(g, w)| g.to_bits() != w.to_bits());
            assert!(
                first.is_none(),
                "case {case} [{m}, {k}] x [{k}, {n}] (ta {ta}, tb {tb}, alpha {alpha}, beta {beta}): element \
                 {first:?}: {} vs reference {}",
                got[first.unwrap()],
                want[first.unwrap()]
            );
        }
    }
}

/// The rounded-copy path (every CPU without the kernel, and f64) against the same reference. Its f32 sums run in
/// another order, so the bound is the standard one for two sums of the same k exact products:
/// |got - want| <= 2 gamma_k sum |a b|, gamma_k = k u / (1 - k u), u = 2^-24.
#[test]
fn the_rounded_copy_path_matches_the_reference_within_summation_error() {
    let mut rng = Rng::new(2);
    for &(m, k, n) in &[(5, 7, 3), (33, 600, 17), (16, 64, 40)] {
        let (a, b) = (operand(m, k, false, &mut rng), operand(k, n, true, &mut rng));
        let (ar, br) = (rounded(view(&a)), rounded(view(&b)));
        let mut got = vec![0f32; m * n];
        let am = MatRef::new(ar.data(), m, k);
        gemm(1.0, am, MatRef::new(br.data(), k, n), 0.0, MatMut::new(&mut got, m, n));
        let mut want = vec![0f32; m * n];
        gemm_bf16_reference(1.0, view(&a), view(&b), 0.0, MatMut::new(&mut want, m, n));
        let u = 2f64.powi(-24);
        let gamma = k as f64 * u / (1.0 - k as f64 * u);
        for i in 0..m {
            for j in 0..n {
                let abs: f64 = (0..k).map(|p| (am.data[i * k + p] as f64 * br.data()[p * n + j] as f64).abs()).sum();
                let (g, w) = (got[i * n + j] as f64, want[i * n + j] as f64);
                assert!((g - w).abs() <= 2.0 * gamma * abs, "[{m}, {k}, {n}] ({i}, {j}): {g} vs {w}");
            }
        }
    }
}

/// The AMX kernel against the same reference: its sums inside a tile run in the hardware's order, so the bound is
/// that of two f32 sums of the same k exact products, 2 gamma_k |alpha| sum |a b| (gamma_k = k u / (1 - k u),
/// u = 2^-24), plus one rounding of C per 512-term block in each (u (|alpha| sum |a b| + |beta c|) apiece).
#[cfg(target_arch = "x86_64")]
#[test]
fn the_amx_kernel_matches_the_reference_within_summation_error() {
    if !super::super::avx512::amx::available() {
        eprintln!("skipped: no AMX tiles here (CPUID, Linux's grant, or LOOPGRAD_AMX=0)");
        return;
    }
    let mut rng = Rng::new(5);
    let u = 2f64.powi(-24);
    for (case, &(m, k, n)) in SHAPES.iter().enumerate() {
        for (ta, tb, alpha, beta) in LAYOUTS {
            let (a, b) = (operand(m, k, ta, &mut rng), operand(k, n, tb, &mut rng));
            let c0: Vec<f32> = (0..m * n).map(|_| rng.uniform_in(-1.0, 1.0) as f32).collect();
            let (mut got, mut want) = (c0.clone(), c0.clone());
            let kernel = super::super::avx512::amx::gemm;
            run_kernel(kernel, alpha, view(&a), view(&b), beta, MatMut::new(&mut got, m, n));
            gemm_bf16_reference(alpha, view(&a), view(&b), beta, MatMut::new(&mut want, m, n));
            let (av, bv) = (view(&a), view(&b));
            let gamma = k as f64 * u / (1.0 - k as f64 * u);
            let blocks = k.div_ceil(512).max(1) as f64;
            for i in 0..m {
                for j in 0..n {
                    let at = |p: usize| round_bf16(av.data[i * av.rs as usize + p * av.cs as usize]) as f64;
                    let bt = |p: usize| round_bf16(bv.data[p * bv.rs as usize + j * bv.cs as usize]) as f64;
                    let abs = alpha.abs() as f64 * (0..k).map(|p| (at(p) * bt(p)).abs()).sum::<f64>();
                    let bound = 2.0 * gamma * abs + 2.0 * blocks * u * (abs + (beta * c0[i * n + j]).abs() as f64);
                    let (g, w) = (got[i * n + j] as f64, want[i * n + j] as f64);
                    assert!(
                        (g - w).abs() <= bound,
                        "case {case} [{m}, {k}] x [{k}, {n}] (ta {ta}, tb {tb}, alpha {alpha}, beta {beta}) ({i}, {j}): \
                         {g} vs reference {w}, bound {bound:e}"
                    );
                }
            }
        }
    }
}

/// Threads and batches change no bit: each element's sum is one chain whatever block it falls in.
#[test]
fn split_and_batched_products_equal_the_serial_one() {
    crate::set_threads(2);
    let mut rng = Rng::new(3);
    let (m, k, n) = (300, 200, 150);
    let (a, b) = (operand(m, k, false, &mut rng), operand(k, n, true, &mut rng));
    let (mut split, mut serial) = (vec![0f32; m * n], vec![0f32; m * n]);
    gemm_bf16(1.0, view(&a), view(&b), 0.0, MatMut::new(&mut split, m, n));
    gemm_bf16_serial(1.0, view(&a), view(&b), 0.0, MatMut::new(&mut serial, m, n));
    assert!(split.iter().zip(&serial).all(|(x, y)| x.to_bits() == y.to_bits()), "split differs from serial");

    let (batch, m, k, n) = (6, 20, 30, 25);
    let a: Vec<f32> = (0..batch * m * k).map(|_| rng.uniform_in(-1.0, 1.0) as f32).collect();
    let b: Vec<f32> = (0..batch * n * k).map(|_| rng.uniform_in(-1.0, 1.0) as f32).collect();
    let mut c = vec![0f32; batch * m * n];
    let (av, bv) = (BatchRef::new(&a, batch, m, k), BatchRef::new(&b, batch, n, k).t());
    gemm_batched_bf16(1.0, av, bv, 0.0, BatchMut::new(&mut c, batch, m, n));
    for i in 0..batch {
        let mut one = vec![0f32; m * n];
        let bm = MatRef::new(&b[i * n * k..(i + 1) * n * k], n, k).t();
        gemm_bf16_serial(1.0, MatRef::new(&a[i * m * k..(i + 1) * m * k], m, k), bm, 0.0, MatMut::new(&mut one, m, n));
        let same = one.iter().zip(&c[i * m * n..(i + 1) * m * n]).all(|(x, y)| x.to_bits() == y.to_bits());
        assert!(same, "batch item {i} differs from its own product");
    }
}

/// A weight's bf16 form ([`Precision::gemm_packed`]) gives the bits of the product that packs B per call (and
/// so, on the `vdpbf16ps` kernel, the reference's): the weight stored [k, n] or [n, k] (x W^T), on the call that
/// packs it and on one that reuses it, serial and split in column blocks (which then start on the form's
/// 32-column panels) and in row blocks, over odd K, K that fills whole AMX tiles and K that does not (the form
/// pads it then, where AMX runs), and K past one 512-term block.
#[test]
fn a_packed_weight_gives_the_references_bits() {
    use crate::gemm::PackedWeight;
    if !bf16_kernel_available() {
        eprintln!("skipped: this CPU has no AVX512_BF16 (the packed forms are the plain product there)");
        return;
    }
    crate::set_threads(2);
    let mut rng = Rng::new(4);
    let shapes = [
        (1, 1, 1),
        (15, 3, 33),
        (64, 40, 64),
        (2560, 64, 64),
        (40, 1100, 97),
        (8, 257, 784),
        (3, 513, 130),
        (70, 1024, 40),
    ];
    for (case, &(m, k, n)) in shapes.iter().enumerate() {
        for (transposed, alpha, beta) in [(false, 1.0, 0.0), (true, 1.0, 1.0), (true, 0.125, 0.0)] {
            let a = operand(m, k, false, &mut rng);
            // The weight's tensor: [k, n], or [n, k] used transposed.
            let (rows, cols) = if transposed { (n, k) } else { (k, n) };
            let w = PackedWeight::new(Tensor::from_vec(operand(rows, cols, false, &mut rng).0, [rows, cols]));
            let b = if transposed { w.as_mat().t() } else { w.as_mat() };
            let c0: Vec<f32> = (0..m * n).map(|_| rng.uniform_in(-1.0, 1.0) as f32).collect();
            let mut want = c0.clone();
            gemm_bf16_serial(alpha, view(&a), b.view(), beta, MatMut::new(&mut want, m, n));
            #[cfg(target_arch = "x86_64")]
            if !super::super::avx512::amx::available() {
                let mut reference = c0.clone();
                gemm_bf16_reference(alpha, view(&a), b.view(), beta, MatMut::new(&mut reference, m, n));
                assert!(want.iter().zip(&reference).all(|(x, y)| x.to_bits() == y.to_bits()), "case {case}");
            }
            for call in ["packing", "reusing"] {
                let mut got = c0.clone();
                Precision::Bf16.gemm_packed(alpha, view(&a), b, beta, MatMut::new(&mut got, m, n));
                let first = got.iter().zip(&want).position(|(g, w)| g.to_bits() != w.to_bits());
                assert!(
                    first.is_none(),
                    "case {case} [{m}, {k}] x [{k}, {n}] ({call}, transposed {transposed}, alpha {alpha}, beta \
                     {beta}): element {first:?}: {} vs packed per call {}",
                    got[first.unwrap()],
                    want[first.unwrap()]
                );
            }
        }
    }
}

/// The SwiGLU in bf16 ([`Precision::gemm_swiglu`], fused on AMX tiles for K up to 512) gives the bits of the bf16
/// product into [m, 2I] followed by `swiglu_rows`: gate/up halves of partial panels (I not a multiple of 16),
/// partial row blocks, odd K, K past one block (the unfused path), B as a weight's W^T and row-major, through a
/// packed weight, serial and split across threads.
#[test]
fn the_bf16_swiglu_gives_the_unfused_bits() {
    use crate::gemm::PackedWeight;
    use crate::kernels::swiglu_rows;
    crate::set_threads(2);
    let mut rng = Rng::new(6);
    for &(m, k, inner) in &[(1, 1, 1), (33, 64, 40), (70, 97, 17), (300, 512, 128), (5, 513, 20), (2560, 64, 256)] {
        let a = operand(m, k, false, &mut rng);
        let w = operand(2 * inner, k, false, &mut rng); // gate_up_proj's weight [2I, k]
        let wt = MatRef::new(&w.0, 2 * inner, k).t();
        let mut gate_up = vec![0f32; m * 2 * inner];
        gemm_bf16(1.0, view(&a), wt, 0.0, MatMut::new(&mut gate_up, m, 2 * inner));
        let mut want = vec![0f32; m * inner];
        swiglu_rows(&gate_up, inner, &mut want);
        let same = |got: &[f32]| got.iter().zip(&want).position(|(g, w)| g.to_bits() != w.to_bits());
        let mut got = vec![0f32; m * inner];
        Precision::Bf16.gemm_swiglu(view(&a), wt, &mut got);
        assert_eq!(same(&got), None, "[{m}, {k}] x [{k}, 2 x {inner}], W^T");
        let row_major: Vec<f32> =
            (0..k * 2 * inner).map(|i| wt.data[(i / (2 * inner)) + (i % (2 * inner)) * k]).collect();
        Precision::Bf16.gemm_swiglu(view(&a), MatRef::new(&row_major, k, 2 * inner), &mut got);
        assert_eq!(same(&got), None, "[{m}, {k}] x [{k}, 2 x {inner}], row-major");
        let packed = PackedWeight::new(Tensor::from_vec(w.0.clone(), [2 * inner, k]));
        Precision::Bf16.gemm_swiglu_packed(view(&a), packed.as_mat().t(), &mut got);
        assert_eq!(same(&got), None, "[{m}, {k}] x [{k}, 2 x {inner}], packed");
    }
}
