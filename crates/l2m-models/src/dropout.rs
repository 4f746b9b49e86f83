//! Dropout with seeded masks.
//!
//! Candle's CPU random generator cannot be seeded, so `candle_nn::Dropout` would make two
//! runs with the same seed differ. Here every call draws its mask from ChaCha streams keyed
//! by `(seed, call number, chunk)`: masks are the same for the same seed whatever the
//! thread count, and chunks are filled in parallel.

use std::sync::atomic::{AtomicU64, Ordering};

use candle_core::Tensor;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::{ModelError, Result};

const CHUNK: usize = 1 << 16;

/// Inverted dropout: in training, each value is zeroed with probability `p` and the rest
/// scaled by `1 / (1 - p)`; in evaluation, the identity.
#[derive(Debug)]
pub struct SeededDropout {
    p: f32,
    seed: u64,
    calls: AtomicU64,
}

impl Clone for SeededDropout {
    fn clone(&self) -> Self {
        Self {
            p: self.p,
            seed: self.seed,
            calls: AtomicU64::new(self.calls.load(Ordering::Relaxed)),
        }
    }
}

impl SeededDropout {
    /// Dropout with probability `p` in [0, 1), masks from `seed`.
    pub fn new(p: f32, seed: u64) -> Result<Self> {
        if !(0.0..1.0).contains(&p) {
            return Err(ModelError::InvalidConfig(format!(
                "dropout probability must be in [0, 1), got {p}"
            )));
        }
        Ok(Self {
            p,
            seed,
            calls: AtomicU64::new(0),
        })
    }

    /// Number of masks drawn so far (saved with a checkpoint to resume the same masks).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Continues from `calls` masks drawn.
    pub fn set_calls(&self, calls: u64) {
        self.calls.store(calls, Ordering::Relaxed);
    }

    /// For a layer that applies this dropout itself (the fused attention): in training,
    /// the keep probability and the key of the next mask, counting the call as
    /// [`SeededDropout::forward`] does; `None` in evaluation or when `p` is 0.
    pub fn next_mask(&self, train: bool) -> Option<(f32, u64)> {
        if !train || self.p == 0.0 {
            return None;
        }
        let call = self.calls.fetch_add(1, Ordering::Relaxed);
        Some((1.0 - self.p, self.key(call)))
    }

    fn key(&self, call: u64) -> u64 {
        self.seed ^ call.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    /// Applies dropout when `train` is true.
    pub fn forward(&self, xs: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        if !train || self.p == 0.0 {
            return Ok(xs.clone());
        }
        let call = self.calls.fetch_add(1, Ordering::Relaxed);
        let n = xs.elem_count();
        let keep = 1.0 - self.p;
        let scale = 1.0 / keep;
        let mut mask = vec![0f32; n];
        mask.par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(chunk, out)| {
                let mut rng = ChaCha8Rng::seed_from_u64(self.key(call));
                rng.set_stream(chunk as u64);
                for v in out.iter_mut() {
                    *v = if rng.random::<f32>() < keep {
                        scale
                    } else {
                        0.0
                    };
                }
            });
        let mask = Tensor::from_vec(mask, xs.shape(), xs.device())?.to_dtype(xs.dtype())?;
        xs.mul(&mask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    #[test]
    fn seeded_masks_repeat_and_scale() {
        let x = Tensor::ones((300, 500), DType::F32, &Device::Cpu).expect("tensor");
        let a = SeededDropout::new(0.1, 7).expect("valid");
        let b = SeededDropout::new(0.1, 7).expect("valid");
        let ya = a.forward(&x, true).expect("forward");
        let yb = b.forward(&x, true).expect("forward");
        let va: Vec<f32> = ya.flatten_all().and_then(|t| t.to_vec1()).expect("vec");
        let vb: Vec<f32> = yb.flatten_all().and_then(|t| t.to_vec1()).expect("vec");
        assert_eq!(va, vb, "same seed, same masks");
        let zeros = va.iter().filter(|&&v| v == 0.0).count() as f64 / va.len() as f64;
        assert!((zeros - 0.1).abs() < 0.005, "dropped fraction {zeros}");
        assert!(va.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.9).abs() < 1e-6));
        let next: Vec<f32> = a
            .forward(&x, true)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1())
            .expect("vec");
        assert_ne!(next, va, "each call draws a new mask");
        let eval: Vec<f32> = a
            .forward(&x, false)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1())
            .expect("vec");
        assert!(eval.iter().all(|&v| v == 1.0));
        assert!(SeededDropout::new(1.0, 0).is_err());
    }
}
