//! Fused bidirectional multi-head attention on TRM/HRM's fused qkv projection.
//!
//! qkv [B, L, 3 H hd] is PyTorch's `qkv.view(B, L, 3H, hd)`: heads 0..H are q, H..2H are k, 2H..3H are v. For
//! each batch b and head h, with Q, K, V the [L, hd] slices (strided views, no copy) and RoPE applied to Q and K
//! when tables are given:
//!
//! ```text
//! S = Q K^T / sqrt(hd)      P = softmax(S) row-wise (max-subtracted)      O = P V
//! ```
//!
//! and O is written to out[b, :, h hd..(h+1) hd], i.e. `attn_output.view(B, L, H hd)` (heads concatenated).
//! No mask: every position sees every position (TRM's `causal = False`).
//!
//! **Derivative.** With dO the output gradient of one head:
//! dV = P^T dO, dP = dO V^T, dS = P * (dP - rowsum(dP * P)) (the softmax Jacobian, applied row by row),
//! dQ = dS K / sqrt(hd), dK = dS^T Q / sqrt(hd); then dQ and dK go back through RoPE (the rotation by the
//! negative angle, [`super::rope`]) into the q and k slices of the qkv gradient. Saved: P [B, H, L, L] (the only
//! thing that is expensive to recompute). The rotated Q and K are recomputed in backward (a cheap element-wise
//! pass) instead of being kept, which halves what attention holds per recorded call. Without tables, Q and K are
//! read straight from qkv and dQ, dK, dV are accumulated straight into its gradient with strided GEMMs
//! (beta = 1).
//!
//! The four products (scores, values, and in backward the five gradient products) run in the tape's precision:
//! with bf16, Q, K, V, P and the gradients are rounded to bf16 as they enter each product (P included, as
//! PyTorch's bf16 `scaled_dot_product_attention` under the reference's autocast); the softmax and its gradient stay f32.
//!
//! Every product is one single-threaded GEMM call per (b, h) on strided views, and batch items run in parallel,
//! an even share per thread; each share needs only the [L, L] scores of one head at a time as scratch. In a
//! no-grad scope P is not kept either: one [L, L] buffer per share serves every head.

use super::rope::{check_tables, rotate_heads, unrotate_heads_add};
use crate::op::Op;
use crate::tape::{Ctx, Tape, Var};
use loopgrad_tensor::{kernels, parallel, Float, MatMut, MatRef, Shape, Tensor};

#[derive(Clone, Copy, Debug)]
pub struct Meta {
    heads: usize,
    rope: bool,
}

/// The geometry of one call: batch, length, heads, head dim.
#[derive(Clone, Copy, Debug)]
struct Dims {
    b: usize,
    l: usize,
    h: usize,
    hd: usize,
}

impl Dims {
    fn of(shape: Shape, heads: usize) -> Dims {
        let d = shape.dims();
        let hd = if d.len() == 3 && heads > 0 { d[2] / (3 * heads) } else { 0 };
        assert!(
            hd > 0 && 3 * heads * hd == d[2],
            "attention: qkv has shape {shape}, expected [B, L, 3 H hd] with H = {heads} heads"
        );
        Dims { b: d[0], l: d[1], h: heads, hd }
    }
    /// H hd: the width of the q (or k, or v) block of a position, and of an output row.
    fn width(&self) -> usize {
        self.h * self.hd
    }
    fn scale(&self) -> f64 {
        1.0 / (self.hd as f64).sqrt()
    }
}

/// An [L, hd] strided view starting at `offset` whose rows are `rs` apart.
fn head<E: Float>(data: &[E], offset: usize, d: Dims, rs: usize) -> MatRef<'_, E> {
    MatRef { data: &data[offset..], rows: d.l, cols: d.hd, rs: rs as isize, cs: 1 }
}

