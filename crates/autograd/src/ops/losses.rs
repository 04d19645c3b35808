//! The losses: stablemax and softmax cross-entropy per sequence, and binary cross-entropy with logits.
//!
//! **Cross-entropies.** logits [B, L, V], labels [B L] (row-major, one per position). A position whose label is
//! `ignore` contributes nothing; the output `[B]` holds each sequence's mean over its n_b valid positions (0 when it
//! has none), TRM's per-sequence token mean. A label that is neither `ignore` nor < V panics naming the op, the
//! position and V. The labels are kept in the tape's `ints` arena; nothing else is saved, because a row's
//! normaliser is one pass over V logits (V is 6 to 12 in the puzzles) and is recomputed in backward. As in TRM
//! (`logits.to(torch.float64)`) every row is computed in f64 whatever `E` is, and the result rounded once.
//!
//! | loss | f (one position, label y) | f' = dloss/dx_j, scaled by `dout[b] / n_b` |
//! |---|---|---|
//! | stablemax | s(x) = x + 1 (x >= 0), 1/(1 - x) (x < 0); log S - log s(x_y), S = sum_k s(x_k) | s'(x_j)/S - [j = y] g(x_y) |
//! | softmax | lse(x) - x_y, lse = m + log sum_k exp(x_k - m), m = max | p_j - [j = y], p = exp(x - lse) |
//!
//! For stablemax s'(x) = 1 (x >= 0), 1/(1 - x)^2 (x < 0), and g = s'/s = 1/(1 + x) (x >= 0), 1/(1 - x) (x < 0).
//! s is continuous at 0 with s' = 1 from both sides, but s'' jumps there: a kink for finite differences.
//!
//! **BCE with logits**, element-wise on x and a target t of the same shape (both may need gradients):
//! f = max(x, 0) - x t + log(1 + e^-|x|) (= softplus(x) - x t, stable for any |x|), f'_x = sigmoid(x) - t,
//! f'_t = -x. Computed in f64 with `ln_1p` and rounded once; backward reuses only the inputs.

use crate::op::Op;
use crate::tape::{Ctx, Tape, Var};
use loopgrad_tensor::{kernels, Float, Tensor};

#[derive(Clone, Copy, Debug)]
pub struct CeMeta {
    ignore: usize,
}

/// One cross-entropy: its name for messages, the loss of a row, and the gradient of a row's loss added into
/// `dx` times `coef`.
struct Ce<E> {
    name: &'static str,
    row_loss: fn(&[E], usize) -> f64,
    row_grad_add: fn(&[E], usize, f64, &mut [E]),
}

fn stablemax_s(x: f64) -> f64 {
    if x >= 0.0 {
        x + 1.0
    } else {
        1.0 / (1.0 - x)
    }
}

fn stablemax_row_loss<E: Float>(row: &[E], label: usize) -> f64 {
    let total: f64 = row.iter().map(|&x| stablemax_s(x.to_f64())).sum();
    total.ln() - stablemax_s(row[label].to_f64()).ln()
}

fn stablemax_row_grad_add<E: Float>(row: &[E], label: usize, coef: f64, dx: &mut [E]) {
    let total: f64 = row.iter().map(|&x| stablemax_s(x.to_f64())).sum();
    for (d, &x) in dx.iter_mut().zip(row) {
        let x = x.to_f64();
        let ds = if x >= 0.0 { 1.0 } else { 1.0 / ((1.0 - x) * (1.0 - x)) };
        *d += E::from_f64(coef * ds / total);
    }
    let xl = row[label].to_f64();
    let g = if xl >= 0.0 { 1.0 / (1.0 + xl) } else { 1.0 / (1.0 - xl) };
    dx[label] -= E::from_f64(coef * g);
}

fn log_sum_exp<E: Float>(row: &[E]) -> f64 {
    let m = row.iter().map(|x| x.to_f64()).fold(f64::NEG_INFINITY, f64::max);
    m + row.iter().map(|&x| (x.to_f64() - m).exp()).sum::<f64>().ln()
}

fn softmax_row_loss<E: Float>(row: &[E], label: usize) -> f64 {
    log_sum_exp(row) - row[label].to_f64()
}

