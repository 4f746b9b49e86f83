//! Softmax over the last dimension with a backward pass.
//!
//! candle-nn 0.11.1's fused `softmax_last_dim` has no backward pass, and the composed
//! `candle_nn::ops::softmax` keeps several tensors of the input's size alive for the
//! backward pass (the exponentials, their sums, the quotient). Attention scores are the
//! largest tensors of the transformer (`[B, heads, L, L]`), so this op keeps only its
//! output: forward `y = exp(x - max) / sum`, backward `dx = y * (dy - sum(dy * y))`, row
//! by row in parallel.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::{slice, with_slice};

/// Rows per rayon task.
const ROWS: usize = 64;

/// The op (stateless).
pub(crate) struct Softmax;

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        "l2m-softmax-last-dim"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = slice(s, l)?;
        let n = l.dims().last().copied().unwrap_or(1).max(1);
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(ROWS * n)
            .zip(x.par_chunks(ROWS * n))
            .for_each(|(y, x)| {
                for (y, x) in y.chunks_mut(n).zip(x.chunks(n)) {
                    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let mut sum = 0f32;
                    for (y, &x) in y.iter_mut().zip(x) {
                        *y = super::exp(x - max);
                        sum += *y;
                    }
                    let inv = 1.0 / sum;
                    y.iter_mut().for_each(|y| *y *= inv);
                }
            });
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let n = arg.dims().last().copied().unwrap_or(1).max(1);
        let dx = with_slice(res, |y| {
            with_slice(grad, |g| {
                let mut dx = vec![0f32; y.len()];
                dx.par_chunks_mut(ROWS * n)
                    .zip(y.par_chunks(ROWS * n).zip(g.par_chunks(ROWS * n)))
                    .for_each(|(dx, (y, g))| {
                        for (dx, (y, g)) in dx.chunks_mut(n).zip(y.chunks(n).zip(g.chunks(n))) {
                            let dot: f32 = y.iter().zip(g).map(|(y, g)| y * g).sum();
                            for (d, (y, g)) in dx.iter_mut().zip(y.iter().zip(g)) {
                                *d = y * (g - dot);
                            }
                        }
                    });
                Ok(dx)
            })
        })?;
        Ok(Some(Tensor::from_vec(dx, arg.shape(), arg.device())?))
    }
}

/// Softmax over the last dimension of `x`: this op on the CPU for `f32`, Candle's
/// composed softmax elsewhere.
pub(crate) fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    if super::applies(x) {
        x.contiguous()?.apply_op1(Softmax)
    } else {
        candle_nn::ops::softmax(x, candle_core::D::Minus1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{grads_of_weighted_sum, max_rel_diff};
    use candle_core::{D, Device, Var};
    use rand::{Rng, SeedableRng};

    /// Forward and gradient against candle-nn's composed softmax, on odd shapes, with
    /// rows of large negative scores (the attention mask) included. Tolerance: relative
    /// 1e-6 on values, 1e-5 on gradients.
    #[test]
    fn agrees_with_candle_forward_and_gradient() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for dims in [
            vec![7usize, 5],
            vec![2, 3, 67, 129],
            vec![1, 1],
            vec![130, 3],
        ] {
            let n: usize = dims.iter().product();
            let mut v: Vec<f32> = (0..n).map(|_| rng.random::<f32>() * 8.0 - 4.0).collect();
            let last = *dims.last().expect("rank");
            for row in v.chunks_mut(last).step_by(3) {
                row[0] = -1e9;
            }
            let x = Var::from_vec(v, dims.as_slice(), &Device::Cpu).expect("x");
            let w = Tensor::from_vec(
                (0..n)
                    .map(|_| rng.random::<f32>() - 0.5)
                    .collect::<Vec<_>>(),
                dims.as_slice(),
                &Device::Cpu,
            )
            .expect("w");
            let ours = softmax_last_dim(x.as_tensor()).expect("ours");
            let theirs = candle_nn::ops::softmax(x.as_tensor(), D::Minus1).expect("theirs");
            // Values lie in [0, 1] and some row reaches 1/last or more, so a relative 1e-6
            // is at most 1e-6 absolute.
            let d = max_rel_diff(&ours, &theirs);
            assert!(d < 1e-6, "forward {dims:?}: {d}");
            let g1 = grads_of_weighted_sum(&ours, &w);
            let g2 = grads_of_weighted_sum(&theirs, &w);
            let d = max_rel_diff(
                g1.get(&x).expect("ours has a gradient"),
                g2.get(&x).expect("candle has a gradient"),
            );
            assert!(d < 1e-5, "gradient {dims:?}: {d}");
        }
    }
}
