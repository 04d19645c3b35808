//! Finite-difference gradient checks in f64.
//!
//! The output is reduced by a fixed random projection L = <R, f(x)>, never a plain sum: the sum of a softmax
//! has zero gradient and would pass anything. Every input element (and every trainable parameter element, up to
//! a cap per tensor) is perturbed by +-eps and the central difference is compared with the analytic gradient:
//! |analytic - numeric| <= atol + rtol |numeric|. The fast mode compares one directional derivative instead:
//! v^T (J u) by finite differences along a random u, against (v^T J) u from backward.

use crate::params::Param;
use crate::tape::{Tape, Var};
use loopgrad_tensor::{Precision, Rng, Tensor};
use std::fmt;

/// Settings of a check. The defaults are the design's: eps 1e-6, atol 1e-5, rtol 1e-3.
#[derive(Clone, Debug)]
pub struct GradCheck {
    pub eps: f64,
    pub atol: f64,
    pub rtol: f64,
    /// Seed of the projection R (and of u in the fast mode).
    pub seed: u64,
    /// At most this many elements per tensor are checked (spread evenly); `usize::MAX` checks all.
    pub max_per_tensor: usize,
}

impl Default for GradCheck {
    fn default() -> Self {
        GradCheck { eps: 1e-6, atol: 1e-5, rtol: 1e-3, seed: 0x5eed, max_per_tensor: usize::MAX }
    }
}

/// Which tensor a mismatch is in.
#[derive(Clone, Debug, PartialEq)]
pub enum Wrt {
    Input(usize),
    Param(String),
    /// The fast mode's single directional derivative.
    Direction,
}

/// A failed check: where, and both values.
#[derive(Clone, Debug)]
pub struct GradCheckError {
    pub name: String,
    pub wrt: Wrt,
    pub index: usize,
    pub analytic: f64,
    pub numeric: f64,
}

impl fmt::Display for GradCheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let wrt = match &self.wrt {
            Wrt::Input(i) => format!("input {i}"),
            Wrt::Param(n) => format!("parameter {n}"),
            Wrt::Direction => "a random direction".to_string(),
        };
        write!(
            f,
            "gradcheck {}: d/d {wrt} [{}]: analytic {:.10e} vs numeric {:.10e} (diff {:.3e})",
            self.name,
            self.index,
            self.analytic,
            self.numeric,
            (self.analytic - self.numeric).abs()
        )
    }
}

impl std::error::Error for GradCheckError {}

/// A function under test: builds its graph on `tape` from the input leaves and returns the output.
pub trait Graph: Fn(&mut Tape<f64>, &[Var]) -> Var {}
impl<F: Fn(&mut Tape<f64>, &[Var]) -> Var> Graph for F {}

impl GradCheck {
    /// f(inputs) with the tape's current parameters, computed without recording.
    fn forward(&self, tape: &mut Tape<f64>, inputs: &[Tensor<f64>], f: &impl Graph) -> Tensor<f64> {
        tape.reset();
        let vars: Vec<Var> = inputs.iter().map(|t| tape.constant(t.clone())).collect();
        let out = tape.no_grad(|t| f(t, &vars));
        let val = tape.value(out).clone();
        tape.reset();
        val
    }

    /// The projected output <R, f(inputs)> with the tape's current parameters, computed without recording.
    fn objective(&self, tape: &mut Tape<f64>, inputs: &[Tensor<f64>], r: &Tensor<f64>, f: &impl Graph) -> f64 {
        let val = self.forward(tape, inputs, f);
        val.data().iter().zip(r.data()).map(|(a, b)| a * b).sum()
    }

    /// The start of both checks: R, fixed from one forward at the unperturbed point (its shape is the
    /// output's), and the analytic gradients of <R, f> there (see [`GradCheck::analytic`]).
    fn projection_and_gradients(
        &self,
        tape: &mut Tape<f64>,
        inputs: &[Tensor<f64>],
        f: &impl Graph,
    ) -> (Tensor<f64>, Vec<Tensor<f64>>) {
        let r = projection(&self.forward(tape, inputs, f), self.seed);
        let grads = self.analytic(tape, inputs, &r, f);
        (r, grads)
    }

