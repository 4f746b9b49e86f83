//! Differentiable operations with fast CPU kernels, for code outside the models (the
//! engine's losses).
//!
//! Each runs one Candle custom op with its own backward pass on the CPU for `f32` tensors,
//! and Candle's composed operations elsewhere; the tests compare the two.

use candle_core::{D, Tensor};

use crate::kernels;

/// The matrix product the CPU kernels use (AVX-512 where the CPU has it, the `gemm` crate
/// elsewhere), split over rayon's pool: `lhs [m, k]` times `rhs [k, n]`, both row-major,
/// into a new row-major `[m, n]`. Plain slices, no gradient: it is here for benchmarks
/// (`l2m-bench sgemm-peak`) and callers with their own buffers.
pub fn matmul_f32(
    lhs: &[f32],
    rhs: &[f32],
    (m, k, n): (usize, usize, usize),
) -> candle_core::Result<Vec<f32>> {
    kernels::product(lhs, rhs, (m, k, n))
}

/// Mean squared error per row: `output [n, ...]` and `target` with the same elements per
/// row give `[n]`, `mean over the row of (output - target)^2`.
pub fn row_mse(output: &Tensor, target: &Tensor) -> candle_core::Result<Tensor> {
    let n = output.dim(0)?;
    let output = output.flatten_from(1)?;
    let target = target.flatten_from(1)?;
    if output.dims() != target.dims() {
        return Err(candle_core::Error::ShapeMismatchBinaryOp {
            lhs: output.shape().clone(),
            rhs: target.shape().clone(),
            op: "row_mse",
        });
    }
    if kernels::applies(&output) && kernels::applies(&target) {
        let d = output.dim(1)?;
        output
            .contiguous()?
            .apply_op2(&target.contiguous()?, kernels::loss::RowMse { n, d })
    } else {
        output.sub(&target)?.sqr()?.mean(D::Minus1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};
    use rand::{Rng, SeedableRng};

    /// The row MSE kernel against `sub`, `sqr`, `mean`: values and both gradients, on odd
    /// sizes and a rank-4 target. Tolerance: relative 1e-5.
    #[test]
    fn row_mse_agrees_with_candle() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        for (n, shape) in [
            (5usize, vec![5usize, 7]),
            (67, vec![67, 1, 4, 5]),
            (1, vec![1, 1]),
        ] {
            let len: usize = shape.iter().product();
            let mut draw = || -> Vec<f32> { (0..len).map(|_| rng.random::<f32>()).collect() };
            let out = Var::from_vec(draw(), (n, len / n), &Device::Cpu).expect("out");
            let target = Var::from_vec(draw(), shape.as_slice(), &Device::Cpu).expect("t");
            let w = Tensor::from_vec(draw()[..n].to_vec(), n, &Device::Cpu).expect("w");
            let ours = row_mse(out.as_tensor(), target.as_tensor()).expect("ours");
            let theirs = out
                .as_tensor()
                .sub(&target.as_tensor().flatten_from(1).expect("flat"))
                .and_then(|d| d.sqr())
                .and_then(|d| d.mean(D::Minus1))
                .expect("theirs");
            let v = |t: &Tensor| -> Vec<f32> {
                t.flatten_all().and_then(|t| t.to_vec1()).expect("vec")
            };
            let close = |a: &[f32], b: &[f32]| {
                let scale = b.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
                a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-5 * scale)
            };
            assert!(close(&v(&ours), &v(&theirs)), "values, n = {n}");
            let g1 = (&ours * &w)
                .and_then(|t| t.sum_all())
                .and_then(|t| t.backward())
                .expect("g1");
            let g2 = (&theirs * &w)
                .and_then(|t| t.sum_all())
                .and_then(|t| t.backward())
                .expect("g2");
            for var in [&out, &target] {
                let a = v(g1.get(var).expect("ours"));
                let b = v(g2.get(var).expect("theirs"));
                assert!(close(&a, &b), "gradient, n = {n}");
            }
        }
    }
}