fn head_mut<E: Float>(data: &mut [E], offset: usize, d: Dims, rs: usize) -> MatMut<'_, E> {
    MatMut { data: &mut data[offset..], rows: d.l, cols: d.hd, rs: rs as isize, cs: 1 }
}

/// Q and K rotated by RoPE, as [B, L, 2 H hd] (q heads then k heads per position: the first two thirds of the
/// qkv layout). q and k are adjacent in qkv, so one call rotates all 2H heads of a position.
fn rotate_qk<E: Float>(qkv: &[E], cos: &Tensor<E>, sin: &Tensor<E>, d: Dims) -> Tensor<E> {
    let (w, hd) = (d.width(), d.hd);
    let mut rot = Tensor::uninit([d.b, d.l, 2 * w]);
    // Element-wise, so the split (whole positions, in parts like a streaming kernel's) changes no bit.
    let parts = if rot.data().len() < parallel::PAR_MIN_ELEMS_STREAMING { 1 } else { loopgrad_tensor::threads() };
    let per = (d.b * d.l).div_ceil(parts);
    parallel::chunks_mut(rot.data_mut(), per * 2 * w, |i, rows| {
        for (j, r) in rows.chunks_exact_mut(2 * w).enumerate() {
            let pos = i * per + j;
            let p = pos % d.l;
            let tables = (&cos.data()[p * hd..(p + 1) * hd], &sin.data()[p * hd..(p + 1) * hd]);
            rotate_heads(&qkv[pos * 3 * w..pos * 3 * w + 2 * w], tables.0, tables.1, r);
        }
    });
    rot
}

/// How many batch items each parallel part takes: all of them (one part, on the calling thread) below about a
/// million multiply-adds, else an even share for each of [`loopgrad_tensor::threads`].
fn items_per_part(batch: usize, macs_per_item: usize) -> usize {
    let parts = if batch * macs_per_item < 1 << 20 { 1 } else { loopgrad_tensor::threads().min(batch) };
    batch.div_ceil(parts.max(1)).max(1)
}

