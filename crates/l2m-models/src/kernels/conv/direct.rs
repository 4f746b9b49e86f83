//! The convolution op's direct path ([`super::Path::Direct`]): stride 1, the products
//! computed by the AVX-512 kernels of [`crate::kernels::avx512`] straight from a
//! zero-padded copy of each image, with no im2col.
//!
//! Per sample, forward: copy the image into a zero-padded buffer, [`avx512::conv`] into a
//! channel-last plane `[ho, wo', O']` (rows padded to the kernel's pixel block, channels
//! to 16), then pool, bias and ReLU from that plane into the op's `[O, h, w]` output.
//! Backward: route the output gradient into a channel-last plane with a border of
//! `k - 1` zeros, add the bias gradient as it is routed, then
//!
//! - kernel gradient: [`avx512::weight_grad`] of the padded image against the plane,
//!   accumulated per chunk of samples in a `[C k k, O']` buffer;
//! - input gradient (tracked inputs only): [`avx512::conv`] of the bordered plane with
//!   the flipped kernel, cropped to the image.
//!
//! Samples run in the same fixed chunks as the im2col path, their kernel and bias
//! gradients added in chunk order, so no result depends on the number of threads.

use candle_core::Result;
use rayon::prelude::*;

use super::{CHUNK, ConvOp, bias_relu};
use crate::kernels::avx512::{self, LANES, View};

/// Sizes the direct path derives from the op's geometry.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// Output channels rounded up to a multiple of 16.
    vp: usize,
    /// Pixels per kernel block, and the output row length padded to it.
    p: usize,
    wo_pad: usize,
    /// The zero-padded image: `[c, hp, wp]`, `wp` long enough for the padded rows.
    hp: usize,
    wp: usize,
}

impl Plan {
    fn of(op: &ConvOp) -> Self {
        let g = op.geo;
        let vp = g.o.div_ceil(LANES) * LANES;
        let p = avx512::block_pixels(g.wo, vp / LANES);
        let wo_pad = g.wo.div_ceil(p) * p;
        Self {
            vp,
            p,
            wo_pad,
            hp: g.h + 2 * g.pad,
            wp: wo_pad + g.kw - 1,
        }
    }

    fn image_view<'a>(&self, xpad: &'a [f32]) -> View<'a> {
        View {
            data: xpad,
            sc: self.hp * self.wp,
            sy: self.wp,
            sx: 1,
        }
    }
}

/// Copies `img [c, h, w]` into the interior of `xpad [c, hp, wp]`, whose border stays zero.
fn pad_image(op: &ConvOp, plan: &Plan, img: &[f32], xpad: &mut [f32]) {
    let g = op.geo;
    for ci in 0..g.c {
        for iy in 0..g.h {
            let dst = (ci * plan.hp + iy + g.pad) * plan.wp + g.pad;
            let src = (ci * g.h + iy) * g.w;
            xpad[dst..dst + g.w].copy_from_slice(&img[src..src + g.w]);
        }
    }
}

/// `w [o, c, kh, kw]` as `[(c, ky, kx), vp]`, the channels zero-padded.
fn kernel_rows(op: &ConvOp, w: &[f32], vp: usize) -> Vec<f32> {
    let g = op.geo;
    let ckk = g.ckk();
    let mut wt = vec![0f32; ckk * vp];
    for oc in 0..g.o {
        for r in 0..ckk {
            wt[r * vp + oc] = w[oc * ckk + r];
        }
    }
    wt
}

/// The forward pass: the op's output `[b, o, h, w]` and, when pooling, each output's
/// window position.
pub(super) fn forward(
    op: &ConvOp,
    x: &[f32],
    w: &[f32],
    bias: &[f32],
) -> Result<(Vec<f32>, Vec<u8>)> {
    let g = op.geo;
    let plan = Plan::of(op);
    let (chw, hw, per) = (g.chw(), g.hw(), op.out_len());
    let wt = kernel_rows(op, w, plan.vp);
    let (_, ph, pw) = op.out_dims();
    let mut out = vec![0f32; g.b * per];
    let mut argmax = vec![0u8; if op.epi.pool { g.b * per } else { 0 }];
    let run = |chunk: usize, out: &mut [f32], arg: &mut [u8]| -> Result<()> {
        let mut xpad = vec![0f32; g.c * plan.hp * plan.wp];
        let mut plane = vec![0f32; g.ho * plan.wo_pad * plan.vp];
        for (s, out) in out.chunks_mut(per).enumerate() {
            let i = chunk * CHUNK + s;
            pad_image(op, &plan, &x[i * chw..(i + 1) * chw], &mut xpad);
            avx512::conv(
                plan.image_view(&xpad),
                (g.c, g.kh, g.kw),
                &wt,
                plan.vp,
                &mut plane,
                (g.ho, plan.wo_pad, plan.p),
            )?;
            if op.epi.pool {
                avx512::pool_bias_relu(
                    &plane,
                    (plan.wo_pad, plan.vp),
                    bias,
                    op.epi.relu,
                    (ph, pw),
                    out,
                    &mut arg[s * per..(s + 1) * per],
                )?;
            } else {
                for (oc, dst) in out.chunks_mut(hw).enumerate() {
                    for (pix, d) in dst.iter_mut().enumerate() {
                        let (oy, ox) = (pix / g.wo, pix % g.wo);
                        *d = plane[(oy * plan.wo_pad + ox) * plan.vp + oc];
                    }
                    bias_relu(dst, bias[oc], op.epi.relu);
                }
            }
        }
        Ok(())
    };
    if op.epi.pool {
        out.par_chunks_mut(CHUNK * per)
            .zip(argmax.par_chunks_mut(CHUNK * per))
            .enumerate()
            .try_for_each(|(c, (o, a))| run(c, o, a))?;
    } else {
        out.par_chunks_mut(CHUNK * per)
            .enumerate()
            .try_for_each(|(c, o)| run(c, o, &mut []))?;
    }
    Ok((out, argmax))
}

