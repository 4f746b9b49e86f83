//! Focal training (Appendix C.2): shuffled batches, class-balanced focal loss instead of
//! cross-entropy.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use l2m_baselines::FocalLoss;

use super::batches::{ShuffledBatches, shuffled_batch_source};
use super::classical::shuffled;
use super::{Setup, Strategy, StrategyOptions};
use crate::{Result, Task};

/// Options of focal training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FocalOptions {
    /// Focusing parameter (2 in the paper).
    pub gamma_focal: f64,
}

impl StrategyOptions for FocalOptions {
    fn defaults() -> Self {
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
    fn data_proportions(&self) -> bool {
        true
    }

    shuffled_batch_source!(batches, "focal");

    fn per_sample_loss(&self, _task: Task, output: &Tensor, target: &Tensor) -> Result<Tensor> {
        Ok(self.loss.per_sample(output, target)?)
    }
}
