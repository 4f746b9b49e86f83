//! LeNet-5 (MNIST, Fashion-MNIST) and the LeNet-style CIFAR network of the paper.

use candle_core::Tensor;
use candle_nn::{Conv2dConfig, Module, ModuleT, VarBuilder};

use crate::Linear;

use crate::conv2d::Conv2d;
use serde::{Deserialize, Serialize};

use crate::dropout::SeededDropout;
use crate::{ModelError, Result, layers};

/// LeNet-5: `conv(1->6, k5) ReLU maxpool2; conv(6->16, k5) ReLU maxpool2; flatten 256;
/// fc 120 ReLU; fc 84 ReLU; fc classes`. Input `[batch, 1, 28, 28]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeNet5Config {
    /// Output classes (10).
    pub classes: usize,
}

/// The LeNet-5 network.
#[derive(Debug, Clone)]
pub struct LeNet5 {
    conv1: Conv2d,
    conv2: Conv2d,
    fc1: Linear,
    fc2: Linear,
    fc3: Linear,
}

impl LeNet5 {
    /// Builds the network under `conv1`, `conv2`, `fc1`, `fc2`, `fc3`.
    pub fn new(cfg: &LeNet5Config, vb: VarBuilder) -> Result<Self> {
        if cfg.classes == 0 {
            return Err(ModelError::InvalidConfig(
                "LeNet-5 needs at least one class".into(),
            ));
        }
        let c = Conv2dConfig::default();
        Ok(Self {
            conv1: layers::conv2d(1, 6, 5, c, vb.pp("conv1"))?,
            conv2: layers::conv2d(6, 16, 5, c, vb.pp("conv2"))?,
            fc1: layers::linear(256, 120, vb.pp("fc1"))?,
            fc2: layers::linear(120, 84, vb.pp("fc2"))?,
            fc3: layers::linear(84, cfg.classes, vb.pp("fc3"))?,
        })
    }
}

impl Module for LeNet5 {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let x = self.conv1.forward_relu_pool2(xs)?;
        let x = self.conv2.forward_relu_pool2(&x)?;
        let x = x.flatten_from(1)?;
        let x = self.fc1.forward_relu(&x)?;
        let x = self.fc2.forward_relu(&x)?;
        self.fc3.forward(&x)
    }
}

/// The paper's CIFAR network: three blocks `conv k3 pad1 (3->16->32->64) ReLU maxpool2`;
/// flatten 1024; fc 500 ReLU; dropout 0.5; fc classes. Input `[batch, 3, 32, 32]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeNetCifarConfig {
    /// Output classes (10 or 100).
    pub classes: usize,
    /// Dropout before the last layer (0.5).
    pub dropout: f32,
}

/// The LeNet-style CIFAR network.
#[derive(Debug, Clone)]
pub struct LeNetCifar {
    convs: [Conv2d; 3],
    fc1: Linear,
    fc2: Linear,
    dropout: SeededDropout,
}

impl LeNetCifar {
    /// Builds the network under `conv1..3`, `fc1`, `fc2`; dropout masks from `seed`.
    pub fn new(cfg: &LeNetCifarConfig, vb: VarBuilder, seed: u64) -> Result<Self> {
        if cfg.classes == 0 {
            return Err(ModelError::InvalidConfig(
                "LeNet-CIFAR needs at least one class".into(),
            ));
        }
        let c = Conv2dConfig {
            padding: 1,
            ..Conv2dConfig::default()
        };
        Ok(Self {
            convs: [
                layers::conv2d(3, 16, 3, c, vb.pp("conv1"))?,
                layers::conv2d(16, 32, 3, c, vb.pp("conv2"))?,
                layers::conv2d(32, 64, 3, c, vb.pp("conv3"))?,
            ],
            fc1: layers::linear(1024, 500, vb.pp("fc1"))?,
            fc2: layers::linear(500, cfg.classes, vb.pp("fc2"))?,
            dropout: SeededDropout::new(cfg.dropout, seed)?,
        })
    }
}

impl crate::Model for LeNetCifar {
    fn rng_counters(&self) -> Vec<u64> {
        vec![self.dropout.calls()]
    }

    fn set_rng_counters(&self, counters: &[u64]) -> Result<()> {
        crate::check_counters(counters, 1)?;
        self.dropout.set_calls(counters[0]);
        Ok(())
    }
}

impl ModuleT for LeNetCifar {
    fn forward_t(&self, xs: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let mut x = xs.clone();
        for conv in &self.convs {
            x = conv.forward_relu_pool2(&x)?;
        }
        let x = self.fc1.forward_relu(&x.flatten_from(1)?)?;
        let x = self.dropout.forward(&x, train)?;
        self.fc2.forward(&x)
    }
}