impl<E: Float> Tape<E> {
    /// Fused bidirectional multi-head attention on a fused projection: qkv [B, L, 3 H hd] laid out as
    /// [q heads | k heads | v heads] (the TRM/HRM layout), RoPE applied to q and k when `rope` = (cos, sin)
    /// [L, hd] is given -> [B, L, H hd].
    ///
    /// Batch items run in parallel (one share per thread, each product single-threaded: [L, hd] x [hd, L] is too
    /// small to split further).
    pub fn attention(&mut self, qkv: Var, heads: usize, rope: Option<(Var, Var)>) -> Var {
        let d = Dims::of(self.value(qkv).shape(), heads);
        if let Some((cos, sin)) = rope {
            check_tables("attention", self, cos, sin, d.l, d.hd);
        }
        let (record, prec) = (self.should_record(&[qkv]), self.precision());
        let (w, l, ll) = (d.width(), d.l, d.l * d.l);
        let x = self.value(qkv).data();
        let rotated = rope.map(|(cos, sin)| rotate_qk(x, self.value(cos), self.value(sin), d));
        // Q and K come from the rotated copy (rows 2w apart) or straight from qkv (rows 3w apart).
        let (qk, qk_rs) = match &rotated {
            Some(r) => (r.data(), 2 * w),
            None => (x, 3 * w),
        };
        let mut out = Tensor::uninit([d.b, l, w]);
        // Recorded: P [B, H, L, L] is saved. Untaped: each part reuses one [L, L] buffer for all its heads.
        let mut probs = record.then(|| Tensor::uninit([d.b, d.h, l, l]));
        // Batch items first..first + n: out rows `o` [n, L, w], probabilities `p` [n, H, L, L] when recorded.
        let items = |first: usize, o: &mut [E], mut p: Option<&mut [E]>| {
            let mut scores = Tensor::<E>::uninit([l, l]);
            let mut scratch = p.is_none().then(|| Tensor::<E>::uninit([l, l]));
            for (j, ob) in o.chunks_exact_mut(l * w).enumerate() {
                let b = first + j;
                for h in 0..d.h {
                    let q = head(qk, b * l * qk_rs + h * d.hd, d, qk_rs);
                    let k = head(qk, b * l * qk_rs + w + h * d.hd, d, qk_rs);
                    let v = head(x, b * l * 3 * w + 2 * w + h * d.hd, d, 3 * w);
                    prec.gemm_serial(E::from_f64(d.scale()), q, k.t(), E::ZERO, MatMut::new(scores.data_mut(), l, l));
                    let pbh = match (&mut p, &mut scratch) {
                        (Some(p), _) => &mut p[(j * d.h + h) * ll..(j * d.h + h + 1) * ll],
                        (None, Some(s)) => s.data_mut(),
                        (None, None) => unreachable!(),
                    };
                    kernels::softmax_rows(scores.data(), l, pbh);
                    let o = head_mut(ob, h * d.hd, d, w);
                    prec.gemm_serial(E::ONE, MatRef::new(pbh, l, l), v, E::ZERO, o);
                }
            }
        };
        let per = items_per_part(d.b, 2 * d.h * ll * d.hd);
        if per >= d.b {
            items(0, out.data_mut(), probs.as_mut().map(|p| p.data_mut()));
        } else {
            let outs = out.data_mut();
            match probs.as_mut() {
                Some(p) => parallel::chunk_pairs_mut(outs, per * l * w, p.data_mut(), per * d.h * ll, |i, o, p| {
                    items(i * per, o, Some(p))
                }),
                None => parallel::chunks_mut(outs, per * l * w, |i, o| items(i * per, o, None)),
            }
        }
        drop(rotated);
        let meta = Meta { heads, rope: rope.is_some() };
        let inputs = match rope {
            Some((cos, sin)) => [qkv, cos, sin],
            None => [qkv; 3],
        };
        let n_inputs = if rope.is_some() { 3 } else { 1 };
        self.push_op(Op::Attention(meta), &inputs[..n_inputs], out, probs, &[])
    }
}

