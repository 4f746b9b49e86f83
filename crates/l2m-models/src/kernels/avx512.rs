//! Direct stride-1 convolution on AVX-512: the products of the convolution op without
//! im2col, with the output channels across the 16 lanes of a vector.
//!
//! Two micro-kernels do all the work:
//!
//! - [`conv`]: `out[pix, v] = sum over (c, ky, kx) of input(c, oy + ky, ox + kx) *
//!   wt[(c, ky, kx), v]`, for a block of `P` pixels of one output row and up to four
//!   vectors of 16 output channels, all `P x V` sums in registers: per kernel tap one load
//!   per weight vector, one broadcast per pixel and `P x V` fused multiply-adds. The
//!   forward pass is this kernel on the (zero-padded) image; the input gradient is the same
//!   kernel on the zero-padded output gradient with the kernel flipped.
//! - [`weight_grad`]: `dwt[(c, ky, kx), v] += sum over pixels of input(c, oy + ky, ox +
//!   kx) * g[pix, v]`, with the sums of up to five kernel columns by four vectors in
//!   registers.
//!
//! Inputs are read through a [`View`] with arbitrary strides, so the same kernels read an
//! image `[c, h, w]` and a channel-last gradient `[h, w, c]`. Every call checks once that
//! every element its loops can touch lies inside its slices; the loops then use unchecked
//! pointer arithmetic. The result does not depend on the thread count: the callers split
//! work by sample.
#![allow(
    unsafe_code,
    reason = "AVX-512 intrinsics and the unchecked loads of the inner loops; each public \
              function checks the extents of every slice before entering them"
)]

use std::arch::x86_64::{
    __m512, __m512i, _CMP_GT_OQ, _CMP_UNORD_Q, _mm512_add_ps, _mm512_cmp_ps_mask, _mm512_fmadd_ps,
    _mm512_loadu_ps, _mm512_mask_mov_epi32, _mm512_mask_mov_ps, _mm512_max_ps, _mm512_set1_epi32,
    _mm512_set1_ps, _mm512_setzero_ps, _mm512_setzero_si512, _mm512_storeu_epi32, _mm512_storeu_ps,
};
use std::sync::OnceLock;

use candle_core::{Error, Result};

/// Lanes of an `f32` vector.
pub(crate) const LANES: usize = 16;

/// Whether this CPU runs the kernels (AVX-512F, detected once).
pub(crate) fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| std::arch::is_x86_feature_detected!("avx512f"))
}

/// A read-only 3-D view: element `(c, y, x)` is `data[c * sc + y * sy + x * sx]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct View<'a> {
    pub data: &'a [f32],
    pub sc: usize,
    pub sy: usize,
    pub sx: usize,
}

impl View<'_> {
    /// Whether every element `(c, y, x)` with `c < nc`, `y < ny`, `x < nx` is inside.
    fn covers(&self, nc: usize, ny: usize, nx: usize) -> bool {
        if nc == 0 || ny == 0 || nx == 0 {
            return true;
        }
        let last = (nc - 1)
            .checked_mul(self.sc)
            .and_then(|a| a.checked_add((ny - 1).checked_mul(self.sy)?))
            .and_then(|a| a.checked_add((nx - 1).checked_mul(self.sx)?));
        last.is_some_and(|l| l < self.data.len())
    }
}

/// Pixels per block of [`conv`] for an output row of `wo` pixels and `vectors` vectors of
/// output channels: the block size among those with at most 28 accumulators that pads the
/// row least (the larger on a tie). Rows are padded to a multiple of it.
pub(crate) fn block_pixels(wo: usize, vectors: usize) -> usize {
    let v = vectors.clamp(1, 4);
    [14usize, 12, 8, 6, 4]
        .into_iter()
        .filter(|p| p * v <= 28)
        .min_by_key(|&p| wo.div_ceil(p) * p - wo)
        .unwrap_or(4)
}

