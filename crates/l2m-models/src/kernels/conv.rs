//! 2-D convolution with bias, optionally followed by ReLU and a 2x2 max pool, as one
//! Candle custom op with its backward pass.
//!
//! Forward, per sample: unfold the image (im2col, `[C*kh*kw, Ho*Wo]`), one matrix
//! product with the kernel, then bias, ReLU and pooling on the result while it is in
//! cache. Only the op's output leaves the sample, plus one byte per pooled value (which of
//! the four window positions held the maximum). Backward, per sample: route the output
//! gradient back through the pool and the ReLU, then
//!
//! - bias gradient: the sums over pixels;
//! - kernel gradient: `dY [O, HW] x cols^T [HW, C*k*k]`, accumulated per chunk;
//! - input gradient, only when the input is tracked (never for a data batch):
//!   `W^T [C*k*k, O] x dY`, folded back onto the image (col2im).
//!
//! Samples are processed in fixed chunks of [`CHUNK`], each on one rayon task with its
//! own scratch buffers; the chunks' kernel and bias gradients are added in chunk order,
//! so the result does not depend on the number of threads.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp3, Error, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::gemm::{self, MatMut};
use super::{slice, with_slice};

#[cfg(target_arch = "x86_64")]
mod direct;

/// Whether this CPU runs [`Path::Direct`].
pub(crate) fn direct_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    return super::avx512::available();
    #[cfg(not(target_arch = "x86_64"))]
    return false;
}

/// Samples per rayon task.
const CHUNK: usize = 8;

/// Sizes of a convolution over a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    b: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    kh: usize,
    kw: usize,
    stride: usize,
    pad: usize,
    ho: usize,
    wo: usize,
}

impl Geometry {
    /// The geometry of `x [b, c, h, w]` convolved with `w [o, c, kh, kw]`.
    pub fn new(
        x: (usize, usize, usize, usize),
        w: (usize, usize, usize, usize),
        stride: usize,
        pad: usize,
    ) -> Result<Self> {
        let (b, c, h, wd) = x;
        let (o, ci, kh, kw) = w;
        if ci != c || stride == 0 || kh == 0 || kw == 0 || h + 2 * pad < kh || wd + 2 * pad < kw {
            return Err(Error::Msg(format!(
                "conv2d: input [{b}, {c}, {h}, {wd}] and kernel [{o}, {ci}, {kh}, {kw}] \
                 with stride {stride} and padding {pad} do not fit"
            )));
        }
        Ok(Self {
            b,
            c,
            h,
            w: wd,
            o,
            kh,
            kw,
            stride,
            pad,
            ho: (h + 2 * pad - kh) / stride + 1,
            wo: (wd + 2 * pad - kw) / stride + 1,
        })
    }

    fn hw(&self) -> usize {
        self.ho * self.wo
    }

    fn ckk(&self) -> usize {
        self.c * self.kh * self.kw
    }

    fn chw(&self) -> usize {
        self.c * self.h * self.w
    }

    /// Output columns `[lo, hi)` whose input column `ox * stride + kx - pad` is inside the
    /// image (stride 1 only).
    fn inside(&self, kx: usize) -> (usize, usize) {
        let lo = self.pad.saturating_sub(kx).min(self.wo);
        let hi = (self.w + self.pad).saturating_sub(kx).min(self.wo).max(lo);
        (lo, hi)
    }

    /// The input row read by output row `oy` at kernel row `ky`, if inside the image.
    fn row(&self, oy: usize, ky: usize) -> Option<usize> {
        (oy * self.stride + ky)
            .checked_sub(self.pad)
            .filter(|&iy| iy < self.h)
    }

    /// The input column read by output column `ox` at kernel column `kx`, if inside.
    fn col(&self, ox: usize, kx: usize) -> Option<usize> {
        (ox * self.stride + kx)
            .checked_sub(self.pad)
            .filter(|&ix| ix < self.w)
    }

