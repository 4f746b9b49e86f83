//! The models of the learn2mix paper in Candle, initialised reproducibly.
//!
//! Every model follows the candle idiom: a serde `Config`, `new(cfg, VarBuilder)`, and
//! [`candle_nn::ModuleT`] (the flag says whether the model is training). Layers are
//! initialised like PyTorch's defaults for the same layers, so that curves can be compared
//! with the authors' PyTorch code, and the draws come from a seeded host RNG
//! ([`seeded_var_builder`]): Candle's own CPU random generator cannot be seeded, and
//! learn2mix must start every strategy from the same parameters.
//!
//! # Where to start
//! - [`ModelConfig`]: which model, with its sizes; [`ModelConfig::build`] makes it.
//! - [`Fc`]: the `d -> 64 -> ReLU -> 1` regression network.
//! - [`device`]: one helper that picks CPU, CUDA or Metal and names the missing feature.
//!
//! GPU support is behind the `cuda` and `metal` features; the default build needs neither.

pub mod device;
mod error;
mod fc;
mod init;
pub mod layers;

pub use device::{DeviceKind, select_device};
pub use error::{ModelError, Result};
pub use fc::{Fc, FcConfig};
pub use init::{parameter_checksum, seeded_var_builder};

use candle_nn::{ModuleT, VarBuilder};
use serde::{Deserialize, Serialize};

/// A model of the paper, with its sizes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum ModelConfig {
    /// The fully connected regression network.
    Fc(FcConfig),
}

/// A trainable model: a [`ModuleT`] that can be sent to a worker thread.
pub type BoxedModel = Box<dyn ModuleT + Send + Sync>;

impl ModelConfig {
    /// Builds the model, taking (or creating) its parameters from `vb`.
    pub fn build(&self, vb: VarBuilder) -> Result<BoxedModel> {
        Ok(match self {
            ModelConfig::Fc(cfg) => Box::new(Fc::new(cfg, vb)?),
        })
    }

    /// A short human-readable name.
    pub fn name(&self) -> String {
        match self {
            ModelConfig::Fc(c) => format!("FC {}-{}-{}", c.input_dim, c.hidden, c.output_dim),
        }
    }
}