/// The input gradient (when asked for), the kernel gradient and the bias gradient.
type Gradients = (Option<Vec<f32>>, Vec<f32>, Vec<f32>);

/// The backward pass: the input gradient (when `want_dx`), the kernel gradient
/// `[o, c, kh, kw]` and the bias gradient.
pub(super) fn backward(
    op: &ConvOp,
    x: &[f32],
    w: &[f32],
    res: &[f32],
    grad: &[f32],
    argmax: &[u8],
    want_dx: bool,
) -> Result<Gradients> {
    let g = op.geo;
    let plan = Plan::of(op);
    let (chw, ckk, per, vp) = (g.chw(), g.ckk(), op.out_len(), plan.vp);
    // The input gradient is a convolution of the bordered gradient plane with the
    // flipped kernel, over the padded image's `hp x wp_true` positions.
    let cp = g.c.div_ceil(LANES) * LANES;
    let wp_true = g.w + 2 * g.pad;
    let px = avx512::block_pixels(wp_true, cp / LANES);
    let wx_pad = wp_true.div_ceil(px) * px;
    let (hq, wq) = (g.ho + 2 * (g.kh - 1), wx_pad + g.kw - 1);
    let mut flipped = vec![0f32; if want_dx { g.o * g.kh * g.kw * cp } else { 0 }];
    if want_dx {
        for oc in 0..g.o {
            for ci in 0..g.c {
                for ky in 0..g.kh {
                    for kx in 0..g.kw {
                        let src = ((oc * g.c + ci) * g.kh + g.kh - 1 - ky) * g.kw + g.kw - 1 - kx;
                        flipped[((oc * g.kh + ky) * g.kw + kx) * cp + ci] = w[src];
                    }
                }
            }
        }
    }
    let mut dx = vec![0f32; if want_dx { g.b * chw } else { 0 }];
    let work = |chunk: usize, dx: &mut [f32]| -> Result<(Vec<f32>, Vec<f32>)> {
        let mut dwt = vec![0f32; ckk * vp];
        let mut db = vec![0f32; g.o];
        let mut xpad = vec![0f32; g.c * plan.hp * plan.wp];
        let mut gplane = vec![0f32; hq * wq * vp];
        let mut dxpad = vec![0f32; if want_dx { plan.hp * wx_pad * cp } else { 0 }];
        let first = chunk * CHUNK;
        for i in first..(first + CHUNK).min(g.b) {
            for oy in 0..g.ho {
                let row = ((oy + g.kh - 1) * wq + g.kw - 1) * vp;
                gplane[row..row + g.wo * vp].fill(0.0);
            }
            let arg = if op.epi.pool {
                &argmax[i * per..(i + 1) * per]
            } else {
                &[][..]
            };
            op.route(
                &grad[i * per..(i + 1) * per],
                &res[i * per..(i + 1) * per],
                arg,
                |oc, pix, v| {
                    let (oy, ox) = (pix / g.wo + g.kh - 1, pix % g.wo + g.kw - 1);
                    gplane[(oy * wq + ox) * vp + oc] = v;
                    db[oc] += v;
                },
            );
            pad_image(op, &plan, &x[i * chw..(i + 1) * chw], &mut xpad);
            let interior = ((g.kh - 1) * wq + g.kw - 1) * vp;
            avx512::weight_grad(
                plan.image_view(&xpad),
                (g.c, g.kh, g.kw),
                View {
                    data: &gplane[interior..],
                    sc: 0,
                    sy: wq * vp,
                    sx: vp,
                },
                (g.ho, g.wo),
                &mut dwt,
                vp,
            )?;
            if want_dx {
                avx512::conv(
                    View {
                        data: &gplane,
                        sc: 1,
                        sy: wq * vp,
                        sx: vp,
                    },
                    (g.o, g.kh, g.kw),
                    &flipped,
                    cp,
                    &mut dxpad,
                    (plan.hp, wx_pad, px),
                )?;
                let s = i - first;
                let dxs = &mut dx[s * chw..(s + 1) * chw];
                for ci in 0..g.c {
                    for iy in 0..g.h {
                        for ix in 0..g.w {
                            dxs[(ci * g.h + iy) * g.w + ix] =
                                dxpad[((iy + g.pad) * wx_pad + ix + g.pad) * cp + ci];
                        }
                    }
                }
            }
        }
        Ok((dwt, db))
    };
    let partials = if want_dx {
        dx.par_chunks_mut(CHUNK * chw)
            .enumerate()
            .map(|(c, d)| work(c, d))
            .collect::<Result<Vec<_>>>()?
    } else {
        (0..g.b.div_ceil(CHUNK))
            .into_par_iter()
            .map(|c| work(c, &mut []))
            .collect::<Result<Vec<_>>>()?
    };
    let mut dw = vec![0f32; g.o * ckk];
    let mut db = vec![0f32; g.o];
    for (pw_, pb) in &partials {
        for oc in 0..g.o {
            for r in 0..ckk {
                dw[oc * ckk + r] += pw_[r * vp + oc];
            }
        }
        db.iter_mut().zip(pb).for_each(|(a, b)| *a += b);
    }
    Ok((want_dx.then_some(dx), dw, db))
}