/// `out[(oy * wo + ox) * vp + v] = sum over c < nc, ky < kh, kx < kw of
/// input(c, oy + ky, ox + kx) * wt[((c * kh + ky) * kw + kx) * vp + v]`, for `oy < ho`,
/// `ox < wo` and `v < vp`; `vp` is a multiple of [`LANES`] and `wo` of `p` (from
/// [`block_pixels`] for `vp / LANES` vectors).
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv(
    input: View<'_>,
    (nc, kh, kw): (usize, usize, usize),
    wt: &[f32],
    vp: usize,
    out: &mut [f32],
    (ho, wo, p): (usize, usize, usize),
) -> Result<()> {
    let shapes_ok = vp.is_multiple_of(LANES)
        && p > 0
        && wo.is_multiple_of(p)
        && p * vp.div_ceil(LANES).min(4) <= 28
        && wt.len() == nc * kh * kw * vp
        && out.len() == ho * wo * vp
        && input.covers(nc, ho + kh - 1, wo + kw - 1);
    if !shapes_ok {
        return Err(Error::Msg(format!(
            "direct conv: shapes do not fit (c {nc}, kernel {kh}x{kw}, {vp} channels, \
             output {ho}x{wo} in blocks of {p}, input of {}, weights of {}, output of {})",
            input.data.len(),
            wt.len(),
            out.len()
        )));
    }
    if !available() {
        return Err(Error::Msg("direct conv: this CPU has no AVX-512F".into()));
    }
    if ho * wo * vp == 0 {
        return Ok(());
    }
    let mut v0 = 0;
    while v0 < vp {
        let v = ((vp - v0) / LANES).min(4);
        for oy in 0..ho {
            for ox in (0..wo).step_by(p) {
                let at = (oy * wo + ox) * vp + v0;
                let args = Block {
                    input: input.data[oy * input.sy + ox * input.sx..].as_ptr(),
                    sc: input.sc,
                    sy: input.sy,
                    sx: input.sx,
                    nc,
                    kh,
                    kw,
                    wt: wt[v0..].as_ptr(),
                    vp,
                    out: out[at..].as_mut_ptr(),
                };
                // SAFETY: `available` checked AVX-512F; `shapes_ok` checked that every
                // input element (c, oy + ky, ox + p' + kx), every weight row and every
                // output element of this block is inside its slice (the block's pixels
                // are `ox .. ox + p` with `ox + p <= wo`, its vectors `v0 .. v0 + 16 v`
                // with `v0 + 16 v <= vp`).
                unsafe {
                    match (v, p) {
                        (1, 14) => conv_block::<14, 1>(&args),
                        (1, 12) => conv_block::<12, 1>(&args),
                        (1, 8) => conv_block::<8, 1>(&args),
                        (1, 6) => conv_block::<6, 1>(&args),
                        (1, _) => conv_block::<4, 1>(&args),
                        (2, 12) => conv_block::<12, 2>(&args),
                        (2, 8) => conv_block::<8, 2>(&args),
                        (2, 6) => conv_block::<6, 2>(&args),
                        (2, _) => conv_block::<4, 2>(&args),
                        (3, 8) => conv_block::<8, 3>(&args),
                        (3, 6) => conv_block::<6, 3>(&args),
                        (3, _) => conv_block::<4, 3>(&args),
                        (_, 6) => conv_block::<6, 4>(&args),
                        (_, _) => conv_block::<4, 4>(&args),
                    }
                }
            }
        }
        v0 += v * LANES;
    }
    Ok(())
}

/// The arguments of one block of [`conv`], as raw pointers.
struct Block {
    input: *const f32,
    sc: usize,
    sy: usize,
    sx: usize,
    nc: usize,
    kh: usize,
    kw: usize,
    wt: *const f32,
    vp: usize,
    out: *mut f32,
}

/// `P` pixels by `V` vectors of [`conv`], the sums in registers.
///
/// # Safety
/// AVX-512F must be available; every input element `(c, ky, p * sx + kx)` (relative to
/// `input`), the `nc * kh * kw` weight rows of `V` vectors (stride `vp`) and the `P` output
/// rows of `V` vectors must be inside their allocations.
#[target_feature(enable = "avx512f")]
unsafe fn conv_block<const P: usize, const V: usize>(b: &Block) {
    let mut acc = [[_mm512_setzero_ps(); V]; P];
    let mut w = [_mm512_setzero_ps(); V];
    let mut tap = 0;
    for c in 0..b.nc {
        for ky in 0..b.kh {
            for kx in 0..b.kw {
                // SAFETY: inside the extents the caller guarantees.
                unsafe {
                    for (j, w) in w.iter_mut().enumerate() {
                        *w = _mm512_loadu_ps(b.wt.add(tap * b.vp + j * LANES));
                    }
                    let row = b.input.add(c * b.sc + ky * b.sy + kx * b.sx);
                    for (p, acc) in acc.iter_mut().enumerate() {
                        let x = _mm512_set1_ps(*row.add(p * b.sx));
                        for (a, w) in acc.iter_mut().zip(&w) {
                            *a = _mm512_fmadd_ps(x, *w, *a);
                        }
                    }
                }
                tap += 1;
            }
        }
    }
    for (p, acc) in acc.iter().enumerate() {
        for (j, a) in acc.iter().enumerate() {
            // SAFETY: inside the extents the caller guarantees.
            unsafe { _mm512_storeu_ps(b.out.add(p * b.vp + j * LANES), *a) };
        }
    }
}

