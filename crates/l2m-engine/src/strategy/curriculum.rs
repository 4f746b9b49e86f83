//! Curriculum learning (the authors' code): a classical warm-up scores each sample by
//! `1 - p(y|x)`; training restarts from the initial weights on the easiest
//! `0.5 * 1.2^floor(epoch/10)` of the training set.

use serde::{Deserialize, Serialize};

use l2m_core::{Mixture, ShuffledSampler};

use super::{Setup, Strategy, StrategyOptions, WarmUp, state};
use crate::{EngineError, Result};

/// Options of curriculum learning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CurriculumOptions {
    /// Warm-up epochs before scoring.
    pub warmup_epochs: usize,
}

impl StrategyOptions for CurriculumOptions {
    fn defaults() -> Self {
        Self { warmup_epochs: 1 }
    }

    fn needs_classes(&self) -> bool {
        true
    }

    fn build(&self, setup: &Setup<'_>) -> Result<Box<dyn Strategy>> {
        Ok(Box::new(CurriculumBatches {
            order: Vec::new(),
            members: setup.train.all_members(),
            batch_size: setup.batch_size,
            epoch: 0,
            seed: setup.seed,
            sampler: None,
            alpha: setup.train.alpha_star()?,
            warmup_epochs: self.warmup_epochs,
        }))
    }
}

/// Curriculum batches: each epoch, a shuffled pass over the easiest fraction of the
/// training set (sample indices in `order`, easiest first).
pub(crate) struct CurriculumBatches {
    pub order: Vec<u32>,
    pub members: Vec<u32>,
    pub batch_size: usize,
    pub epoch: usize,
    pub seed: u64,
    pub sampler: Option<ShuffledSampler>,
    pub alpha: Mixture,
    pub warmup_epochs: usize,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
enum CurriculumState {
    /// The difficulty order (easiest first) and the next epoch.
    Curriculum { order: Vec<u32>, epoch: usize },
}

impl Strategy for CurriculumBatches {
    fn notes(&self) -> Vec<String> {
        vec![format!(
            "curriculum: {} classical warm-up epoch(s) before scoring",
            self.warmup_epochs
        )]
    }

    fn warm_up(&mut self, ctx: &mut dyn WarmUp) -> Result<()> {
        // Classical warm-up from the shared initial weights, then score every training
        // sample and restart from the same initial weights.
        ctx.train_classical(self.warmup_epochs)?;
        let difficulty = ctx.difficulty()?;
        let order = l2m_baselines::curriculum::easy_to_hard(&difficulty);
        self.order = order.into_iter().map(|i| self.members[i]).collect();
        ctx.restart()
    }

    fn begin_epoch(&mut self) -> Result<()> {
        let f = l2m_baselines::curriculum::fraction(self.epoch);
        let n = ((self.order.len() as f64 * f).ceil() as usize)
            .clamp(self.batch_size.min(self.order.len()), self.order.len());
        // A new sampler per pool size; the stream continues through the seed and epoch.
        self.sampler = Some(ShuffledSampler::new(
            self.order[..n].to_vec(),
            self.seed ^ (self.epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        )?);
        self.epoch += 1;
        Ok(())
    }

    fn next_batch(&mut self, out: &mut Vec<u32>) -> Result<()> {
        match &mut self.sampler {
            Some(s) => Ok(s.next_batch(self.batch_size, out)?),
            None => Err(EngineError::Checkpoint(
                "curriculum batches before the first epoch".into(),
            )),
        }
    }

    fn alpha(&self) -> &Mixture {
        &self.alpha
    }

    fn save(&self) -> Result<serde_json::Value> {
        serde_json::to_value(CurriculumState::Curriculum {
            order: self.order.clone(),
            epoch: self.epoch,
        })
        .map_err(|e| EngineError::Checkpoint(e.to_string()))
    }

    fn restore(&mut self, saved: serde_json::Value) -> Result<()> {
        let CurriculumState::Curriculum { order, epoch } = state("curriculum", saved)?;
        self.order = order;
        self.epoch = epoch;
        self.sampler = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curriculum_draws_only_from_the_easiest_fraction() {
        let order: Vec<u32> = (0..100).rev().collect(); // easiest first: 99, 98, ...
        let mut c = CurriculumBatches {
            order: order.clone(),
            members: (0..100).collect(),
            batch_size: 10,
            epoch: 0,
            seed: 1,
            sampler: None,
            alpha: Mixture::uniform(2).expect("valid"),
            warmup_epochs: 1,
        };
        let mut seen = Vec::new();
        for epoch in 0..25 {
            c.begin_epoch().expect("epoch");
            let mut out = Vec::new();
            for _ in 0..10 {
                c.next_batch(&mut out).expect("batch");
            }
            let pool = (100.0 * l2m_baselines::curriculum::fraction(epoch)).ceil() as usize;
            assert!(
                out.iter().all(|i| order[..pool].contains(i)),
                "epoch {epoch}"
            );
            seen.push(out.iter().collect::<std::collections::BTreeSet<_>>().len());
        }
        assert_eq!(
            seen[0], 50,
            "the first epochs cover exactly the easiest half"
        );
        // Epoch 20: a pool of 0.5 * 1.2^2 = 72% (7 full batches per pass, then a new pass).
        assert!((70..=72).contains(&seen[20]), "{}", seen[20]);
    }
}
