//! Class-partitioned datasets for learn2mix (see the README below).
#![doc = include_str!("../README.md")]

mod dataset;
mod error;
mod imbalance;
pub mod load;
pub mod own;
pub mod paper;
pub mod synthetic;
pub mod text;

pub use dataset::{ClassDataset, DenseRows, Features, Samples, Targets, TaskKind};
pub use error::{DataError, Result};
pub use imbalance::Imbalance;
