//! A faster CPU convolution for the models' stride-1 convolutions (LeNet-5, LeNet-CIFAR).
//!
//! Profiling a LeNet-5 step in candle 0.11.1 (docs/performance.md) put most of the time in
//! the convolution's backward pass: the input gradient is computed even for the first
//! layer, whose input (the data) needs none, with a naive one-core `conv_transpose2d`, and
//! the kernel gradient runs its im2col copy serially. [`Conv2d`] keeps Candle's forward
//! pass but supplies its own backward pass through a custom op:
//!
//! - kernel gradient: the input unfolded (im2col) in parallel over the batch, then one
//!   matrix product `grad[O, B*HW] x cols[B*HW, C*k*k]`;
//! - input gradient, only when the input is tracked (not for the data): `W^T x grad` per
//!   sample (a batched product), folded back (col2im) in parallel over the batch.
//!
//! Elsewhere (GPU devices, other dtypes, strides or dilations, groups) it is Candle's own
//! `conv2d`, which stays the reference the tests compare against.

use candle_core::{CpuStorage, CustomOp2, DType, Device, Layout, Module, Shape, Tensor};
use rayon::prelude::*;

/// A 2-D convolution with bias: Candle's `Conv2d` with a faster CPU backward pass.
#[derive(Debug, Clone)]
pub struct Conv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    cfg: candle_nn::Conv2dConfig,
}

impl Conv2d {
    /// A convolution with `weight` `[out, in/groups, k, k]` and an optional `bias` `[out]`.
    pub fn new(weight: Tensor, bias: Option<Tensor>, cfg: candle_nn::Conv2dConfig) -> Self {
        Self { weight, bias, cfg }
    }

    /// The weight.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// Whether the fast path applies to `xs`.
    fn fast(&self, xs: &Tensor) -> bool {
        matches!(xs.device(), Device::Cpu)
            && xs.dtype() == DType::F32
            && self.weight.dtype() == DType::F32
            && self.cfg.stride == 1
            && self.cfg.dilation == 1
            && self.cfg.groups == 1
            && xs.rank() == 4
    }
}

impl Module for Conv2d {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let y = if self.fast(xs) {
            let (_, _, kh, kw) = self.weight.dims4()?;
            if kh == kw {
                xs.contiguous()?.apply_op2(
                    &self.weight.contiguous()?,
                    ConvOp {
                        padding: self.cfg.padding,
                    },
                )?
            } else {
                reference(xs, &self.weight, &self.cfg)?
            }
        } else {
            reference(xs, &self.weight, &self.cfg)?
        };
        match &self.bias {
            Some(b) => y.broadcast_add(&b.reshape((1, b.elem_count(), 1, 1))?),
            None => Ok(y),
        }
    }
}

fn reference(xs: &Tensor, w: &Tensor, c: &candle_nn::Conv2dConfig) -> candle_core::Result<Tensor> {
    xs.conv2d(w, c.padding, c.stride, c.dilation, c.groups)
}

/// Stride-1 square convolution without bias, f32, contiguous operands.
struct ConvOp {
    padding: usize,
}

fn cpu_tensor(s: &CpuStorage, l: &Layout) -> candle_core::Result<Tensor> {
    let data = s.as_slice::<f32>()?;
    let (start, end) = l
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg("fast conv2d needs contiguous operands".into()))?;
    Tensor::from_slice(&data[start..end], l.shape(), &Device::Cpu)
}

fn into_storage(t: &Tensor) -> candle_core::Result<CpuStorage> {
    let v: Vec<f32> = t.flatten_all()?.to_vec1()?;
    Ok(CpuStorage::F32(v))
}