    /// Analytic gradients of <R, f>: one per input, and the parameters' (left in `tape.params`' gradients).
    fn analytic(
        &self,
        tape: &mut Tape<f64>,
        inputs: &[Tensor<f64>],
        r: &Tensor<f64>,
        f: &impl Graph,
    ) -> Vec<Tensor<f64>> {
        tape.reset();
        tape.params.zero_grad();
        let vars: Vec<Var> = inputs.iter().map(|t| tape.leaf(t.clone())).collect();
        let out = f(tape, &vars);
        let shape = tape.value(out).shape();
        assert_eq!(shape, r.shape(), "gradcheck: the output shape changed between calls");
        tape.backward_with(&mut [(out, r.clone())]);
        let grads = vars
            .iter()
            .zip(inputs)
            .map(|(&v, x)| tape.grad(v).cloned().unwrap_or_else(|| Tensor::zeros(x.shape())))
            .collect();
        tape.reset();
        grads
    }

    /// Checks every input element and every trainable parameter (up to `max_per_tensor` each).
    pub fn check(
        &self,
        name: &str,
        tape: &mut Tape<f64>,
        inputs: &[Tensor<f64>],
        f: impl Graph,
    ) -> Result<(), GradCheckError> {
        let (r, grads) = self.projection_and_gradients(tape, inputs, &f);
        let mut xs: Vec<Tensor<f64>> = inputs.to_vec();
        for (k, g) in grads.iter().enumerate() {
            for i in sample_indices(xs[k].numel(), self.max_per_tensor) {
                let x0 = xs[k].data()[i];
                xs[k].data_mut()[i] = x0 + self.eps;
                let fp = self.objective(tape, &xs, &r, &f);
                xs[k].data_mut()[i] = x0 - self.eps;
                let fm = self.objective(tape, &xs, &r, &f);
                xs[k].data_mut()[i] = x0;
                self.compare(name, Wrt::Input(k), i, g.data()[i], (fp - fm) / (2.0 * self.eps))?;
            }
        }
        let params: Vec<Param> = tape.params.ids().filter(|&p| tape.params.is_trainable(p)).collect();
        let pgrads: Vec<Tensor<f64>> = params.iter().map(|&p| tape.params.grad(p).clone()).collect();
        for (&p, g) in params.iter().zip(&pgrads) {
            for i in sample_indices(g.numel(), self.max_per_tensor) {
                let x0 = tape.params.value(p).data()[i];
                tape.params.value_mut(p).data_mut()[i] = x0 + self.eps;
                let fp = self.objective(tape, &xs, &r, &f);
                tape.params.value_mut(p).data_mut()[i] = x0 - self.eps;
                let fm = self.objective(tape, &xs, &r, &f);
                tape.params.value_mut(p).data_mut()[i] = x0;
                let numeric = (fp - fm) / (2.0 * self.eps);
                self.compare(name, Wrt::Param(tape.params.name(p).to_string()), i, g.data()[i], numeric)?;
            }
        }
        Ok(())
    }

