//! The baselines learn2mix is judged against (see the README below).
#![doc = include_str!("../README.md")]

pub mod curriculum;
pub mod focal;
pub mod sampling;
pub mod smote;

pub use focal::{FocalLoss, inverse_frequency_weights};

/// Errors of the baselines.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BaselineError {
    /// A parameter outside its domain.
    #[error("invalid {what}: {reason}")]
    InvalidParameter {
        /// Which parameter.
        what: &'static str,
        /// What is wrong and what is expected.
        reason: String,
    },
    /// A dataset could not be built.
    #[error(transparent)]
    Data(#[from] l2m_data::DataError),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, BaselineError>;
