//! learn2mix and its relatives: class-by-class batches whose proportions move toward the
//! class-wise training losses, by the paper's rule, exponentiated gradient or a tempered
//! target, optionally floored, smoothed and updated every few steps.

use serde::{Deserialize, Serialize};

use l2m_core::{
    Allocation, Cadence, CyclicSampler, Estimator, ExponentiatedGradient, Floored, Learn2Mix,
    Mixer, MixingRule, Mixture, Schedule, Tempered,
};

use super::batches::MixedBatches;
use super::{Defaults, Setup, Strategy, StrategyOptions};
use crate::{EngineError, Result};

/// The rule that moves the proportions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum RuleKind {
    /// `alpha <- alpha + gamma (L / 1^T L - alpha)` (the paper).
    #[default]
    Learn2mix,
    /// `alpha_i <- alpha_i exp(eta L_i)`, normalised (Group DRO's rule on batch proportions).
    Eg,
    /// learn2mix toward `L^(1/T)`, normalised.
    Tempered,
}

impl RuleKind {
    fn is_default(&self) -> bool {
        *self == RuleKind::Learn2mix
    }
}

/// Where the class-wise losses that move the proportions come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum LossSource {
    /// The training steps' own per-sample losses (no extra cost; the paper).
    #[default]
    Train,
}

impl LossSource {
    fn is_default(&self) -> bool {
        *self == LossSource::Train
    }
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

/// The step size of the EG rule when none is given (Group DRO's default).
pub const DEFAULT_ETA: f64 = 0.01;

/// Options of learn2mix. Only `gamma` is required; the others default to the paper's
/// behaviour and are left out of the configuration when they have their default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Learn2MixOptions {
    /// Mixing rate in (0, 1] (rules learn2mix and tempered).
    pub gamma: f64,
    /// Per-batch class counts from `alpha` (default: largest remainder, one per class).
    #[serde(default)]
    pub allocation: Allocation,
    /// Which per-sample losses of a period estimate the class-wise losses (default: the
    /// mean over the period).
    #[serde(default)]
    pub estimator: Estimator,
    /// The rule (default: learn2mix).
    #[serde(default, skip_serializing_if = "RuleKind::is_default")]
    pub rule: RuleKind,
    /// Step size of the EG rule (default 0.01).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta: Option<f64>,
    /// Temperature of the tempered rule (default 1: learn2mix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Mix every update with uniform by this weight, in [0, 1) (default 0: none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub floor: f64,
    /// Exponential moving average of the class-wise losses, weight on the past in [0, 1)
    /// (default 0: none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ema: f64,
    /// Update every this many optimiser steps instead of once per epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_every: Option<usize>,
    /// Where the class-wise losses come from (default: the training steps).
    #[serde(default, skip_serializing_if = "LossSource::is_default")]
    pub loss_source: LossSource,
}

impl Learn2MixOptions {
    /// The paper's learn2mix with mixing rate `gamma`.
    pub fn paper(gamma: f64) -> Self {
        Self {
            gamma,
            allocation: Allocation::default(),
            estimator: Estimator::default(),
            rule: RuleKind::default(),
            eta: None,
            temperature: None,
            floor: 0.0,
            ema: 0.0,
            update_every: None,
            loss_source: LossSource::default(),
        }
    }

    /// The rule these options describe, floored when asked.
    pub fn rule(&self) -> Result<Box<dyn MixingRule>> {
        let inner: Box<dyn MixingRule> = match self.rule {
            RuleKind::Learn2mix => Box::new(Learn2Mix::new(self.gamma)?),
            RuleKind::Eg => Box::new(ExponentiatedGradient::new(self.eta.unwrap_or(DEFAULT_ETA))?),
            RuleKind::Tempered => {
                Box::new(Tempered::new(self.gamma, self.temperature.unwrap_or(1.0))?)
            }
        };
        Ok(if self.floor > 0.0 {
            Box::new(Floored::new(inner, self.floor)?)
        } else {
            inner
        })
    }

    /// The update cadence.
    pub fn cadence(&self) -> Cadence {
        self.update_every.map_or(Cadence::Epoch, Cadence::Steps)
    }
}

impl StrategyOptions for Learn2MixOptions {
    fn defaults(d: &Defaults) -> Self {
        Self::paper(d.gamma)
    }

    fn validate(&self) -> Result<()> {
        let misplaced = |option: &str, rule: &str| {
            Err(EngineError::Strategy {
                strategy: "learn2mix".into(),
                message: format!(
                    "{option} applies to rule {rule} only (rule is {:?})",
                    self.rule
                ),
            })
        };
        if self.eta.is_some() && self.rule != RuleKind::Eg {
            return misplaced("eta", "eg");
        }
        if self.temperature.is_some() && self.rule != RuleKind::Tempered {
            return misplaced("temperature", "tempered");
        }
        Learn2Mix::new(self.gamma)?;
        self.rule()?;
        Floored::new(Box::new(l2m_core::Static), self.floor)?;
        if !(0.0..1.0).contains(&self.ema) {
            return Err(l2m_core::CoreError::InvalidParameter {
                name: "ema",
                value: self.ema,
                expected: "in [0, 1)",
            }
            .into());
        }
        if self.update_every == Some(0) {
            return Err(l2m_core::CoreError::InvalidParameter {
                name: "update_every",
                value: 0.0,
                expected: "at least 1 step",
            }
            .into());
        }
        Ok(())
    }

    fn build(&self, setup: &Setup<'_>) -> Result<Box<dyn Strategy>> {
        let mixer = Mixer::new(
            self.rule()?,
            self.allocation,
            setup.batch_size,
            setup.train.class_sizes(),
        )?;
        Ok(Box::new(Learn2MixStrategy {
            batches: MixedBatches::new(
                Schedule::new(mixer, self.estimator, Some(self.ema), self.cadence())?,
                CyclicSampler::new(setup.train.members().to_vec(), setup.seed)?,
            ),
        }))
    }
}

struct Learn2MixStrategy {
    batches: MixedBatches,
}

impl Strategy for Learn2MixStrategy {
    fn begin_epoch(&mut self) -> Result<()> {
        self.batches.begin_epoch()
    }

    fn next_batch(&mut self, out: &mut Vec<u32>) -> Result<()> {
        self.batches.next_batch(out)
    }

    fn losses_due(&self, pending: usize) -> bool {
        self.batches.schedule.update_due(pending)
    }

    fn record_losses(&mut self, sums: &[Vec<f64>], counts: &[Vec<u64>]) -> Result<()> {
        self.batches.record_losses(sums, counts)
    }

    fn end_epoch(&mut self) -> Result<()> {
        self.batches.end_epoch()
    }

    fn alpha(&self) -> &Mixture {
        self.batches.alpha()
    }

    fn save(&self) -> Result<serde_json::Value> {
        self.batches.save()
    }

    fn restore(&mut self, state: serde_json::Value) -> Result<()> {
        self.batches.restore("learn2mix", state)
    }
}