    /// The fast mode: compares v^T (J u) (central difference along a random u over every input and trainable
    /// parameter) with (v^T J) u (backward). One pair of forwards whatever the size.
    pub fn check_fast(
        &self,
        name: &str,
        tape: &mut Tape<f64>,
        inputs: &[Tensor<f64>],
        f: impl Graph,
    ) -> Result<(), GradCheckError> {
        let (r, grads) = self.projection_and_gradients(tape, inputs, &f);
        let mut rng = Rng::new(self.seed ^ 0xfa57);
        let params: Vec<Param> = tape.params.ids().filter(|&p| tape.params.is_trainable(p)).collect();
        let us: Vec<Vec<f64>> = inputs.iter().map(|x| (0..x.numel()).map(|_| rng.normal()).collect()).collect();
        let ups: Vec<Vec<f64>> =
            params.iter().map(|&p| (0..tape.params.shape(p).numel()).map(|_| rng.normal()).collect()).collect();
        let mut analytic = 0.0;
        for (g, u) in grads.iter().zip(&us) {
            analytic += g.data().iter().zip(u).map(|(a, b)| a * b).sum::<f64>();
        }
        for (&p, u) in params.iter().zip(&ups) {
            analytic += tape.params.grad(p).data().iter().zip(u).map(|(a, b)| a * b).sum::<f64>();
        }
        let base_params: Vec<Tensor<f64>> = params.iter().map(|&p| tape.params.value(p).clone()).collect();
        let eval = |sign: f64, tape: &mut Tape<f64>| {
            let xs: Vec<Tensor<f64>> = inputs
                .iter()
                .zip(&us)
                .map(|(x, u)| {
                    let mut y = x.clone();
                    y.data_mut().iter_mut().zip(u).for_each(|(a, b)| *a += sign * self.eps * b);
                    y
                })
                .collect();
            for ((&p, u), base) in params.iter().zip(&ups).zip(&base_params) {
                let v = tape.params.value_mut(p);
                v.copy_from(base);
                v.data_mut().iter_mut().zip(u).for_each(|(a, b)| *a += sign * self.eps * b);
            }
            self.objective(tape, &xs, &r, &f)
        };
        let fp = eval(1.0, tape);
        let fm = eval(-1.0, tape);
        for (&p, base) in params.iter().zip(&base_params) {
            tape.params.value_mut(p).copy_from(base);
        }
        self.compare(name, Wrt::Direction, 0, analytic, (fp - fm) / (2.0 * self.eps))
    }

    fn compare(&self, name: &str, wrt: Wrt, index: usize, analytic: f64, numeric: f64) -> Result<(), GradCheckError> {
        let ok = (analytic - numeric).abs() <= self.atol + self.rtol * numeric.abs();
        if ok && analytic.is_finite() {
            Ok(())
        } else {
            Err(GradCheckError { name: name.to_string(), wrt, index, analytic, numeric })
        }
    }
}

/// Checks `f` with the default settings on a tape with no parameters.
pub fn gradcheck(name: &str, inputs: &[Tensor<f64>], f: impl Graph) -> Result<(), GradCheckError> {
    let mut tape = Tape::new(crate::ParamStore::new());
    GradCheck::default().check(name, &mut tape, inputs, f)
}

