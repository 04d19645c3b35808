//! loopgrad's f32 GEMM gives the same bits as one `matrixmultiply::sgemm` call on the same operands: the study in
//! `docs/results.md` was trained with matrixmultiply, and reproduces only if every float does (see
//! `src/gemm/avx512/mod.rs` for what decides a GEMM's bits).
//!
//! `gemm_packed` (B kept packed across calls) gives the same bits as `gemm`, on its first call and when it reuses
//! the packed copy. `gemm_swiglu` (the gate/up product and SwiGLU in one pass, with or without a packed B) gives
//! the same bits as matrixmultiply into the [m, 2I] product followed by `kernels::swiglu_rows`, also past one
//! 256-term rounding block.
//!
//! Covered: K across the 256-term rounding blocks (255, 256, 257, 700), M and N across both register tiles
//! (14 x 32 here, 16 x 16 in matrixmultiply), transposed and padded operands, a column-major C, alpha and beta
//! including the alpha != 1, beta != 0 case where matrixmultiply rounds its edge tiles twice, and two threads
//! (blocks of C on rayon's pool). Values span nine binary orders of magnitude, so a different summation order
//! or rounding would show in the last bits.

use loopgrad_tensor::{gemm_packed, gemm_swiglu, kernels, MatMut, PackedWeight, Rng};
use proptest::prelude::*;

mod common;

type Operand = common::Operand<f32>;

/// A random f32 operand whose values span nine binary orders of magnitude.
fn operand(rows: usize, cols: usize, transposed: bool, pad: usize, rng: &mut Rng) -> Operand {
    Operand::new(rows, cols, transposed, pad, || {
        (rng.uniform_in(-1.0, 1.0) * 2f64.powi(rng.below(9) as i32 - 4)) as f32
    })
}

/// Runs loopgrad's `gemm`, `gemm_packed` (packing, then reusing the packed B) and matrixmultiply on copies of C
/// and compares every element of the buffer bit for bit.
fn same_bits(alpha: f32, a: &Operand, b: &Operand, beta: f32, c: &Operand) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let (rs, cs) = c.strides();
    let mut pack = PackedWeight::new();
    let run = |packed: Option<&mut PackedWeight>| {
        let mut out = c.buf.clone();
        let cv = MatMut { data: &mut out, rows: m, cols: n, rs, cs };
        gemm_packed(alpha, a.view(&a.buf), b.view(&b.buf), packed, beta, cv);
        out
    };
    let ours =
        [("gemm", run(None)), ("gemm_packed", run(Some(&mut pack))), ("gemm_packed again", run(Some(&mut pack)))];
    let mut theirs = c.buf.clone();
    let ((rsa, csa), (rsb, csb)) = (a.strides(), b.strides());
    // SAFETY: the three views are in bounds of their buffers (Operand::new sizes them), and C is its own copy.
    unsafe {
        #[rustfmt::skip]
        matrixmultiply::sgemm(
            m, k, n, alpha,
            a.buf.as_ptr(), rsa, csa, b.buf.as_ptr(), rsb, csb,
            beta, theirs.as_mut_ptr(), rs, cs,
        );
    }
    for (what, ours) in &ours {
        for (idx, (x, y)) in ours.iter().zip(&theirs).enumerate() {
            assert!(
                x.to_bits() == y.to_bits(),
                "{what} [{m}, {k}] x [{k}, {n}], alpha {alpha}, beta {beta}: element {idx} of C is {x:e}, \
                 matrixmultiply gives {y:e}"
            );
        }
    }
}

fn dim() -> impl Strategy<Value = usize> {
    prop_oneof![prop::sample::select(vec![1usize, 13, 14, 15, 16, 17, 31, 32, 33, 97]), 0usize..120]
}

fn depth() -> impl Strategy<Value = usize> {
    prop_oneof![prop::sample::select(vec![0usize, 1, 64, 255, 256, 257, 700]), 0usize..600]
}

/// One rounding block or several (the fused SwiGLU sums blocks inside its tiles).
fn swiglu_depth() -> impl Strategy<Value = usize> {
    prop_oneof![Just(256usize), Just(257), Just(513), 1usize..300, 500usize..800]
}

fn coefficient() -> impl Strategy<Value = f32> {
    prop_oneof![Just(0.0), Just(1.0), Just(0.125), -2.0..2.0f32]
}

proptest! {
    #![proptest_config(common::config())]

    #[test]
    fn f32_gemm_has_matrixmultiplys_bits(
        (m, k, n) in (dim(), depth(), dim()),
        (alpha, beta) in (coefficient(), coefficient()),
        layout in (any::<[bool; 3]>(), 0usize..3),
        seed in any::<u64>(),
    ) {
        let mut rng = Rng::new(seed);
        let ([ta, tb, tc], pad) = layout;
        let (a, b) = (operand(m, k, ta, pad, &mut rng), operand(k, n, tb, pad, &mut rng));
        let c = operand(m, n, tc, pad, &mut rng);
        same_bits(alpha, &a, &b, beta, &c);
    }
}