pub(crate) fn backward<E: Float>(m: &Meta, ctx: &mut Ctx<'_, E>) {
    let x = ctx.input(0);
    let d = Dims::of(x.shape(), m.heads);
    let (w, ll, l) = (d.width(), d.l * d.l, d.l);
    let (gout, saved) = (ctx.gout, ctx.saved);
    let (dout, probs) = (gout.data(), saved[0].data());
    let tables = m.rope.then(|| (ctx.input(1), ctx.input(2)));
    let prec = ctx.precision;
    let Some(dx) = ctx.grad(0) else { return };
    let rotated = tables.map(|(cos, sin)| rotate_qk(x.data(), cos, sin, d));
    let (qk, qk_rs) = match &rotated {
        Some(r) => (r.data(), 2 * w),
        None => (x.data(), 3 * w),
    };
    let scale = E::from_f64(d.scale());
    // Batch items first..first + n, whose qkv gradient rows are `dxs` [n, L, 3w]. With RoPE, dQ and dK of one
    // item are formed in the rotated frame first (each head's block written once, beta = 0) and rotated back into
    // dxs; without, they accumulate straight into it.
    let items = |first: usize, dxs: &mut [E]| {
        let mut ds = Tensor::<E>::uninit([l, l]);
        let mut dqk_rotated = tables.map(|_| Tensor::<E>::uninit([l, 2 * w]));
        for (j, dxb) in dxs.chunks_exact_mut(l * 3 * w).enumerate() {
            let b = first + j;
            for h in 0..d.h {
                let q = head(qk, b * l * qk_rs + h * d.hd, d, qk_rs);
                let k = head(qk, b * l * qk_rs + w + h * d.hd, d, qk_rs);
                let v = head(x.data(), b * l * 3 * w + 2 * w + h * d.hd, d, 3 * w);
                let p_bh = &probs[(b * d.h + h) * ll..(b * d.h + h + 1) * ll];
                let p = MatRef::new(p_bh, l, l);
                let d_o = head(dout, b * l * w + h * d.hd, d, w);
                prec.gemm_serial(E::ONE, p.t(), d_o, E::ONE, head_mut(dxb, 2 * w + h * d.hd, d, 3 * w));
                // dP = dO V^T, then dS = P * (dP - rowsum(dP * P)) in place.
                prec.gemm_serial(E::ONE, d_o, v.t(), E::ZERO, MatMut::new(ds.data_mut(), l, l));
                for (ds_row, p_row) in ds.data_mut().chunks_exact_mut(l).zip(p_bh.chunks_exact(l)) {
                    let dot: E = ds_row.iter().zip(p_row).map(|(&a, &b)| a * b).sum();
                    for (g, &pv) in ds_row.iter_mut().zip(p_row) {
                        *g = pv * (*g - dot);
                    }
                }
                let ds_m = MatRef::new(ds.data(), l, l);
                match &mut dqk_rotated {
                    Some(t) => {
                        let buf = t.data_mut();
                        prec.gemm_serial(scale, ds_m, k, E::ZERO, head_mut(buf, h * d.hd, d, 2 * w));
                        prec.gemm_serial(scale, ds_m.t(), q, E::ZERO, head_mut(buf, w + h * d.hd, d, 2 * w));
                    }
                    None => {
                        prec.gemm_serial(scale, ds_m, k, E::ONE, head_mut(dxb, h * d.hd, d, 3 * w));
                        prec.gemm_serial(scale, ds_m.t(), q, E::ONE, head_mut(dxb, w + h * d.hd, d, 3 * w));
                    }
                }
            }
            if let (Some(g), Some((cos, sin))) = (&dqk_rotated, tables) {
                for (p, (grow, drow)) in g.data().chunks_exact(2 * w).zip(dxb.chunks_exact_mut(3 * w)).enumerate() {
                    let (c, s) = (&cos.data()[p * d.hd..(p + 1) * d.hd], &sin.data()[p * d.hd..(p + 1) * d.hd]);
                    unrotate_heads_add(grow, c, s, &mut drow[..2 * w]);
                }
            }
        }
    };
    let per = items_per_part(d.b, 4 * d.h * ll * d.hd);
    if per >= d.b {
        items(0, dx);
    } else {
        parallel::chunks_mut(dx, per * l * 3 * w, |i, dxs| items(i * per, dxs));
    }
}

#[cfg(test)]
mod tests {
    use super::super::rope::rope_tables;
    use super::*;
    use crate::gradcheck::{gradcheck, gradcheck_bf16};
    use crate::ops::test_support::standard_normal;
    use crate::ParamStore;
    use proptest::prelude::*;

    /// Attention written the slow, obvious way: scalar loops over positions with PyTorch's indexing
    /// qkv.view(B, L, 3H, hd)[b, i, head, :], RoPE as x * cos + rotate_half(x) * sin.
    fn reference(qkv: &Tensor<f64>, heads: usize, tables: Option<&(Tensor<f64>, Tensor<f64>)>) -> Vec<f64> {
        let [bs, l, three_w] = qkv.dims().try_into().unwrap();
        let hd = three_w / (3 * heads);
        let at = |b: usize, i: usize, hh: usize| -> Vec<f64> {
            let start = ((b * l + i) * 3 * heads + hh) * hd;
            qkv.data()[start..start + hd].to_vec()
        };
        let rope = |x: Vec<f64>, i: usize| -> Vec<f64> {
            let Some((c, s)) = tables else { return x };
            let rot: Vec<f64> = x[hd / 2..].iter().map(|v| -v).chain(x[..hd / 2].iter().copied()).collect();
            (0..hd).map(|j| x[j] * c.data()[i * hd + j] + rot[j] * s.data()[i * hd + j]).collect()
        };
        let mut out = vec![0.0; bs * l * heads * hd];
        for b in 0..bs {
            for hh in 0..heads {
                for i in 0..l {
                    let q = rope(at(b, i, hh), i);
                    let scores: Vec<f64> = (0..l)
                        .map(|j| {
                            let k = rope(at(b, j, heads + hh), j);
                            q.iter().zip(&k).map(|(a, c)| a * c).sum::<f64>() / (hd as f64).sqrt()
                        })
                        .collect();
                    let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let z: f64 = scores.iter().map(|s| (s - max).exp()).sum();
                    for (j, s) in scores.iter().enumerate() {
                        let v = at(b, j, 2 * heads + hh);
                        for e in 0..hd {
                            out[((b * l + i) * heads + hh) * hd + e] += (s - max).exp() / z * v[e];
                        }
                    }
                }
            }
        }
        out
    }

