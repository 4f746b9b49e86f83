//! Stratified batches: exactly the training set's proportions `alpha*` in every batch,
//! drawn by the same cyclic sampler as learn2mix (the authors' regression baseline).

use serde::{Deserialize, Serialize};

use l2m_core::{Allocation, Cadence, CyclicSampler, Estimator, Mixer, Mixture, Schedule};

use super::batches::MixedBatches;
use super::{Evaluate, Setup, Strategy, StrategyOptions};
use crate::Result;

/// Options of stratified batches.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StratifiedOptions {
    /// Per-batch class counts from `alpha*`.
    #[serde(default)]
    pub allocation: Allocation,
}

impl StrategyOptions for StratifiedOptions {
    fn defaults() -> Self {
        Self::default()
    }

    fn build(&self, setup: &Setup<'_>) -> Result<Box<dyn Strategy>> {
        let mixer =
            Mixer::stratified(self.allocation, setup.batch_size, setup.train.class_sizes())?;
        Ok(Box::new(Fixed {
            name: "stratified",
            batches: fixed_batches(mixer, setup)?,
            data_proportions: true,
        }))
    }
}

/// Class-by-class batches with proportions that never move.
pub(crate) fn fixed_batches(mixer: Mixer, setup: &Setup<'_>) -> Result<MixedBatches> {
    Ok(MixedBatches::new(
        Schedule::new(mixer, Estimator::EpochMean, None, Cadence::Epoch)?,
        CyclicSampler::new(setup.train.members().to_vec(), setup.seed)?,
    ))
}

/// Fixed proportions (stratified, balanced).
pub(crate) struct Fixed {
    pub name: &'static str,
    pub batches: MixedBatches,
    /// Whether the proportions are the training set's own (stratified).
    pub data_proportions: bool,
}

impl Strategy for Fixed {
    fn data_proportions(&self) -> bool {
        self.data_proportions
    }

    fn begin_epoch(&mut self) -> Result<()> {
        self.batches.begin_epoch()
    }

    fn next_batch(&mut self, out: &mut Vec<u32>) -> Result<()> {
        self.batches.next_batch(out)
    }

    fn record_losses(
        &mut self,
        sums: &[Vec<f64>],
        counts: &[Vec<u64>],
        _eval: &mut Evaluate<'_>,
    ) -> Result<()> {
        self.batches.record_losses(sums, counts)
    }

    fn end_epoch(&mut self, _eval: &mut Evaluate<'_>) -> Result<()> {
        self.batches.end_epoch()
    }

    fn alpha(&self) -> &Mixture {
        self.batches.alpha()
    }

    fn save(&self) -> Result<serde_json::Value> {
        self.batches.save()
    }

    fn restore(&mut self, state: serde_json::Value) -> Result<()> {
        self.batches.restore(self.name, state)
    }
}