fn softmax_row_grad_add<E: Float>(row: &[E], label: usize, coef: f64, dx: &mut [E]) {
    let lse = log_sum_exp(row);
    for (d, &x) in dx.iter_mut().zip(row) {
        *d += E::from_f64(coef * (x.to_f64() - lse).exp());
    }
    dx[label] -= E::from_f64(coef);
}

impl<E: Float> Ce<E> {
    fn stablemax() -> Self {
        Ce { name: "stablemax_ce", row_loss: stablemax_row_loss, row_grad_add: stablemax_row_grad_add }
    }
    fn softmax() -> Self {
        Ce { name: "softmax_ce", row_loss: softmax_row_loss, row_grad_add: softmax_row_grad_add }
    }

    /// The per-sequence mean of `row_loss` over valid positions -> [B]. Checks shapes and labels.
    fn forward(&self, logits: &Tensor<E>, labels: &[usize], ignore: usize) -> Tensor<E> {
        let (name, shape) = (self.name, logits.shape());
        assert!(shape.rank() == 3 && shape.last() > 0, "{name}: logits have shape {shape}, expected [B, L, V]");
        let (b, l, v) = (shape.dims()[0], shape.dims()[1], shape.dims()[2]);
        assert!(
            labels.len() == b * l,
            "{name}: {} labels for logits of shape {shape} (expected B L = {})",
            labels.len(),
            b * l
        );
        let mut out = Tensor::uninit([b]);
        for (pos, &label) in labels.iter().enumerate() {
            assert!(
                label == ignore || label < v,
                "{name}: label {label} at position {pos} is out of range for V = {v} (ignore label {ignore})"
            );
        }
        for (seq, o) in out.data_mut().iter_mut().enumerate() {
            let (mut sum, mut valid) = (0.0, 0usize);
            let rows = logits.data()[seq * l * v..(seq + 1) * l * v].chunks_exact(v);
            for (row, &label) in rows.zip(&labels[seq * l..(seq + 1) * l]) {
                if label != ignore {
                    sum += (self.row_loss)(row, label);
                    valid += 1;
                }
            }
            *o = E::from_f64(if valid == 0 { 0.0 } else { sum / valid as f64 });
        }
        out
    }

    fn backward(&self, m: &CeMeta, ctx: &mut Ctx<'_, E>) {
        let (gout, logits, labels) = (ctx.gout, ctx.input(0), ctx.ints);
        let (l, v) = (logits.dims()[1], logits.dims()[2]);
        let Some(dx) = ctx.grad(0) else { return };
        for (seq, &dy) in gout.data().iter().enumerate() {
            let seq_labels = &labels[seq * l..(seq + 1) * l];
            let valid = seq_labels.iter().filter(|&&y| y != m.ignore).count();
            if valid == 0 {
                continue;
            }
            let coef = dy.to_f64() / valid as f64;
            for (pos, &label) in (seq * l..).zip(seq_labels) {
                if label != m.ignore {
                    let row = &logits.data()[pos * v..(pos + 1) * v];
                    (self.row_grad_add)(row, label, coef, &mut dx[pos * v..(pos + 1) * v]);
                }
            }
        }
    }
}

impl<E: Float> Tape<E> {
    /// Stablemax cross-entropy per sequence: logits [B, L, V], labels [B * L]; positions whose label is
    /// `ignore` contribute nothing -> `[B]`, each the mean over that sequence's valid positions (0 if none).
    pub fn stablemax_ce(&mut self, logits: Var, labels: &[usize], ignore: usize) -> Var {
        let out = Ce::stablemax().forward(self.value(logits), labels, ignore);
        self.push_op(Op::StablemaxCe(CeMeta { ignore }), &[logits], out, [], labels)
    }

    /// Softmax cross-entropy per sequence, with the same conventions as [`Tape::stablemax_ce`].
    pub fn softmax_ce(&mut self, logits: Var, labels: &[usize], ignore: usize) -> Var {
        let out = Ce::softmax().forward(self.value(logits), labels, ignore);
        self.push_op(Op::SoftmaxCe(CeMeta { ignore }), &[logits], out, [], labels)
    }

