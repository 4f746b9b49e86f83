//! A 2-D convolution layer with a fast CPU path, optionally fused with ReLU and a 2x2 max
//! pool.
//!
//! [`Conv2d`] has candle-nn's interface (`Module::forward`) plus
//! [`Conv2d::forward_relu_pool2`], which computes `max_pool2d(relu(conv(x)), 2)` (the
//! LeNet blocks) as one op. On the CPU with `f32` data (and dilation 1, groups 1) both run
//! the kernel of `crate::kernels::conv`, which keeps a sample's data in cache through the
//! whole block and never materialises the full-size activations. Elsewhere they are
//! Candle's own `conv2d` and `relu` and a max pool composed of `maximum`s (Candle's
//! `max_pool2d` gives a unique maximum a quarter of its gradient, see [`reference`]),
//! which stay the reference the tests compare against.

use candle_core::{Module, Tensor};

use crate::kernels::{self, conv};

/// A 2-D convolution with an optional bias: Candle's `Conv2d` with a faster CPU path.
#[derive(Debug, Clone)]
pub struct Conv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    cfg: candle_nn::Conv2dConfig,
}

impl Conv2d {
    /// A convolution with `weight` `[out, in/groups, kh, kw]` and an optional `bias` `[out]`.
    pub fn new(weight: Tensor, bias: Option<Tensor>, cfg: candle_nn::Conv2dConfig) -> Self {
        Self { weight, bias, cfg }
    }

    /// The weight.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The bias, if any.
    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// `max_pool2d(relu(conv(x) + bias), 2)`, as one op on the CPU.
    pub fn forward_relu_pool2(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        self.apply(
            xs,
            conv::Epilogue {
                relu: true,
                pool: true,
            },
        )
    }

    /// `relu(conv(x) + bias)`, as one op on the CPU.
    pub fn forward_relu(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        self.apply(
            xs,
            conv::Epilogue {
                relu: true,
                pool: false,
            },
        )
    }

    /// Whether the CPU kernel applies to `xs`.
    fn fast(&self, xs: &Tensor) -> bool {
        kernels::applies(xs)
            && kernels::applies(&self.weight)
            && self.bias.as_ref().is_none_or(kernels::applies)
            && self.cfg.dilation == 1
            && self.cfg.groups == 1
            && xs.rank() == 4
    }

    fn apply(&self, xs: &Tensor, epi: conv::Epilogue) -> candle_core::Result<Tensor> {
        self.apply_with(xs, epi, conv::Path::configured()?)
    }

    fn apply_with(
        &self,
        xs: &Tensor,
        epi: conv::Epilogue,
        path: conv::Path,
    ) -> candle_core::Result<Tensor> {
        if !self.fast(xs) {
            return reference(xs, &self.weight, self.bias.as_ref(), &self.cfg, epi);
        }
        let geo = conv::Geometry::new(
            xs.dims4()?,
            self.weight.dims4()?,
            self.cfg.stride,
            self.cfg.padding,
        )?;
        let op = conv::ConvOp::new(geo, epi, path)?;
        let x = xs.contiguous()?;
        let w = self.weight.contiguous()?;
        let bias = match &self.bias {
            Some(b) => b.contiguous()?,
            // Untracked zeros: the op adds nothing and returns no gradient for them.
            None => Tensor::zeros(self.weight.dim(0)?, candle_core::DType::F32, xs.device())?,
        };
        x.apply_op3(&w, &bias, op)
    }
}

/// The convolution the CPU models run in this process: `"avx512-direct"` (stride-1
/// layers on a CPU with AVX-512F) or `"im2col"` (elsewhere, or with `L2M_CONV=im2col`).
/// Results agree to rounding across the two, not bit for bit (the sums run in another
/// order).
pub fn cpu_convolution() -> &'static str {
    match conv::Path::configured() {
        Ok(conv::Path::Im2col) => "im2col",
        _ if conv::direct_available() => "avx512-direct",
        _ => "im2col",
    }
}

/// The matrix product the CPU kernels run in this process for large products: `"avx512"`
/// (a CPU with AVX-512F) or `"gemm-crate"`. Like [`cpu_convolution`], it changes results
/// only by rounding.
pub fn cpu_matmul() -> &'static str {
    if conv::direct_available() {
        "avx512"
    } else {
        "gemm-crate"
    }
}

