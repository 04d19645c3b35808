//! The statistics of the study's report: mean and sample standard deviation, the 95% Student t confidence
//! interval of a mean, Welch's unequal-variance t-test (Welch–Satterthwaite degrees of freedom), the paired
//! t-test, and a percentile bootstrap interval with a seeded generator.
//!
//! The Student t distribution needs the regularized incomplete beta function I_x(a, b):
//!
//! ```text
//! P(|T| > |t|) for T ~ t(df)  =  I_{df / (df + t^2)}(df / 2, 1 / 2)
//! ```
//!
//! computed here by its continued fraction (modified Lentz), as in Numerical Recipes' `betacf`, with ln Γ by
//! the Lanczos approximation. It is written by hand rather than taken from `statrs`, which would bring in
//! `nalgebra` and its build for these few functions. The tests compare every function with values scipy
//! computed once (`fixtures/stats.py`, which writes `fixtures/stats.json`, with the command in its header).

use loopgrad_tensor::Rng;

/// A two-sided interval [lo, hi].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    pub lo: f64,
    pub hi: f64,
}

/// A t-test's statistic, degrees of freedom and two-sided p-value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TTest {
    pub t: f64,
    pub df: f64,
    pub p: f64,
}

/// The arithmetic mean (NaN for no values).
pub fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// The sample standard deviation (n - 1 in the denominator); None for fewer than 2 values.
pub fn sample_sd(xs: &[f64]) -> Option<f64> {
    (xs.len() > 1).then(|| sample_var(xs).sqrt())
}

fn sample_var(xs: &[f64]) -> f64 {
    let m = mean(xs);
    xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() - 1) as f64
}

/// The Student t confidence interval of the mean at `level` (0.95 for 95%): mean ± t_{(1+level)/2, n-1} s / √n.
/// None for fewer than 2 values.
pub fn t_interval(xs: &[f64], level: f64) -> Option<Interval> {
    t_interval_from_moments(xs.len(), mean(xs), sample_sd(xs)?, level)
}

/// Welch's t-test of mean(a) - mean(b), variances not assumed equal, with the Welch–Satterthwaite degrees of
/// freedom: df = (va/na + vb/nb)^2 / ((va/na)^2/(na-1) + (vb/nb)^2/(nb-1)). None unless both samples have 2
/// values or more. When both samples are constant the standard error is 0: equal means give t = 0 and p = 1,
/// different means t = ±inf and p = 0 (the limit of any spread shrinking to nothing), with df = na + nb - 2.
pub fn welch(a: &[f64], b: &[f64]) -> Option<TTest> {
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    welch_from_moments((a.len(), mean(a), sample_var(a)), (b.len(), mean(b), sample_var(b)))
}

/// [`welch`] from each sample's (count, mean, sample variance), as a report that keeps only those has them.
/// None unless both counts are 2 or more.
pub fn welch_from_moments((na, ma, va): (usize, f64, f64), (nb, mb, vb): (usize, f64, f64)) -> Option<TTest> {
    if na < 2 || nb < 2 {
        return None;
    }
    let (na, nb) = (na as f64, nb as f64);
    let (ua, ub) = (va / na, vb / nb);
    let diff = ma - mb;
    let se2 = ua + ub;
    if se2 == 0.0 {
        return Some(degenerate(diff, na + nb - 2.0));
    }
    let df = se2 * se2 / (ua * ua / (na - 1.0) + ub * ub / (nb - 1.0));
    let t = diff / se2.sqrt();
    Some(TTest { t, df, p: two_sided_p(t, df) })
}

/// The Student t interval at `level` from (count, mean, sample standard deviation); None below 2 values.
pub fn t_interval_from_moments(n: usize, mean: f64, sd: f64, level: f64) -> Option<Interval> {
    if n < 2 {
        return None;
    }
    let half = t_quantile((1.0 + level) / 2.0, (n - 1) as f64) * sd / (n as f64).sqrt();
    Some(Interval { lo: mean - half, hi: mean + half })
}

