//! The models of the learn2mix paper in Candle, initialised reproducibly (see the README below).
#![doc = include_str!("../README.md")]

mod autoencoder;
mod checkpoint;
mod conv2d;
pub mod device;
mod dropout;
mod error;
mod fc;
mod flops;
mod init;
mod kernels;
pub mod layers;
mod lenet;
mod linear;
mod mlp;
pub mod ops;
mod resnet;
#[cfg(test)]
mod test_util;
mod transformer;

pub use autoencoder::{Autoencoder, AutoencoderConfig};
pub use checkpoint::{load_checkpoint, save_checkpoint};
pub use conv2d::{Conv2d, cpu_convolution, cpu_matmul};
pub use device::{DeviceKind, select_device};
pub use dropout::SeededDropout;
pub use error::{ModelError, Result};
pub use fc::{Fc, FcConfig};
pub use flops::Flops;
pub use init::{parameter_checksum, perturb_parameters, seeded_var_builder};
pub use lenet::{LeNet5, LeNet5Config, LeNetCifar, LeNetCifarConfig};
pub use linear::Linear;
pub use mlp::{Mlp, MlpConfig};
pub use resnet::{ResNet18, ResNet18Config};
pub use transformer::{Transformer, TransformerConfig, sinusoidal_positions};

use candle_nn::{ModuleT, VarBuilder, VarMap};
use serde::{Deserialize, Serialize};

/// A model of the paper, with its sizes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum ModelConfig {
    /// The fully connected regression network.
    Fc(FcConfig),
    /// A multilayer perceptron of any depth (tabular data).
    Mlp(MlpConfig),
    /// LeNet-5 for 28 x 28 grey images.
    #[serde(rename = "lenet5")]
    LeNet5(LeNet5Config),
    /// The LeNet-style CIFAR network.
    LeNetCifar(LeNetCifarConfig),
    /// ResNet-18 for 224 x 224 images.
    #[serde(rename = "resnet18")]
    ResNet18(ResNet18Config),
    /// The small transformer classifier.
    Transformer(TransformerConfig),
    /// The reconstruction autoencoder.
    Autoencoder(AutoencoderConfig),
    /// A model written by the user and built by their own code (recorded by name only;
    /// [`ModelConfig::build`] cannot rebuild it).
    Custom {
        /// What the user calls it.
        name: String,
    },
}

/// A model of this crate: a [`ModuleT`] that can be sent to a worker thread and whose
/// seeded random layers can report and restore how far their streams have advanced, so a
/// checkpointed run resumes with the same dropout masks.
pub trait Model: ModuleT + Send + Sync {
    /// Masks drawn so far by each seeded random layer, in a fixed order (empty for a
    /// deterministic model).
    fn rng_counters(&self) -> Vec<u64> {
        Vec::new()
    }

    /// Continues each seeded random layer from `counters` (as returned by
    /// [`Model::rng_counters`]). Errors when their number does not match the model's.
    fn set_rng_counters(&self, counters: &[u64]) -> Result<()> {
        check_counters(counters, 0)
    }
}

pub(crate) fn check_counters(counters: &[u64], expected: usize) -> Result<()> {
    if counters.len() == expected {
        Ok(())
    } else {
        Err(ModelError::InvalidConfig(format!(
            "the model has {expected} random layers, the saved state names {}",
            counters.len()
        )))
    }
}

impl Model for Fc {}
impl Model for Mlp {}
impl Model for LeNet5 {}
impl Model for ResNet18 {}
impl Model for Autoencoder {}

/// The most parameters a model may have: 2^30 (4 GiB of f32, before the optimiser's
/// moments).
pub const MAX_PARAMETERS: usize = 1 << 30;

/// A trainable model, boxed.
pub type BoxedModel = Box<dyn Model>;

