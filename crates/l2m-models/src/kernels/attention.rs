//! Scaled dot-product attention with a key padding mask and seeded dropout on the
//! attention weights, as one Candle custom op with its backward pass.
//!
//! The composed attention materialises `[B, heads, L, L]` tensors (scores, scaled
//! scores, masked scores, weights, dropout mask, dropped weights) and as many gradients;
//! at the IMDB preset (B 500, L 500) each is 2 GB. Here each (sample, head) is one rayon
//! task working on `L x L` scratch buffers:
//!
//! - forward: `S = Q K^T * scale + key_bias`, `P = softmax(S)` by rows,
//!   `P' = P * mask / keep`, `O = P' V`; the dropout mask is kept as bits;
//! - backward: `S` and `P` are recomputed (two small products) instead of stored, then
//!   `dV = P'^T dO`, `dP = (dO V^T) * mask / keep`, `dS = P * (dP - rowsum(dP * P))`,
//!   `dQ = dS K * scale`, `dK = dS^T Q * scale`.
//!
//! Dropout masks come from ChaCha8 keyed by the layer's seed and call number, one stream
//! per (sample, head), so they do not depend on the thread count.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp3, Error, Layout, Result, Shape, Tensor};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::gemm::{self, rows, rows_mut};
use super::{slice, with_slice};

/// Dropout on the attention weights.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AttentionDropout {
    /// Probability of keeping a weight.
    pub keep: f32,
    /// The key of this call's masks.
    pub key: u64,
}

/// The op over `q`, `k`, `v` `[b, heads, l, dh]`.
pub(crate) struct AttentionOp {
    b: usize,
    heads: usize,
    l: usize,
    dh: usize,
    scale: f32,
    /// Added to the scores of each key: `[b, l]`.
    key_bias: Vec<f32>,
    dropout: Option<AttentionDropout>,
    /// The dropout mask of the forward pass, one bit per weight, `words` per task.
    masks: Mutex<Vec<u64>>,
}

impl AttentionOp {
    pub fn new(
        (b, heads, l, dh): (usize, usize, usize, usize),
        key_bias: Vec<f32>,
        dropout: Option<AttentionDropout>,
    ) -> Result<Self> {
        if key_bias.len() != b * l || dh == 0 || l == 0 {
            return Err(Error::Msg(format!(
                "attention: key bias of {} values for {b} sequences of {l} (at least 1), head size {dh} (at least 1)",
                key_bias.len()
            )));
        }
        Ok(Self {
            b,
            heads,
            l,
            dh,
            scale: (1.0 / (dh as f64).sqrt()) as f32,
            key_bias,
            dropout,
            masks: Mutex::new(Vec::new()),
        })
    }

    fn words(&self) -> usize {
        if self.dropout.is_some() {
            (self.l * self.l).div_ceil(64)
        } else {
            0
        }
    }

    fn task_len(&self) -> usize {
        self.l * self.dh
    }

    /// `s [l, l] = softmax(q k^T * scale + key_bias)` by rows.
    fn weights(&self, task: usize, q: &[f32], k: &[f32], s: &mut [f32]) -> Result<()> {
        let (l, dh) = (self.l, self.dh);
        gemm::matmul(rows_mut(s, l, l), rows(q, l, dh), rows(k, l, dh).t(), false)?;
        let bias = &self.key_bias[(task / self.heads) * l..(task / self.heads + 1) * l];
        for row in s.chunks_mut(l) {
            let mut max = f32::NEG_INFINITY;
            for (v, &b) in row.iter_mut().zip(bias) {
                *v = *v * self.scale + b;
                max = max.max(*v);
            }
            let mut sum = 0f32;
            for v in row.iter_mut() {
                *v = super::exp(*v - max);
                sum += *v;
            }
            let inv = 1.0 / sum;
            row.iter_mut().for_each(|v| *v *= inv);
        }
        Ok(())
    }

    /// Draws task `task`'s mask into `bits`.
    fn draw_mask(&self, d: AttentionDropout, task: usize, bits: &mut [u64]) {
        let mut rng = ChaCha8Rng::seed_from_u64(d.key);
        rng.set_stream(task as u64);
        let threshold = (f64::from(d.keep) * 4_294_967_296.0) as u64;
        bits.fill(0);
        for i in 0..self.l * self.l {
            if u64::from(rng.next_u32()) < threshold {
                bits[i / 64] |= 1 << (i % 64);
            }
        }
    }

    /// `p' = p * mask / keep` in place.
    fn apply_mask(d: AttentionDropout, bits: &[u64], p: &mut [f32]) {
        let inv = 1.0 / d.keep;
        for (i, v) in p.iter_mut().enumerate() {
            *v = if bits[i / 64] >> (i % 64) & 1 == 1 {
                *v * inv
            } else {
                0.0
            };
        }
    }
}

