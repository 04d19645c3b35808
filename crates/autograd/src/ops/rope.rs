//! Rotary position embedding, rotate-half convention (HF Llama, TRM, HRM), and its cos/sin tables.
//!
//! Each head vector of length hd is split into halves a = x[..hd/2], b = x[hd/2..] and
//!
//! ```text
//! f(x) = x * cos + rotate_half(x) * sin,   rotate_half([a, b]) = [-b, a]
//! ```
//!
//! with cos, sin the `[hd]` rows of the position. Written out for i < h = hd/2:
//! `out[i] = x[i] cos[i] - x[i+h] sin[i]` and `out[i+h] = x[i+h] cos[i+h] + x[i] sin[i+h]`.
//!
//! **Derivative.** f is linear in x: f = (C + S R) x with C = diag(cos), S = diag(sin) and R the rotate-half
//! matrix, whose transpose is -R. So f' = C + S R and the backward is dx = (C - R S) dy:
//! `dx[i] = cos[i] dy[i] + sin[i+h] dy[i+h]`, `dx[i+h] = cos[i+h] dy[i+h] - sin[i] dy[i]`. With the standard tables
//! (`cos[i] = cos[i+h]`, sin likewise) this is the rotation of the gradient by the negative angle. Backward reuses
//! only the tables (the op's inputs 1 and 2); nothing is saved.
//!
//! The tables are constants (TRM keeps them as non-persistent buffers): asking for their gradient panics, so a
//! graph that expects one fails loudly instead of silently getting zeros.
//!
//! The row kernels `rotate_heads` and `unrotate_heads_add` are shared with the fused attention, which
//! rotates q and k in place of their slices of the qkv projection.

use crate::op::Op;
use crate::tape::{Ctx, Tape, Var};
use loopgrad_tensor::simd::SimdVec;
use loopgrad_tensor::{Float, Tensor};

type V<E> = <E as Float>::Simd;

impl<E: Float> Tape<E> {
    /// Rotary position embedding (rotate-half): x [B, L, H, hd], cos and sin [L, hd] (constants) -> same shape.
    pub fn rope(&mut self, x: Var, cos: Var, sin: Var) -> Var {
        let xt = self.value(x);
        let dims = xt.dims();
        assert!(dims.len() == 4, "rope: x has shape {}, expected [B, L, H, hd]", xt.shape());
        let (l, hd) = (dims[1], dims[3]);
        check_tables("rope", self, cos, sin, l, hd);
        let (ct, st) = (self.value(cos), self.value(sin));
        let mut out = Tensor::uninit(xt.shape());
        let row = dims[2] * hd;
        if row > 0 {
            for (pos, (orow, xrow)) in out.data_mut().chunks_exact_mut(row).zip(xt.data().chunks_exact(row)).enumerate()
            {
                let p = pos % l;
                rotate_heads(xrow, &ct.data()[p * hd..(p + 1) * hd], &st.data()[p * hd..(p + 1) * hd], orow);
            }
        }
        self.push_op(Op::Rope, &[x, cos, sin], out, [], &[])
    }
}

/// Panics unless cos and sin are [l, hd] with hd even, and constants (see the module doc). `op` names the caller.
pub(crate) fn check_tables<E: Float>(op: &str, tape: &Tape<E>, cos: Var, sin: Var, l: usize, hd: usize) {
    assert!(2 * (hd / 2) == hd, "{op}: head dim {hd} is odd; rotate-half needs an even head dim");
    for (name, v) in [("cos", cos), ("sin", sin)] {
        let t = tape.value(v);
        assert!(t.dims() == [l, hd], "{op}: {name} table has shape {}, expected [{l}, {hd}] (= [L, hd])", t.shape());
        assert!(
            !(tape.is_recording() && tape.needs_grad(v)),
            "{op}: the {name} table needs a gradient; RoPE tables are constants (use Tape::constant)"
        );
    }
}

