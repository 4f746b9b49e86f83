//! Focal training (Appendix C.2): shuffled batches, class-balanced focal loss instead of
//! cross-entropy.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use l2m_baselines::FocalLoss;
use l2m_core::Mixture;

use super::batches::ShuffledBatches;
use super::classical::shuffled;
use super::{Defaults, Setup, Strategy, StrategyOptions};
use crate::{Result, Task};

/// Options of focal training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FocalOptions {
    /// Focusing parameter (2 in the paper).
    pub gamma_focal: f64,
}

impl StrategyOptions for FocalOptions {
    fn defaults(_: &Defaults) -> Self {
        Self { gamma_focal: 2.0 }
    }

    fn needs_classes(&self) -> bool {
        true
    }

    fn build(&self, setup: &Setup<'_>) -> Result<Box<dyn Strategy>> {
        let w = l2m_baselines::inverse_frequency_weights(&setup.train.class_sizes())?;
        Ok(Box::new(Focal {
            batches: shuffled(setup.train, setup)?,
            loss: FocalLoss::new(self.gamma_focal, &w, setup.device)?,
        }))
    }
}

struct Focal {
    batches: ShuffledBatches,
    loss: FocalLoss,
}

impl Strategy for Focal {
    fn per_sample_loss(&self, _task: Task, output: &Tensor, target: &Tensor) -> Result<Tensor> {
        Ok(self.loss.per_sample(output, target)?)
    }

    fn begin_epoch(&mut self) -> Result<()> {
        self.batches.begin_epoch()
    }

    fn next_batch(&mut self, out: &mut Vec<u32>) -> Result<()> {
        self.batches.next_batch(out)
    }

    fn alpha(&self) -> &Mixture {
        &self.batches.alpha
    }

    fn save(&self) -> Result<serde_json::Value> {
        self.batches.save_with(None)
    }

    fn restore(&mut self, state: serde_json::Value) -> Result<()> {
        self.batches.restore_with("focal", state).map(|_| ())
    }
}