/// The paired t-test of mean(a - b) = 0 over pairs (a[i], b[i]), df = n - 1. None for fewer than 2 pairs; a
/// constant difference is treated as in [`welch`]. Panics if the samples differ in length.
pub fn paired(a: &[f64], b: &[f64]) -> Option<TTest> {
    assert_eq!(a.len(), b.len(), "stats::paired: samples of {} and {} values", a.len(), b.len());
    if a.len() < 2 {
        return None;
    }
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let n = d.len() as f64;
    let se = (sample_var(&d) / n).sqrt();
    if se == 0.0 {
        return Some(degenerate(mean(&d), n - 1.0));
    }
    let t = mean(&d) / se;
    Some(TTest { t, df: n - 1.0, p: two_sided_p(t, n - 1.0) })
}

fn degenerate(diff: f64, df: f64) -> TTest {
    if diff == 0.0 {
        TTest { t: 0.0, df, p: 1.0 }
    } else {
        TTest { t: diff.signum() * f64::INFINITY, df, p: 0.0 }
    }
}

/// Holm's step-down adjustment of a family of p-values, returned in the input's order: sorted ascending, the i-th
/// smallest (from 0) is multiplied by m - i, each adjusted value is raised to the largest before it (so the order
/// of the p-values is kept) and capped at 1. An adjusted p below 0.05 rejects at a family-wise error rate of 5%,
/// whatever the dependence between the tests (Holm 1979), and never less often than Bonferroni's m p.
pub fn holm(ps: &[f64]) -> Vec<f64> {
    let m = ps.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| ps[a].total_cmp(&ps[b]));
    let mut adjusted = vec![0.0; m];
    let mut running = 0.0f64;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((m - rank) as f64 * ps[i]).min(1.0));
        adjusted[i] = running;
    }
    adjusted
}

/// The percentile bootstrap interval of the mean at `level`: `resamples` resamples with replacement drawn from
/// `Rng::new(seed)`, their means sorted, and the (1-level)/2 and (1+level)/2 quantiles read with linear
/// interpolation between order statistics. None for no values or no resamples.
pub fn bootstrap_mean_interval(xs: &[f64], level: f64, resamples: usize, seed: u64) -> Option<Interval> {
    if xs.is_empty() || resamples == 0 {
        return None;
    }
    let mut rng = Rng::new(seed);
    let mut means: Vec<f64> =
        (0..resamples).map(|_| (0..xs.len()).map(|_| xs[rng.below(xs.len())]).sum::<f64>() / xs.len() as f64).collect();
    means.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let pos = q * (means.len() - 1) as f64;
        let (i, frac) = (pos.floor() as usize, pos - pos.floor());
        let next = means[(i + 1).min(means.len() - 1)];
        means[i] + frac * (next - means[i])
    };
    Some(Interval { lo: at((1.0 - level) / 2.0), hi: at((1.0 + level) / 2.0) })
}

/// P(|T| >= |t|) for T ~ Student t with `df` degrees of freedom.
pub fn two_sided_p(t: f64, df: f64) -> f64 {
    if t.is_infinite() {
        return 0.0;
    }
    incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
}

/// P(T <= t) for T ~ Student t with `df` (> 0, possibly fractional) degrees of freedom.
pub fn t_cdf(t: f64, df: f64) -> f64 {
    let tail = two_sided_p(t, df) / 2.0;
    if t > 0.0 {
        1.0 - tail
    } else {
        tail
    }
}

/// The `p`-quantile of Student t with `df` degrees of freedom, for 0 < p < 1: the cdf inverted by bisection
/// (monotone, so bisection to the last representable bit is exact enough and cannot diverge).
pub fn t_quantile(p: f64, df: f64) -> f64 {
    assert!(p > 0.0 && p < 1.0 && df > 0.0, "stats::t_quantile: p {p} must be in (0, 1) and df {df} positive");
    let (mut lo, mut hi) = (-1.0, 1.0);
    while t_cdf(lo, df) > p {
        lo *= 2.0;
    }
    while t_cdf(hi, df) < p {
        hi *= 2.0;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid == lo || mid == hi {
            break;
        }
        if t_cdf(mid, df) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// The regularized incomplete beta function I_x(a, b) for a, b > 0 and 0 <= x <= 1.
pub fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    assert!(a > 0.0 && b > 0.0, "stats::incomplete_beta: a {a} and b {b} must be positive");
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    // x^a (1-x)^b / (a B(a, b)), the prefactor of the continued fraction.
    let front = (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (-x).ln_1p()).exp();
    // The fraction converges fast for x < (a + 1) / (a + b + 2); above it, use I_x(a, b) = 1 - I_{1-x}(b, a).
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_fraction(a, b, x) / a
    } else {
        1.0 - front * beta_fraction(b, a, 1.0 - x) / b
    }
}

