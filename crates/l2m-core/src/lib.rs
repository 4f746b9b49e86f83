//! The learn2mix mathematics, free of any tensor library and of any I/O (see the README below).
#![doc = include_str!("../README.md")]

mod allocation;
pub mod convergence;
mod eg;
mod error;
mod estimate;
mod floor;
mod front;
pub mod metrics;
mod mixer;
mod mixture;
mod rng;
mod rule;
pub mod rules;
mod sampler;
mod schedule;
mod shard;
mod tempered;
pub mod testbed;

pub use allocation::Allocation;
pub use eg::{DEFAULT_ETA, ExponentiatedGradient};
pub use error::{CoreError, Result};
pub use estimate::{ClassLossAccumulator, ClassLossEstimate, Estimator};
pub use floor::Floored;
pub use front::{Batch, Learn2MixSampler, Rule, SamplerBuilder, SamplerState};
pub use mixer::Mixer;
pub use mixture::Mixture;
pub use rng::{RngState, RngStream, seeded_rng};
pub use rule::{Learn2Mix, MixingRule, Static};
pub use sampler::{CyclicSampler, ShuffledSampler};
pub use schedule::{Cadence, Schedule, ScheduleState};
pub use shard::Shards;
pub use tempered::Tempered;
