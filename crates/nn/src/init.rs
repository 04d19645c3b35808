//! Parameter initialisation as in the TRM/HRM reference code.
//!
//! Every random weight there comes from `trunc_normal_init_`: a normal cut at +-2 sigma and rescaled so that the
//! *result* has the requested standard deviation (the cut alone would shrink it by a factor 0.8796).
//! [`Rng::fill_trunc_normal`] draws exactly that distribution. Linear layers use LeCun scaling, std
//! 1/sqrt(fan_in); token embeddings use std 1/sqrt(D); the carry init vectors use std 1.
//!
//! The functions draw in row-major order from the given [`Rng`], so a model built twice from the same seed gets
//! the same weights bit for bit.

use loopgrad_tensor::{Float, Rng, Shape, Tensor};

/// A tensor of `shape` filled with truncated-normal samples of standard deviation `std` (see the module doc).
pub fn trunc_normal<E: Float>(rng: &mut Rng, shape: impl Into<Shape>, std: f64) -> Tensor<E> {
    let mut t = Tensor::uninit(shape);
    rng.fill_trunc_normal(t.data_mut(), std);
    t
}

/// A Linear weight of shape [out_features, in_features] (PyTorch layout), truncated normal with LeCun std
/// 1/sqrt(in_features), as TRM's `CastedLinear`.
pub fn lecun_linear<E: Float>(rng: &mut Rng, out_features: usize, in_features: usize) -> Tensor<E> {
    assert!(in_features > 0, "lecun_linear: in_features must be positive (out_features {out_features})");
    trunc_normal(rng, [out_features, in_features], 1.0 / (in_features as f64).sqrt())
}

/// An embedding table of shape [vocab, dim], truncated normal with standard deviation `std` (TRM's
/// `CastedEmbedding` uses std 1/sqrt(dim) for the token embedding).
pub fn embedding_init<E: Float>(rng: &mut Rng, vocab: usize, dim: usize, std: f64) -> Tensor<E> {
    trunc_normal(rng, [vocab, dim], std)
}

/// A tensor of zeros (the puzzle-embedding table and the q_head weight start at zero). Draws nothing from the
/// RNG, so adding a zero-initialised parameter does not shift the stream of the ones after it.
pub fn zeros<E: Float>(shape: impl Into<Shape>) -> Tensor<E> {
    Tensor::zeros(shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean_std(xs: &[f64]) -> (f64, f64) {
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        (mean, var.sqrt())
    }

    #[test]
    fn lecun_linear_has_pytorch_layout_lecun_std_and_two_sigma_support() {
        let w: Tensor<f32> = lecun_linear(&mut Rng::new(0), 256, 400);
        assert_eq!(w.dims(), &[256, 400]);
        let xs: Vec<f64> = w.data().iter().map(|&x| x as f64).collect();
        let (mean, std) = mean_std(&xs);
        assert!(mean.abs() < 2e-3, "mean {mean}");
        assert!((std - 0.05).abs() < 1e-3, "std {std}, want 1/sqrt(400) = 0.05");
        // The cut is at 2 sigma of the underlying normal, which is rescaled by 1/0.8796 to reach the std.
        let bound = 2.0 * 0.05 / 0.879_625_661_034_239_8;
        assert!(xs.iter().all(|x| x.abs() <= bound + 1e-6));
        assert!(xs.iter().any(|x| x.abs() > 0.9 * bound), "the tails up to the cut must be reached");
    }

    #[test]
    fn embedding_init_uses_the_given_std_and_same_seed_gives_same_weights() {
        let a: Tensor<f64> = embedding_init(&mut Rng::new(5), 100, 64, 0.125);
        let b: Tensor<f64> = embedding_init(&mut Rng::new(5), 100, 64, 0.125);
        assert_eq!(a, b);
        let (_, std) = mean_std(a.data());
        assert!((std - 0.125).abs() < 5e-3, "std {std}");
        assert_ne!(a, embedding_init(&mut Rng::new(6), 100, 64, 0.125));
    }

    #[test]
    fn zeros_is_zero_filled_with_the_given_shape() {
        let z: Tensor<f32> = zeros([3, 4]);
        assert!(z.data().iter().all(|&x| x == 0.0));
        assert_eq!(z.dims(), &[3, 4]);
    }
}