    /// `img [c, h, w]` -> `cols [(c * kh + ky) * kw + kx, oy * wo + ox]`, zeros where the
    /// window is in the padding.
    fn im2col(&self, img: &[f32], cols: &mut [f32]) {
        let (hw, wo) = (self.hw(), self.wo);
        for ci in 0..self.c {
            for ky in 0..self.kh {
                for kx in 0..self.kw {
                    let r = (ci * self.kh + ky) * self.kw + kx;
                    let row = &mut cols[r * hw..(r + 1) * hw];
                    for oy in 0..self.ho {
                        let dst = &mut row[oy * wo..(oy + 1) * wo];
                        let Some(iy) = self.row(oy, ky) else {
                            dst.fill(0.0);
                            continue;
                        };
                        let src =
                            &img[(ci * self.h + iy) * self.w..(ci * self.h + iy + 1) * self.w];
                        if self.stride == 1 {
                            let (lo, hi) = self.inside(kx);
                            dst[..lo].fill(0.0);
                            dst[hi..].fill(0.0);
                            if hi > lo {
                                let start = lo + kx - self.pad;
                                dst[lo..hi].copy_from_slice(&src[start..start + hi - lo]);
                            }
                        } else {
                            for (ox, d) in dst.iter_mut().enumerate() {
                                *d = self.col(ox, kx).map_or(0.0, |ix| src[ix]);
                            }
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of [`Geometry::im2col`]: adds every entry of `dcols` onto the pixel it
    /// was read from.
    fn col2im(&self, dcols: &[f32], img: &mut [f32]) {
        let (hw, wo) = (self.hw(), self.wo);
        for ci in 0..self.c {
            for ky in 0..self.kh {
                for kx in 0..self.kw {
                    let r = (ci * self.kh + ky) * self.kw + kx;
                    let row = &dcols[r * hw..(r + 1) * hw];
                    for oy in 0..self.ho {
                        let Some(iy) = self.row(oy, ky) else {
                            continue;
                        };
                        let src = &row[oy * wo..(oy + 1) * wo];
                        let dst =
                            &mut img[(ci * self.h + iy) * self.w..(ci * self.h + iy + 1) * self.w];
                        if self.stride == 1 {
                            let (lo, hi) = self.inside(kx);
                            if hi > lo {
                                let start = lo + kx - self.pad;
                                for (d, s) in
                                    dst[start..start + hi - lo].iter_mut().zip(&src[lo..hi])
                                {
                                    *d += s;
                                }
                            }
                        } else {
                            for (ox, s) in src.iter().enumerate() {
                                if let Some(ix) = self.col(ox, kx) {
                                    dst[ix] += s;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// What the op applies after the convolution and bias.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Epilogue {
    /// `max(0, y)`.
    pub relu: bool,
    /// 2x2 max pooling with stride 2 (PyTorch's `MaxPool2d(2)`: odd edges dropped, the
    /// first maximum of a window gets the gradient).
    pub pool: bool,
}

/// How the op computes its products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Path {
    /// [`Path::Direct`] where it applies (stride 1 on a CPU with AVX-512F), else
    /// [`Path::Im2col`].
    Auto,
    /// im2col and a `gemm` product per sample: any stride, any x86-64 or other CPU.
    Im2col,
    /// The AVX-512 direct convolution (`direct.rs`); stride 1 only.
    Direct,
}

impl Path {
    /// The path the models use: [`Path::Auto`], unless the environment variable `L2M_CONV`
    /// says `im2col` or `direct` (to compare the two paths in one build; `direct` where it
    /// does not apply is an error).
    pub fn configured() -> Result<Self> {
        static PATH: std::sync::OnceLock<std::result::Result<Path, String>> =
            std::sync::OnceLock::new();
        PATH.get_or_init(|| match std::env::var("L2M_CONV").as_deref() {
            Err(_) | Ok("") => Ok(Path::Auto),
            Ok("im2col") => Ok(Path::Im2col),
            Ok("direct") => Ok(Path::Direct),
            Ok(other) => Err(format!(
                "the environment variable L2M_CONV: expected im2col or direct, got {other:?}"
            )),
        })
        .clone()
        .map_err(Error::Msg)
    }
}

/// The op: one instance per forward call (it keeps that call's pooling positions).
pub(crate) struct ConvOp {
    geo: Geometry,
    epi: Epilogue,
    direct: bool,
    argmax: Mutex<Vec<u8>>,
}

impl ConvOp {
    /// The op for `geo`; `path` [`Path::Direct`] where it does not apply is an error.
    pub fn new(geo: Geometry, epi: Epilogue, path: Path) -> Result<Self> {
        let direct_applies = geo.stride == 1 && direct_available();
        let direct = match path {
            Path::Auto => direct_applies,
            Path::Im2col => false,
            Path::Direct if direct_applies => true,
            Path::Direct => {
                return Err(Error::Msg(format!(
                    "conv2d: the direct path needs stride 1 and AVX-512F (stride {}, \
                     AVX-512F {})",
                    geo.stride,
                    direct_available()
                )));
            }
        };
        Ok(Self {
            geo,
            epi,
            direct,
            argmax: Mutex::new(Vec::new()),
        })
    }

    /// Routes one sample's output gradient `gs` back through the pool and the ReLU: calls
    /// `put(channel, oy * wo + ox, value)` for every convolution output that receives a
    /// gradient (`rs` is the sample's output, `arg` its pooling positions).
    fn route(&self, gs: &[f32], rs: &[f32], arg: &[u8], mut put: impl FnMut(usize, usize, f32)) {
        let g = self.geo;
        let keep = |j: usize| !self.epi.relu || rs[j] > 0.0;
        if self.epi.pool {
            let (o, ph, pw) = self.out_dims();
            for oc in 0..o {
                for py in 0..ph {
                    for px in 0..pw {
                        let j = (oc * ph + py) * pw + px;
                        if keep(j) {
                            let a = usize::from(arg[j]);
                            put(oc, (2 * py + a / 2) * g.wo + 2 * px + a % 2, gs[j]);
                        }
                    }
                }
            }
        } else {
            let hw = g.hw();
            for (j, &v) in gs.iter().enumerate() {
                if keep(j) {
                    put(j / hw, j % hw, v);
                }
            }
        }
    }

    /// `(channels, height, width)` of one sample's output.
    fn out_dims(&self) -> (usize, usize, usize) {
        let g = &self.geo;
        if self.epi.pool {
            (g.o, g.ho / 2, g.wo / 2)
        } else {
            (g.o, g.ho, g.wo)
        }
    }

    fn out_len(&self) -> usize {
        let (o, h, w) = self.out_dims();
        o * h * w
    }

    fn forward(&self, x: &[f32], w: &[f32], bias: &[f32]) -> Result<(CpuStorage, Shape)> {
        let g = self.geo;
        let (hw, ckk, chw, per) = (g.hw(), g.ckk(), g.chw(), self.out_len());
        check_len("input", x.len(), g.b * chw)?;
        check_len("kernel", w.len(), g.o * ckk)?;
        check_len("bias", bias.len(), g.o)?;
        let (o, h, w_out) = self.out_dims();
        let shape = Shape::from((g.b, o, h, w_out));
        if g.b * per == 0 {
            return Ok((CpuStorage::F32(Vec::new()), shape));
        }
        #[cfg(target_arch = "x86_64")]
        if self.direct {
            let (out, argmax) = direct::forward(self, x, w, bias)?;
            *self
                .argmax
                .lock()
                .map_err(|_| Error::Msg("conv2d: pooling state poisoned".into()))? = argmax;
            return Ok((CpuStorage::F32(out), shape));
        }
        let mut out = vec![0f32; g.b * per];
        let mut argmax = vec![0u8; if self.epi.pool { g.b * per } else { 0 }];
        let run = |chunk: usize, out: &mut [f32], mut arg: Option<&mut [u8]>| -> Result<()> {
            let mut cols = vec![0f32; ckk * hw];
            let mut conv = vec![0f32; if self.epi.pool { g.o * hw } else { 0 }];
            for (s, out) in out.chunks_mut(per).enumerate() {
                let i = chunk * CHUNK + s;
                g.im2col(&x[i * chw..(i + 1) * chw], &mut cols);
                let dst = if self.epi.pool {
                    &mut conv[..]
                } else {
                    &mut out[..]
                };
                // dst[pix, o] at o * hw + pix = cols^T [hw, ckk] x W^T [ckk, o]
                gemm::matmul(
                    MatMut {
                        data: dst,
                        rows: hw,
                        cols: g.o,
                        rs: 1,
                        cs: hw,
                    },
                    gemm::rows(&cols, ckk, hw).t(),
                    gemm::rows(w, g.o, ckk).t(),
                    false,
                )?;
                if let Some(arg) = arg.as_deref_mut() {
                    // Pool first, then bias and ReLU on the maxima: both are monotonic, so
                    // relu(max(z) + b) is max(relu(z + b)) to the bit, in a quarter of the
                    // work.
                    let arg = &mut arg[s * per..(s + 1) * per];
                    pool2(&conv, g.ho, g.wo, out, arg);
                    for (oc, plane) in out.chunks_mut(per / g.o.max(1)).enumerate() {
                        bias_relu(plane, bias[oc], self.epi.relu);
                    }
                } else {
                    for (oc, plane) in dst.chunks_mut(hw).enumerate() {
                        bias_relu(plane, bias[oc], self.epi.relu);
                    }
                }
            }
            Ok(())
        };
        if self.epi.pool {
            out.par_chunks_mut(CHUNK * per)
                .zip(argmax.par_chunks_mut(CHUNK * per))
                .enumerate()
                .try_for_each(|(c, (o, a))| run(c, o, Some(a)))?;
        } else {
            out.par_chunks_mut(CHUNK * per)
                .enumerate()
                .try_for_each(|(c, o)| run(c, o, None))?;
        }
        *self
            .argmax
            .lock()
            .map_err(|_| Error::Msg("conv2d: pooling state poisoned".into()))? = argmax;
        Ok((CpuStorage::F32(out), shape))
    }

    /// Gradients for the input (when `want_dx`), the kernel and the bias.
    fn backward(
        &self,
        x: &Tensor,
        w: &Tensor,
        res: &Tensor,
        grad: &Tensor,
        want_dx: bool,
    ) -> Result<(Option<Tensor>, Tensor, Tensor)> {
        let g = self.geo;
        let (hw, ckk, chw, per) = (g.hw(), g.ckk(), g.chw(), self.out_len());
        let argmax = self
            .argmax
            .lock()
            .map_err(|_| Error::Msg("conv2d: pooling state poisoned".into()))?;
        if self.epi.pool && argmax.len() != g.b * per {
            return Err(Error::Msg(
                "conv2d: backward pass without a CPU forward pass".into(),
            ));
        }
        let dev = x.device();
        if g.b * per == 0 {
            // An empty output: every gradient is zero.
            return Ok((
                want_dx.then(|| x.zeros_like()).transpose()?,
                w.zeros_like()?,
                Tensor::zeros(g.o, candle_core::DType::F32, dev)?,
            ));
        }
        #[cfg(target_arch = "x86_64")]
        if self.direct {
            let (dx, dw, db) = with_slice(x, |x| {
                with_slice(w, |w| {
                    with_slice(res, |res| {
                        with_slice(grad, |grad| {
                            check_len("output gradient", grad.len(), g.b * per)?;
                            direct::backward(self, x, w, res, grad, &argmax, want_dx)
                        })
                    })
                })
            })?;
            return Ok((
                dx.map(|dx| Tensor::from_vec(dx, x.shape(), dev))
                    .transpose()?,
                Tensor::from_vec(dw, w.shape(), dev)?,
                Tensor::from_vec(db, g.o, dev)?,
            ));
        }
        let chunks = g.b.div_ceil(CHUNK);
        let mut dx = vec![0f32; if want_dx { g.b * chw } else { 0 }];
        let partials = with_slice(x, |x| {
            with_slice(w, |w| {
                with_slice(res, |res| {
                    with_slice(grad, |grad| {
                        check_len("output gradient", grad.len(), g.b * per)?;
                        let work = |chunk: usize, mut dx: Option<&mut [f32]>| {
                            let mut dw = vec![0f32; g.o * ckk];
                            let mut db = vec![0f32; g.o];
                            let mut cols = vec![0f32; ckk * hw];
                            let mut dconv = vec![0f32; g.o * hw];
                            let mut dcols = vec![0f32; if want_dx { ckk * hw } else { 0 }];
                            let first = chunk * CHUNK;
                            for i in first..(first + CHUNK).min(g.b) {
                                let gs = &grad[i * per..(i + 1) * per];
                                let rs = &res[i * per..(i + 1) * per];
                                dconv.fill(0.0);
                                let arg = if self.epi.pool {
                                    &argmax[i * per..(i + 1) * per]
                                } else {
                                    &[][..]
                                };
                                self.route(gs, rs, arg, |oc, pix, v| dconv[oc * hw + pix] = v);
                                for (d, plane) in db.iter_mut().zip(dconv.chunks(hw)) {
                                    *d += plane.iter().sum::<f32>();
                                }
                                g.im2col(&x[i * chw..(i + 1) * chw], &mut cols);
                                // dW [o, ckk] += dY [o, hw] x cols^T [hw, ckk]
                                gemm::matmul(
                                    gemm::rows_mut(&mut dw, g.o, ckk),
                                    gemm::rows(&dconv, g.o, hw),
                                    gemm::rows(&cols, ckk, hw).t(),
                                    true,
                                )?;
                                if let Some(dx) = dx.as_deref_mut() {
                                    // dcols [ckk, hw] = W^T [ckk, o] x dY [o, hw]
                                    gemm::matmul(
                                        gemm::rows_mut(&mut dcols, ckk, hw),
                                        gemm::rows(w, g.o, ckk).t(),
                                        gemm::rows(&dconv, g.o, hw),
                                        false,
                                    )?;
                                    let s = i - first;
                                    g.col2im(&dcols, &mut dx[s * chw..(s + 1) * chw]);
                                }
                            }
                            Ok((dw, db))
                        };
                        if want_dx {
                            dx.par_chunks_mut(CHUNK * chw)
                                .enumerate()
                                .map(|(c, d)| work(c, Some(d)))
                                .collect::<Result<Vec<_>>>()
                        } else {
                            (0..chunks)
                                .into_par_iter()
                                .map(|c| work(c, None))
                                .collect::<Result<Vec<_>>>()
                        }
                    })
                })
            })
        })?;
        let mut dw = vec![0f32; g.o * ckk];
        let mut db = vec![0f32; g.o];
        for (pw_, pb) in &partials {
            dw.iter_mut().zip(pw_).for_each(|(a, b)| *a += b);
            db.iter_mut().zip(pb).for_each(|(a, b)| *a += b);
        }
        let dx = if want_dx {
            Some(Tensor::from_vec(dx, x.shape(), dev)?)
        } else {
            None
        };
        Ok((
            dx,
            Tensor::from_vec(dw, w.shape(), dev)?,
            Tensor::from_vec(db, g.o, dev)?,
        ))
    }
}

fn check_len(what: &str, got: usize, want: usize) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(Error::Msg(format!(
            "conv2d: the {what} has {got} elements, {want} expected"
        )))
    }
}

/// `v <- relu(v + b)` (or `v + b`) over a plane; NaN passes through the ReLU, as in
/// PyTorch.
fn bias_relu(plane: &mut [f32], b: f32, relu: bool) {
    if relu {
        plane.iter_mut().for_each(|v| {
            let z = *v + b;
            *v = if z < 0.0 { 0.0 } else { z };
        });
    } else if b != 0.0 {
        plane.iter_mut().for_each(|v| *v += b);
    }
}

/// 2x2 max pooling with stride 2 of `planes [o, ho, wo]` into `out [o, ho/2, wo/2]`,
/// recording which window position (row-major, 0..4) held each maximum; the first
/// maximum wins, and NaN propagates.
fn pool2(planes: &[f32], ho: usize, wo: usize, out: &mut [f32], arg: &mut [u8]) {
    let (ph, pw) = (ho / 2, wo / 2);
    let hw = ho * wo;
    for (oc, plane) in planes.chunks(hw).enumerate() {
        for py in 0..ph {
            for px in 0..pw {
                let base = 2 * py * wo + 2 * px;
                let window = [base, base + 1, base + wo, base + wo + 1];
                let (mut best, mut at) = (plane[base], 0u8);
                for (k, &p) in window.iter().enumerate().skip(1) {
                    let v = plane[p];
                    if v > best || (v.is_nan() && !best.is_nan()) {
                        best = v;
                        at = k as u8;
                    }
                }
                let j = (oc * ph + py) * pw + px;
                out[j] = best;
                arg[j] = at;
            }
        }
    }
}

impl CustomOp3 for ConvOp {
    fn name(&self) -> &'static str {
        "l2m-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.forward(slice(s1, l1)?, slice(s2, l2)?, slice(s3, l3)?)
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        bias: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, db) = self.backward(x, w, res, grad, x.track_op())?;
        // A layer without bias passes an untracked zero bias: no gradient for it.
        Ok((dx, Some(dw), bias.track_op().then_some(db)))
    }
}
