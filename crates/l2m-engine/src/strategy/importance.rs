//! Importance sampling (the authors' code): from each shuffled batch of B, train on B/2
//! samples drawn without replacement with probability proportional to their loss.

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use l2m_core::{Mixture, RngState, RngStream, seeded_rng};

use super::batches::ShuffledBatches;
use super::classical::shuffled;
use super::{Scorer, Setup, Strategy, StrategyOptions};
use crate::{EngineError, Result};

/// Importance sampling has no options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportanceOptions {}

impl StrategyOptions for ImportanceOptions {
    fn defaults() -> Self {
        Self {}
    }

    fn build(&self, setup: &Setup<'_>) -> Result<Box<dyn Strategy>> {
        Ok(Box::new(Importance {
            batches: shuffled(setup.train, setup)?,
            rng: seeded_rng(setup.seed, RngStream::Training),
        }))
    }
}

struct Importance {
    batches: ShuffledBatches,
    rng: ChaCha8Rng,
}

impl Strategy for Importance {
    fn begin_epoch(&mut self) -> Result<()> {
        self.batches.begin_epoch()
    }

    fn next_batch(&mut self, out: &mut Vec<u32>) -> Result<()> {
        self.batches.next_batch(out)
    }

    fn data_parallel(&self) -> bool {
        false
    }

    fn select(&mut self, batch: &mut Vec<u32>, score: &mut Scorer<'_>) -> Result<()> {
        let scores = score(batch)?;
        let keep = l2m_baselines::sampling::weighted_without_replacement(
            &scores,
            batch.len() / 2,
            &mut self.rng,
        );
        *batch = keep.into_iter().map(|i| batch[i]).collect();
        Ok(())
    }

    fn alpha(&self) -> &Mixture {
        &self.batches.alpha
    }

    fn save(&self) -> Result<serde_json::Value> {
        self.batches.save_with(Some(RngState::from(&self.rng)))
    }

    fn restore(&mut self, state: serde_json::Value) -> Result<()> {
        let rng = self
            .batches
            .restore_with("importance", state)?
            .ok_or_else(|| {
                EngineError::Checkpoint("no importance sampler state in the checkpoint".into())
            })?;
        self.rng = ChaCha8Rng::try_from(rng)?;
        Ok(())
    }
}
