//! loopgrad's f32 GEMM gives the same bits as one `matrixmultiply::sgemm` call on the same operands: the study in
//! `docs/results.md` was trained with matrixmultiply, and reproduces only if every float does (see
//! `src/gemm/avx512/mod.rs` for what decides a GEMM's bits).
//!
//! `gemm_packed` (B a `PackedWeight`, packed once and reused) gives the same bits as `gemm`, on its first call and
//! when it reuses the packed form, and a `PackedWeight` changed in any way is repacked. `gemm_swiglu` (the gate/up
//! product and SwiGLU in one pass) and `gemm_swiglu_packed` give the same bits as matrixmultiply into the [m, 2I]
//! product followed by `kernels::swiglu_rows`, also past one 256-term rounding block.
//!
//! Covered: K across the 256-term rounding blocks (255, 256, 257, 700), M and N across both register tiles
//! (14 x 32 or 6 x 16 here, 16 x 16 or 8 x 8 in matrixmultiply, by CPU), transposed and padded operands, a column-major C, alpha and beta
//! including the alpha != 1, beta != 0 case where matrixmultiply rounds its edge tiles twice, and two threads
//! (blocks of C on rayon's pool). Values span nine binary orders of magnitude, so a different summation order
//! or rounding would show in the last bits.

use loopgrad_tensor::{
    gemm, gemm_packed, gemm_swiglu, gemm_swiglu_packed, kernels, MatMut, MatRef, PackedRef, PackedWeight, Rng, Tensor,
};
use proptest::prelude::*;

mod common;

type Operand = common::Operand<f32>;

/// A random f32 operand whose values span nine binary orders of magnitude.
fn operand(rows: usize, cols: usize, transposed: bool, pad: usize, rng: &mut Rng) -> Operand {
    Operand::new(rows, cols, transposed, pad, || {
        (rng.uniform_in(-1.0, 1.0) * 2f64.powi(rng.below(9) as i32 - 4)) as f32
    })
}

/// B's values in a `PackedWeight` stored as B is stored (row-major [k, n]; a column-major B as [n, k], taken
/// transposed), without the padding, which a tensor cannot have: its packed products see the same matrix.
fn packed_weight(b: &Operand) -> PackedWeight<f32> {
    let (rows, cols) = if b.transposed { (b.cols, b.rows) } else { (b.rows, b.cols) };
    let data = (0..rows).flat_map(|i| (0..cols).map(move |j| b.buf[i * b.ld + j])).collect();
    PackedWeight::new(Tensor::from_vec(data, [rows, cols]))
}

/// `w` as the B that `b` is.
fn as_b<'a>(w: &'a PackedWeight<f32>, b: &Operand) -> PackedRef<'a, f32> {
    if b.transposed {
        w.as_mat().t()
    } else {
        w.as_mat()
    }
}

/// Runs loopgrad's `gemm`, `gemm_packed` (packing, then reusing the packed B) and matrixmultiply on copies of C
/// and compares every element of the buffer bit for bit.
fn same_bits(alpha: f32, a: &Operand, b: &Operand, beta: f32, c: &Operand) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let (rs, cs) = c.strides();
    let w = packed_weight(b);
    let run = |packed: bool| {
        let mut out = c.buf.clone();
        let cv = MatMut { data: &mut out, rows: m, cols: n, rs, cs };
        if packed {
            gemm_packed(alpha, a.view(&a.buf), as_b(&w, b), beta, cv);
        } else {
            gemm(alpha, a.view(&a.buf), b.view(&b.buf), beta, cv);
        }
        out
    };
    let ours = [("gemm", run(false)), ("gemm_packed", run(true)), ("gemm_packed again", run(true))];
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
    gemm_swiglu(a.view(&a.buf), b.view(&b.buf), &mut ours);
    // With a packed B: packing it, then reusing it.
    let w = packed_weight(b);
    for _ in 0..2 {
        let mut packed = vec![f32::NAN; m * n / 2];
        gemm_swiglu_packed(a.view(&a.buf), as_b(&w, b), &mut packed);
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

/// A `PackedWeight` changed through each way `tensor_mut` offers (one element, `copy_from`, a new tensor, a swap,
/// a new shape) is repacked: its three forms in training (B = W, B = W^T, and W^T's gate/up pairs) give a plain
/// GEMM's bits of the new values, where a stale packing would give the old product. W starts [64, 300], so x W^T
/// sums K = 300 over two rounding blocks; the new shape [300, 64] makes W^T's 300 columns 150 gate/up pairs.
#[test]
fn a_changed_packed_weight_is_repacked() {
    let mut rng = Rng::new(11);
    let mut fill = |n: usize| (0..n).map(|_| rng.uniform_in(-1.0, 1.0) as f32).collect::<Vec<_>>();
    let mut w = PackedWeight::new(Tensor::from_vec(fill(64 * 300), [64, 300]));
    let a = fill(30 * 300);
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    // Every form against the plain product of the values `w` holds now.
    let check = |w: &PackedWeight<f32>, what: &str| {
        for b in [w.as_mat(), w.as_mat().t()] {
            let (view, m) = (b.view(), 30);
            let am = MatRef::new(&a[..m * view.rows], m, view.rows);
            let (mut packed, mut plain) = (vec![0.0f32; m * view.cols], vec![0.0f32; m * view.cols]);
            gemm_packed(1.0, am, b, 0.0, MatMut::new(&mut packed, m, view.cols));
            gemm(1.0, am, view, 0.0, MatMut::new(&mut plain, m, view.cols));
            assert_eq!(bits(&packed), bits(&plain), "{what}: a [{}, {}] B was not repacked", view.rows, view.cols);
        }
        let b = w.as_mat().t();
        let (view, m) = (b.view(), 30);
        let am = MatRef::new(&a[..m * view.rows], m, view.rows);
        let (mut packed, mut plain) = (vec![0.0f32; m * view.cols / 2], vec![0.0f32; m * view.cols / 2]);
        gemm_swiglu_packed(am, b, &mut packed);
        gemm_swiglu(am, view, &mut plain);
        assert_eq!(bits(&packed), bits(&plain), "{what}: the gate/up pairs were not repacked");
    };
    check(&w, "first packing");
    w.tensor_mut().data_mut()[7] += 1.0;
    check(&w, "one element");
    let other = Tensor::from_vec(fill(64 * 300), [64, 300]);
    w.tensor_mut().copy_from(&other);
    check(&w, "copy_from");
    *w.tensor_mut() = Tensor::from_vec(fill(64 * 300), [64, 300]);
    check(&w, "a new tensor");
    let mut swapped = other.clone();
    std::mem::swap(w.tensor_mut(), &mut swapped);
    check(&w, "a swap");
    w.tensor_mut().set_shape([300, 64]);
    check(&w, "a new shape");
}
