//! What the files of a run hold: the versioned schema of `summary.json` and of each line
//! of `records.jsonl`.

use serde::{Deserialize, Serialize};

use l2m_core::convergence::{Direction, Summary};

/// The version of `summary.json` this build writes. Version 2 adds the `schema` field
/// itself (files without it are version 1, read the same way). A reader refuses a file of
/// a newer version than it knows ([`check_schema`]).
pub const SUMMARY_SCHEMA: u32 = 2;

fn schema_v1() -> u32 {
    1
}

/// A `summary.json` written by a newer `l2m` than the reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError {
    /// The version in the file.
    pub found: u32,
}

impl std::fmt::Display for SchemaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "summary schema {} is newer than this build reads (up to {SUMMARY_SCHEMA}): update l2m",
            self.found
        )
    }
}

impl std::error::Error for SchemaError {}

/// Accepts a comparison whose schema this build reads.
pub fn check_schema(c: &Comparison) -> Result<(), SchemaError> {
    if c.schema > SUMMARY_SCHEMA {
        return Err(SchemaError { found: c.schema });
    }
    Ok(())
}

/// One epoch of one strategy and seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch, 1-based.
    pub epoch: usize,
    /// Strategy name.
    pub strategy: String,
    /// Seed.
    pub seed: u64,
    /// Mean per-sample training loss over the epoch's batches.
    pub train_loss: f64,
    /// The same, per class (0 for a class that contributed no sample).
    pub train_loss_per_class: Vec<f64>,
    /// Training samples drawn from each class during the epoch.
    pub train_samples_per_class: Vec<u64>,
    /// Mean per-sample test loss (the test set is balanced as given).
    pub test_loss: f64,
    /// Mean test loss per class.
    pub test_loss_per_class: Vec<f64>,
    /// The task's test metric (accuracy for classification, MSE otherwise).
    pub test_metric: f64,
    /// The test metric per class.
    pub test_metric_per_class: Vec<f64>,
    /// The worst class's test metric (lowest accuracy, highest MSE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_worst_class: Option<f64>,
    /// Classification: the mean recall over classes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_balanced_accuracy: Option<f64>,
    /// Classification: the mean F1 over classes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_macro_f1: Option<f64>,
    /// Class proportions the epoch's batches were drawn with.
    pub alpha: Vec<f64>,
    /// Distinct training samples of each class trained on during the epoch (beside
    /// `train_samples_per_class`, the samples drawn: the difference are repeats).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub train_distinct_per_class: Vec<u64>,
    /// What went unobserved: a class with data that got no sample, or a proportion below
    /// one sample per batch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coverage_alarms: Vec<String>,
    /// Per-class loss weights at the epoch's start, for strategies that weight losses
    /// (Group DRO's `q`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_weights: Option<Vec<f64>>,
    /// Wall-clock seconds spent training (batches, forward, backward, optimiser).
    pub train_seconds: f64,
    /// Wall-clock seconds spent on the test evaluation.
    pub eval_seconds: f64,
}

/// One strategy's results across seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrategySummary {
    /// Strategy name.
    pub strategy: String,
    /// Final test metric over seeds.
    pub final_test: Summary,
    /// Paired over seeds (same data and initial weights): this strategy's final test
    /// metric minus the reference strategy's. `None` for the
    /// reference itself.
    pub final_minus_reference: Option<Summary>,
    /// The worst class's final test metric (lowest accuracy, highest MSE), over seeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_worst_class: Option<Summary>,
    /// Classification: final balanced accuracy (mean recall over classes), over seeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_balanced_accuracy: Option<Summary>,
    /// Classification: final macro-F1, over seeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_macro_f1: Option<Summary>,
    /// The test metric at 25%, 50% and 100% of the epochs done: `(epoch, over seeds)`.
    #[serde(default)]
    pub test_at: Vec<(usize, Summary)>,
    /// Final test metric per class, mean over seeds.
    pub final_test_per_class: Vec<f64>,
    /// Best test metric over the epochs, mean over seeds.
    pub best_test: Summary,
    /// Epoch at which the seed-mean test curve first reaches the common target.
    pub epochs_to_target: Option<usize>,
    /// Per seed, the epoch at which its own curve first reaches the common target
    /// (`None` where it never does).
    pub epochs_to_target_per_seed: Vec<Option<usize>>,
    /// Training seconds (measured per epoch, evaluation excluded) until each seed's curve
    /// first reaches the common target, over the seeds that reach it: the wall-clock view
    /// of "epochs to target", fair to strategies whose epochs cost more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_to_target: Option<Summary>,
    /// Coverage in the last epoch: the fraction of each class's training samples trained on
    /// (distinct samples over class size), mean over seeds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub final_coverage: Vec<f64>,
    /// Coverage alarms over every epoch and seed (a class with data that got no sample, or
    /// a proportion below one sample per batch).
    #[serde(default)]
    pub coverage_alarms: usize,
    /// The seeds summarised, in the order of the per-seed entries.
    #[serde(default)]
    pub seeds: Vec<u64>,
    /// Proportions after the last update, mean over seeds.
    pub final_alpha: Vec<f64>,
    /// Per-class loss weights after the last epoch, mean over seeds (Group DRO).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_loss_weights: Option<Vec<f64>>,
    /// Mean wall-clock training seconds per epoch.
    pub train_seconds_per_epoch: f64,
    /// The seed-mean test curve, one value per epoch.
    pub mean_test_curve: Vec<f64>,
    /// The half-width of the 95% confidence interval of that mean, per epoch.
    #[serde(default)]
    pub test_curve_ci95: Vec<f64>,
    /// The proportions batches were drawn with at each epoch, mean over seeds.
    #[serde(default)]
    pub mean_alpha_curve: Vec<Vec<f64>>,
}

/// The result of a comparison, as written to `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The version of this schema the file was written with ([`SUMMARY_SCHEMA`]; files
    /// from before the field are version 1).
    #[serde(default = "schema_v1")]
    pub schema: u32,
    /// Experiment name.
    pub experiment: String,
    /// Metric name (for example "MSE").
    pub metric: String,
    /// Whether lower or higher is better.
    pub direction: Direction,
    /// Epochs per run.
    pub epochs: usize,
    /// Epochs every run has completed (what the statistics cover).
    #[serde(default)]
    pub epochs_done: usize,
    /// Seeds run.
    pub seeds: Vec<u64>,
    /// Class names.
    pub class_names: Vec<String>,
    /// Training samples per class (of the first seed).
    pub train_class_sizes: Vec<usize>,
    /// The strategy paired differences are taken against.
    pub reference: String,
    /// The common target: the best seed-mean test value that every strategy reaches.
    pub target: Option<f64>,
    /// One entry per strategy, in configuration order.
    pub strategies: Vec<StrategySummary>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_without_a_schema_is_version_1_and_a_newer_one_is_refused() {
        let old = r#"{"experiment":"x","metric":"MSE","direction":"lower-is-better","epochs":1,
            "seeds":[0],"class_names":["a"],"train_class_sizes":[1],"reference":"learn2mix",
            "target":null,"strategies":[]}"#;
        let c: Comparison = serde_json::from_str(old).expect("version 1");
        assert_eq!(c.schema, 1);
        assert!(check_schema(&c).is_ok());
        let mut newer = c.clone();
        newer.schema = SUMMARY_SCHEMA + 1;
        let e = check_schema(&newer).expect_err("newer");
        assert!(e.to_string().contains("newer than this build reads"), "{e}");
        let back: Comparison =
            serde_json::from_str(&serde_json::to_string(&c).expect("json")).expect("back");
        assert_eq!(back, c);
    }
}
