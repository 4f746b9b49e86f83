//! SMOTE training (Appendix C.3): every class oversampled to the largest with SMOTE, then
//! shuffled batches, `floor(N / B)` per epoch (N the original training size).

use serde::{Deserialize, Serialize};

use l2m_data::ClassDataset;

use super::batches::{ShuffledBatches, shuffled_batch_source};
use super::classical::shuffled;
use super::{Setup, Strategy, StrategyOptions};
use crate::Result;

/// Options of SMOTE training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmoteOptions {
    /// Neighbours per sample (5).
    pub k: usize,
}

impl StrategyOptions for SmoteOptions {
    fn defaults() -> Self {
        Self { k: 5 }
    }

    fn build(&self, setup: &Setup<'_>) -> Result<Box<dyn Strategy>> {
        let (balanced, report) = l2m_baselines::smote::smote(setup.train, self.k, setup.seed)?;
        let note = format!(
            "SMOTE ({:?}, k = {}) added {:?} samples per class",
            report.method, report.k, report.added_per_class
        );
        Ok(Box::new(Smote {
            batches: shuffled(&balanced, setup)?,
            balanced,
            note,
        }))
    }
}

struct Smote {
    batches: ShuffledBatches,
    balanced: ClassDataset,
    note: String,
}

impl Strategy for Smote {
    fn data_proportions(&self) -> bool {
        true
    }

    shuffled_batch_source!(batches, "smote");

    fn train_set(&self) -> Option<&ClassDataset> {
        Some(&self.balanced)
    }

    fn notes(&self) -> Vec<String> {
        vec![self.note.clone()]
    }
}