    fn run<E: Float>(tape: &mut Tape<E>, qkv: Var, heads: usize, tables: Option<&(Tensor<f64>, Tensor<f64>)>) -> Var {
        let rope = tables.map(|(c, s)| (tape.constant(c.cast()), tape.constant(s.cast())));
        tape.attention(qkv, heads, rope)
    }

    #[test]
    fn forward_matches_reference() {
        for (bs, l, heads, hd, with_rope) in
            [(2, 5, 2, 4, false), (2, 5, 2, 4, true), (1, 9, 3, 6, true), (1, 1, 1, 2, true)]
        {
            let qkv = standard_normal(&[bs, l, 3 * heads * hd], (l * hd) as u64);
            let tables = with_rope.then(|| rope_tables(l, hd, 10000.0));
            let want = reference(&qkv, heads, tables.as_ref());
            let mut tape = Tape::<f64>::new(ParamStore::new());
            let x = tape.constant(qkv);
            let y = run(&mut tape, x, heads, tables.as_ref());
            assert_eq!(tape.value(y).dims(), &[bs, l, heads * hd]);
            for (got, want) in tape.value(y).data().iter().zip(&want) {
                assert!((got - want).abs() < 1e-12, "{got} vs {want} for {bs} {l} {heads} {hd} {with_rope}");
            }
        }
    }

    #[test]
    fn uniform_scores_average_the_values() {
        // q = k = 0: every score is 0, P is uniform, each output is the mean of v over positions.
        let (l, hd) = (3, 2);
        let mut qkv = Tensor::<f64>::zeros([1, l, 3 * hd]);
        for i in 0..l {
            qkv.data_mut()[i * 3 * hd + 2 * hd] = i as f64;
            qkv.data_mut()[i * 3 * hd + 2 * hd + 1] = 10.0;
        }
        let mut tape = Tape::<f64>::new(ParamStore::new());
        let x = tape.constant(qkv);
        let y = tape.attention(x, 1, None);
        for row in tape.value(y).data().chunks(hd) {
            assert!((row[0] - 1.0).abs() < 1e-15 && (row[1] - 10.0).abs() < 1e-15, "{row:?}");
        }
    }

    /// Large enough to split across threads: the split gives the serial result bit for bit, forward, no-grad
    /// forward and backward, with and without RoPE.
    #[test]
    fn the_parallel_split_matches_one_thread_bit_for_bit() {
        let (b, l, heads, hd) = (8, 64, 4, 16);
        let qkv = standard_normal(&[b, l, 3 * heads * hd], 17).cast::<f32>();
        let (cos, sin) = rope_tables::<f32>(l, hd, 10000.0);
        let run = |threads: usize, rope: bool| {
            loopgrad_tensor::set_threads(threads);
            let mut tape = Tape::<f32>::new(ParamStore::new());
            let x = tape.leaf(qkv.clone());
            let tables = rope.then(|| (tape.constant(cos.clone()), tape.constant(sin.clone())));
            let free = tape.no_grad(|t| t.attention(x, heads, tables));
            let y = tape.attention(x, heads, tables);
            let s = tape.sum(y);
            tape.backward(s);
            (tape.value(free).clone(), tape.value(y).clone(), tape.grad(x).unwrap().clone())
        };
        let before = loopgrad_tensor::threads();
        for rope in [false, true] {
            let serial = run(1, rope);
            let split = run(2, rope);
            assert!(serial == split, "rope {rope}: the split changed a bit");
        }
        loopgrad_tensor::set_threads(before);
    }

