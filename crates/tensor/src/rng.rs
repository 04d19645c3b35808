//! A seeded RNG (xoshiro256**, seeded through SplitMix64): the same seed gives the same numbers on every machine.

use crate::float::Float;
use serde::{Deserialize, Serialize};

/// xoshiro256** with helpers for the distributions loopgrad needs. The state is plain data, so it can be
/// saved in a checkpoint and a resumed run continues with the same numbers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rng {
    s: [u64; 4],
}

fn splitmix64(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        Rng { s: [splitmix64(&mut x), splitmix64(&mut x), splitmix64(&mut x), splitmix64(&mut x)] }
    }

    /// An independent stream derived from this one's seed material and `stream` (for per-worker RNGs).
    pub fn fork(&self, stream: u64) -> Rng {
        Rng::new(self.s[0] ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03))
    }

    pub fn state(&self) -> [u64; 4] {
        self.s
    }

    pub fn from_state(s: [u64; 4]) -> Self {
        Rng { s }
    }

    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [lo, hi).
    pub fn uniform_in(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Uniform integer in [0, n), without modulo bias (Lemire's method). Panics if n == 0.
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "Rng::below: n must be positive");
        let n = n as u64;
        loop {
            let m = (self.next_u64() as u128) * (n as u128);
            let lo = m as u64;
            if lo >= n || lo >= n.wrapping_neg() % n {
                return (m >> 64) as usize;
            }
        }
    }

    /// True with probability p.
    pub fn bernoulli(&mut self, p: f64) -> bool {
        self.uniform() < p
    }

    /// Standard normal (Box-Muller; one draw per call so the stream does not depend on call parity).
    pub fn normal(&mut self) -> f64 {
        loop {
            let u1 = self.uniform();
            if u1 > 0.0 {
                let u2 = self.uniform();
                return (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            }
        }
    }

    /// Normal with standard deviation `std`, cut at +-2 sigma and rescaled so that the result has
    /// standard deviation `std` (the TRM/HRM `trunc_normal_init_`: a standard normal truncated to [-2, 2] has
    /// variance 0.7737..., so samples are divided by its square root).
    pub fn trunc_normal(&mut self, std: f64) -> f64 {
        // Std of N(0,1) truncated to [-2, 2]: sqrt(1 - 4 phi(2) / (Phi(2) - Phi(-2))).
        const TRUNC_STD: f64 = 0.879_625_661_034_239_8;
        loop {
            let x = self.normal();
            if (-2.0..=2.0).contains(&x) {
                return x * std / TRUNC_STD;
            }
        }
    }

    /// Fills `out` with normal samples of standard deviation `std`.
    pub fn fill_normal<E: Float>(&mut self, out: &mut [E], std: f64) {
        for x in out {
            *x = E::from_f64(self.normal() * std);
        }
    }

    /// Fills `out` with truncated-normal samples (see [`Rng::trunc_normal`]).
    pub fn fill_trunc_normal<E: Float>(&mut self, out: &mut [E], std: f64) {
        for x in out {
            *x = E::from_f64(self.trunc_normal(std));
        }
    }

    /// Fills `out` with uniform samples in [lo, hi).
    pub fn fill_uniform<E: Float>(&mut self, out: &mut [E], lo: f64, hi: f64) {
        for x in out {
            *x = E::from_f64(self.uniform_in(lo, hi));
        }
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, xs: &mut [T]) {
        for i in (1..xs.len()).rev() {
            let j = self.below(i + 1);
            xs.swap(i, j);
        }
    }

    /// A uniformly random permutation of 0..n.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        self.shuffle(&mut p);
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(Rng::new(7).next_u64(), Rng::new(8).next_u64());
    }

    #[test]
    fn trunc_normal_has_the_requested_std_and_support() {
        let mut r = Rng::new(1);
        let n = 200_000;
        let xs: Vec<f64> = (0..n).map(|_| r.trunc_normal(0.5)).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var.sqrt() - 0.5).abs() < 0.01, "std {}", var.sqrt());
        let bound = 2.0 * 0.5 / 0.879_625_661_034_239_8;
        assert!(xs.iter().all(|x| x.abs() <= bound + 1e-12));
    }

    #[test]
    fn below_is_in_range_and_permutation_is_a_permutation() {
        let mut r = Rng::new(3);
        for n in 1..50 {
            assert!(r.below(n) < n);
        }
        let mut p = r.permutation(100);
        p.sort_unstable();
        assert_eq!(p, (0..100).collect::<Vec<_>>());
    }
}
