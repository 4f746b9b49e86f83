//! Experiment configuration and the built-in presets.

use serde::{Deserialize, Serialize};

use l2m_core::Learn2Mix;
use l2m_data::ClassDataset;
use l2m_data::synthetic::MeanEstimation;
use l2m_models::{DeviceKind, FcConfig, ModelConfig};

use crate::{EngineError, Result, StrategySpec, Task};

/// The optimiser: Adam (the paper's choice for every experiment).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizerConfig {
    /// Learning rate.
    pub lr: f64,
}

/// Where the training and test sets come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum DatasetSpec {
    /// The synthetic Mean Estimation set, generated from the run's seed.
    MeanEstimation(MeanEstimation),
}

impl DatasetSpec {
    /// `(train, test)` for `seed` (synthetic data is generated from it).
    pub fn load(&self, seed: u64) -> Result<(ClassDataset, ClassDataset)> {
        match self {
            DatasetSpec::MeanEstimation(g) => Ok(g.generate(seed)?),
        }
    }
}

/// Everything that defines a comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentConfig {
    /// Experiment name (used for the run directory).
    pub name: String,
    /// The data.
    pub dataset: DatasetSpec,
    /// The model.
    pub model: ModelConfig,
    /// The task.
    pub task: Task,
    /// The optimiser.
    pub optimizer: OptimizerConfig,
    /// Training batch size `B`.
    pub batch_size: usize,
    /// Batch size for test evaluation (does not change results).
    pub eval_batch_size: usize,
    /// Epochs per run.
    pub epochs: usize,
    /// One run per seed and strategy; a seed fixes data generation, initial parameters
    /// (shared by the strategies) and sampling.
    pub seeds: Vec<u64>,
    /// The strategies compared.
    pub strategies: Vec<StrategySpec>,
    /// The device.
    pub device: DeviceKind,
}

/// Names of the built-in presets.
pub const PRESETS: &[&str] = &["mean-estimation"];

/// A built-in experiment with the paper's settings (Table 3).
pub fn preset(name: &str) -> Result<ExperimentConfig> {
    match name {
        "mean-estimation" => {
            let gamma = 0.01;
            Ok(ExperimentConfig {
                name: name.into(),
                dataset: DatasetSpec::MeanEstimation(MeanEstimation::default()),
                model: ModelConfig::Fc(FcConfig::paper(10)),
                task: Task::Regression,
                optimizer: OptimizerConfig { lr: 5e-5 },
                batch_size: 500,
                eval_batch_size: 4096,
                epochs: 500,
                seeds: (0..5).collect(),
                strategies: vec![
                    StrategySpec::parse("learn2mix", gamma)?,
                    StrategySpec::parse("classical", gamma)?,
                ],
                device: DeviceKind::Cpu,
            })
        }
        other => Err(EngineError::Config(format!(
            "unknown experiment {other:?}: expected one of {}",
            PRESETS.join(", ")
        ))),
    }
}

impl ExperimentConfig {
    /// The learn2mix mixing rate, if learn2mix is among the strategies.
    pub fn gamma(&self) -> Option<f64> {
        self.strategies.iter().find_map(|s| match s {
            StrategySpec::Learn2Mix { gamma, .. } => Some(*gamma),
            _ => None,
        })
    }

    /// Sets the mixing rate of every learn2mix strategy.
    pub fn set_gamma(&mut self, value: f64) {
        for s in &mut self.strategies {
            if let StrategySpec::Learn2Mix { gamma, .. } = s {
                *gamma = value;
            }
        }
    }

    /// Checks every value; the error names the field and what is expected.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(EngineError::Config(m));
        if !(self.optimizer.lr.is_finite() && self.optimizer.lr > 0.0) {
            return bad(format!(
                "optimizer.lr must be a positive number, got {}",
                self.optimizer.lr
            ));
        }
        if self.batch_size == 0 {
            return bad("batch_size must be at least 1".into());
        }
        if self.eval_batch_size == 0 {
            return bad("eval_batch_size must be at least 1".into());
        }
        if self.epochs == 0 {
            return bad("epochs must be at least 1".into());
        }
        if self.seeds.is_empty() {
            return bad("at least one seed is needed".into());
        }
        let mut seeds = self.seeds.clone();
        seeds.sort_unstable();
        if seeds.windows(2).any(|w| w[0] == w[1]) {
            return bad(format!("seeds must be distinct, got {:?}", self.seeds));
        }
        if self.strategies.is_empty() {
            return bad("at least one strategy is needed".into());
        }
        let mut names: Vec<_> = self.strategies.iter().map(StrategySpec::name).collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return bad(format!("each strategy may appear once, got {names:?}"));
        }
        for s in &self.strategies {
            if let StrategySpec::Learn2Mix { gamma, .. } = s {
                Learn2Mix::new(*gamma)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_estimation_preset_has_the_paper_settings() {
        let c = preset("mean-estimation").expect("preset");
        c.validate().expect("valid");
        assert_eq!(c.optimizer.lr, 5e-5);
        assert_eq!(c.gamma(), Some(0.01));
        assert_eq!(c.batch_size, 500);
        assert_eq!(c.epochs, 500);
        assert_eq!(c.model, ModelConfig::Fc(FcConfig::paper(10)));
    }

    #[test]
    fn validation_names_the_field() {
        let mut c = preset("mean-estimation").expect("preset");
        c.optimizer.lr = -1.0;
        assert!(
            c.validate()
                .expect_err("lr")
                .to_string()
                .contains("optimizer.lr")
        );
        let mut c = preset("mean-estimation").expect("preset");
        c.set_gamma(2.0);
        assert!(
            c.validate()
                .expect_err("gamma")
                .to_string()
                .contains("gamma must be in (0, 1]")
        );
        let mut c = preset("mean-estimation").expect("preset");
        c.seeds = vec![1, 1];
        assert!(
            c.validate()
                .expect_err("seeds")
                .to_string()
                .contains("distinct")
        );
        assert!(
            preset("imagenet")
                .expect_err("unknown")
                .to_string()
                .contains("mean-estimation")
        );
    }
}
