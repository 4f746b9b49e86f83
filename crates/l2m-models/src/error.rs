//! Typed errors of model construction and device selection.

/// Everything that can go wrong building a model or picking a device.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A device this build was not compiled for.
    #[error("device {device} needs l2m built with `--features {feature}`")]
    FeatureMissing {
        /// The requested device.
        device: String,
        /// The Cargo feature that enables it.
        feature: &'static str,
    },
    /// A device name that is not `cpu`, `cuda[:N]` or `metal[:N]`.
    #[error("unknown device {0:?}: expected cpu, cuda, cuda:N, metal or metal:N")]
    UnknownDevice(String),
    /// Model sizes that make no sense.
    #[error("invalid model configuration: {0}")]
    InvalidConfig(String),
    /// An error from Candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, ModelError>;