/// `dwt[((c * kh + ky) * kw + kx) * vp + v] += sum over oy < ho, ox < wo of
/// input(c, oy + ky, ox + kx) * g(oy, ox, v)`, where `g(oy, ox, v)` is
/// `grad.data[oy * grad.sy + ox * grad.sx + v]` (`grad.sc` unused) and `vp` a multiple of
/// [`LANES`].
pub(crate) fn weight_grad(
    input: View<'_>,
    (nc, kh, kw): (usize, usize, usize),
    grad: View<'_>,
    (ho, wo): (usize, usize),
    dwt: &mut [f32],
    vp: usize,
) -> Result<()> {
    let grad_ok = ho * wo == 0
        || grad.covers(1, ho, wo) && {
            let last = (ho - 1) * grad.sy + (wo - 1) * grad.sx;
            last + vp <= grad.data.len()
        };
    let shapes_ok = vp.is_multiple_of(LANES)
        && dwt.len() == nc * kh * kw * vp
        && grad_ok
        && input.covers(nc, ho + kh - 1, wo + kw - 1);
    if !shapes_ok {
        return Err(Error::Msg(format!(
            "direct conv weight gradient: shapes do not fit (c {nc}, kernel {kh}x{kw}, \
             {vp} channels, output {ho}x{wo}, input of {}, gradient of {}, result of {})",
            input.data.len(),
            grad.data.len(),
            dwt.len()
        )));
    }
    if !available() {
        return Err(Error::Msg("direct conv: this CPU has no AVX-512F".into()));
    }
    if ho * wo * vp * nc * kh * kw == 0 {
        return Ok(());
    }
    let mut v0 = 0;
    while v0 < vp {
        let v = ((vp - v0) / LANES).min(4);
        for c in 0..nc {
            for ky in 0..kh {
                let mut kx = 0;
                while kx < kw {
                    let t = match kw - kx {
                        n if n >= 5 => 5,
                        n if n >= 3 => 3,
                        _ => 1,
                    };
                    let args = Tile {
                        input: input.data[c * input.sc + ky * input.sy + kx * input.sx..].as_ptr(),
                        sy: input.sy,
                        sx: input.sx,
                        grad: grad.data[v0..].as_ptr(),
                        gy: grad.sy,
                        gx: grad.sx,
                        ho,
                        wo,
                        dwt: dwt[((c * kh + ky) * kw + kx) * vp + v0..].as_mut_ptr(),
                        vp,
                    };
                    // SAFETY: `available` checked AVX-512F; `shapes_ok` checked every
                    // input element (c, oy + ky, ox + kx + t'), every gradient vector
                    // and every row of `dwt` this tile touches.
                    unsafe {
                        match (t, v) {
                            (5, 1) => grad_tile::<5, 1>(&args),
                            (5, 2) => grad_tile::<5, 2>(&args),
                            (5, 3) => grad_tile::<5, 3>(&args),
                            (5, _) => grad_tile::<5, 4>(&args),
                            (3, 1) => grad_tile::<3, 1>(&args),
                            (3, 2) => grad_tile::<3, 2>(&args),
                            (3, 3) => grad_tile::<3, 3>(&args),
                            (3, _) => grad_tile::<3, 4>(&args),
                            (_, 1) => grad_tile::<1, 1>(&args),
                            (_, 2) => grad_tile::<1, 2>(&args),
                            (_, 3) => grad_tile::<1, 3>(&args),
                            (_, _) => grad_tile::<1, 4>(&args),
                        }
                    }
                    kx += t;
                }
            }
        }
        v0 += v * LANES;
    }
    Ok(())
}

/// The arguments of one tile of [`weight_grad`], as raw pointers.
struct Tile {
    input: *const f32,
    sy: usize,
    sx: usize,
    grad: *const f32,
    gy: usize,
    gx: usize,
    ho: usize,
    wo: usize,
    dwt: *mut f32,
    vp: usize,
}

/// `T` kernel columns by `V` vectors of [`weight_grad`], the sums in registers.
///
/// # Safety
/// AVX-512F must be available; every input element `(oy, ox + t)` and gradient vector
/// `(oy, ox)` for `oy < ho`, `ox < wo`, and the `T` rows of `V` vectors of `dwt` (stride
/// `vp`), must be inside their allocations.
#[target_feature(enable = "avx512f")]
unsafe fn grad_tile<const T: usize, const V: usize>(a: &Tile) {
    let mut acc = [[_mm512_setzero_ps(); V]; T];
    let mut g = [_mm512_setzero_ps(); V];
    for oy in 0..a.ho {
        for ox in 0..a.wo {
            // SAFETY: inside the extents the caller guarantees.
            unsafe {
                let gp = a.grad.add(oy * a.gy + ox * a.gx);
                for (j, g) in g.iter_mut().enumerate() {
                    *g = _mm512_loadu_ps(gp.add(j * LANES));
                }
                let xp = a.input.add(oy * a.sy + ox * a.sx);
                for (t, acc) in acc.iter_mut().enumerate() {
                    let x = _mm512_set1_ps(*xp.add(t * a.sx));
                    for (s, g) in acc.iter_mut().zip(&g) {
                        *s = _mm512_fmadd_ps(x, *g, *s);
                    }
                }
            }
        }
    }
    for (t, acc) in acc.iter().enumerate() {
        for (j, s) in acc.iter().enumerate() {
            // SAFETY: inside the extents the caller guarantees.
            unsafe {
                let d = a.dwt.add(t * a.vp + j * LANES);
                _mm512_storeu_ps(d, _mm512_add_ps(_mm512_loadu_ps(d), *s));
            }
        }
    }
}