/// `gemm_swiglu(A, B)` against matrixmultiply's A B into [m, 2 inner], then `swiglu_rows`, bit for bit.
fn same_swiglu_bits(a: &Operand, b: &Operand) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let mut ours = vec![f32::NAN; m * n / 2];
    gemm_swiglu(a.view(&a.buf), b.view(&b.buf), None, &mut ours);
    // With a packed B: packing it, then reusing it.
    let mut pack = PackedWeight::new();
    for _ in 0..2 {
        let mut packed = vec![f32::NAN; m * n / 2];
        gemm_swiglu(a.view(&a.buf), b.view(&b.buf), Some(&mut pack), &mut packed);
        let first = ours.iter().zip(&packed).position(|(x, y)| x.to_bits() != y.to_bits());
        assert!(first.is_none(), "gemm_swiglu [{m}, {k}] x [{k}, {n}] with a packed B: element {first:?} differs");
    }
    let mut gate_up = vec![0.0f32; m * n];
    let ((rsa, csa), (rsb, csb)) = (a.strides(), b.strides());
    // SAFETY: as in same_bits; the output is a fresh [m, n] vector.
    unsafe {
        #[rustfmt::skip]
        matrixmultiply::sgemm(
            m, k, n, 1.0, a.buf.as_ptr(), rsa, csa, b.buf.as_ptr(), rsb, csb, 0.0, gate_up.as_mut_ptr(), n as isize, 1,
        );
    }
    let mut theirs = vec![0.0f32; m * n / 2];
    if n > 0 {
        kernels::swiglu_rows(&gate_up, n / 2, &mut theirs);
    }
    for (idx, (x, y)) in ours.iter().zip(&theirs).enumerate() {
        assert!(
            x.to_bits() == y.to_bits(),
            "gemm_swiglu [{m}, {k}] x [{k}, {n}]: element {idx} is {x:e}, matrixmultiply + swiglu_rows give {y:e}"
        );
    }
}

proptest! {
    #![proptest_config(common::config())]

    #[test]
    fn gemm_swiglu_has_the_bits_of_gemm_then_swiglu_rows(
        (m, k, inner) in (dim(), swiglu_depth(), 1usize..70),
        layout in (any::<[bool; 2]>(), 0usize..3),
        seed in any::<u64>(),
    ) {
        let mut rng = Rng::new(seed);
        let ([ta, tb], pad) = layout;
        let a = operand(m, k, ta, pad, &mut rng);
        same_swiglu_bits(&a, &operand(k, 2 * inner, tb, pad, &mut rng));
    }
}

/// The shapes of training, split across two threads: TRM's token-mixing and channel products at the main job's
/// and the paper's sizes, a weight gradient (A transposed, beta = 1), and attention's scaled accumulation.
#[test]
fn training_shapes_split_across_threads_have_matrixmultiplys_bits() {
    loopgrad_tensor::set_threads(2);
    let mut rng = Rng::new(7);
    let cases: [(usize, usize, usize, bool, bool, f32, f32); 8] = [
        // Column splits off a 32-column panel boundary (784 = 24.5 x 32: `gemm`; `gemm_packed` moves it to 800).
        (97, 300, 1568, false, true, 1.0, 0.0),
        (40, 64, 1552, false, false, 0.5, 1.0),
        (2560, 64, 256, false, true, 1.0, 0.0),
        (776, 512, 1536, false, true, 1.0, 0.0),
        (776, 1536, 512, false, false, 1.0, 1.0),
        (512, 776, 1536, true, false, 1.0, 1.0),
        (97, 97, 64, false, false, 0.125, 1.0),
        (64, 2560, 64, true, false, 1.0, 1.0),
    ];
    for (m, k, n, ta, tb, alpha, beta) in cases {
        let (a, b) = (operand(m, k, ta, 0, &mut rng), operand(k, n, tb, 0, &mut rng));
        same_bits(alpha, &a, &b, beta, &operand(m, n, false, 0, &mut rng));
    }
    // The token and channel SwiGLUs of the main job and the paper size (x W^T: B column-major).
    for (m, k, inner) in [(4096, 40, 256), (2560, 64, 256), (4096, 97, 512), (776, 512, 1536), (100, 1100, 700)] {
        let (a, b) = (operand(m, k, false, 0, &mut rng), operand(k, 2 * inner, true, 0, &mut rng));
        same_swiglu_bits(&a, &b);
    }
}

/// A `PackedWeight` repacks when handed another B, and after `invalidate` when B's contents changed: otherwise it
/// would multiply by a stale copy.
#[test]
fn packed_weight_follows_its_operand() {
    let mut rng = Rng::new(11);
    let (m, k, n) = (30, 300, 70);
    let a = operand(m, k, false, 0, &mut rng);
    let (b1, mut b2) = (operand(k, n, true, 0, &mut rng), operand(k, n, true, 0, &mut rng));
    let product = |b: &Operand, pack: Option<&mut PackedWeight>| {
        let mut out = vec![0.0f32; m * n];
        let cv = MatMut::new(&mut out, m, n);
        gemm_packed(1.0, a.view(&a.buf), b.view(&b.buf), pack, 0.0, cv);
        out
    };
    let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect::<Vec<_>>();
    let mut pack = PackedWeight::new();
    assert_eq!(bits(product(&b1, Some(&mut pack))), bits(product(&b1, None)));
    assert_eq!(bits(product(&b2, Some(&mut pack))), bits(product(&b2, None)), "another B must be repacked");
    for x in b2.buf.iter_mut() {
        *x *= -3.0;
    }
    pack.invalidate();
    assert_eq!(bits(product(&b2, Some(&mut pack))), bits(product(&b2, None)), "an invalidated pack must be repacked");
}
