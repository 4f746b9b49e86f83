//! The small transformer classifier of the paper's IMDB experiment.
//!
//! `embedding 64 (padding index 0) + sinusoidal positions -> one post-norm encoder layer
//! (4 heads, feed-forward 128, ReLU, dropout 0.1) -> mean over the non-padding positions ->
//! dropout 0.1 -> fc 64 -> 32 ReLU -> fc 2`. Padding is ignored in attention (a key padding
//! mask) and in the mean pool. Layers and initialisation follow PyTorch's
//! `nn.Embedding(padding_idx = 0)` and `nn.TransformerEncoderLayer(batch_first = True)`.

use candle_core::{D, DType, Device, Tensor};
use candle_nn::{Embedding, Init, Module, ModuleT, VarBuilder};
use serde::{Deserialize, Serialize};

use crate::dropout::SeededDropout;
use crate::kernels::attention::{AttentionDropout, AttentionOp};
use crate::layers::{self, LayerNorm};
use crate::{Linear, ModelError, Result};

/// Sizes of the transformer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransformerConfig {
    /// Vocabulary size, `<pad>` = 0 and `<unk>` = 1 included.
    pub vocab: usize,
    /// Embedding width (64).
    pub d_model: usize,
    /// Attention heads (4).
    pub heads: usize,
    /// Feed-forward width (128).
    pub ff: usize,
    /// Longest sequence (500).
    pub max_len: usize,
    /// Output classes (2).
    pub classes: usize,
    /// Dropout probability (0.1).
    pub dropout: f32,
}

impl TransformerConfig {
    /// The paper's sizes for a vocabulary of `vocab` tokens.
    pub fn paper(vocab: usize) -> Self {
        Self {
            vocab,
            d_model: 64,
            heads: 4,
            ff: 128,
            max_len: 500,
            classes: 2,
            dropout: 0.1,
        }
    }
}

/// The transformer classifier; input `[batch, len]` token ids (u32), output logits
/// `[batch, classes]`.
#[derive(Debug, Clone)]
pub struct Transformer {
    embedding: Embedding,
    positions: Tensor,
    /// `self_attn.in_proj_weight` `[3d, d]` and `self_attn.in_proj_bias` `[3d]`.
    in_proj: Linear,
    out_proj: Linear,
    norm1: LayerNorm,
    norm2: LayerNorm,
    linear1: Linear,
    linear2: Linear,
    fc1: Linear,
    fc2: Linear,
    heads: usize,
    // attention weights, after attention, inside the feed-forward, after it, before fc1
    dropouts: [SeededDropout; 5],
}

/// Sinusoidal positions `[max_len, d]`: `sin(p / 10000^(2i/d))` at `2i`, `cos` at `2i + 1`.
pub fn sinusoidal_positions(
    max_len: usize,
    d: usize,
    device: &Device,
) -> candle_core::Result<Tensor> {
    let mut pe = vec![0f32; max_len * d];
    for p in 0..max_len {
        for i in (0..d).step_by(2) {
            let angle = p as f64 / 10000f64.powf(i as f64 / d as f64);
            pe[p * d + i] = angle.sin() as f32;
            if i + 1 < d {
                pe[p * d + i + 1] = angle.cos() as f32;
            }
        }
    }
    Tensor::from_vec(pe, (max_len, d), device)
}

impl Transformer {
    /// Builds the model; dropout masks from `seed`.
    pub fn new(cfg: &TransformerConfig, vb: VarBuilder, seed: u64) -> Result<Self> {
        let d = cfg.d_model;
        if cfg.vocab < 2
            || d == 0
            || cfg.heads == 0
            || !d.is_multiple_of(cfg.heads)
            || cfg.classes == 0
            || cfg.max_len == 0
        {
            return Err(ModelError::InvalidConfig(format!(
                "transformer needs vocab >= 2, d_model divisible by heads, classes and max_len > 0; got {cfg:?}"
            )));
        }
        // N(0, 1) like `nn.Embedding`. PyTorch also zeroes the padding row; here the
        // embedding output is multiplied by the non-padding mask instead, so that row never
        // reaches the output and never receives a gradient, which is the same training.
        let emb = vb.pp("embedding").get_with_hints(
            (cfg.vocab, d),
            "weight",
            Init::Randn {
                mean: 0.0,
                stdev: 1.0,
            },
        )?;
        let attn = vb.pp("self_attn");
        let bound = (6.0 / (d + 3 * d) as f64).sqrt();
        let in_proj_weight = attn.get_with_hints(
            (3 * d, d),
            "in_proj_weight",
            Init::Uniform {
                lo: -bound,
                up: bound,
            },
        )?;
        let in_proj_bias = attn.get_with_hints(3 * d, "in_proj_bias", Init::Const(0.0))?;
        let out_w =
            attn.pp("out_proj")
                .get_with_hints((d, d), "weight", layers::fan_in_uniform(d))?;
        let out_b = attn
            .pp("out_proj")
            .get_with_hints(d, "bias", Init::Const(0.0))?;
        let dropouts = std::array::from_fn(|i| {
            SeededDropout::new(cfg.dropout, seed.wrapping_add(i as u64 + 1))
        });
        let [a, b, c, e, f] = dropouts;
        Ok(Self {
            embedding: Embedding::new(emb, d),
            positions: sinusoidal_positions(cfg.max_len, d, vb.device())?.to_dtype(vb.dtype())?,
            in_proj: Linear::new(in_proj_weight, in_proj_bias),
            out_proj: Linear::new(out_w, out_b),
            norm1: layers::layer_norm(d, vb.pp("norm1"))?,
            norm2: layers::layer_norm(d, vb.pp("norm2"))?,
            linear1: layers::linear(d, cfg.ff, vb.pp("linear1"))?,
            linear2: layers::linear(cfg.ff, d, vb.pp("linear2"))?,
            fc1: layers::linear(d, 32, vb.pp("fc1"))?,
            fc2: layers::linear(32, cfg.classes, vb.pp("fc2"))?,
            heads: cfg.heads,
            dropouts: [a?, b?, c?, e?, f?],
        })
    }