/// out = x * cos + rotate_half(x) * sin for every head in `x` (consecutive vectors of length hd = cos.len()).
/// `out` is overwritten.
pub(crate) fn rotate_heads<E: Float>(x: &[E], cos: &[E], sin: &[E], out: &mut [E]) {
    let h = cos.len() / 2;
    let (cos_a, cos_b) = cos.split_at(h);
    let (sin_a, sin_b) = sin.split_at(h);
    // Whole vectors of the half (hd 16 and up in f32), the same products and one subtraction or addition per
    // element as the scalar loop: the bits are the scalar loop's. The tables' vectors serve every head.
    let lanes = V::<E>::LANES;
    if h.is_multiple_of(lanes) {
        for i in (0..h).step_by(lanes) {
            let (ca, cb) = (V::<E>::load(&cos_a[i..]), V::<E>::load(&cos_b[i..]));
            let (sa, sb) = (V::<E>::load(&sin_a[i..]), V::<E>::load(&sin_b[i..]));
            for (o, xh) in out.chunks_exact_mut(2 * h).zip(x.chunks_exact(2 * h)) {
                let (xa, xb) = (V::<E>::load(&xh[i..]), V::<E>::load(&xh[h + i..]));
                (xa * ca - xb * sa).store(&mut o[i..]);
                (xb * cb + xa * sb).store(&mut o[h + i..]);
            }
        }
        return;
    }
    for (o, xh) in out.chunks_exact_mut(2 * h).zip(x.chunks_exact(2 * h)) {
        let (oa, ob) = o.split_at_mut(h);
        let (xa, xb) = xh.split_at(h);
        for i in 0..h {
            oa[i] = xa[i] * cos_a[i] - xb[i] * sin_a[i];
            ob[i] = xb[i] * cos_b[i] + xa[i] * sin_b[i];
        }
    }
}

/// dx += (cos - rotate_half^T sin) dy for every head: the transpose of [`rotate_heads`], accumulated.
pub(crate) fn unrotate_heads_add<E: Float>(dy: &[E], cos: &[E], sin: &[E], dx: &mut [E]) {
    let h = cos.len() / 2;
    let (cos_a, cos_b) = cos.split_at(h);
    let (sin_a, sin_b) = sin.split_at(h);
    // As in `rotate_heads`: vectors where the half allows, bits unchanged (d + (g c + g' s), in that order).
    let lanes = V::<E>::LANES;
    if h.is_multiple_of(lanes) {
        for i in (0..h).step_by(lanes) {
            let (ca, cb) = (V::<E>::load(&cos_a[i..]), V::<E>::load(&cos_b[i..]));
            let (sa, sb) = (V::<E>::load(&sin_a[i..]), V::<E>::load(&sin_b[i..]));
            for (d, g) in dx.chunks_exact_mut(2 * h).zip(dy.chunks_exact(2 * h)) {
                let (ga, gb) = (V::<E>::load(&g[i..]), V::<E>::load(&g[h + i..]));
                let (da, db) = (V::<E>::load(&d[i..]), V::<E>::load(&d[h + i..]));
                (da + (ga * ca + gb * sb)).store(&mut d[i..]);
                (db + (gb * cb - ga * sa)).store(&mut d[h + i..]);
            }
        }
        return;
    }
    for (d, g) in dx.chunks_exact_mut(2 * h).zip(dy.chunks_exact(2 * h)) {
        let (da, db) = d.split_at_mut(h);
        let (ga, gb) = g.split_at(h);
        for i in 0..h {
            da[i] += ga[i] * cos_a[i] + gb[i] * sin_b[i];
            db[i] += gb[i] * cos_b[i] - ga[i] * sin_a[i];
        }
    }
}

