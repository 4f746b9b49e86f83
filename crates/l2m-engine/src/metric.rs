//! Which test metric a comparison judges by.

use serde::{Deserialize, Serialize};

use crate::EpochRecord;

/// Which test metric a comparison judges by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Metric {
    /// The task's metric (accuracy for classification, MSE otherwise; the paper's).
    #[default]
    Task,
    /// Classification: the mean recall over classes.
    BalancedAccuracy,
    /// Classification: the mean F1 over classes.
    MacroF1,
    /// The worst class's metric (lowest accuracy, highest MSE).
    WorstClass,
}

impl std::str::FromStr for Metric {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "task" | "accuracy" | "mse" => Ok(Metric::Task),
            "balanced-accuracy" => Ok(Metric::BalancedAccuracy),
            "macro-f1" => Ok(Metric::MacroF1),
            "worst-class" => Ok(Metric::WorstClass),
            other => Err(format!(
                "unknown metric {other:?}: expected accuracy (or mse), balanced-accuracy, macro-f1 or worst-class"
            )),
        }
    }
}

impl Metric {
    /// This metric of one epoch's record (`None` where the record lacks it).
    pub fn of(self, r: &EpochRecord) -> Option<f64> {
        match self {
            Metric::Task => Some(r.test_metric),
            Metric::BalancedAccuracy => r.test_balanced_accuracy,
            Metric::MacroF1 => r.test_macro_f1,
            Metric::WorstClass => r.test_worst_class,
        }
    }

    /// Its name in tables, for `task`.
    pub fn name(self, task: crate::Task) -> String {
        match self {
            Metric::Task => task.metric_name().to_string(),
            Metric::BalancedAccuracy => "balanced accuracy".into(),
            Metric::MacroF1 => "macro-F1".into(),
            Metric::WorstClass => format!("worst-class {}", task.metric_name()),
        }
    }

    /// Whether it needs classification.
    pub fn needs_classes(self) -> bool {
        matches!(self, Metric::BalancedAccuracy | Metric::MacroF1)
    }
}
