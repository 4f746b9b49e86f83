//! The baselines learn2mix is judged against, as building blocks of the training engine.
//!
//! - [`focal`]: the class-balanced focal loss of the paper's focal-training baseline
//!   (Appendix C.2; Lin et al. 2017), per sample, with inverse-frequency class weights.
//!
//! Classical training (shuffled or stratified batches) needs no code of its own beyond
//! `l2m-core`'s samplers; the engine composes it. SMOTE, importance sampling and
//! curriculum learning join this crate with the classification task.

pub mod focal;

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
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, BaselineError>;
