//! A linear layer `act(x W^T + b)` as one Candle custom op with its backward pass.
//!
//! Candle builds `Linear` from a matmul and a broadcast add, and the activation is a third
//! op; each allocates its output, and in the backward pass each node allocates its gradient
//! twice (a zero tensor and the sum). Here the product is written once and the bias and
//! activation applied in place; the backward pass computes `g' = g * act'(y)` from the
//! output alone, then `dx = g' W`, `dW = g'^T x` and `db = sum over rows of g'`.

use candle_core::{CpuStorage, CustomOp3, Error, Layout, Result, Shape, Tensor};

use super::gemm::{self, rows, rows_mut};
use super::{slice, with_slice};

/// Rows per rayon task in the element-wise passes.
const ROWS: usize = 64;

/// The activation applied after the bias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Activation {
    /// None.
    Identity,
    /// `max(0, z)`.
    Relu,
    /// `1 / (1 + exp(-z))`.
    Sigmoid,
}

impl Activation {
    fn apply(self, z: f32) -> f32 {
        match self {
            Activation::Identity => z,
            Activation::Relu => z.max(0.0),
            Activation::Sigmoid => 1.0 / (1.0 + (-z).exp()),
        }
    }

    /// The derivative at the pre-activation, from the output `y`.
    fn derivative(self, y: f32) -> f32 {
        match self {
            Activation::Identity => 1.0,
            Activation::Relu => {
                if y > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::Sigmoid => y * (1.0 - y),
        }
    }
}

/// Sums of the columns of `rows` (row-major, `width` wide).
fn column_sums(rows: &[f32], width: usize) -> Vec<f32> {
    let mut sums = vec![0f32; width];
    for row in rows.chunks(width) {
        sums.iter_mut().zip(row).for_each(|(a, b)| *a += b);
    }
    sums
}

/// The op over `x [n, in]`, `w [out, in]`, `b [out]`.
pub(crate) struct LinearOp {
    pub n: usize,
    pub inp: usize,
    pub out: usize,
    pub act: Activation,
}

impl LinearOp {
    fn check(&self, what: &str, got: usize, want: usize) -> Result<()> {
        if got == want {
            Ok(())
        } else {
            Err(Error::Msg(format!(
                "linear: the {what} has {got} elements, {want} expected"
            )))
        }
    }
}

impl CustomOp3 for LinearOp {
    fn name(&self) -> &'static str {
        "l2m-linear"
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
        let (n, inp, out) = (self.n, self.inp, self.out);
        self.check("input", x.len(), n * inp)?;
        self.check("weight", w.len(), out * inp)?;
        self.check("bias", b.len(), out)?;
        let mut y = vec![0f32; n * out];
        gemm::matmul_parallel(
            rows_mut(&mut y, n, out),
            rows(x, n, inp),
            rows(w, out, inp).t(),
            false,
        )?;
        let act = self.act;
        super::for_each_chunk(&mut y, ROWS * out.max(1), |_, chunk| {
            for row in chunk.chunks_mut(out.max(1)) {
                for (v, &b) in row.iter_mut().zip(b) {
                    *v = act.apply(*v + b);
                }
            }
        });
        Ok((CpuStorage::F32(y), Shape::from((n, out))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, inp, out) = (self.n, self.inp, self.out);
        let act = self.act;
        let width = out.max(1);
        let (dw, db, dx) = with_slice(grad, |g| {
            self.check("output gradient", g.len(), n * out)?;
            // g' = g * act'(y); the identity's g' is g itself.
            let mut scaled = Vec::new();
            if act != Activation::Identity {
                scaled = vec![0f32; g.len()];
                with_slice(res, |y| {
                    let step = ROWS * width;
                    super::for_each_chunk(&mut scaled, step, |i, d| {
                        let (g, y) = (&g[i * step..], &y[i * step..]);
                        for (d, (g, y)) in d.iter_mut().zip(g.iter().zip(y)) {
                            *d = g * act.derivative(*y);
                        }
                    });
                    Ok(())
                })?;
            }
            let g: &[f32] = if act == Activation::Identity {
                g
            } else {
                &scaled
            };
            // The bias gradient sums the rows in order, on one thread (a fixed order, and
            // cheap next to the products).
            let db = column_sums(g, width);
            let mut dw = vec![0f32; out * inp];
            let want_dx = x.track_op();
            let mut dx = vec![0f32; if want_dx { n * inp } else { 0 }];
            with_slice(x, |xs| {
                with_slice(w, |ws| {
                    // dW [out, in] = g'^T [out, n] x x [n, in] and, when the input is
                    // tracked, dx [n, in] = g' [n, out] x W [out, in]: two products of the
                    // same size, run side by side.
                    let mut dw_product = || {
                        gemm::matmul_parallel(
                            rows_mut(&mut dw, out, inp),
                            rows(g, n, out).t(),
                            rows(xs, n, inp),
                            false,
                        )
                    };
                    if want_dx {
                        let (a, b) = rayon::join(dw_product, || {
                            gemm::matmul_parallel(
                                rows_mut(&mut dx, n, inp),
                                rows(g, n, out),
                                rows(ws, out, inp),
                                false,
                            )
                        });
                        a.and(b)
                    } else {
                        dw_product()
                    }
                })
            })?;
            Ok((dw, db, want_dx.then_some(dx)))
        })?;
        let dev = x.device();
        Ok((
            dx.map(|d| Tensor::from_vec(d, (n, inp), dev)).transpose()?,
            Some(Tensor::from_vec(dw, (out, inp), dev)?),
            Some(Tensor::from_vec(db, out, dev)?),
        ))
    }
}