impl CustomOp3 for AttentionOp {
    fn name(&self) -> &'static str {
        "l2m-attention"
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
        let (q, k, v) = (slice(s1, l1)?, slice(s2, l2)?, slice(s3, l3)?);
        let (tasks, per, l) = (self.b * self.heads, self.task_len(), self.l);
        for (name, t) in [("queries", q), ("keys", k), ("values", v)] {
            if t.len() != tasks * per {
                return Err(Error::Msg(format!(
                    "attention: {name} have {} elements, {} expected",
                    t.len(),
                    tasks * per
                )));
            }
        }
        let words = self.words();
        let mut out = vec![0f32; tasks * per];
        let mut masks = vec![0u64; tasks * words];
        let run = |task: usize, out: &mut [f32], bits: &mut [u64], s: &mut Vec<f32>| {
            s.resize(l * l, 0.0);
            let r = task * per..(task + 1) * per;
            self.weights(task, &q[r.clone()], &k[r.clone()], s)?;
            if let Some(d) = self.dropout {
                self.draw_mask(d, task, bits);
                Self::apply_mask(d, bits, s);
            }
            gemm::matmul(
                rows_mut(out, l, self.dh),
                rows(s, l, l),
                rows(&v[r], l, self.dh),
                false,
            )
        };
        if words > 0 {
            out.par_chunks_mut(per)
                .zip(masks.par_chunks_mut(words))
                .enumerate()
                .try_for_each_init(Vec::new, |s, (t, (o, m))| run(t, o, m, s))?;
        } else {
            out.par_chunks_mut(per)
                .enumerate()
                .try_for_each_init(Vec::new, |s, (t, o)| run(t, o, &mut [], s))?;
        }
        *self
            .masks
            .lock()
            .map_err(|_| Error::Msg("attention: mask state poisoned".into()))? = masks;
        Ok((
            CpuStorage::F32(out),
            Shape::from((self.b, self.heads, l, self.dh)),
        ))
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (tasks, per, l, dh) = (self.b * self.heads, self.task_len(), self.l, self.dh);
        let words = self.words();
        let masks = self
            .masks
            .lock()
            .map_err(|_| Error::Msg("attention: mask state poisoned".into()))?;
        if masks.len() != tasks * words {
            return Err(Error::Msg(
                "attention: backward pass without a CPU forward pass".into(),
            ));
        }
        let masks: &[u64] = &masks;
        let mut dq = vec![0f32; tasks * per];
        let mut dk = vec![0f32; tasks * per];
        let mut dv = vec![0f32; tasks * per];
        with_slice(q, |q| {
            with_slice(k, |k| {
                with_slice(v, |v| {
                    with_slice(grad, |g| {
                        dq.par_chunks_mut(per)
                            .zip(dk.par_chunks_mut(per).zip(dv.par_chunks_mut(per)))
                            .enumerate()
                            .try_for_each_init(
                                || (Vec::new(), Vec::new()),
                                |(p, t), (task, (dq, (dk, dv)))| {
                                    p.resize(l * l, 0.0);
                                    t.resize(l * l, 0.0);
                                    let r = task * per..(task + 1) * per;
                                    let (q, k, v, g) =
                                        (&q[r.clone()], &k[r.clone()], &v[r.clone()], &g[r]);
                                    self.weights(task, q, k, p)?;
                                    let bits = &masks[task * words..(task + 1) * words];
                                    // dV = P'^T dO, with P' in t.
                                    t.copy_from_slice(p);
                                    if let Some(d) = self.dropout {
                                        Self::apply_mask(d, bits, t);
                                    }
                                    gemm::matmul(
                                        rows_mut(dv, l, dh),
                                        rows(t, l, l).t(),
                                        rows(g, l, dh),
                                        false,
                                    )?;
                                    // dP = (dO V^T) * mask / keep, in t.
                                    gemm::matmul(
                                        rows_mut(t, l, l),
                                        rows(g, l, dh),
                                        rows(v, l, dh).t(),
                                        false,
                                    )?;
                                    if let Some(d) = self.dropout {
                                        Self::apply_mask(d, bits, t);
                                    }
                                    // dS = P * (dP - rowsum(dP * P)) * scale, in t.
                                    for (dp, p) in t.chunks_mut(l).zip(p.chunks(l)) {
                                        let dot: f32 = dp.iter().zip(p).map(|(a, b)| a * b).sum();
                                        for (x, &pv) in dp.iter_mut().zip(p) {
                                            *x = pv * (*x - dot) * self.scale;
                                        }
                                    }
                                    gemm::matmul(
                                        rows_mut(dq, l, dh),
                                        rows(t, l, l),
                                        rows(k, l, dh),
                                        false,
                                    )?;
                                    gemm::matmul(
                                        rows_mut(dk, l, dh),
                                        rows(t, l, l).t(),
                                        rows(q, l, dh),
                                        false,
                                    )
                                },
                            )
                    })
                })
            })
        })?;
        let shape = q.shape();
        let dev = q.device();
        Ok((
            Some(Tensor::from_vec(dq, shape, dev)?),
            Some(Tensor::from_vec(dk, shape, dev)?),
            Some(Tensor::from_vec(dv, shape, dev)?),
        ))
    }
}