    /// Binary cross-entropy with logits, element-wise: x and target of the same shape -> same shape.
    pub fn bce_logits(&mut self, x: Var, target: Var) -> Var {
        let (xt, tt) = (self.value(x), self.value(target));
        assert_eq!(
            xt.shape(),
            tt.shape(),
            "bce_logits: logits {} and target {} differ in shape",
            xt.shape(),
            tt.shape()
        );
        let mut out = Tensor::uninit(xt.shape());
        for ((o, &x), &t) in out.data_mut().iter_mut().zip(xt.data()).zip(tt.data()) {
            let (x, t) = (x.to_f64(), t.to_f64());
            *o = E::from_f64(x.max(0.0) - x * t + (-x.abs()).exp().ln_1p());
        }
        self.push_op(Op::BceLogits, &[x, target], out, [], &[])
    }
}

pub(crate) fn backward_stablemax_ce<E: Float>(m: &CeMeta, ctx: &mut Ctx<'_, E>) {
    Ce::stablemax().backward(m, ctx)
}

pub(crate) fn backward_softmax_ce<E: Float>(m: &CeMeta, ctx: &mut Ctx<'_, E>) {
    Ce::softmax().backward(m, ctx)
}

pub(crate) fn backward_bce_logits<E: Float>(ctx: &mut Ctx<'_, E>) {
    let (g, x, t) = (ctx.gout.data(), ctx.input(0).data(), ctx.input(1).data());
    if let Some(dx) = ctx.grad(0) {
        for (((d, &gi), &xi), &ti) in dx.iter_mut().zip(g).zip(x).zip(t) {
            *d += (kernels::sigmoid_scalar(xi) - ti) * gi;
        }
    }
    if let Some(dt) = ctx.grad(1) {
        for ((d, &gi), &xi) in dt.iter_mut().zip(g).zip(x) {
            *d -= xi * gi;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::gradcheck;
    use crate::ops::test_support::normal;
    use crate::ParamStore;
    use loopgrad_tensor::Rng;
    use proptest::prelude::*;

    const IGNORE: usize = usize::MAX;

    /// Normal logits pushed at least 0.05 away from stablemax's kink at 0.
    fn logits(shape: &[usize], seed: u64) -> Tensor<f64> {
        let mut t = normal(shape, 2.0, seed);
        for x in t.data_mut() {
            if x.abs() < 0.05 {
                *x = if *x < 0.0 { -0.05 } else { 0.05 };
            }
        }
        t
    }

    /// Labels in 0..v, about a quarter of them `IGNORE`.
    fn labels(n: usize, v: usize, seed: u64) -> Vec<usize> {
        let mut rng = Rng::new(seed);
        (0..n).map(|_| if rng.below(4) == 0 { IGNORE } else { rng.below(v) }).collect()
    }

    #[test]
    fn stablemax_by_hand() {
        // s([0.5, -1, 2]) = [1.5, 0.5, 3], sum 5: loss of label 2 is -log(3/5), of label 1 -log(0.1).
        let mut tape = Tape::<f64>::new(ParamStore::new());
        let x = tape.constant(Tensor::from_vec(vec![0.5, -1.0, 2.0, 0.5, -1.0, 2.0, 9.0, 9.0, 9.0], [3, 1, 3]));
        let y = tape.stablemax_ce(x, &[2, 1, IGNORE], IGNORE);
        let want = [(5.0f64 / 3.0).ln(), 10f64.ln(), 0.0];
        for (got, want) in tape.value(y).data().iter().zip(want) {
            assert!((got - want).abs() < 1e-15, "{got} vs {want}");
        }
    }

    #[test]
    fn per_sequence_mean_skips_ignored_positions() {
        // One sequence of three positions, the middle one ignored: the mean is over two positions.
        let mut tape = Tape::<f64>::new(ParamStore::new());
        let x = tape.constant(Tensor::from_vec(vec![1.0, 0.0, 0.0, 2.0, 0.0, 3.0], [1, 3, 2]));
        let y = tape.softmax_ce(x, &[1, 7, 0], 7);
        let ce = |a: f64, b: f64| (a.exp() + b.exp()).ln() - a;
        let want = (ce(0.0, 1.0) + ce(0.0, 3.0)) / 2.0;
        assert!((tape.value(y).item() - want).abs() < 1e-15);
    }

    #[test]
    fn softmax_ce_is_stable_for_huge_logits() {
        let mut tape = Tape::<f32>::new(ParamStore::new());
        let x = tape.constant(Tensor::from_vec(vec![1000.0, -1000.0, 0.0], [1, 1, 3]));
        let y = tape.softmax_ce(x, &[0], IGNORE);
        assert!(tape.value(y).item().abs() < 1e-6);
    }

    #[test]
    #[should_panic(expected = "stablemax_ce: label 5 at position 3 is out of range for V = 4")]
    fn bad_label_names_op_position_and_v() {
        let mut tape = Tape::<f32>::new(ParamStore::new());
        let x = tape.constant(Tensor::zeros([2, 2, 4]));
        tape.stablemax_ce(x, &[0, IGNORE, 3, 5], IGNORE);
    }

    #[test]
    fn bce_by_hand_and_stable() {
        let mut tape = Tape::<f64>::new(ParamStore::new());
        let x = tape.constant(Tensor::from_vec(vec![0.0, 2.0, -3.0, 800.0, -800.0], [5]));
        let t = tape.constant(Tensor::from_vec(vec![1.0, 0.0, 1.0, 1.0, 0.0], [5]));
        let y = tape.bce_logits(x, t);
        // -t log(sigmoid(x)) - (1 - t) log(1 - sigmoid(x)), written from the definition where it is finite.
        let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
        let want = [-(sig(0.0).ln()), -(1.0 - sig(2.0)).ln(), -(sig(-3.0).ln()), 0.0, 0.0];
        for (got, want) in tape.value(y).data().iter().zip(want) {
            assert!((got - want).abs() < 1e-14, "{got} vs {want}");
        }
    }

    #[test]
    fn f32_matches_f64_and_no_grad_matches_recorded() {
        let (x, y) = (logits(&[3, 9, 11], 1), labels(27, 11, 2));
        let target = Tensor::from_vec(x.data().iter().map(|v| (v * 0.3).sin().abs()).collect(), x.shape());
        type Loss = fn(&mut Tape<f64>, Var, Var, &[usize]) -> Var;
        let losses: [(&str, Loss); 3] = [
            ("stablemax_ce", |t, x, _, y| t.stablemax_ce(x, y, IGNORE)),
            ("softmax_ce", |t, x, _, y| t.softmax_ce(x, y, IGNORE)),
            ("bce_logits", |t, x, tg, _| t.bce_logits(x, tg)),
        ];
        for (name, f) in losses {
            let mut tape = Tape::<f64>::new(ParamStore::new());
            let (xv, tv) = (tape.leaf(x.clone()), tape.leaf(target.clone()));
            let out = f(&mut tape, xv, tv, &y);
            assert_eq!(tape.num_nodes(), 1, "{name}");
            let recorded = tape.value(out).clone();
            let out_free = tape.no_grad(|t| f(t, xv, tv, &y));
            assert_eq!(tape.num_nodes(), 1, "{name}: no_grad recorded a node");
            assert_eq!(&recorded, tape.value(out_free), "{name}");
        }
        // f32: the same f64 arithmetic on rounded inputs, rounded once.
        let mut t32 = Tape::<f32>::new(ParamStore::new());
        let mut t64 = Tape::<f64>::new(ParamStore::new());
        let x32 = t32.constant(x.cast());
        let x64 = t64.constant(x.cast::<f32>().cast());
        let pairs = [
            (t32.stablemax_ce(x32, &y, IGNORE), t64.stablemax_ce(x64, &y, IGNORE)),
            (t32.softmax_ce(x32, &y, IGNORE), t64.softmax_ce(x64, &y, IGNORE)),
        ];
        for (a, b) in pairs {
            for (a, b) in t32.value(a).data().iter().zip(t64.value(b).data()) {
                assert_eq!(*a, *b as f32);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::gradcheck::proptest_cases()))]

        #[test]
        fn gradients_match_finite_differences(
            b in 1usize..4, l in 1usize..8, v in 1usize..10, seed in 0u64..1000,
        ) {
            let (x, y) = ([logits(&[b, l, v], seed)], labels(b * l, v, seed + 1));
            gradcheck("stablemax_ce", &x, |t, xs| t.stablemax_ce(xs[0], &y, IGNORE)).unwrap();
            gradcheck("softmax_ce", &x, |t, xs| t.softmax_ce(xs[0], &y, IGNORE)).unwrap();
            let [x] = x;
            let target = logits(&[b, l, v], seed + 2);
            gradcheck("bce_logits", &[x, target], |t, xs| t.bce_logits(xs[0], xs[1])).unwrap();
        }
    }
}
