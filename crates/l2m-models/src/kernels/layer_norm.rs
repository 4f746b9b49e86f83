//! Layer normalisation over the last dimension, `y = (x - mean) / sqrt(var + eps) * w + b`,
//! as one Candle custom op with its backward pass.
//!
//! Composed of Candle's operations (candle-nn 0.11.1's fused `LayerNorm` has no backward
//! pass), it takes eleven passes over the input forward and about twice as many backward,
//! each allocating a tensor of the input's size. Here one pass per row computes the
//! statistics and the output; the backward pass recomputes `x_hat` from the input and
//! gives, per row, `dx = rstd * (g - mean(g) - x_hat * mean(g * x_hat))` with
//! `g = dy * w`, and `dw = sum(dy * x_hat)`, `db = sum(dy)` over rows, added in fixed
//! chunks of rows so the sums do not depend on the thread count.

use candle_core::{CpuStorage, CustomOp3, Error, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::{slice, with_slice};

/// Rows per rayon task.
const ROWS: usize = 64;

/// The op over `x [.., d]`, `w [d]`, `b [d]`.
pub(crate) struct LayerNormOp {
    pub eps: f32,
}

/// `(mean, 1 / sqrt(var + eps))` of a row.
fn stats(row: &[f32], eps: f32) -> (f32, f32) {
    let d = row.len() as f32;
    let mean = row.iter().sum::<f32>() / d;
    let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / d;
    (mean, 1.0 / (var + eps).sqrt())
}

impl CustomOp3 for LayerNormOp {
    fn name(&self) -> &'static str {
        "l2m-layer-norm"
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
        let (x, w, b) = (slice(s1, l1)?, slice(s2, l2)?, slice(s3, l3)?);
        let d = l1.dims().last().copied().unwrap_or(0);
        if d == 0 || w.len() != d || b.len() != d {
            return Err(Error::Msg(format!(
                "layer norm: rows of {d}, weight of {}, bias of {}: expected equal and positive",
                w.len(),
                b.len()
            )));
        }
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(ROWS * d)
            .zip(x.par_chunks(ROWS * d))
            .for_each(|(y, x)| {
                for (y, x) in y.chunks_mut(d).zip(x.chunks(d)) {
                    let (mean, rstd) = stats(x, self.eps);
                    for (((y, &x), &w), &b) in y.iter_mut().zip(x).zip(w).zip(b) {
                        *y = (x - mean) * rstd * w + b;
                    }
                }
            });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let d = x.dims().last().copied().unwrap_or(1).max(1);
        let mut dx = vec![0f32; x.elem_count()];
        let partials = with_slice(x, |xs| {
            with_slice(w, |ws| {
                with_slice(grad, |gs| {
                    Ok(dx
                        .par_chunks_mut(ROWS * d)
                        .zip(xs.par_chunks(ROWS * d).zip(gs.par_chunks(ROWS * d)))
                        .map(|(dx, (x, dy))| {
                            let (mut dw, mut db) = (vec![0f32; d], vec![0f32; d]);
                            let mut g = vec![0f32; d];
                            let mut xhat = vec![0f32; d];
                            for (dx, (x, dy)) in dx.chunks_mut(d).zip(x.chunks(d).zip(dy.chunks(d)))
                            {
                                let (mean, rstd) = stats(x, self.eps);
                                let (mut mg, mut mgx) = (0f32, 0f32);
                                for j in 0..d {
                                    xhat[j] = (x[j] - mean) * rstd;
                                    g[j] = dy[j] * ws[j];
                                    mg += g[j];
                                    mgx += g[j] * xhat[j];
                                    dw[j] += dy[j] * xhat[j];
                                    db[j] += dy[j];
                                }
                                let (mg, mgx) = (mg / d as f32, mgx / d as f32);
                                for j in 0..d {
                                    dx[j] = rstd * (g[j] - mg - xhat[j] * mgx);
                                }
                            }
                            (dw, db)
                        })
                        .collect::<Vec<_>>())
                })
            })
        })?;
        let (mut dw, mut db) = (vec![0f32; d], vec![0f32; d]);
        for (pw, pb) in &partials {
            dw.iter_mut().zip(pw).for_each(|(a, b)| *a += b);
            db.iter_mut().zip(pb).for_each(|(a, b)| *a += b);
        }
        let dev = x.device();
        let dx = if x.track_op() {
            Some(Tensor::from_vec(dx, x.shape(), dev)?)
        } else {
            None
        };
        Ok((
            dx,
            Some(Tensor::from_vec(dw, d, dev)?),
            Some(Tensor::from_vec(db, d, dev)?),
        ))
    }
}
