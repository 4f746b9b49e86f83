//! Strategies: how the batches of an epoch are composed.

use serde::{Deserialize, Serialize};

use l2m_core::{
    Allocation, ClassLossEstimate, CyclicSampler, Estimator, Mixer, Mixture, ShuffledSampler,
};
use l2m_data::ClassDataset;

use crate::{EngineError, Result};

/// A training strategy, as configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum StrategySpec {
    /// learn2mix: batches drawn class by class with proportions `alpha_t`, moved toward the
    /// normalised class-wise losses after every epoch.
    #[serde(rename = "learn2mix")]
    Learn2Mix {
        /// Mixing rate in (0, 1].
        gamma: f64,
        /// Per-batch class counts from `alpha` (default: largest remainder, one per class).
        #[serde(default)]
        allocation: Allocation,
        /// Which per-sample losses estimate the class-wise losses (default: epoch mean).
        #[serde(default)]
        estimator: Estimator,
    },
    /// Classical training: the whole training set shuffled and cut into batches.
    Classical,
    /// Classical training with stratified batches: exactly `alpha*` per batch, drawn by the
    /// same cyclic sampler as learn2mix (the authors' regression code).
    Stratified {
        /// Per-batch class counts from `alpha*`.
        #[serde(default)]
        allocation: Allocation,
    },
}

impl StrategySpec {
    /// The name used in records, tables and on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            StrategySpec::Learn2Mix { .. } => "learn2mix",
            StrategySpec::Classical => "classical",
            StrategySpec::Stratified { .. } => "stratified",
        }
    }

    /// Parses a command-line name; learn2mix takes `gamma` from the experiment.
    pub fn parse(name: &str, gamma: f64) -> Result<Self> {
        match name {
            "learn2mix" | "l2m" => Ok(StrategySpec::Learn2Mix {
                gamma,
                allocation: Allocation::default(),
                estimator: Estimator::default(),
            }),
            "classical" => Ok(StrategySpec::Classical),
            "stratified" => Ok(StrategySpec::Stratified {
                allocation: Allocation::default(),
            }),
            other => Err(EngineError::Config(format!(
                "unknown strategy {other:?}: expected learn2mix, classical or stratified"
            ))),
        }
    }

    /// The estimator whose class-wise losses this strategy consumes.
    pub(crate) fn estimator(&self) -> Estimator {
        match self {
            StrategySpec::Learn2Mix { estimator, .. } => *estimator,
            _ => Estimator::EpochMean,
        }
    }

    /// The batch policy for `train`, seeded.
    pub(crate) fn policy(
        &self,
        train: &ClassDataset,
        batch_size: usize,
        seed: u64,
    ) -> Result<Box<dyn BatchPolicy>> {
        Ok(match self {
            StrategySpec::Learn2Mix {
                gamma, allocation, ..
            } => Box::new(MixedBatches {
                mixer: Mixer::learn2mix(*gamma, *allocation, batch_size, train.class_sizes())?,
                sampler: CyclicSampler::new(train.members().to_vec(), seed)?,
                counts: Vec::new(),
            }),
            StrategySpec::Stratified { allocation } => Box::new(MixedBatches {
                mixer: Mixer::stratified(*allocation, batch_size, train.class_sizes())?,
                sampler: CyclicSampler::new(train.members().to_vec(), seed)?,
                counts: Vec::new(),
            }),
            StrategySpec::Classical => Box::new(ShuffledBatches {
                sampler: ShuffledSampler::new(train.all_members(), seed)?,
                batch_size,
                alpha: train.alpha_star()?,
            }),
        })
    }
}

/// The per-epoch behaviour of a strategy inside the training loop.
pub(crate) trait BatchPolicy {
    /// Start of an epoch: reshuffle, compute this epoch's class counts.
    fn begin_epoch(&mut self) -> Result<()>;
    /// Appends the next batch's sample indices.
    fn next_batch(&mut self, out: &mut Vec<u32>) -> Result<()>;
    /// End of an epoch with the class-wise losses of the epoch.
    fn end_epoch(&mut self, estimate: &ClassLossEstimate) -> Result<()>;
    /// The class proportions batches are drawn with (in expectation for shuffled batches).
    fn alpha(&self) -> &Mixture;
}

struct MixedBatches {
    mixer: Mixer,
    sampler: CyclicSampler,
    counts: Vec<usize>,
}

impl BatchPolicy for MixedBatches {
    fn begin_epoch(&mut self) -> Result<()> {
        self.sampler.begin_epoch();
        self.counts = self.mixer.counts()?;
        Ok(())
    }

    fn next_batch(&mut self, out: &mut Vec<u32>) -> Result<()> {
        Ok(self.sampler.fill_batch(&self.counts, out)?)
    }

    fn end_epoch(&mut self, estimate: &ClassLossEstimate) -> Result<()> {
        self.mixer.update(estimate)?;
        Ok(())
    }

    fn alpha(&self) -> &Mixture {
        self.mixer.alpha()
    }
}

struct ShuffledBatches {
    sampler: ShuffledSampler,
    batch_size: usize,
    alpha: Mixture,
}

impl BatchPolicy for ShuffledBatches {
    fn begin_epoch(&mut self) -> Result<()> {
        self.sampler.begin_epoch();
        Ok(())
    }

    fn next_batch(&mut self, out: &mut Vec<u32>) -> Result<()> {
        Ok(self.sampler.next_batch(self.batch_size, out)?)
    }

    fn end_epoch(&mut self, _estimate: &ClassLossEstimate) -> Result<()> {
        Ok(())
    }

    fn alpha(&self) -> &Mixture {
        &self.alpha
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names() {
        assert_eq!(
            StrategySpec::parse("classical", 0.1).expect("valid").name(),
            "classical"
        );
        assert!(matches!(
            StrategySpec::parse("learn2mix", 0.3).expect("valid"),
            StrategySpec::Learn2Mix { gamma, .. } if gamma == 0.3
        ));
        let e = StrategySpec::parse("focal", 0.1).expect_err("not yet");
        assert!(e.to_string().contains("unknown strategy \"focal\""));
    }

    #[test]
    fn serde_round_trip() {
        let s = StrategySpec::parse("learn2mix", 0.01).expect("valid");
        let json = serde_json::to_string(&s).expect("json");
        assert_eq!(
            json,
            r#"{"kind":"learn2mix","gamma":0.01,"allocation":{"kind":"largest-remainder","min_per_class":1},"estimator":"epoch-mean"}"#
        );
        let back: StrategySpec =
            serde_json::from_str(r#"{"kind":"learn2mix","gamma":0.5}"#).expect("defaults");
        assert!(matches!(back, StrategySpec::Learn2Mix { .. }));
    }
}