#[cfg(test)]
mod tests {
    use super::super::pool2;
    use super::*;

    /// The vector pool gives the scalar pool's bits, maxima and positions: ties (the first
    /// maximum wins), NaN in any window position, -0 against +0, negative maxima that the
    /// ReLU clips; channel counts below, at and past one vector.
    #[test]
    fn the_vector_pool_is_the_scalar_pool() {
        if !avx512::available() {
            return;
        }
        let specials = [f32::NAN, 0.0, -0.0, 1.5, 1.5, -2.0, f32::INFINITY, -1.0];
        for o in [1usize, 6, 16, 21] {
            let (ho, wo, ph, pw) = (5, 7, 2, 3);
            let vp = o.div_ceil(LANES) * LANES;
            // Channel-major planes for the scalar pool, channel-last for the vector one.
            let value = |c: usize, y: usize, x: usize| {
                let k = (c * 31 + y * 7 + x * 3) % 23;
                if k < specials.len() {
                    specials[k]
                } else {
                    (k as f32 - 11.0) * 0.25
                }
            };
            let mut planes = vec![0f32; o * ho * wo];
            let mut last = vec![0f32; ho * wo * vp];
            for c in 0..o {
                for y in 0..ho {
                    for x in 0..wo {
                        planes[(c * ho + y) * wo + x] = value(c, y, x);
                        last[(y * wo + x) * vp + c] = value(c, y, x);
                    }
                }
            }
            let bias: Vec<f32> = (0..o).map(|c| c as f32 * 0.5 - 2.0).collect();
            for relu in [false, true] {
                let mut want = vec![0f32; o * ph * pw];
                let mut want_arg = vec![0u8; o * ph * pw];
                pool2(&planes, ho, wo, &mut want, &mut want_arg);
                for (c, plane) in want.chunks_mut(ph * pw).enumerate() {
                    bias_relu(plane, bias[c], relu);
                }
                let mut got = vec![0f32; o * ph * pw];
                let mut got_arg = vec![0u8; o * ph * pw];
                avx512::pool_bias_relu(
                    &last,
                    (wo, vp),
                    &bias,
                    relu,
                    (ph, pw),
                    &mut got,
                    &mut got_arg,
                )
                .expect("pool");
                assert_eq!(got_arg, want_arg, "{o} channels, relu {relu}");
                for (g, w) in got.iter().zip(&want) {
                    assert!(
                        g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
                        "{o} channels, relu {relu}: {g} against {w}"
                    );
                }
            }
        }
    }

    /// Shapes that do not fit are errors, not out-of-bounds reads.
    #[test]
    fn the_kernels_refuse_views_that_do_not_fit() {
        if !avx512::available() {
            return;
        }
        let input = vec![0f32; 10];
        let view = View {
            data: &input,
            sc: 100,
            sy: 5,
            sx: 1,
        };
        let wt = vec![0f32; 2 * 9 * LANES];
        let mut out = vec![0f32; 4 * 4 * LANES];
        let e = avx512::conv(view, (2, 3, 3), &wt, LANES, &mut out, (4, 4, 4))
            .expect_err("the input holds 10 elements, not two channels of 6x6");
        assert!(e.to_string().contains("do not fit"), "{e}");
        let mut dwt = vec![0f32; 2 * 9 * LANES];
        let grad = View {
            data: &out,
            sc: 0,
            sy: 4 * LANES,
            sx: LANES,
        };
        let e = avx512::weight_grad(view, (2, 3, 3), grad, (4, 4), &mut dwt, LANES)
            .expect_err("the input is too small");
        assert!(e.to_string().contains("do not fit"), "{e}");
    }
}
