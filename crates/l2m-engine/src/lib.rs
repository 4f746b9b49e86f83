//! One training engine for learn2mix and the strategies it is compared with (see the README
//! below).
#![doc = include_str!("../README.md")]

mod atomic;
mod checkpoint;
pub mod collective;
mod compare;
mod config;
mod data;
mod epoch;
mod error;
mod eval;
mod hooks;
mod metric;
mod model;
mod observer;
pub mod optim;
mod options;
mod per_class;
pub mod plots;
pub mod predict;
mod record;
pub mod report;
pub mod strategy;
pub mod sweep;
mod task;
pub mod tensorboard;
mod train;
pub mod variant;

pub use atomic::write_atomic;
pub use checkpoint::finished_run;
pub use compare::{
    Comparison, Metric, StrategySummary, reference_index, run_experiment, summarize,
};
pub use config::{
    DatasetSpec, ExperimentConfig, LoadedData, OptimizerConfig, OwnMeta, PRESETS, preset,
};
pub use error::{EngineError, Result};
pub use observer::{Observer, SilentObserver};
pub use options::RunOptions;
pub use record::{EpochRecord, RunDir, RunInfo, TrainOutcome};
pub use strategy::{Learn2MixOptions, StrategySpec, strategy_names};
pub use task::Task;
pub use train::{BuildModel, CustomModel, train};
pub use variant::{Variant, preset_variant};

// What the engine's API hands out, re-exported where a user looks first.
pub use l2m_core::convergence::{Direction, Summary};
pub use l2m_core::rules::{self, rule_names};
pub use l2m_data::{ClassDataset, Imbalance, TaskKind};
pub use l2m_models::{
    BoxedModel, DeviceKind, LeNet5Config, LeNetCifarConfig, MlpConfig, Model, ModelConfig,
    ResNet18Config, TransformerConfig, select_device,
};

/// The run directory's layout and the schema of its files: `l2m_run`.
pub use l2m_run as layout;

/// Strings from a user's files as they may be printed: `l2m_data::text`.
pub use l2m_data::text;

/// The user's own data (CSV, Parquet, image folders, Hub datasets): `l2m_data::own`.
pub mod own {
    pub use l2m_data::own::*;
}

#[cfg(test)]
mod tests;