    #[test]
    fn f32_matches_f64_and_no_grad_matches_recorded() {
        // L = 97 (TRM's Sudoku length with its prefix): odd, not a multiple of any SIMD width.
        let (l, heads, hd) = (97, 2, 8);
        let qkv = standard_normal(&[2, l, 3 * heads * hd], 3);
        let tables = Some(rope_tables(l, hd, 10000.0));
        let mut tape = Tape::<f64>::new(ParamStore::new());
        let x = tape.leaf(qkv.clone());
        let y = run(&mut tape, x, heads, tables.as_ref());
        assert_eq!(tape.num_nodes(), 1);
        let recorded = tape.value(y).clone();
        let y_free = tape.no_grad(|t| run(t, x, heads, tables.as_ref()));
        assert_eq!(tape.num_nodes(), 1, "no_grad recorded a node");
        assert_eq!(&recorded, tape.value(y_free));

        let mut t32 = Tape::<f32>::new(ParamStore::new());
        let x32 = t32.constant(qkv.cast());
        let y32 = run(&mut t32, x32, heads, tables.as_ref());
        for (a, b) in t32.value(y32).data().iter().zip(recorded.data()) {
            assert!((a.to_f64() - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    #[test]
    #[should_panic(expected = "attention: qkv has shape [2, 3, 10], expected [B, L, 3 H hd] with H = 2 heads")]
    fn bad_width_names_the_shape() {
        let mut tape = Tape::<f32>::new(ParamStore::new());
        let x = tape.constant(Tensor::zeros([2, 3, 10]));
        tape.attention(x, 2, None);
    }

    /// RoPE's (cos, sin) tables, as `rope_tables` makes them.
    type Tables = (Tensor<f64>, Tensor<f64>);

    /// The draws of both gradient properties: qkv [B, L, 3 H hd] (B < 3, L < 6, H < 3, even hd < 8) and H,
    /// with RoPE tables for L and hd or none.
    fn qkv_case() -> impl Strategy<Value = (Tensor<f64>, usize, Option<Tables>)> {
        (1usize..3, 1usize..6, 1usize..3, 1usize..4, any::<bool>(), 0u64..1000).prop_map(
            |(bs, l, heads, half, with_rope, seed)| {
                let hd = 2 * half;
                let qkv = standard_normal(&[bs, l, 3 * heads * hd], seed);
                (qkv, heads, with_rope.then(|| rope_tables(l, hd, 10000.0)))
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::gradcheck::proptest_cases()))]

        #[test]
        fn gradients_match_finite_differences((qkv, heads, tables) in qkv_case()) {
            gradcheck("attention", &[qkv], |t, v| run(t, v[0], heads, tables.as_ref())).unwrap();
        }

        /// The bf16 path: a gradient of qkv passes through at most 4 rounded products in sequence (dQ: the
        /// scores Q K^T, then dP = dO V^T, then dS K; dV: the scores, P^T dO), which sets the bound
        /// (`gradcheck_bf16`'s doc derives it).
        #[test]
        fn bf16_gradients_stay_within_the_rounding_bound((qkv, heads, tables) in qkv_case()) {
            gradcheck_bf16("attention", &[qkv], 4, |t, v| run(t, v[0], heads, tables.as_ref())).unwrap();
        }
    }
}
