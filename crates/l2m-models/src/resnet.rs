//! ResNet-18 (He et al. 2016), as torchvision builds it, for Imagenette at 224 x 224.
//!
//! Stem `conv 7x7/2 (64) BN ReLU maxpool 3x3/2`, four stages of two basic blocks (64, 128,
//! 256, 512 channels; stride 2 from the second stage, with a 1x1 projection shortcut),
//! global average pool, fc classes. Convolutions use torchvision's
//! `kaiming_normal_(fan_out, relu)`; batch norm starts at weight 1, bias 0.

use candle_core::{D, Tensor};
use candle_nn::{BatchNorm, Conv2dConfig, Module, ModuleT, VarBuilder};
use serde::{Deserialize, Serialize};

use crate::{Conv2d, Linear, ModelError, Result, layers};

/// ResNet-18's output size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResNet18Config {
    /// Output classes (10 for Imagenette).
    pub classes: usize,
}

#[derive(Debug, Clone)]
struct BasicBlock {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    downsample: Option<(Conv2d, BatchNorm)>,
}

impl BasicBlock {
    fn new(inp: usize, out: usize, stride: usize, vb: VarBuilder) -> Result<Self> {
        let c3 = |stride| Conv2dConfig {
            padding: 1,
            stride,
            ..Conv2dConfig::default()
        };
        let downsample = if stride != 1 || inp != out {
            let c1 = Conv2dConfig {
                stride,
                ..Conv2dConfig::default()
            };
            Some((
                layers::conv2d_resnet(inp, out, 1, c1, vb.pp("downsample.0"))?,
                layers::batch_norm(out, vb.pp("downsample.1"))?,
            ))
        } else {
            None
        };
        Ok(Self {
            conv1: layers::conv2d_resnet(inp, out, 3, c3(stride), vb.pp("conv1"))?,
            bn1: layers::batch_norm(out, vb.pp("bn1"))?,
            conv2: layers::conv2d_resnet(out, out, 3, c3(1), vb.pp("conv2"))?,
            bn2: layers::batch_norm(out, vb.pp("bn2"))?,
            downsample,
        })
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let y = self.bn1.forward_t(&self.conv1.forward(x)?, train)?.relu()?;
        let y = self.bn2.forward_t(&self.conv2.forward(&y)?, train)?;
        let shortcut = match &self.downsample {
            Some((conv, bn)) => bn.forward_t(&conv.forward(x)?, train)?,
            None => x.clone(),
        };
        (y + shortcut)?.relu()
    }
}

/// ResNet-18; input `[batch, 3, H, W]`, output logits `[batch, classes]`.
#[derive(Debug, Clone)]
pub struct ResNet18 {
    conv1: Conv2d,
    bn1: BatchNorm,
    blocks: Vec<BasicBlock>,
    fc: Linear,
}

impl ResNet18 {
    /// Builds the network with torchvision's parameter names (`conv1`, `bn1`,
    /// `layer1.0.conv1`, ..., `fc`).
    pub fn new(cfg: &ResNet18Config, vb: VarBuilder) -> Result<Self> {
        if cfg.classes == 0 {
            return Err(ModelError::InvalidConfig(
                "ResNet-18 needs at least one class".into(),
            ));
        }
        let stem = Conv2dConfig {
            padding: 3,
            stride: 2,
            ..Conv2dConfig::default()
        };
        let mut blocks = Vec::with_capacity(8);
        let mut inp = 64;
        for (stage, out) in [64, 128, 256, 512].into_iter().enumerate() {
            for b in 0..2 {
                let stride = if stage > 0 && b == 0 { 2 } else { 1 };
                blocks.push(BasicBlock::new(
                    inp,
                    out,
                    stride,
                    vb.pp(format!("layer{}.{b}", stage + 1)),
                )?);
                inp = out;
            }
        }
        Ok(Self {
            conv1: layers::conv2d_resnet(3, 64, 7, stem, vb.pp("conv1"))?,
            bn1: layers::batch_norm(64, vb.pp("bn1"))?,
            blocks,
            fc: layers::linear(512, cfg.classes, vb.pp("fc"))?,
        })
    }
}

impl ModuleT for ResNet18 {
    fn forward_t(&self, xs: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let x = self
            .bn1
            .forward_t(&self.conv1.forward(xs)?, train)?
            .relu()?;
        // Max pool 3x3, stride 2, padding 1, composed: Candle has no backward for a window
        // larger than its stride. After ReLU every value is >= 0, so zero padding gives
        // the same maxima as PyTorch's -inf padding.
        let mut x = layers::max_pool2d_overlapping(&x, 3, 2, 1)?;
        for block in &self.blocks {
            x = block.forward_t(&x, train)?;
        }
        let pooled = x.mean(D::Minus1)?.mean(D::Minus1)?;
        self.fc.forward(&pooled)
    }
}