/// The gradient check of the bf16 path (the tape's products in [`Precision::Bf16`]), for inputs only.
///
/// Finite differences cannot see through bf16 rounding (a perturbation of 1e-6 is below half a bf16 ulp, so the
/// rounded function is flat there), so the check is in two parts:
/// 1. the f32 (here: exact f64) path passes the ordinary [`gradcheck`] against finite differences;
/// 2. the bf16 path's analytic gradient g_bf stays within the error that rounding the operands of its
///    `products` rounded products can cause, of the exact analytic gradient g, element by element.
///
/// The bound of part 2. bf16 keeps 8 significant bits, so rounding to nearest has unit roundoff u = 2^-8: a
/// rounded x is x (1 + d), |d| <= u. A product of two rounded operands is then ab (1 + d1)(1 + d2), off by at most
/// (2u + u^2) |ab|, so a sum of such products (summed in f64 here, whose own error is ~1e-16 relative) is off by
/// at most (2u + u^2) sum |a_i b_i|. A gradient that flows through `products` rounded products in sequence
/// (forward products whose results it depends on, and the backward products) is off, to first order, by at most
/// `products` (2u + u^2) times the same gradient computed with every term replaced by its absolute value:
/// the analytic gradient, on the exact path, of the graph at |inputs| projected on |R|. For a bilinear graph (a
/// linear layer, a matmul) that is the exact bound. A softmax's Jacobian does not follow absolute values (the
/// graph at |inputs| says nothing of the gradient at the inputs), so there the magnitude of each element is
/// taken norm-wise: the larger of that and the tensor's largest exact gradient (a first-order estimate).
pub fn gradcheck_bf16(
    name: &str,
    inputs: &[Tensor<f64>],
    products: usize,
    f: impl Graph,
) -> Result<(), GradCheckError> {
    gradcheck(name, inputs, &f)?;
    let check = GradCheck::default();
    let mut tape = Tape::new(crate::ParamStore::new());
    let r = projection(&check.forward(&mut tape, inputs, &f), check.seed);
    let exact = check.analytic(&mut tape, inputs, &r, &f);
    let abs = |ts: &[Tensor<f64>]| -> Vec<Tensor<f64>> {
        ts.iter()
            .map(|t| {
                let mut a = t.clone();
                a.data_mut().iter_mut().for_each(|x| *x = x.abs());
                a
            })
            .collect()
    };
    let magnitude = check.analytic(&mut tape, &abs(inputs), &abs(std::slice::from_ref(&r))[0], &f);
    tape.set_precision(Precision::Bf16);
    let bf16 = check.analytic(&mut tape, inputs, &r, &f);
    let u = 2f64.powi(-8);
    for (k, ((g, gb), m)) in exact.iter().zip(&bf16).zip(&magnitude).enumerate() {
        let largest = g.data().iter().fold(0.0f64, |a, x| a.max(x.abs()));
        for (i, ((&g, &gb), &m)) in g.data().iter().zip(gb.data()).zip(m.data()).enumerate() {
            let bound = products as f64 * (2.0 * u + u * u) * m.abs().max(largest) + 1e-12;
            if (gb - g).abs() > bound || !gb.is_finite() {
                let name = format!("{name} (bf16: |g_bf16 - g| <= {bound:.3e})");
                return Err(GradCheckError { name, wrt: Wrt::Input(k), index: i, analytic: gb, numeric: g });
            }
        }
    }
    Ok(())
}

/// The number of cases for the gradient property tests: 64 (the CI budget), or `PROPTEST_CASES` when it is set
/// higher. Use it as `ProptestConfig::with_cases(proptest_cases())`: a plain `with_cases(64)` would ignore the
/// environment variable, which proptest reads only into its default configuration.
pub fn proptest_cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|s| s.trim().parse().ok()).map_or(64, |n: u32| n.max(64))
}

/// A fixed random projection with the output's shape.
fn projection(like: &Tensor<f64>, seed: u64) -> Tensor<f64> {
    let mut rng = Rng::new(seed);
    let mut r = Tensor::uninit(like.shape());
    rng.fill_normal(r.data_mut(), 1.0);
    r
}