impl ModelConfig {
    /// Builds the model, taking (or creating) its parameters from `vb`; stochastic layers
    /// draw their masks from `seed`.
    pub fn build(&self, vb: VarBuilder, seed: u64) -> Result<BoxedModel> {
        Ok(match self {
            ModelConfig::Fc(cfg) => Box::new(Fc::new(cfg, vb)?),
            ModelConfig::Mlp(cfg) => Box::new(Mlp::new(cfg, vb)?),
            ModelConfig::LeNet5(cfg) => Box::new(LeNet5::new(cfg, vb)?),
            ModelConfig::LeNetCifar(cfg) => Box::new(LeNetCifar::new(cfg, vb, seed)?),
            ModelConfig::ResNet18(cfg) => Box::new(ResNet18::new(cfg, vb)?),
            ModelConfig::Transformer(cfg) => Box::new(Transformer::new(cfg, vb, seed)?),
            ModelConfig::Autoencoder(cfg) => Box::new(Autoencoder::new(cfg, vb)?),
            ModelConfig::Custom { name } => {
                return Err(ModelError::InvalidConfig(format!(
                    "the custom model {name:?} is built by its own code, not from a config"
                )));
            }
        })
    }

    /// An upper bound on the parameters the model would hold, from its sizes with checked
    /// arithmetic: `None` when the sizes overflow. Sizes from a configuration file are checked
    /// against [`MAX_PARAMETERS`] with it before anything is allocated.
    pub fn parameter_bound(&self) -> Option<usize> {
        let linear = |i: usize, o: usize| i.checked_mul(o)?.checked_add(o);
        match self {
            ModelConfig::Fc(c) => {
                linear(c.input_dim, c.hidden)?.checked_add(linear(c.hidden, c.output_dim)?)
            }
            ModelConfig::Mlp(c) => {
                let mut total = 0usize;
                let mut from = c.input_dim;
                for &h in c.hidden.iter().chain(std::iter::once(&c.output_dim)) {
                    total = total.checked_add(linear(from, h)?)?;
                    from = h;
                }
                Some(total)
            }
            ModelConfig::Autoencoder(c) => linear(c.input_dim, c.hidden)?
                .checked_add(linear(c.hidden, c.bottleneck)?)?
                .checked_mul(2),
            // The convolutional networks' sizes are fixed but for the classifier.
            ModelConfig::LeNet5(c) => linear(84, c.classes)?.checked_add(62_000),
            ModelConfig::LeNetCifar(c) => linear(512, c.classes)?.checked_add(2_200_000),
            ModelConfig::ResNet18(c) => linear(512, c.classes)?.checked_add(11_200_000),
            ModelConfig::Transformer(c) => {
                let d = c.d_model;
                c.vocab
                    .checked_mul(d)?
                    .checked_add(linear(d, d)?.checked_mul(4)?)?
                    .checked_add(linear(d, c.ff)?.checked_add(linear(c.ff, d)?)?)?
                    .checked_add(linear(d, c.classes)?)?
                    .checked_add(c.max_len.checked_mul(d)?)
            }
            ModelConfig::Custom { .. } => Some(0),
        }
    }

    /// A short human-readable name.
    pub fn name(&self) -> String {
        match self {
            ModelConfig::Fc(c) => format!("FC {}-{}-{}", c.input_dim, c.hidden, c.output_dim),
            ModelConfig::Mlp(c) if c.input_dim == 0 || c.output_dim == 0 => format!(
                "MLP (hidden {})",
                c.hidden
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join("-")
            ),
            ModelConfig::Mlp(c) => format!(
                "MLP {}-{}-{}",
                c.input_dim,
                c.hidden
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join("-"),
                c.output_dim
            ),
            ModelConfig::LeNet5(_) => "LeNet-5".into(),
            ModelConfig::LeNetCifar(c) if c.classes == 0 => "LeNet-CIFAR".into(),
            ModelConfig::LeNetCifar(c) => format!("LeNet-CIFAR (K={})", c.classes),
            ModelConfig::ResNet18(_) => "ResNet-18".into(),
            ModelConfig::Transformer(c) => {
                format!("Transformer (d={}, vocab {})", c.d_model, c.vocab)
            }
            ModelConfig::Autoencoder(c) => format!("Autoencoder d={}", c.input_dim),
            ModelConfig::Custom { name } => name.clone(),
        }
    }
}

/// Trainable parameters in `varmap` (buffers such as batch-norm running statistics are
/// not counted, as in PyTorch's `parameters()`).
pub fn parameter_count(varmap: &VarMap) -> usize {
    varmap
        .data()
        .lock()
        .map(|vars| {
            vars.iter()
                .filter(|(name, _)| layers::is_parameter(name))
                .map(|(_, v)| v.elem_count())
                .sum()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
