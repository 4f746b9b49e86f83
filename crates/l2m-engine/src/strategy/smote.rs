//! SMOTE training (Appendix C.3): every class oversampled to the largest with SMOTE, then
//! shuffled batches, `floor(N / B)` per epoch (N the original training size).

use serde::{Deserialize, Serialize};

use l2m_core::Mixture;
use l2m_data::ClassDataset;

use super::batches::ShuffledBatches;
use super::classical::shuffled;
use super::{Defaults, Setup, Strategy, StrategyOptions};
use crate::Result;

/// Options of SMOTE training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmoteOptions {
    /// Neighbours per sample (5).
    pub k: usize,
}

impl StrategyOptions for SmoteOptions {
    fn defaults(_: &Defaults) -> Self {
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
    fn train_set(&self) -> Option<&ClassDataset> {
        Some(&self.balanced)
    }

    fn notes(&self) -> Vec<String> {
        vec![self.note.clone()]
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
        self.batches.restore_with("smote", state).map(|_| ())
    }
}
