//! Classical training: the training set shuffled and cut into batches.

use serde::{Deserialize, Serialize};

use l2m_core::ShuffledSampler;

use super::batches::{ShuffledBatches, shuffled_batch_source};
use super::{Setup, Strategy, StrategyOptions};
use crate::Result;

/// Classical training has no options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassicalOptions {}

impl StrategyOptions for ClassicalOptions {
    fn defaults() -> Self {
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
    fn data_proportions(&self) -> bool {
        true
    }

    shuffled_batch_source!(0, "classical");
}
