//! Helpers shared by the kernels' tests: seeded random tensors, the gradients of a weighted
//! sum, and a relative difference.

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};

/// Values uniform in [-1, 1) of `shape`, from `seed`.
pub(crate) fn random(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).expect("tensor")
}

/// The largest absolute difference of `a` from the reference `r`, relative to the largest
/// reference value.
pub(crate) fn max_rel_diff(a: &Tensor, r: &Tensor) -> f32 {
    let a: Vec<f32> = a.flatten_all().and_then(|t| t.to_vec1()).expect("a");
    let r: Vec<f32> = r.flatten_all().and_then(|t| t.to_vec1()).expect("r");
    assert_eq!(a.len(), r.len());
    let scale = r.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    a.iter()
        .zip(&r)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs() / scale))
}

/// The gradients of `sum(y * weights)`: a loss that weighs every output differently.
pub(crate) fn grads_of_weighted_sum(y: &Tensor, weights: &Tensor) -> GradStore {
    (y * weights)
        .and_then(|t| t.sum_all())
        .and_then(|t| t.backward())
        .expect("backward")
}