/// 2x2 max pooling (stride 2) of a channel-last plane `conv[(y * wp + x) * vp + v]` with
/// bias and optional ReLU on the maxima: `out[(v * ph + py) * pw + px]` and the window
/// position of the first maximum in `arg` (same index), for `v < o`. NaN propagates, as in
/// the scalar pool.
#[allow(clippy::too_many_arguments)]
pub(crate) fn pool_bias_relu(
    conv: &[f32],
    (wp, vp): (usize, usize),
    bias: &[f32],
    relu: bool,
    (ph, pw): (usize, usize),
    out: &mut [f32],
    arg: &mut [u8],
) -> Result<()> {
    let o = bias.len();
    let shapes_ok = vp.is_multiple_of(LANES)
        && o <= vp
        && 2 * pw <= wp
        && conv.len() >= 2 * ph * wp * vp
        && out.len() == o * ph * pw
        && arg.len() == o * ph * pw;
    if !shapes_ok {
        return Err(Error::Msg(format!(
            "direct conv pool: shapes do not fit ({o} of {vp} channels, {ph}x{pw} from \
             rows of {wp}, input of {}, output of {})",
            conv.len(),
            out.len()
        )));
    }
    if !available() {
        return Err(Error::Msg("direct conv: this CPU has no AVX-512F".into()));
    }
    let mut b = vec![0f32; vp];
    b[..o].copy_from_slice(bias);
    let mut best = [0f32; LANES];
    let mut at = [0i32; LANES];
    for py in 0..ph {
        for px in 0..pw {
            for v0 in (0..o).step_by(LANES) {
                let base = (2 * py * wp + 2 * px) * vp + v0;
                let window = [base, base + vp, base + wp * vp, base + (wp + 1) * vp];
                // SAFETY: AVX-512F is available; `shapes_ok` checked that the four window
                // positions' vectors and the bias vector are inside their slices.
                unsafe { pool_vector(conv, window, &b[v0..v0 + LANES], relu, &mut best, &mut at) };
                for l in 0..LANES.min(o - v0) {
                    let j = ((v0 + l) * ph + py) * pw + px;
                    out[j] = best[l];
                    arg[j] = at[l] as u8;
                }
            }
        }
    }
    Ok(())
}

/// One vector of [`pool_bias_relu`].
///
/// # Safety
/// AVX-512F must be available; `conv[w .. w + 16]` must be inside `conv` for each `w` of
/// `window`, and `bias` must hold 16 elements.
#[target_feature(enable = "avx512f")]
unsafe fn pool_vector(
    conv: &[f32],
    window: [usize; 4],
    bias: &[f32],
    relu: bool,
    best: &mut [f32; LANES],
    at: &mut [i32; LANES],
) {
    debug_assert!(window.iter().all(|&w| w + LANES <= conv.len()) && bias.len() >= LANES);
    // SAFETY: the caller guarantees the extents.
    unsafe {
        let mut m: __m512 = _mm512_loadu_ps(conv.as_ptr().add(window[0]));
        let mut pos: __m512i = _mm512_setzero_si512();
        for (k, &w) in window.iter().enumerate().skip(1) {
            let v = _mm512_loadu_ps(conv.as_ptr().add(w));
            let take = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(v, m)
                | (_mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v)
                    & !_mm512_cmp_ps_mask::<_CMP_UNORD_Q>(m, m));
            m = _mm512_mask_mov_ps(m, take, v);
            pos = _mm512_mask_mov_epi32(pos, take, _mm512_set1_epi32(k as i32));
        }
        let mut z = _mm512_add_ps(m, _mm512_loadu_ps(bias.as_ptr()));
        if relu {
            // MAXPS returns its second operand when either is NaN: NaN passes, as
            // `if z < 0 { 0 } else { z }` does, and -0 stays -0.
            z = _mm512_max_ps(_mm512_setzero_ps(), z);
        }
        _mm512_storeu_ps(best.as_mut_ptr(), z);
        _mm512_storeu_epi32(at.as_mut_ptr(), pos);
    }
}
