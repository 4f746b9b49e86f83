//! Class-partitioned datasets for learn2mix: samples stored once, classes as index lists.
//!
//! learn2mix composes every batch class by class, so a dataset here is a flat sample
//! store ([`Samples`]: features, targets, the class or group of each sample) plus, per
//! class, the list of sample indices that belong to the training set ([`ClassDataset`]).
//! Imbalancing ([`Imbalance`]) and subsetting only shorten those lists: the features are
//! never copied per class.
//!
//! # Where to start
//! - [`ClassDataset::new`] builds a dataset from flat buffers and validates their shapes.
//! - [`Imbalance`] describes how many samples each class keeps (the paper's profiles:
//!   explicit factors, linear, log-spaced); [`ClassDataset::imbalanced`] applies it, seeded.
//! - [`synthetic::MeanEstimation`] generates the paper's synthetic regression set.
//! - [`load`] reads the original file formats (IDX, CIFAR binary, image folders, aclImdb,
//!   CSV), from folders or archives; [`paper::PaperDataset`] knows where each of the
//!   paper's datasets lives under a data folder.
//!
//! This crate reads no global state; every random choice takes a seed.

mod dataset;
mod error;
mod imbalance;
pub mod load;
pub mod paper;
pub mod synthetic;

pub use dataset::{ClassDataset, Features, Samples, Targets, TaskKind};
pub use error::{DataError, Result};
pub use imbalance::Imbalance;
