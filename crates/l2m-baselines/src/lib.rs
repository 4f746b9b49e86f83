//! The baselines learn2mix is judged against, as building blocks of the training engine.
//!
//! - [`focal`]: the class-balanced focal loss of the paper's focal-training baseline
//!   (Appendix C.2; Lin et al. 2017), per sample, with inverse-frequency class weights.
//! - [`smote`]: SMOTE oversampling to the largest class (Appendix C.3; Chawla et al. 2002),
//!   exact k-nearest neighbours in parallel, seeded; random oversampling for token data.
//! - [`sampling`]: the loss-proportional selection of importance sampling.
//! - [`curriculum`]: the easy-to-hard order and the pacing of curriculum learning.
//!
//! Classical training (shuffled or stratified batches) needs no code of its own beyond
//! `l2m-core`'s samplers; the engine composes every strategy from these pieces.

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
