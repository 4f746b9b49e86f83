//! Balanced batches: uniform class proportions in every batch, drawn by the cyclic sampler
//! (what an inverse-frequency `WeightedRandomSampler` does, without replacement noise:
//! small classes are revisited in fresh permutations, large ones partly unvisited).

use serde::{Deserialize, Serialize};

use l2m_core::{Allocation, Mixer, Mixture};

use super::stratified::{Fixed, fixed_batches};
use super::{Setup, Strategy, StrategyOptions};
use crate::Result;

/// Options of balanced batches.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BalancedOptions {
    /// Per-batch class counts from the uniform proportions.
    #[serde(default)]
    pub allocation: Allocation,
}

impl StrategyOptions for BalancedOptions {
    fn defaults() -> Self {
        Self::default()
    }

    fn build(&self, setup: &Setup<'_>) -> Result<Box<dyn Strategy>> {
        let sizes = setup.train.class_sizes();
        let mut mixer = Mixer::stratified(self.allocation, setup.batch_size, sizes.clone())?;
        // Uniform over the classes that have data.
        let present: Vec<f64> = sizes.iter().map(|&n| f64::from(u8::from(n > 0))).collect();
        mixer.set_alpha(Mixture::normalised(&present)?)?;
        Ok(Box::new(Fixed {
            name: "balanced",
            batches: fixed_batches(mixer, setup)?,
            data_proportions: false,
        }))
    }
}
