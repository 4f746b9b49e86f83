//! Floating-point operations of one sample through a model, from its shapes: the figure a
//! roofline compares a measured time with.
//!
//! Only the matrix products and convolutions count, a multiply-add as two operations;
//! element-wise work (activations, pooling, normalisation, the optimiser) is left out, as it
//! is bound by memory rather than arithmetic. The backward pass counts, per layer, the
//! weight gradient (the same products as the forward pass) and the input gradient (again
//! the same), except for the input gradient of the first layer, which nothing needs.

use crate::ModelConfig;

/// Operations per sample, forward and backward.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Flops {
    /// The forward pass.
    pub forward: f64,
    /// The backward pass (weight and input gradients).
    pub backward: f64,
}

impl Flops {
    /// A training step's share: forward and backward.
    pub fn training(&self) -> f64 {
        self.forward + self.backward
    }
}

/// Layers as (forward operations, whether their input gradient is needed).
struct Layers(Vec<(f64, bool)>);

impl Layers {
    fn new() -> Self {
        Layers(Vec::new())
    }

    /// A dense layer `i -> o`, applied `times` times per sample (once per token, say).
    fn linear(&mut self, i: usize, o: usize, times: usize) -> &mut Self {
        let first = self.0.is_empty();
        self.0
            .push((2.0 * i as f64 * o as f64 * times as f64, !first));
        self
    }

    /// A `k x k` convolution `cin -> cout` producing `h x w` outputs.
    fn conv(&mut self, cin: usize, cout: usize, k: usize, h: usize, w: usize) -> &mut Self {
        let first = self.0.is_empty();
        let per_output = cin as f64 * (k * k) as f64 * cout as f64;
        self.0
            .push((2.0 * per_output * h as f64 * w as f64, !first));
        self
    }

    /// Products between activations (attention's scores and weighted sums): both operands'
    /// gradients are needed.
    fn product(&mut self, flops: f64) -> &mut Self {
        self.0.push((flops, true));
        self
    }

    fn total(&self) -> Flops {
        let forward = self.0.iter().map(|l| l.0).sum();
        let backward = self
            .0
            .iter()
            .map(|&(f, input)| if input { 2.0 * f } else { f })
            .sum();
        Flops { forward, backward }
    }
}

impl ModelConfig {
    /// Operations per sample (see the module's documentation); `seq_len` is the token
    /// sequence length of a transformer (default: its `max_len`). `None` for ResNet-18 and
    /// models written by the user, whose shapes are not counted here.
    pub fn flops_per_sample(&self, seq_len: Option<usize>) -> Option<Flops> {
        let mut l = Layers::new();
        match self {
            ModelConfig::Fc(c) => {
                l.linear(c.input_dim, c.hidden, 1)
                    .linear(c.hidden, c.output_dim, 1);
            }
            ModelConfig::Mlp(c) => {
                let mut from = c.input_dim;
                for &h in c.hidden.iter().chain(std::iter::once(&c.output_dim)) {
                    l.linear(from, h, 1);
                    from = h;
                }
            }
            ModelConfig::Autoencoder(c) => {
                l.linear(c.input_dim, c.hidden, 1)
                    .linear(c.hidden, c.bottleneck, 1)
                    .linear(c.bottleneck, c.hidden, 1)
                    .linear(c.hidden, c.input_dim, 1);
            }
            // 28 x 28 -> conv 5x5 -> 24 x 24 -> pool -> 12 x 12 -> conv 5x5 -> 8 x 8 -> pool.
            ModelConfig::LeNet5(c) => {
                l.conv(1, 6, 5, 24, 24)
                    .conv(6, 16, 5, 8, 8)
                    .linear(256, 120, 1)
                    .linear(120, 84, 1)
                    .linear(84, c.classes, 1);
            }
            // 32 x 32, three 3x3 convolutions with padding 1, each followed by a 2x2 pool.
            ModelConfig::LeNetCifar(c) => {
                l.conv(3, 16, 3, 32, 32)
                    .conv(16, 32, 3, 16, 16)
                    .conv(32, 64, 3, 8, 8)
                    .linear(1024, 500, 1)
                    .linear(500, c.classes, 1);
            }
            // One encoder layer over `n` tokens (the embedding is a lookup), mean pooling,
            // then the two-layer head.
            ModelConfig::Transformer(c) => {
                let (n, d) = (seq_len.unwrap_or(c.max_len), c.d_model);
                l.linear(d, 3 * d, n)
                    // Scores Q K^T and the weighted sum of V: n x n x d_head per head each.
                    .product(2.0 * n as f64 * n as f64 * d as f64)
                    .product(2.0 * n as f64 * n as f64 * d as f64)
                    .linear(d, d, n)
                    .linear(d, c.ff, n)
                    .linear(c.ff, d, n)
                    .linear(d, 32, 1)
                    .linear(32, c.classes, 1);
                // The first product's input gradient reaches the embedding: it is needed.
                if let Some(first) = l.0.first_mut() {
                    first.1 = true;
                }
            }
            ModelConfig::ResNet18(_) | ModelConfig::Custom { .. } => return None,
        }
        Some(l.total())
    }
}

#[cfg(test)]
mod tests {
    use crate::{AutoencoderConfig, LeNet5Config, ModelConfig, TransformerConfig};

    #[test]
    fn lenet5_counts_by_hand() {
        let f = ModelConfig::LeNet5(LeNet5Config { classes: 10 })
            .flops_per_sample(None)
            .expect("counted");
        // conv1 2*1*25*6*576, conv2 2*6*25*16*64, fc 2*(256*120 + 120*84 + 84*10).
        let forward = 172_800.0 + 307_200.0 + 2.0 * (30_720.0 + 10_080.0 + 840.0);
        assert_eq!(f.forward, forward);
        // conv1 without its input gradient; everything else twice.
        assert_eq!(f.backward, 2.0 * forward - 172_800.0);
        // The 0.56 and 0.95 MFLOP of the speed issue's estimate.
        assert!((f.forward / 1e6 - 0.563).abs() < 1e-3 && (f.backward / 1e6 - 0.954).abs() < 1e-3);
    }

    #[test]
    fn dense_and_attention_counts_by_hand() {
        let a = ModelConfig::Autoencoder(AutoencoderConfig {
            input_dim: 784,
            hidden: 128,
            bottleneck: 32,
        })
        .flops_per_sample(None)
        .expect("counted");
        let fwd = 2.0 * (784.0 * 128.0 + 128.0 * 32.0) * 2.0;
        assert_eq!(a.forward, fwd);
        assert_eq!(a.backward, 2.0 * fwd - 2.0 * 784.0 * 128.0);

        let t = ModelConfig::Transformer(TransformerConfig::paper(1000));
        let (n, d, ff) = (200.0, 64.0, 128.0);
        let f = t.flops_per_sample(Some(200)).expect("counted");
        let per_token = 2.0 * (d * 3.0 * d + d * d + d * ff + ff * d);
        let head = 2.0 * (d * 32.0 + 32.0 * 2.0);
        assert_eq!(f.forward, n * per_token + 4.0 * n * n * d + head);
        assert_eq!(f.backward, 2.0 * f.forward);
        // Longer sequences cost quadratically in attention.
        let g = t.flops_per_sample(Some(400)).expect("counted");
        assert!(g.forward > 2.0 * f.forward);
    }
}