pub(crate) fn backward<E: Float>(ctx: &mut Ctx<'_, E>) {
    let (gout, cos, sin) = (ctx.gout, ctx.input(1), ctx.input(2));
    let hd = cos.dims()[1];
    let l = cos.dims()[0];
    let row = gout.shape().last() * gout.dims()[2];
    let Some(dx) = ctx.grad(0) else { return };
    if row == 0 {
        return;
    }
    for (pos, (drow, grow)) in dx.chunks_exact_mut(row).zip(gout.data().chunks_exact(row)).enumerate() {
        let p = pos % l;
        unrotate_heads_add(grow, &cos.data()[p * hd..(p + 1) * hd], &sin.data()[p * hd..(p + 1) * hd], drow);
    }
}

/// The cos and sin tables [seq_len, head_dim] of TRM's `RotaryEmbedding`: `inv_freq[i] = 1 / theta^(2i / hd)` for
/// i < hd/2, `angle[p, i] = p inv_freq[i]`, emb = cat(angle, angle) on the last axis. Computed in f64 and rounded
/// once to `E`. PyTorch computes them in f32, so its tables differ from these by the f32 rounding error of the
/// angle p * inv_freq, which grows with the position p.
pub fn rope_tables<E: Float>(seq_len: usize, head_dim: usize, theta: f64) -> (Tensor<E>, Tensor<E>) {
    assert!(
        2 * (head_dim / 2) == head_dim,
        "rope_tables: head dim {head_dim} is odd; rotate-half needs an even head dim"
    );
    let h = head_dim / 2;
    let mut cos = Tensor::uninit([seq_len, head_dim]);
    let mut sin = Tensor::uninit([seq_len, head_dim]);
    for p in 0..seq_len {
        for i in 0..h {
            let inv_freq = 1.0 / theta.powf((2 * i) as f64 / head_dim as f64);
            let angle = p as f64 * inv_freq;
            let (s, c) = (E::from_f64(angle.sin()), E::from_f64(angle.cos()));
            for j in [i, i + h] {
                cos.data_mut()[p * head_dim + j] = c;
                sin.data_mut()[p * head_dim + j] = s;
            }
        }
    }
    (cos, sin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::gradcheck;
    use crate::ops::test_support::standard_normal;
    use crate::ParamStore;
    use proptest::prelude::*;

    /// x * cos + rotate_half(x) * sin with rotate_half spelled out as a concatenation, one head at a time.
    fn reference(x: &Tensor<f64>, cos: &Tensor<f64>, sin: &Tensor<f64>) -> Vec<f64> {
        let [b, l, h, hd] = x.dims().try_into().unwrap();
        let mut out = Vec::new();
        for head in x.data().chunks(hd) {
            let rotated: Vec<f64> = head[hd / 2..].iter().map(|v| -v).chain(head[..hd / 2].iter().copied()).collect();
            let p = out.len() / (h * hd) % l;
            for i in 0..hd {
                out.push(head[i] * cos.data()[p * hd + i] + rotated[i] * sin.data()[p * hd + i]);
            }
        }
        assert_eq!(out.len(), b * l * h * hd);
        out
    }

    /// The row kernels' vector path (half a head a whole number of vectors) against their scalar formula, bit for
    /// bit: the fused attention's f32 results must not depend on the head dim's divisibility.
    fn vector_path_case<E: Float>(hd: usize, heads: usize, seed: u64) {
        let h = hd / 2;
        assert!(h.is_multiple_of(E::Simd::LANES), "the case must take the vector path");
        let draw =
            |n: usize, s: u64| -> Vec<E> { standard_normal(&[n], s).data().iter().map(|&v| E::from_f64(v)).collect() };
        let (x, cos, sin, dx0) =
            (draw(heads * hd, seed), draw(hd, seed + 1), draw(hd, seed + 2), draw(heads * hd, seed + 3));
        let mut out = vec![E::ZERO; heads * hd];
        rotate_heads(&x, &cos, &sin, &mut out);
        let mut dx = dx0.clone();
        unrotate_heads_add(&x, &cos, &sin, &mut dx);
        for k in 0..heads {
            for i in 0..h {
                let (a, b) = (k * hd + i, k * hd + h + i);
                assert_eq!(out[a].to_f64(), (x[a] * cos[i] - x[b] * sin[i]).to_f64(), "rotate, hd {hd}, element {a}");
                assert_eq!(
                    out[b].to_f64(),
                    (x[b] * cos[h + i] + x[a] * sin[h + i]).to_f64(),
                    "rotate, hd {hd}, element {b}"
                );
                let (da, db) =
                    (dx0[a] + (x[a] * cos[i] + x[b] * sin[h + i]), dx0[b] + (x[b] * cos[h + i] - x[a] * sin[i]));
                assert_eq!(dx[a].to_f64(), da.to_f64(), "unrotate, hd {hd}, element {a}");
                assert_eq!(dx[b].to_f64(), db.to_f64(), "unrotate, hd {hd}, element {b}");
            }
        }
    }

    #[test]
    fn vector_path_gives_the_scalar_bits() {
        vector_path_case::<f32>(16, 8, 11);
        vector_path_case::<f32>(64, 3, 21);
        vector_path_case::<f64>(8, 8, 31);
        vector_path_case::<f64>(48, 2, 41);
    }

    #[test]
    fn tables_follow_trm() {
        let (cos, sin) = rope_tables::<f64>(5, 6, 10000.0);
        assert_eq!(cos.dims(), &[5, 6]);
        for p in 0..5 {
            for i in 0..3 {
                let angle = p as f64 / 10000f64.powf(2.0 * i as f64 / 6.0);
                assert!((cos.data()[p * 6 + i] - angle.cos()).abs() < 1e-15);
                assert!((sin.data()[p * 6 + i + 3] - angle.sin()).abs() < 1e-15);
                assert_eq!(cos.data()[p * 6 + i], cos.data()[p * 6 + i + 3]);
            }
        }
        // Position 0 is the identity; frequency 0 rotates position p by p radians.
        assert!(cos.data()[..6].iter().all(|&c| c == 1.0) && sin.data()[..6].iter().all(|&s| s == 0.0));
        assert_eq!(sin.data()[4 * 6], 4f64.sin());
    }

    #[test]
    fn forward_rotates_pairs() {
        // hd = 2: (a, b) at angle t becomes (a cos t - b sin t, b cos t + a sin t).
        let mut tape = Tape::<f64>::new(ParamStore::new());
        let (c, s) = rope_tables::<f64>(2, 2, 10000.0);
        let x = tape.constant(Tensor::from_vec(vec![1.0, 2.0, 3.0, -4.0], [1, 2, 1, 2]));
        let (cv, sv) = (tape.constant(c), tape.constant(s));
        let y = tape.rope(x, cv, sv);
        let (c1, s1) = (1f64.cos(), 1f64.sin());
        let want = [1.0, 2.0, 3.0 * c1 + 4.0 * s1, -4.0 * c1 + 3.0 * s1];
        for (got, want) in tape.value(y).data().iter().zip(want) {
            assert!((got - want).abs() < 1e-15, "{got} vs {want}");
        }
    }

    #[test]
    fn forward_matches_reference_with_arbitrary_tables() {
        let mut tape = Tape::<f64>::new(ParamStore::new());
        let (x, c, s) = (standard_normal(&[2, 3, 2, 4], 1), standard_normal(&[3, 4], 2), standard_normal(&[3, 4], 3));
        let want = reference(&x, &c, &s);
        let (xv, cv, sv) = (tape.constant(x), tape.constant(c), tape.constant(s));
        let y = tape.rope(xv, cv, sv);
        for (got, want) in tape.value(y).data().iter().zip(want) {
            assert!((got - want).abs() < 1e-14, "{got} vs {want}");
        }
    }

    #[test]
    fn backward_of_standard_tables_undoes_the_rotation() {
        let (c, s) = rope_tables::<f64>(4, 6, 10000.0);
        let x = standard_normal(&[1, 4, 2, 6], 7);
        let mut y = vec![0.0; x.numel()];
        let mut back = vec![0.0; x.numel()];
        for p in 0..4 {
            let (cp, sp) = (&c.data()[p * 6..p * 6 + 6], &s.data()[p * 6..p * 6 + 6]);
            rotate_heads(&x.data()[p * 12..p * 12 + 12], cp, sp, &mut y[p * 12..p * 12 + 12]);
            unrotate_heads_add(&y[p * 12..p * 12 + 12], cp, sp, &mut back[p * 12..p * 12 + 12]);
        }
        for (a, b) in back.iter().zip(x.data()) {
            assert!((a - b).abs() < 1e-14);
        }
    }

    #[test]
    fn f32_matches_f64_and_no_grad_matches_recorded() {
        let (x, (c, s)) = (standard_normal(&[2, 7, 3, 8], 11), rope_tables::<f64>(7, 8, 10000.0));
        let run = |tape: &mut Tape<f64>, leaf: bool| {
            let xv = if leaf { tape.leaf(x.clone()) } else { tape.constant(x.clone()) };
            let (cv, sv) = (tape.constant(c.clone()), tape.constant(s.clone()));
            let y = tape.rope(xv, cv, sv);
            tape.value(y).clone()
        };
        let mut tape = Tape::<f64>::new(ParamStore::new());
        let recorded = run(&mut tape, true);
        assert_eq!(tape.num_nodes(), 1);
        let free = tape.no_grad(|t| run(t, true));
        assert_eq!(tape.num_nodes(), 1, "no_grad recorded a node");
        assert_eq!(recorded, free);

        let mut t32 = Tape::<f32>::new(ParamStore::new());
        let (xv, cv, sv) = (t32.constant(x.cast()), t32.constant(c.cast()), t32.constant(s.cast()));
        let y = t32.rope(xv, cv, sv);
        for (a, b) in t32.value(y).data().iter().zip(recorded.data()) {
            assert!((a.to_f64() - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    #[test]
    #[should_panic(expected = "rope: cos table has shape [4, 8], expected [5, 8]")]
    fn table_shape_mismatch_names_both() {
        let mut tape = Tape::<f32>::new(ParamStore::new());
        let x = tape.constant(Tensor::zeros([1, 5, 2, 8]));
        let (c, s) = rope_tables(4, 8, 10000.0);
        let (cv, sv) = (tape.constant(c), tape.constant(s));
        tape.rope(x, cv, sv);
    }

    #[test]
    #[should_panic(expected = "rope: the sin table needs a gradient")]
    fn tables_that_need_a_gradient_are_rejected() {
        let mut tape = Tape::<f32>::new(ParamStore::new());
        let x = tape.leaf(Tensor::zeros([1, 2, 1, 4]));
        let (c, s) = rope_tables(2, 4, 10000.0);
        let (cv, sv) = (tape.constant(c), tape.leaf(s));
        tape.rope(x, cv, sv);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::gradcheck::proptest_cases()))]

        #[test]
        fn gradients_match_finite_differences(
            b in 1usize..3, l in 1usize..8, h in 1usize..4, half in 1usize..5, standard in any::<bool>(),
            seed in 0u64..1000,
        ) {
            let hd = 2 * half;
            let x = standard_normal(&[b, l, h, hd], seed);
            // Arbitrary tables exercise the cos[i] != cos[i + h] terms that the standard tables hide.
            let (c, s) = if standard {
                rope_tables(l, hd, 10000.0)
            } else {
                (standard_normal(&[l, hd], seed + 1), standard_normal(&[l, hd], seed + 2))
            };
            gradcheck("rope", &[x], |t, v| {
                let (cv, sv) = (t.constant(c.clone()), t.constant(s.clone()));
                t.rope(v[0], cv, sv)
            })
            .unwrap();
        }
    }
}
