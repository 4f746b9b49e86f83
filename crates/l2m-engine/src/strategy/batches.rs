//! The two batch sources strategies are built from: class-by-class batches with adaptive
//! or fixed proportions, and shuffled passes over a set of samples.

use serde::{Deserialize, Serialize};

use l2m_core::{CyclicSampler, Mixture, Schedule, ScheduleState, ShuffledSampler};

use super::state;
use crate::{EngineError, Result};

/// Class-by-class batches: per-class counts from the schedule's proportions, drawn by the
/// cyclic sampler (Eqs. 12-13 of the paper). The schedule moves the proportions (learn2mix
/// and its relatives) or keeps them (a static rule: stratified, balanced).
pub(crate) struct MixedBatches {
    pub schedule: Schedule,
    pub sampler: CyclicSampler,
    pub counts: Vec<usize>,
}

/// The checkpointed state of [`MixedBatches`]: the schedule's state (proportions, and for
/// per-step cadences the pending losses) and the sampler.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
enum MixedState {
    Mixed {
        #[serde(flatten)]
        schedule: ScheduleState,
        sampler: CyclicSampler,
    },
}

impl MixedBatches {
    pub fn new(schedule: Schedule, sampler: CyclicSampler) -> Self {
        Self {
            schedule,
            sampler,
            counts: Vec::new(),
        }
    }

    pub fn begin_epoch(&mut self) -> Result<()> {
        self.sampler.begin_epoch();
        self.counts = self.schedule.counts()?;
        Ok(())
    }

    pub fn next_batch(&mut self, out: &mut Vec<u32>) -> Result<()> {
        Ok(self.sampler.fill_batch(&self.counts, out)?)
    }

    /// Feeds consecutive steps' class losses; the counts follow any update at once.
    pub fn record_losses(&mut self, sums: &[Vec<f64>], counts: &[Vec<u64>]) -> Result<()> {
        let mut moved = false;
        for (s, c) in sums.iter().zip(counts) {
            moved |= self.schedule.record_step(s, c)?;
        }
        if moved {
            self.counts = self.schedule.counts()?;
        }
        Ok(())
    }

    pub fn end_epoch(&mut self) -> Result<()> {
        self.schedule.end_epoch()?;
        Ok(())
    }

    /// Counts steps whose losses come from `estimate` (a held-out split), updating the
    /// proportions from it whenever the cadence says so.
    pub fn tick(
        &mut self,
        steps: usize,
        estimate: &mut dyn FnMut() -> Result<l2m_core::ClassLossEstimate>,
    ) -> Result<()> {
        for _ in 0..steps {
            if self.schedule.tick() {
                self.schedule.update_from(&estimate()?)?;
                self.counts = self.schedule.counts()?;
            }
        }
        Ok(())
    }

    pub fn alpha(&self) -> &Mixture {
        self.schedule.alpha()
    }

    pub fn save(&self) -> Result<serde_json::Value> {
        serde_json::to_value(MixedState::Mixed {
            schedule: self.schedule.save(),
            sampler: self.sampler.clone(),
        })
        .map_err(|e| EngineError::Checkpoint(e.to_string()))
    }

    pub fn restore(&mut self, name: &str, saved: serde_json::Value) -> Result<()> {
        let MixedState::Mixed { schedule, sampler } = state(name, saved)?;
        if sampler.class_sizes() != self.sampler.class_sizes() {
            return Err(EngineError::Checkpoint(format!(
                "the saved sampler has class sizes {:?}, the training set {:?}",
                sampler.class_sizes(),
                self.sampler.class_sizes()
            )));
        }
        self.schedule.restore(schedule)?;
        self.sampler = sampler;
        self.counts = self.schedule.counts()?;
        Ok(())
    }
}

/// The [`super::Strategy`] methods of a strategy whose batches are the shuffled passes of
/// its field `$f` and which keeps no other state: `shuffled_batch_source!(field, "name")`
/// inside its `impl Strategy`.
macro_rules! shuffled_batch_source {
    ($f:tt, $name:literal) => {
        fn begin_epoch(&mut self) -> $crate::Result<()> {
            self.$f.begin_epoch()
        }

        fn next_batch(&mut self, out: &mut Vec<u32>) -> $crate::Result<()> {
            self.$f.next_batch(out)
        }

        fn alpha(&self) -> &l2m_core::Mixture {
            &self.$f.alpha
        }

        fn save(&self) -> $crate::Result<serde_json::Value> {
            self.$f.save_with(None)
        }

        fn restore(&mut self, state: serde_json::Value) -> $crate::Result<()> {
            self.$f.restore_with($name, state).map(|_| ())
        }
    };
}
pub(crate) use shuffled_batch_source;

/// Shuffled passes over a set of samples, `batch_size` at a time.
pub(crate) struct ShuffledBatches {
    pub sampler: ShuffledSampler,
    pub batch_size: usize,
    /// The proportions of the set (what the batches have in expectation).
    pub alpha: Mixture,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
enum ShuffledState {
    Shuffled {
        sampler: ShuffledSampler,
        /// A strategy's own generator (importance sampling).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rng: Option<l2m_core::RngState>,
    },
}

impl ShuffledBatches {
    pub fn begin_epoch(&mut self) -> Result<()> {
        self.sampler.begin_epoch();
        Ok(())
    }

    pub fn next_batch(&mut self, out: &mut Vec<u32>) -> Result<()> {
        Ok(self.sampler.next_batch(self.batch_size, out)?)
    }

    /// The state, with a strategy's own generator beside the sampler's.
    pub fn save_with(&self, rng: Option<l2m_core::RngState>) -> Result<serde_json::Value> {
        serde_json::to_value(ShuffledState::Shuffled {
            sampler: self.sampler.clone(),
            rng,
        })
        .map_err(|e| EngineError::Checkpoint(e.to_string()))
    }

    /// Restores the sampler; returns the saved generator, if any.
    pub fn restore_with(
        &mut self,
        name: &str,
        saved: serde_json::Value,
    ) -> Result<Option<l2m_core::RngState>> {
        let ShuffledState::Shuffled { sampler, rng } = state(name, saved)?;
        if sampler.len() != self.sampler.len() {
            return Err(EngineError::Checkpoint(format!(
                "the saved sampler covers {} samples, the training set {}",
                sampler.len(),
                self.sampler.len()
            )));
        }
        self.sampler = sampler;
        Ok(rng)
    }
}
