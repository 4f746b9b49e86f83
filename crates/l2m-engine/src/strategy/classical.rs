//! Classical training: the training set shuffled and cut into batches.

use serde::{Deserialize, Serialize};

use l2m_core::{Mixture, ShuffledSampler};

use super::batches::ShuffledBatches;
use super::{Defaults, Setup, Strategy, StrategyOptions};
use crate::Result;

/// Classical training has no options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassicalOptions {}

impl StrategyOptions for ClassicalOptions {
    fn defaults(_: &Defaults) -> Self {
        Self {}
    }

    fn build(&self, setup: &Setup<'_>) -> Result<Box<dyn Strategy>> {
        Ok(Box::new(Classical(shuffled(setup.train, setup)?)))
    }
}

/// Shuffled passes over every sample of `train`.
pub(crate) fn shuffled(
    train: &l2m_data::ClassDataset,
    setup: &Setup<'_>,
) -> Result<ShuffledBatches> {
    Ok(ShuffledBatches {
        sampler: ShuffledSampler::new(train.all_members(), setup.seed)?,
        batch_size: setup.batch_size,
        alpha: train.alpha_star()?,
    })
}

/// Shuffled batches, nothing else: also the classical warm-up of the curriculum.
pub(crate) struct Classical(pub ShuffledBatches);

impl Strategy for Classical {
    fn begin_epoch(&mut self) -> Result<()> {
        self.0.begin_epoch()
    }

    fn next_batch(&mut self, out: &mut Vec<u32>) -> Result<()> {
        self.0.next_batch(out)
    }

    fn alpha(&self) -> &Mixture {
        &self.0.alpha
    }

    fn save(&self) -> Result<serde_json::Value> {
        self.0.save_with(None)
    }

    fn restore(&mut self, state: serde_json::Value) -> Result<()> {
        self.0.restore_with("classical", state).map(|_| ())
    }
}
