//! A linear layer `act(x W^T + b)` as one Candle custom op with its backward pass.
//!
//! Candle builds `Linear` from a matmul and a broadcast add, and the activation is a third
//! op; each allocates its output, and in the backward pass each node allocates its gradient
//! twice (a zero tensor and the sum). Here the product is written once and the bias and
//! activation applied in place; the backward pass computes `g' = g * act'(y)` from the
//! output alone, then `dx = g' W`, `dW = g'^T x` and `db = sum over rows of g'`.

use candle_core::{CpuStorage, CustomOp3, Error, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

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
        y.par_chunks_mut(ROWS * out.max(1)).for_each(|chunk| {
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
        // g' = g * act'(y)
        let g = with_slice(grad, |g| {
            self.check("output gradient", g.len(), n * out)?;
            if act == Activation::Identity {
                return Ok(g.to_vec());
            }
            with_slice(res, |y| {
                let mut d = vec![0f32; g.len()];
                d.par_chunks_mut(ROWS * out.max(1))
                    .zip(
                        g.par_chunks(ROWS * out.max(1))
                            .zip(y.par_chunks(ROWS * out.max(1))),
                    )
                    .for_each(|(d, (g, y))| {
                        for (d, (g, y)) in d.iter_mut().zip(g.iter().zip(y)) {
                            *d = g * act.derivative(*y);
                        }
                    });
                Ok(d)
            })
        })?;
        let mut db = vec![0f32; out];
        for row in g.chunks(out.max(1)) {
            db.iter_mut().zip(row).for_each(|(a, b)| *a += b);
        }
        let mut dw = vec![0f32; out * inp];
        let dx = with_slice(x, |xs| {
            // dW [out, in] = g'^T [out, n] x x [n, in]
            gemm::matmul_parallel(
                rows_mut(&mut dw, out, inp),
                rows(&g, n, out).t(),
                rows(xs, n, inp),
                false,
            )?;
            if !x.track_op() {
                return Ok(None);
            }
            with_slice(w, |ws| {
                // dx [n, in] = g' [n, out] x W [out, in]
                let mut dx = vec![0f32; n * inp];
                gemm::matmul_parallel(
                    rows_mut(&mut dx, n, inp),
                    rows(&g, n, out),
                    rows(ws, out, inp),
                    false,
                )?;
                Ok(Some(dx))
            })
        })?;
        let dev = x.device();
        Ok((
            dx.map(|d| Tensor::from_vec(d, (n, inp), dev)).transpose()?,
            Some(Tensor::from_vec(dw, (out, inp), dev)?),
            Some(Tensor::from_vec(db, out, dev)?),
        ))
    }
}
