//! One training engine for learn2mix and the strategies it is compared with.
//!
//! The engine sits between the libraries (`l2m-core`'s mixing mathematics, `l2m-data`'s
//! datasets, `l2m-models`' networks, `l2m-baselines`' alternative objectives) and the `l2m`
//! command. It owns the one training loop every strategy runs through, so that the only
//! differences between two runs of a comparison are the ones the strategies make.
//!
//! # Where to start
//! - [`ExperimentConfig`]: dataset, model, optimiser, strategies, epochs, seeds; presets in
//!   [`preset`].
//! - [`run_experiment`]: every strategy for every seed into a run directory, returning a
//!   [`Comparison`] summary.
//! - [`train_one`]: one strategy, one seed: the training loop.
//! - [`StrategySpec`]: how batches are composed (learn2mix, classical, stratified).
//! - [`Task`]: the per-sample loss and the metric.
//! - [`EpochRecord`] and [`RunDir`]: what is recorded each epoch and where it is written
//!   (JSON lines and CSV, atomically).
//!
//! Per-sample losses from the training forward pass feed learn2mix's class-wise
//! estimates: per-class sums are accumulated on the device and read once per epoch, so
//! learn2mix costs no extra forward pass and no extra synchronisation per step.

mod atomic;
mod checkpoint;
mod compare;
mod config;
mod data;
mod error;
pub mod optim;
pub mod plots;
mod record;
pub mod report;
pub mod strategy;
mod task;
mod train;
pub mod variant;

pub use atomic::write_atomic;
pub use compare::{Comparison, Observer, SilentObserver, StrategySummary, run_experiment};
pub use config::{DatasetSpec, ExperimentConfig, LoadedData, OptimizerConfig, PRESETS, preset};
pub use error::{EngineError, Result};
pub use record::{EpochRecord, RunDir, RunInfo};
pub use strategy::{Learn2MixOptions, StrategySpec, strategy_names};
pub use task::Task;
pub use train::{TrainOutcome, finished_run, train_one};
pub use variant::{Variant, preset_variant};

#[cfg(test)]
mod tests;