/// Up to `max` indices spread evenly over 0..n (all of them when n <= max).
fn sample_indices(n: usize, max: usize) -> Vec<usize> {
    if n <= max {
        (0..n).collect()
    } else {
        (0..max).map(|i| i * n / max).collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::op::Op;
    use crate::tape::Ctx;
    use crate::ParamStore;

    /// The negative control: z = s a with a backward that multiplies the gradient of element `index` (or of
    /// every element, when `None`) by `factor`. If the checker accepts this, it proves nothing.
    #[derive(Clone, Copy, Debug)]
    pub struct WrongScale {
        s: f64,
        factor: f64,
        index: Option<usize>,
    }

    impl WrongScale {
        pub fn backward<E: loopgrad_tensor::Float>(&self, ctx: &mut Ctx<'_, E>) {
            let g = ctx.gout.data();
            let Some(d) = ctx.grad(0) else { return };
            for (i, (d, &g)) in d.iter_mut().zip(g).enumerate() {
                let wrong = self.index.is_none_or(|j| j == i);
                *d += E::from_f64(self.s * if wrong { self.factor } else { 1.0 }) * g;
            }
        }

        fn apply(self, tape: &mut Tape<f64>, a: Var) -> Var {
            let mut out = tape.value(a).clone();
            out.data_mut().iter_mut().for_each(|x| *x *= self.s);
            tape.push_op(Op::WrongScale(self), &[a], out, [], &[])
        }
    }

    fn input() -> Tensor<f64> {
        Tensor::from_vec(vec![0.3, -1.2, 0.7, 2.0, -0.4], [5])
    }

    #[test]
    fn rejects_a_backward_wrong_in_one_element_and_says_where() {
        let bad = WrongScale { s: 1.5, factor: 1.01, index: Some(3) };
        let err = gradcheck("wrong_scale", &[input()], |t, x| bad.apply(t, x[0])).unwrap_err();
        assert_eq!((err.name.as_str(), &err.wrt, err.index), ("wrong_scale", &Wrt::Input(0), 3));
        assert!((err.analytic / err.numeric - 1.01).abs() < 1e-6, "{err}");
        let msg = err.to_string();
        assert!(msg.starts_with("gradcheck wrong_scale: d/d input 0 [3]: analytic "), "{msg}");
        assert!(msg.contains(&format!("{:.10e}", err.analytic)) && msg.contains(&format!("{:.10e}", err.numeric)));
    }

    #[test]
    fn accepts_the_same_op_with_a_correct_backward() {
        let good = WrongScale { s: 1.5, factor: 1.0, index: None };
        gradcheck("scale", &[input()], |t, x| good.apply(t, x[0])).unwrap();
        GradCheck::default()
            .check_fast("scale", &mut Tape::new(ParamStore::new()), &[input()], |t, x| good.apply(t, x[0]))
            .unwrap();
    }

    #[test]
    fn fast_mode_accepts_correct_ops_and_rejects_the_wrong_one() {
        let mut params = ParamStore::new();
        let w = params.add("w", Tensor::from_vec(vec![0.5, -0.25, 1.0, 0.75, -1.5, 0.1, 0.2, 0.3, -0.6, 1.1], [2, 5]));
        let mut tape = Tape::new(params);
        let x = Tensor::from_vec((0..15).map(|i| (i as f64 * 0.37).sin()).collect(), [3, 5]);
        let net = |t: &mut Tape<f64>, v: &[Var]| {
            let w = t.param(w);
            let y = t.linear(v[0], w, None);
            t.mul(y, y)
        };
        GradCheck::default().check_fast("linear*linear", &mut tape, std::slice::from_ref(&x), net).unwrap();
        GradCheck::default().check("linear*linear", &mut tape, std::slice::from_ref(&x), net).unwrap();
        // The wrong backward in the middle of the same graph: the directional derivative disagrees.
        let bad = WrongScale { s: 2.0, factor: 1.5, index: None };
        let err = GradCheck::default()
            .check_fast("linear*wrong", &mut tape, &[x], |t, v| {
                let w = t.param(w);
                let y = t.linear(v[0], w, None);
                let z = bad.apply(t, y);
                t.mul(z, y)
            })
            .unwrap_err();
        assert_eq!(err.wrt, Wrt::Direction);
        assert!(err.to_string().contains("a random direction"), "{err}");
    }

    #[test]
    fn rejects_a_wrong_parameter_gradient_and_names_the_parameter() {
        let mut params = ParamStore::new();
        let p = params.add("layer.weight", input());
        let mut tape = Tape::new(params);
        let bad = WrongScale { s: -0.5, factor: 0.9, index: Some(0) };
        let err =
            GradCheck::default().check("wrong_scale", &mut tape, &[], |t, _| bad.apply(t, t.param(p))).unwrap_err();
        assert_eq!((err.wrt.clone(), err.index), (Wrt::Param("layer.weight".into()), 0));
    }
}
