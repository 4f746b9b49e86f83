//! Layers initialised as PyTorch initialises them by default.

use candle_core::{D, Tensor};
use candle_nn::{BatchNorm, BatchNormConfig, Conv2dConfig, Init, Module, VarBuilder};

use crate::Result;

/// PyTorch's default law for linear and convolution weights and biases: uniform in
/// `[-1/sqrt(fan_in), 1/sqrt(fan_in)]` (its `kaiming_uniform_(a = sqrt(5))` reduces to this).
pub fn fan_in_uniform(fan_in: usize) -> Init {
    let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
    Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

/// `torch.nn.Linear(in_dim, out_dim)`: weight and bias uniform in
/// `[-1/sqrt(in_dim), 1/sqrt(in_dim)]` (PyTorch's `kaiming_uniform_(a = sqrt(5))` on the
/// weight reduces to this bound).
pub fn linear(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<crate::Linear> {
    let init = fan_in_uniform(in_dim);
    let weight = vb.get_with_hints((out_dim, in_dim), "weight", init)?;
    let bias = vb.get_with_hints(out_dim, "bias", init)?;
    Ok(crate::Linear::new(weight, bias))
}

/// `torch.nn.Conv2d(in, out, k, stride, padding)` with PyTorch's default initialisation:
/// weight and bias uniform in `[-1/sqrt(fan_in), 1/sqrt(fan_in)]`, `fan_in = in * k * k`.
pub fn conv2d(
    in_channels: usize,
    out_channels: usize,
    kernel: usize,
    cfg: Conv2dConfig,
    vb: VarBuilder,
) -> Result<crate::conv2d::Conv2d> {
    let init = fan_in_uniform(in_channels / cfg.groups.max(1) * kernel * kernel);
    let weight = vb.get_with_hints(
        (
            out_channels,
            in_channels / cfg.groups.max(1),
            kernel,
            kernel,
        ),
        "weight",
        init,
    )?;
    let bias = vb.get_with_hints(out_channels, "bias", init)?;
    Ok(crate::conv2d::Conv2d::new(weight, Some(bias), cfg))
}

/// A convolution without bias, weight from `kaiming_normal_(mode = "fan_out",
/// nonlinearity = "relu")` (torchvision's ResNet): normal with std `sqrt(2 / (out * k * k))`.
pub fn conv2d_resnet(
    in_channels: usize,
    out_channels: usize,
    kernel: usize,
    cfg: Conv2dConfig,
    vb: VarBuilder,
) -> Result<crate::Conv2d> {
    let std = (2.0 / (out_channels * kernel * kernel) as f64).sqrt();
    let weight = vb.get_with_hints(
        (out_channels, in_channels, kernel, kernel),
        "weight",
        Init::Randn {
            mean: 0.0,
            stdev: std,
        },
    )?;
    Ok(crate::Conv2d::new(weight, None, cfg))
}

/// `torch.nn.BatchNorm2d(c)`: weight 1, bias 0, running mean 0, running variance 1,
/// momentum 0.1, eps 1e-5. Batch statistics in training (updating the running ones),
/// running statistics in evaluation.
pub fn batch_norm(channels: usize, vb: VarBuilder) -> Result<BatchNorm> {
    Ok(candle_nn::batch_norm(
        channels,
        BatchNormConfig {
            eps: 1e-5,
            remove_mean: true,
            affine: true,
            momentum: 0.1,
        },
        vb,
    )?)
}

/// `torch.nn.LayerNorm(d)` over the last dimension: weight 1, bias 0, eps 1e-5.
///
/// Not `candle_nn::LayerNorm`: in candle-nn 0.11.1 it runs a fused kernel without a
/// backward pass on contiguous inputs, so no gradient would reach anything before it (the
/// transformer's finite-difference test catches this). On the CPU this is one op with its
/// backward pass (`crate::kernels::layer_norm`); elsewhere it is composed of Candle's
/// differentiable operations.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

/// Builds a [`LayerNorm`] with parameters `weight` and `bias`.
pub fn layer_norm(dim: usize, vb: VarBuilder) -> Result<LayerNorm> {
    Ok(LayerNorm {
        weight: vb.get_with_hints(dim, "weight", Init::Const(1.0))?,
        bias: vb.get_with_hints(dim, "bias", Init::Const(0.0))?,
        eps: 1e-5,
    })
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        if crate::kernels::applies(x)
            && crate::kernels::applies(&self.weight)
            && crate::kernels::applies(&self.bias)
        {
            return x.contiguous()?.apply_op3(
                &self.weight.contiguous()?,
                &self.bias.contiguous()?,
                crate::kernels::layer_norm::LayerNormOp {
                    eps: self.eps as f32,
                },
            );
        }
        self.composed(x)
    }
}

impl LayerNorm {
    /// The same normalisation from Candle's operations: the path on other devices and
    /// dtypes, and the reference of the tests.
    fn composed(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let d = x.dim(D::Minus1)? as f64;
        let centred = x.broadcast_sub(&(x.sum_keepdim(D::Minus1)? / d)?)?;
        let var = (centred.sqr()?.sum_keepdim(D::Minus1)? / d)?;
        let normed = centred.broadcast_div(&(var + self.eps)?.sqrt()?)?;
        normed
            .broadcast_mul(&self.weight)?
            .broadcast_add(&self.bias)
    }
}

/// Whether a named variable is a trainable parameter (PyTorch's `parameters()`), as
/// opposed to a buffer such as batch-norm running statistics.
pub fn is_parameter(name: &str) -> bool {
    !(name.ends_with("running_mean") || name.ends_with("running_var"))
}

/// Max pooling with a `k x k` window, `stride` and zero `padding`, composed of
/// differentiable operations (the element-wise maximum of `k * k` strided views).
///
/// candle-core 0.11.1 has no backward pass for `max_pool2d` when the window differs from
/// the stride, which ResNet's `3x3 / 2` stem needs. Zero padding equals PyTorch's `-inf`
/// padding only for non-negative inputs (after a ReLU, as in ResNet).
pub fn max_pool2d_overlapping(
    x: &Tensor,
    k: usize,
    stride: usize,
    padding: usize,
) -> candle_core::Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let out_h = (h + 2 * padding - k) / stride + 1;
    let out_w = (w + 2 * padding - k) / stride + 1;
    // Pad enough on the far side that every strided view has `out * stride` elements.
    let far_h = (k - 1 + out_h * stride).saturating_sub(h + padding);
    let far_w = (k - 1 + out_w * stride).saturating_sub(w + padding);
    let x = x
        .pad_with_zeros(2, padding, far_h)?
        .pad_with_zeros(3, padding, far_w)?;
    let (b, c, _, _) = x.dims4()?;
    let view = |dy: usize, dx: usize| -> candle_core::Result<Tensor> {
        x.narrow(2, dy, out_h * stride)?
            .narrow(3, dx, out_w * stride)?
            .reshape((b, c, out_h, stride, out_w, stride))?
            .narrow(3, 0, 1)?
            .narrow(5, 0, 1)?
            .reshape((b, c, out_h, out_w))
    };
    let mut out = view(0, 0)?;
    for dy in 0..k {
        for dx in 0..k {
            if dy + dx > 0 {
                out = out.maximum(&view(dy, dx)?)?;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};
    use rand::{Rng, SeedableRng};

    /// The layer-norm kernel against the composed normalisation: output and the input,
    /// weight and bias gradients, for rows of several widths and ranks. Tolerance:
    /// relative 1e-4.
    #[test]
    fn layer_norm_kernel_agrees_with_the_composed_one() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        for dims in [vec![3usize, 5], vec![2, 67, 64], vec![1, 1]] {
            let d = *dims.last().expect("rank");
            let n: usize = dims.iter().product();
            let mut draw = |k: usize| -> Vec<f32> {
                (0..k).map(|_| rng.random::<f32>() * 4.0 - 2.0).collect()
            };
            let x = Var::from_vec(draw(n), dims.as_slice(), &Device::Cpu).expect("x");
            let w = Var::from_vec(draw(d), d, &Device::Cpu).expect("w");
            let b = Var::from_vec(draw(d), d, &Device::Cpu).expect("b");
            let weights =
                Tensor::from_vec(draw(n), dims.as_slice(), &Device::Cpu).expect("weights");
            let ln = LayerNorm {
                weight: w.as_tensor().clone(),
                bias: b.as_tensor().clone(),
                eps: 1e-5,
            };
            let ours = ln.forward(x.as_tensor()).expect("ours");
            let theirs = ln.composed(x.as_tensor()).expect("theirs");
            let flat =
                |t: &Tensor| -> Vec<f32> { t.flatten_all().and_then(|t| t.to_vec1()).expect("v") };
            let diff = |a: &[f32], r: &[f32]| {
                let scale = r.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
                a.iter()
                    .zip(r)
                    .fold(0f32, |m, (x, y)| m.max((x - y).abs() / scale))
            };
            assert!(
                diff(&flat(&ours), &flat(&theirs)) < 1e-5,
                "forward {dims:?}"
            );
            let grads = |y: &Tensor| {
                (y * &weights)
                    .and_then(|t| t.sum_all())
                    .and_then(|t| t.backward())
                    .expect("backward")
            };
            let (g1, g2) = (grads(&ours), grads(&theirs));
            for (name, v) in [("input", &x), ("weight", &w), ("bias", &b)] {
                let dd = diff(
                    &flat(g1.get(v).expect("ours")),
                    &flat(g2.get(v).expect("theirs")),
                );
                assert!(dd < 1e-4, "{name} gradient {dims:?}: {dd}");
            }
            assert_eq!(ours.dtype(), DType::F32);
        }
    }
}