/// The continued fraction of I_x(a, b) (Numerical Recipes 6.4), evaluated by the modified Lentz method: each
/// term multiplies h by the ratio of successive convergents, C_m D_m, with tiny numbers standing in for zeros.
fn beta_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    const EPS: f64 = 1e-16;
    let guard = |v: f64| if v.abs() < TINY { TINY } else { v };
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 / guard(1.0 - qab * x / qap);
    let mut h = d;
    for m in 1..=10_000 {
        let m = m as f64;
        let m2 = 2.0 * m;
        // The even term d_{2m} = m (b - m) x / ((a + 2m - 1)(a + 2m)).
        let even = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 / guard(1.0 + even * d);
        c = guard(1.0 + even / c);
        h *= d * c;
        // The odd term d_{2m+1} = -(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1)).
        let odd = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 / guard(1.0 + odd * d);
        c = guard(1.0 + odd / c);
        let step = d * c;
        h *= step;
        if (step - 1.0).abs() < EPS {
            break;
        }
    }
    h
}

/// ln Γ(x) for x > 0: the Lanczos approximation (g = 7, 9 terms), relative error near 1e-15, with the
/// reflection Γ(x) Γ(1-x) = π / sin(πx) below 1/2.
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const COEF: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = COEF[0];
    for (i, &c) in COEF.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn fixtures() -> Value {
        serde_json::from_str(include_str!("fixtures/stats.json")).unwrap()
    }

    fn f(v: &Value) -> f64 {
        v.as_f64().unwrap()
    }

    fn close(got: f64, want: f64, rel: f64, what: &str) {
        let err = (got - want).abs() / want.abs().max(1e-300);
        assert!(err <= rel || (got - want).abs() < 1e-300, "{what}: got {got:e}, scipy {want:e} (rel {err:e})");
    }

    fn sample(fx: &Value, name: &str) -> Vec<f64> {
        fx["samples"][name].as_array().unwrap().iter().map(f).collect()
    }

    #[test]
    fn incomplete_beta_and_the_t_distribution_match_scipy() {
        let fx = fixtures();
        for c in fx["betainc"].as_array().unwrap() {
            let (a, b, x) = (f(&c["a"]), f(&c["b"]), f(&c["x"]));
            close(incomplete_beta(a, b, x), f(&c["value"]), 1e-12, &format!("I_{x}({a}, {b})"));
        }
        for c in fx["t_cdf"].as_array().unwrap() {
            let (t, df) = (f(&c["t"]), f(&c["df"]));
            close(t_cdf(t, df), f(&c["value"]), 1e-12, &format!("t_cdf({t}, {df})"));
        }
        for c in fx["t_crit"].as_array().unwrap() {
            let df = f(&c["df"]);
            close(t_quantile(0.975, df), f(&c["value"]), 1e-12, &format!("t_0.975({df})"));
        }
        assert_eq!(incomplete_beta(2.0, 3.0, 0.0), 0.0);
        assert_eq!(incomplete_beta(2.0, 3.0, 1.0), 1.0);
    }

    #[test]
    fn intervals_and_tests_match_scipy() {
        let fx = fixtures();
        for c in fx["interval"].as_array().unwrap() {
            let name = c["sample"].as_str().unwrap();
            let xs = sample(&fx, name);
            close(mean(&xs), f(&c["mean"]), 1e-14, name);
            close(sample_sd(&xs).unwrap(), f(&c["sd"]), 1e-13, name);
            let ci = t_interval(&xs, 0.95).unwrap();
            close(ci.lo, f(&c["lo"]), 1e-12, &format!("{name} lo"));
            close(ci.hi, f(&c["hi"]), 1e-12, &format!("{name} hi"));
        }
        for (kind, test) in [("welch", welch as fn(&[f64], &[f64]) -> Option<TTest>), ("paired", paired)] {
            for c in fx[kind].as_array().unwrap() {
                let (a, b) = (c["a"].as_str().unwrap(), c["b"].as_str().unwrap());
                let r = test(&sample(&fx, a), &sample(&fx, b)).unwrap();
                let what = format!("{kind}({a}, {b})");
                close(r.t, f(&c["t"]), 1e-12, &format!("{what} t"));
                close(r.df, f(&c["df"]), 1e-12, &format!("{what} df"));
                close(r.p, f(&c["p"]), 1e-10, &format!("{what} p"));
            }
        }
    }

    #[test]
    fn degenerate_samples_have_defined_answers() {
        assert_eq!(sample_sd(&[0.3]), None);
        assert_eq!(t_interval(&[0.3], 0.95), None);
        assert_eq!(welch(&[0.1, 0.2], &[0.3]), None);
        // Every seed at 0% in both conditions: no difference, p = 1.
        assert_eq!(welch(&[0.0; 5], &[0.0; 5]).unwrap().p, 1.0);
        assert_eq!(welch(&[1.0; 3], &[0.0; 3]).unwrap().p, 0.0);
        assert_eq!(paired(&[0.5, 0.6], &[0.4, 0.5]).unwrap().p, 0.0);
        let ci = t_interval(&[0.2; 4], 0.95).unwrap();
        assert_eq!((ci.lo, ci.hi), (0.2, 0.2));
    }

    #[test]
    fn holm_matches_statsmodels() {
        // Every `want` is statsmodels' (0.15.0): `multipletests(ps, method="holm")[1]` from
        // `statsmodels.stats.multitest`. By hand: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 gives 0.02,
        // 0.03, 0.06, 0.04, and the last is raised to the 0.06 before it.
        let got = holm(&[0.01, 0.04, 0.03, 0.005]);
        let want = [0.03, 0.06, 0.06, 0.02];
        for (g, w) in got.iter().zip(want) {
            close(*g, w, 1e-15, "holm");
        }
        // Stage 2's three comparisons between nets: only the smallest stays below 0.05.
        let got = holm(&[0.00043, 0.097, 0.039]);
        for (g, w) in got.iter().zip([0.00129, 0.097, 0.078]) {
            close(*g, w, 1e-15, "holm, stage 2");
        }
        assert_eq!(holm(&[0.6, 0.7]), vec![1.0, 1.0], "capped at 1");
        assert_eq!(holm(&[0.02]), vec![0.02], "a family of one is its own p");
        assert!(holm(&[]).is_empty());
    }

    #[test]
    fn bootstrap_interval_is_seeded_and_brackets_the_mean() {
        let xs = [0.34, 0.252, 0.212, 0.298, 0.276, 0.31, 0.25];
        let a = bootstrap_mean_interval(&xs, 0.95, 4000, 7).unwrap();
        assert_eq!(a, bootstrap_mean_interval(&xs, 0.95, 4000, 7).unwrap(), "same seed, same interval");
        assert_ne!(a, bootstrap_mean_interval(&xs, 0.95, 4000, 8).unwrap());
        let m = mean(&xs);
        assert!(a.lo < m && m < a.hi, "{a:?} around {m}");
        // Percentile bootstrap intervals are narrower than t intervals at small n (they ignore the t tails) but
        // of the same scale: the resampled mean's spread is sd * sqrt((n-1)/n) / sqrt(n).
        let t = t_interval(&xs, 0.95).unwrap();
        let (wb, wt) = (a.hi - a.lo, t.hi - t.lo);
        assert!(wb < wt && wb > 0.5 * wt, "bootstrap {wb} vs t {wt}");
        // Within the data's range, and a constant sample has a zero-width interval.
        assert!(a.lo >= 0.212 && a.hi <= 0.34);
        let c = bootstrap_mean_interval(&[0.5; 6], 0.95, 100, 1).unwrap();
        assert_eq!((c.lo, c.hi), (0.5, 0.5));
        assert_eq!(bootstrap_mean_interval(&[], 0.95, 100, 1), None);
    }

    #[test]
    fn ln_gamma_matches_factorials() {
        let mut fact = 1.0f64;
        for n in 1..20 {
            close(ln_gamma(n as f64).exp(), fact, 1e-13, &format!("Γ({n})"));
            fact *= n as f64;
        }
        close(ln_gamma(0.5).exp(), std::f64::consts::PI.sqrt(), 1e-14, "Γ(1/2)");
        close(ln_gamma(0.1).exp(), 9.513_507_698_668_732, 1e-13, "Γ(0.1)");
    }
}