impl CustomOp2 for ConvOp {
    fn name(&self) -> &'static str {
        "l2m-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = cpu_tensor(s1, l1)?;
        let w = cpu_tensor(s2, l2)?;
        let y = x.conv2d(&w, self.padding, 1, 1, 1)?;
        Ok((into_storage(&y)?, y.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (b, c, h, wd) = x.dims4()?;
        let (o, _, k, _) = w.dims4()?;
        let (_, _, ho, wo) = grad.dims4()?;
        let p = self.padding;
        let ckk = c * k * k;
        let hw = ho * wo;
        let grad = grad.detach().contiguous()?;
        let xs: Vec<f32> = x.detach().flatten_all()?.to_vec1()?;
        let geo = Geometry {
            c,
            h,
            w: wd,
            k,
            p,
            ho,
            wo,
        };
        // cols[b, hw, ckk]
        let mut cols = vec![0f32; b * hw * ckk];
        cols.par_chunks_mut(hw * ckk)
            .zip(xs.par_chunks(c * h * wd))
            .for_each(|(col, img)| geo.im2col(img, col));
        let cols = Tensor::from_vec(cols, (b * hw, ckk), &Device::Cpu)?;
        // grad[b, o, hw] -> [o, b * hw]
        let g_obhw = grad
            .reshape((b, o, hw))?
            .transpose(0, 1)?
            .contiguous()?
            .reshape((o, b * hw))?;
        let grad_w = g_obhw.matmul(&cols)?.reshape(w.shape())?;
        let grad_x = if x.track_op() {
            // dcols[b, ckk, hw] = W^T[ckk, o] x grad[b, o, hw]
            let wt = w.detach().reshape((o, ckk))?.t()?.contiguous()?;
            let dcols: Vec<f32> = wt
                .broadcast_matmul(&grad.reshape((b, o, hw))?)?
                .flatten_all()?
                .to_vec1()?;
            let mut gx = vec![0f32; b * c * h * wd];
            gx.par_chunks_mut(c * h * wd)
                .zip(dcols.par_chunks(ckk * hw))
                .for_each(|(img, dcol)| geo.col2im(dcol, img));
            Some(Tensor::from_vec(gx, (b, c, h, wd), &Device::Cpu)?)
        } else {
            None
        };
        Ok((grad_x, Some(grad_w)))
    }
}

/// Sizes of one sample's convolution.
struct Geometry {
    c: usize,
    h: usize,
    w: usize,
    k: usize,
    p: usize,
    ho: usize,
    wo: usize,
}

impl Geometry {
    /// `img[c, h, w]` -> `col[oy * wo + ox, (c * k + ky) * k + kx]`, zeros in the padding.
    fn im2col(&self, img: &[f32], col: &mut [f32]) {
        let Self {
            c,
            h,
            w,
            k,
            p,
            ho,
            wo,
        } = *self;
        let ckk = c * k * k;
        for oy in 0..ho {
            for ox in 0..wo {
                let row = &mut col[(oy * wo + ox) * ckk..(oy * wo + ox + 1) * ckk];
                for ci in 0..c {
                    for ky in 0..k {
                        let iy = (oy + ky) as isize - p as isize;
                        let dst = &mut row[(ci * k + ky) * k..(ci * k + ky + 1) * k];
                        if iy < 0 || iy >= h as isize {
                            dst.fill(0.0);
                            continue;
                        }
                        let src = &img[(ci * h + iy as usize) * w..(ci * h + iy as usize + 1) * w];
                        for (kx, d) in dst.iter_mut().enumerate() {
                            let ix = (ox + kx) as isize - p as isize;
                            *d = if ix < 0 || ix >= w as isize {
                                0.0
                            } else {
                                src[ix as usize]
                            };
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of [`Geometry::im2col`] for `dcol[(c * k + ky) * k + kx, oy * wo + ox]`:
    /// adds every column entry back onto the pixel it was read from.
    fn col2im(&self, dcol: &[f32], img: &mut [f32]) {
        let Self {
            c,
            h,
            w,
            k,
            p,
            ho,
            wo,
        } = *self;
        let hw = ho * wo;
        for ci in 0..c {
            for ky in 0..k {
                for kx in 0..k {
                    let src =
                        &dcol[((ci * k + ky) * k + kx) * hw..((ci * k + ky) * k + kx + 1) * hw];
                    for oy in 0..ho {
                        let iy = (oy + ky) as isize - p as isize;
                        if iy < 0 || iy >= h as isize {
                            continue;
                        }
                        let dst =
                            &mut img[(ci * h + iy as usize) * w..(ci * h + iy as usize + 1) * w];
                        let srow = &src[oy * wo..(oy + 1) * wo];
                        for (ox, &v) in srow.iter().enumerate() {
                            let ix = (ox + kx) as isize - p as isize;
                            if ix >= 0 && ix < w as isize {
                                dst[ix as usize] += v;
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;
    use rand::{Rng, SeedableRng};

    fn random(shape: &[usize], seed: u64) -> Tensor {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).expect("tensor")
    }

    fn max_rel_diff(a: &Tensor, b: &Tensor) -> f32 {
        let a: Vec<f32> = a.flatten_all().and_then(|t| t.to_vec1()).expect("a");
        let b: Vec<f32> = b.flatten_all().and_then(|t| t.to_vec1()).expect("b");
        assert_eq!(a.len(), b.len());
        let scale = b.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
        a.iter()
            .zip(&b)
            .fold(0f32, |m, (x, y)| m.max((x - y).abs() / scale))
    }

    /// Forward, kernel gradient and input gradient agree with Candle's own conv2d, on odd
    /// shapes, with and without padding, with the input tracked or not.
    #[test]
    fn agrees_with_candle_forward_and_gradients() {
        for (i, &(b, c, h, w, o, k, p)) in [
            (3, 1, 28, 28, 6, 5, 0),
            (2, 6, 12, 12, 16, 5, 0),
            (5, 3, 9, 7, 4, 3, 1),
            (1, 2, 5, 6, 3, 3, 2),
            (4, 16, 16, 16, 32, 3, 1),
        ]
        .iter()
        .enumerate()
        {
            let seed = i as u64 * 10;
            let x = Var::from_tensor(&random(&[b, c, h, w], seed)).expect("x");
            let wt = Var::from_tensor(&random(&[o, c, k, k], seed + 1)).expect("w");
            let bias = Var::from_tensor(&random(&[o], seed + 2)).expect("b");
            let cfg = candle_nn::Conv2dConfig {
                padding: p,
                ..Default::default()
            };
            let ours = Conv2d::new(wt.as_tensor().clone(), Some(bias.as_tensor().clone()), cfg);
            let theirs =
                candle_nn::Conv2d::new(wt.as_tensor().clone(), Some(bias.as_tensor().clone()), cfg);
            let y1 = ours.forward(x.as_tensor()).expect("ours");
            let y2 = theirs.forward(x.as_tensor()).expect("theirs");
            assert_eq!(y1.dims(), y2.dims());
            assert!(max_rel_diff(&y1, &y2) < 1e-5, "forward {i}");
            // A loss that weighs every output differently.
            let weights = random(y1.dims(), seed + 3);
            let g1 = (y1 * &weights)
                .and_then(|t| t.sum_all())
                .expect("l1")
                .backward()
                .expect("g1");
            let g2 = (y2 * &weights)
                .and_then(|t| t.sum_all())
                .expect("l2")
                .backward()
                .expect("g2");
            for (name, v) in [("input", &x), ("kernel", &wt), ("bias", &bias)] {
                let a = g1.get(v).expect("ours has the gradient");
                let b = g2.get(v).expect("candle has the gradient");
                let d = max_rel_diff(a, b);
                assert!(d < 1e-4, "{name} gradient of case {i}: {d}");
            }
            // Data input (not tracked): no input gradient, the same kernel gradient.
            let data = random(&[b, c, h, w], seed);
            let y = ours.forward(&data).expect("forward");
            let g = (y * &weights)
                .and_then(|t| t.sum_all())
                .expect("l")
                .backward()
                .expect("g");
            let d = max_rel_diff(g.get(&wt).expect("kernel"), g2.get(&wt).expect("kernel"));
            assert!(
                d < 1e-4,
                "kernel gradient without input gradient, case {i}: {d}"
            );
        }
    }
}