    fn attention(&self, x: &Tensor, key_bias: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let (b, l, d) = x.dims3()?;
        let h = self.heads;
        let dh = d / h;
        let qkv = self.in_proj.forward(x)?;
        let split = |i: usize| -> candle_core::Result<Tensor> {
            qkv.narrow(D::Minus1, i * d, d)?
                .reshape((b, l, h, dh))?
                .transpose(1, 2)?
                .contiguous()
        };
        let (q, k, v) = (split(0)?, split(1)?, split(2)?);
        if crate::kernels::applies(&q) && crate::kernels::applies(key_bias) {
            // One fused op per (sample, head) on the CPU: no [B, heads, L, L] tensor.
            let dropout = self.dropouts[0]
                .next_mask(train)
                .map(|(keep, key)| AttentionDropout { keep, key });
            let op = AttentionOp::new((b, h, l, dh), key_bias.flatten_all()?.to_vec1()?, dropout)?;
            let out = q
                .apply_op3(&k, &v, op)?
                .transpose(1, 2)?
                .reshape((b, l, d))?;
            return self.out_proj.forward(&out);
        }
        let scores = (q.matmul(&k.t()?)? / (dh as f64).sqrt())?.broadcast_add(key_bias)?;
        // Composed: candle-nn 0.11.1's fused `softmax_last_dim` has no backward pass.
        let weights = candle_nn::ops::softmax(&scores, D::Minus1)?;
        let weights = self.dropouts[0].forward(&weights, train)?;
        let out = weights.matmul(&v)?.transpose(1, 2)?.reshape((b, l, d))?;
        self.out_proj.forward(&out)
    }
}

impl crate::Model for Transformer {
    fn rng_counters(&self) -> Vec<u64> {
        self.dropouts.iter().map(SeededDropout::calls).collect()
    }

    fn set_rng_counters(&self, counters: &[u64]) -> Result<()> {
        crate::check_counters(counters, self.dropouts.len())?;
        for (d, &c) in self.dropouts.iter().zip(counters) {
            d.set_calls(c);
        }
        Ok(())
    }
}

impl ModuleT for Transformer {
    fn forward_t(&self, tokens: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let (_, l) = tokens.dims2()?;
        let tokens = tokens.to_dtype(DType::U32)?;
        // 1 at real tokens, 0 at padding: [B, L].
        let keep = tokens.ne(0u32)?.to_dtype(self.positions.dtype())?;
        // The padding row gets no gradient and contributes zeros, as in PyTorch.
        let x = self
            .embedding
            .forward(&tokens)?
            .broadcast_mul(&keep.unsqueeze(2)?)?;
        let x = x.broadcast_add(&self.positions.narrow(0, 0, l)?)?;
        // Padding keys get a large negative score: [B, 1, 1, L].
        let key_bias = ((keep.ones_like()? - &keep)? * -1e9)?
            .unsqueeze(1)?
            .unsqueeze(1)?;
        let a = self.attention(&x, &key_bias, train)?;
        let x = self
            .norm1
            .forward(&(x + self.dropouts[1].forward(&a, train)?)?)?;
        let f = self.linear1.forward_relu(&x)?;
        let f = self
            .linear2
            .forward(&self.dropouts[2].forward(&f, train)?)?;
        let x = self
            .norm2
            .forward(&(x + self.dropouts[3].forward(&f, train)?)?)?;
        // Mean over the real tokens.
        let summed = x.broadcast_mul(&keep.unsqueeze(2)?)?.sum(1)?;
        let counts = keep.sum_keepdim(1)?.clamp(1.0, f64::MAX)?;
        let pooled = summed.broadcast_div(&counts)?;
        let pooled = self.dropouts[4].forward(&pooled, train)?;
        self.fc2.forward(&self.fc1.forward_relu(&pooled)?)
    }
}