/// The dropout mask [`AttentionOp`] draws for `dims` `(b, heads, l)` with `d`, as a
/// `[b, heads, l, l]` tensor of `1 / keep` and `0`, for the tests' composed reference.
#[cfg(test)]
pub(crate) fn mask_tensor(
    (b, heads, l): (usize, usize, usize),
    d: AttentionDropout,
) -> Result<Tensor> {
    let op = AttentionOp::new((b, heads, l, 1), vec![0.0; b * l], Some(d))?;
    let words = op.words();
    let mut out = Vec::with_capacity(b * heads * l * l);
    let mut bits = vec![0u64; words];
    for task in 0..b * heads {
        op.draw_mask(d, task, &mut bits);
        let mut ones = vec![1f32; l * l];
        AttentionOp::apply_mask(d, &bits, &mut ones);
        out.extend(ones);
    }
    Tensor::from_vec(out, (b, heads, l, l), &candle_core::Device::Cpu)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{grads_of_weighted_sum, max_rel_diff};
    use candle_core::{D, Device, Var};
    use rand::Rng;

    fn random(shape: (usize, usize, usize, usize), seed: u64) -> Var {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n = shape.0 * shape.1 * shape.2 * shape.3;
        let v: Vec<f32> = (0..n).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect();
        Var::from_vec(v, shape, &Device::Cpu).expect("var")
    }

    /// The fused op against attention composed of Candle operations with the same mask:
    /// output and the gradients of queries, keys and values, with padded keys, with and
    /// without dropout, on odd sizes. Tolerance: relative 1e-4.
    #[test]
    fn agrees_with_composed_attention() {
        for (case, &(b, h, l, dh, keep)) in [
            (2usize, 3usize, 7usize, 5usize, 1.0f32),
            (3, 2, 13, 4, 0.9),
            (1, 1, 1, 3, 0.5),
        ]
        .iter()
        .enumerate()
        {
            let seed = case as u64 * 10;
            let (q, k, v) = (
                random((b, h, l, dh), seed),
                random((b, h, l, dh), seed + 1),
                random((b, h, l, dh), seed + 2),
            );
            // The last key of every other sequence is padding.
            let bias: Vec<f32> = (0..b * l)
                .map(|i| {
                    if i % l == l - 1 && (i / l) % 2 == 1 && l > 1 {
                        -1e9
                    } else {
                        0.0
                    }
                })
                .collect();
            let dropout = (keep < 1.0).then_some(AttentionDropout { keep, key: 77 });
            let op = AttentionOp::new((b, h, l, dh), bias.clone(), dropout).expect("op");
            let ours = q
                .as_tensor()
                .apply_op3(k.as_tensor(), v.as_tensor(), op)
                .expect("ours");
            let kb = Tensor::from_vec(bias, (b, 1, 1, l), &Device::Cpu).expect("bias");
            let mut w = (q
                .as_tensor()
                .matmul(&k.as_tensor().t().expect("t"))
                .expect("qk")
                * (1.0 / (dh as f64).sqrt()))
            .and_then(|s| s.broadcast_add(&kb))
            .and_then(|s| candle_nn::ops::softmax(&s, D::Minus1))
            .expect("weights");
            if let Some(d) = dropout {
                w = (w * mask_tensor((b, h, l), d).expect("mask")).expect("dropped");
            }
            let theirs = w.matmul(v.as_tensor()).expect("theirs");
            let d = max_rel_diff(&ours, &theirs);
            assert!(d < 1e-5, "output, case {case}: {d}");
            let weights = random((b, h, l, dh), seed + 3);
            let g1 = grads_of_weighted_sum(&ours, weights.as_tensor());
            let g2 = grads_of_weighted_sum(&theirs, weights.as_tensor());
            for (name, var) in [("queries", &q), ("keys", &k), ("values", &v)] {
                let d = max_rel_diff(g1.get(var).expect("ours"), g2.get(var).expect("theirs"));
                assert!(d < 1e-4, "{name} gradient, case {case}: {d}");
            }
        }
    }

    /// Masks keep about `keep` of the weights and repeat for the same key.
    #[test]
    fn masks_are_seeded_and_keep_the_right_share() {
        let d = AttentionDropout { keep: 0.9, key: 5 };
        let a = mask_tensor((2, 2, 100), d).expect("a");
        let b = mask_tensor((2, 2, 100), d).expect("b");
        let (a, b): (Vec<f32>, Vec<f32>) = (
            a.flatten_all().and_then(|t| t.to_vec1()).expect("a"),
            b.flatten_all().and_then(|t| t.to_vec1()).expect("b"),
        );
        assert_eq!(a, b);
        let kept = a.iter().filter(|&&v| v > 0.0).count() as f64 / a.len() as f64;
        assert!((kept - 0.9).abs() < 0.01, "kept {kept}");
    }
}
