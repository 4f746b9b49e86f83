//! The reconstruction autoencoder of the paper: `d -> 128 ReLU -> 32 -> 128 ReLU -> d ->
//! sigmoid`.

use candle_core::Tensor;
use candle_nn::{Module, VarBuilder};
use serde::{Deserialize, Serialize};

use crate::{Linear, ModelError, Result, layers};

/// Sizes of the autoencoder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoencoderConfig {
    /// Input (and output) size `d`: 784 for MNIST, 3072 for CIFAR-10.
    pub input_dim: usize,
    /// Hidden width (128).
    pub hidden: usize,
    /// Bottleneck width (32).
    pub bottleneck: usize,
}

impl AutoencoderConfig {
    /// The paper's sizes for input size `d`.
    pub fn paper(input_dim: usize) -> Self {
        Self {
            input_dim,
            hidden: 128,
            bottleneck: 32,
        }
    }
}

/// The autoencoder; input `[batch, ...]` (flattened to `[batch, d]`), output `[batch, d]`
/// in (0, 1).
#[derive(Debug, Clone)]
pub struct Autoencoder {
    enc1: Linear,
    enc2: Linear,
    dec1: Linear,
    dec2: Linear,
}

impl Autoencoder {
    /// Builds the network under `enc1`, `enc2`, `dec1`, `dec2`.
    pub fn new(cfg: &AutoencoderConfig, vb: VarBuilder) -> Result<Self> {
        if cfg.input_dim == 0 || cfg.hidden == 0 || cfg.bottleneck == 0 {
            return Err(ModelError::InvalidConfig(format!(
                "autoencoder sizes must be positive, got {}-{}-{}",
                cfg.input_dim, cfg.hidden, cfg.bottleneck
            )));
        }
        Ok(Self {
            enc1: layers::linear(cfg.input_dim, cfg.hidden, vb.pp("enc1"))?,
            enc2: layers::linear(cfg.hidden, cfg.bottleneck, vb.pp("enc2"))?,
            dec1: layers::linear(cfg.bottleneck, cfg.hidden, vb.pp("dec1"))?,
            dec2: layers::linear(cfg.hidden, cfg.input_dim, vb.pp("dec2"))?,
        })
    }
}

impl Module for Autoencoder {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let x = xs.flatten_from(1)?;
        let z = self.enc2.forward(&self.enc1.forward_relu(&x)?)?;
        self.dec2.forward_sigmoid(&self.dec1.forward_relu(&z)?)
    }
}
