//! Per-row mean squared error with its backward pass.
//!
//! The reconstruction loss `mean over d of (output - target)^2`, one value per sample, as
//! one op: Candle's composition (`sub`, `sqr`, `mean`) allocates two full-size tensors in
//! the forward pass and four in the backward pass. Gradient: `2 (output - target) / d`
//! times the row's incoming gradient, for the output (and its negative for the target, if
//! the target is tracked).

use candle_core::{CpuStorage, CustomOp2, Error, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::{slice, with_slice};

/// Rows per rayon task.
const ROWS: usize = 32;

/// Below this many elements the forward pass runs on the calling thread.
const PARALLEL_ROWS_MIN: usize = 1 << 15;

/// `l[r] = mean over the row of (o - t)^2` for the rows of `o` and `t` (`d` wide).
fn row_means(l: &mut [f32], o: &[f32], t: &[f32], d: usize) {
    for (l, (o, t)) in l.iter_mut().zip(o.chunks(d).zip(t.chunks(d))) {
        let s: f32 = o.iter().zip(t).map(|(a, b)| (a - b) * (a - b)).sum();
        *l = s / d as f32;
    }
}

/// The op over `output [n, d]` and `target [n, d]`.
pub(crate) struct RowMse {
    pub n: usize,
    pub d: usize,
}

impl CustomOp2 for RowMse {
    fn name(&self) -> &'static str {
        "l2m-row-mse"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (o, t) = (slice(s1, l1)?, slice(s2, l2)?);
        let (n, d) = (self.n, self.d.max(1));
        if o.len() != n * self.d || t.len() != n * self.d {
            return Err(Error::Msg(format!(
                "row mse: output {} and target {} elements, {n} x {} expected",
                o.len(),
                t.len(),
                self.d
            )));
        }
        let mut loss = vec![0f32; n];
        if n * d < PARALLEL_ROWS_MIN {
            loss.chunks_mut(ROWS)
                .zip(o.chunks(ROWS * d).zip(t.chunks(ROWS * d)))
                .for_each(|(l, (o, t))| row_means(l, o, t, d));
        } else {
            loss.par_chunks_mut(ROWS)
                .zip(o.par_chunks(ROWS * d).zip(t.par_chunks(ROWS * d)))
                .for_each(|(l, (o, t))| row_means(l, o, t, d));
        }
        Ok((CpuStorage::F32(loss), Shape::from(n)))
    }

    fn bwd(
        &self,
        output: &Tensor,
        target: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let d = self.d.max(1);
        let scale = 2.0 / d as f32;
        let dout = with_slice(output, |o| {
            with_slice(target, |t| {
                with_slice(grad, |g| {
                    let mut dout = vec![0f32; o.len()];
                    super::for_each_chunk(&mut dout, ROWS * d, |i, dr| {
                        let (o, t) = (&o[i * ROWS * d..], &t[i * ROWS * d..]);
                        let g = &g[i * ROWS..];
                        for (((dr, o), t), g) in
                            dr.chunks_mut(d).zip(o.chunks(d)).zip(t.chunks(d)).zip(g)
                        {
                            let k = scale * g;
                            for (x, (a, b)) in dr.iter_mut().zip(o.iter().zip(t)) {
                                *x = k * (a - b);
                            }
                        }
                    });
                    Ok(dout)
                })
            })
        })?;
        let dout = Tensor::from_vec(dout, output.shape(), output.device())?;
        let dtarget = if target.track_op() {
            Some(dout.neg()?)
        } else {
            None
        };
        Ok((Some(dout), dtarget))
    }
}