impl Module for Conv2d {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        self.apply(xs, conv::Epilogue::default())
    }
}

/// The same computation from Candle's own operations: the path on other devices and
/// dtypes, and the reference of the tests.
fn reference(
    xs: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    c: &candle_nn::Conv2dConfig,
    epi: conv::Epilogue,
) -> candle_core::Result<Tensor> {
    let mut y = xs.conv2d(w, c.padding, c.stride, c.dilation, c.groups)?;
    if let Some(b) = bias {
        y = y.broadcast_add(&b.reshape((1, b.elem_count(), 1, 1))?)?;
    }
    if epi.relu {
        y = y.relu()?;
    }
    if epi.pool {
        // Not `Tensor::max_pool2d`: candle-core 0.11.1's backward pass for it multiplies
        // the gradient by (maxima in the window) / 4 where it should divide by the number
        // of maxima, so a unique maximum gets a quarter of its gradient. The maximum of
        // strided views routes it in full.
        y = crate::layers::max_pool2d_overlapping(&y, 2, 2, 0)?;
    }
    Ok(y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{grads_of_weighted_sum, max_rel_diff, random};
    use candle_core::{Device, Var};

    /// The fused op against Candle's `conv2d` (+ bias, ReLU, `max_pool2d`): forward and
    /// every gradient, on odd shapes (odd pooled edges, padding 0 to 2, strides 1 and 2,
    /// batches that do not fill the last chunk), with and without bias, with the input
    /// tracked or not. Tolerance: relative 1e-4 of the largest reference value (the sums
    /// run in a different order).
    #[test]
    fn agrees_with_candle_forward_and_gradients() {
        let epilogues = [
            conv::Epilogue::default(),
            conv::Epilogue {
                relu: true,
                pool: false,
            },
            conv::Epilogue {
                relu: true,
                pool: true,
            },
        ];
        let cases = [
            // (b, c, h, w, o, k, padding, stride, bias)
            (3, 1, 28, 28, 6, 5, 0, 1, true),
            (11, 6, 12, 12, 16, 5, 0, 1, true),
            (5, 3, 9, 7, 4, 3, 1, 1, true),
            (1, 2, 5, 6, 3, 3, 2, 1, false),
            (9, 16, 16, 16, 32, 3, 1, 1, true),
            // For the direct path: more than four vectors of output channels and a
            // partial one, kernel widths split into tiles of 5, 3 and 1, input channels
            // past one vector, rows longer than any pixel block.
            (2, 20, 11, 13, 70, 7, 3, 1, true),
            (3, 5, 8, 9, 33, 4, 1, 1, false),
            (2, 3, 6, 40, 17, 2, 0, 1, true),
            // Square: Candle's conv2d backward derives the output padding of its transposed
            // convolution from the height alone, so a width that leaves another remainder
            // under stride 2 breaks the reference (not ours).
            (4, 3, 10, 10, 5, 3, 1, 2, false),
            (2, 4, 9, 9, 6, 1, 0, 2, true),
        ];
        let mut paths = vec![conv::Path::Im2col];
        if conv::direct_available() {
            paths.push(conv::Path::Direct);
        }
        for (path, (i, &(b, c, h, w, o, k, p, stride, with_bias))) in paths
            .iter()
            .flat_map(|&path| cases.iter().enumerate().map(move |case| (path, case)))
        {
            if path == conv::Path::Direct && stride != 1 {
                continue;
            }
            for (e, &epi) in epilogues.iter().enumerate() {
                let seed = i as u64 * 10 + e as u64 * 1000;
                let x = Var::from_tensor(&random(&[b, c, h, w], seed)).expect("x");
                let wt = Var::from_tensor(&random(&[o, c, k, k], seed + 1)).expect("w");
                let bias = Var::from_tensor(&random(&[o], seed + 2)).expect("b");
                let cfg = candle_nn::Conv2dConfig {
                    padding: p,
                    stride,
                    ..Default::default()
                };
                let ours = Conv2d::new(
                    wt.as_tensor().clone(),
                    with_bias.then(|| bias.as_tensor().clone()),
                    cfg,
                );
                let b_ref = with_bias.then_some(bias.as_tensor());
                let y1 = ours.apply_with(x.as_tensor(), epi, path).expect("ours");
                let y2 = reference(x.as_tensor(), wt.as_tensor(), b_ref, &cfg, epi).expect("ref");
                assert_eq!(y1.dims(), y2.dims(), "case {i} {epi:?} {path:?}");
                let d = max_rel_diff(&y1, &y2);
                assert!(d < 1e-5, "forward, case {i} {epi:?} {path:?}: {d}");
                // A loss that weighs every output differently.
                let weights = random(y1.dims(), seed + 3);
                let g1 = grads_of_weighted_sum(&y1, &weights);
                let g2 = grads_of_weighted_sum(&y2, &weights);
                let mut vars = vec![("input", &x), ("kernel", &wt)];
                if with_bias {
                    vars.push(("bias", &bias));
                }
                for (name, v) in vars {
                    let a = g1.get(v).expect("ours has the gradient");
                    let r = g2.get(v).expect("candle has the gradient");
                    let d = max_rel_diff(a, r);
                    assert!(d < 1e-4, "{name} gradient, case {i} {epi:?} {path:?}: {d}");
                }
                // Data input (not tracked): no input gradient, the same kernel gradient.
                let data = random(&[b, c, h, w], seed);
                let y = ours.apply_with(&data, epi, path).expect("forward");
                let g = grads_of_weighted_sum(&y, &weights);
                assert!(g.get(&data).is_none());
                let d = max_rel_diff(g.get(&wt).expect("kernel"), g2.get(&wt).expect("kernel"));
                assert!(
                    d < 1e-4,
                    "kernel gradient for data input, case {i} {epi:?} {path:?}: {d}"
                );
            }
        }
    }

    /// Outputs with no element (a pool over a 1-pixel map, an empty batch) are empty, with
    /// zero gradients, not a panic.
    #[test]
    fn empty_outputs_are_empty() {
        let w = Var::from_tensor(&random(&[2, 1, 1, 1], 1)).expect("w");
        let layer = Conv2d::new(
            w.as_tensor().clone(),
            None,
            candle_nn::Conv2dConfig::default(),
        );
        for dims in [[3usize, 1, 1, 1], [0, 1, 4, 4]] {
            let x = Var::from_tensor(
                &Tensor::zeros(&dims, candle_core::DType::F32, &Device::Cpu).expect("x"),
            )
            .expect("x");
            let y = layer.forward_relu_pool2(x.as_tensor()).expect("forward");
            assert_eq!(y.elem_count(), 0);
            let g = y.sum_all().and_then(|t| t.backward()).expect("backward");
            let dw: Vec<f32> = g
                .get(&w)
                .and_then(|t| t.flatten_all().ok())
                .and_then(|t| t.to_vec1().ok())
                .expect("dw");
            assert!(dw.iter().all(|&v| v == 0.0));
        }
    }

    /// The pool routes each window's gradient to its first maximum (PyTorch's rule), and a
    /// window whose maximum the ReLU clipped to zero passes no gradient.
    #[test]
    fn pooling_routes_to_the_first_maximum() {
        // One channel, identity 1x1 kernel, zero bias: the op is relu + pool of the input.
        let x = Var::from_vec(
            vec![
                1f32, 3., 3., 0., -1., 3., 0., 2., -2., -1., 5., 5., -3., -4., 5., 1.,
            ],
            (1, 1, 4, 4),
            &Device::Cpu,
        )
        .expect("x");
        let w = Tensor::ones((1, 1, 1, 1), candle_core::DType::F32, &Device::Cpu).expect("w");
        let layer = Conv2d::new(w, None, candle_nn::Conv2dConfig::default());
        let y = layer.forward_relu_pool2(x.as_tensor()).expect("y");
        assert_eq!(
            y.flatten_all().and_then(|t| t.to_vec1::<f32>()).expect("y"),
            vec![3., 3., 0., 5.]
        );
        let g = y.sum_all().and_then(|t| t.backward()).expect("g");
        let dx: Vec<f32> = g
            .get(&x)
            .and_then(|t| t.flatten_all().ok())
            .and_then(|t| t.to_vec1().ok())
            .expect("dx");
        assert_eq!(
            dx,
            vec![
                0., 1., 1., 0., 0., 0., 0., 0., 0., 0., 1., 0., 0., 0., 0., 0.
            ]
        );
    }
}
