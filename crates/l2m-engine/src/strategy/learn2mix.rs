//! learn2mix and its relatives: class-by-class batches whose proportions move toward the
//! class-wise training losses, by the paper's rule, exponentiated gradient or a tempered
//! target, optionally floored, smoothed and updated every few steps.

use serde::{Deserialize, Serialize};

use l2m_core::{
    Allocation, Cadence, CyclicSampler, Estimator, Floored, Learn2Mix, Mixer, MixingRule, Mixture,
    Schedule,
};

use rand::seq::SliceRandom;

use l2m_core::{RngStream, seeded_rng};
use l2m_data::ClassDataset;

use super::batches::MixedBatches;
use super::{Evaluate, Setup, Strategy, StrategyOptions};
use crate::{EngineError, Result};

/// The rule that moves the proportions: a name registered in [`l2m_core::rules`]
/// (`learn2mix`, `eg`, `tempered`, ...), written as that name in TOML and JSON. A rule
/// added to the registry is accepted here without a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub struct RuleKind(&'static str);

impl<'de> Deserialize<'de> for RuleKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Self::try_from(name).map_err(serde::de::Error::custom)
    }
}

impl Default for RuleKind {
    fn default() -> Self {
        Self("learn2mix")
    }
}

impl RuleKind {
    /// The rule registered as `name`.
    pub fn named(name: &str) -> Result<Self> {
        Ok(Self(l2m_core::rules::rule(name)?.name))
    }

    /// Its registered name.
    pub fn name(&self) -> &'static str {
        self.0
    }

    fn entry(&self) -> Result<&'static l2m_core::rules::RuleEntry> {
        Ok(l2m_core::rules::rule(self.0)?)
    }

    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

impl TryFrom<String> for RuleKind {
    type Error = String;

    fn try_from(name: String) -> std::result::Result<Self, String> {
        Self::named(&name).map_err(|e| e.to_string())
    }
}

impl From<RuleKind> for String {
    fn from(r: RuleKind) -> String {
        r.0.to_string()
    }
}

/// Where the class-wise losses that move the proportions come from; written `train` or
/// `held-out:F` in TOML, JSON and on the command line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[non_exhaustive]
pub enum LossSource {
    /// The training steps' own per-sample losses (no extra cost; the paper).
    #[default]
    Train,
    /// A held-out split of the training set: this fraction of every class (at least one
    /// sample, seeded), not trained on, evaluated at every update.
    HeldOut(f64),
}

impl From<LossSource> for String {
    fn from(s: LossSource) -> String {
        match s {
            LossSource::Train => "train".into(),
            LossSource::HeldOut(f) => format!("held-out:{f}"),
        }
    }
}

impl TryFrom<String> for LossSource {
    type Error = String;

    fn try_from(s: String) -> std::result::Result<Self, String> {
        s.parse()
    }
}

impl std::str::FromStr for LossSource {
    type Err = String;

    /// `train` or `held-out:F` with F in (0, 1).
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.split_once(':') {
            None if s == "train" => Ok(LossSource::Train),
            Some(("held-out", f)) => f
                .parse::<f64>()
                .ok()
                .filter(|f| *f > 0.0 && *f < 1.0)
                .map(LossSource::HeldOut)
                .ok_or_else(|| format!("held-out:F needs F in (0, 1), got {f:?}")),
            _ => Err(format!("expected train or held-out:F, got {s:?}")),
        }
    }
}

impl LossSource {
    fn is_default(&self) -> bool {
        *self == LossSource::Train
    }
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

/// The mixing rate when none is given (the toolkit's default for the user's data; each
/// preset sets the paper's value).
pub const DEFAULT_GAMMA: f64 = 0.1;

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
        let inner = self.rule.entry()?.build(&|name| self.parameter(name))?;
        Ok(if self.floor > 0.0 {
            Box::new(Floored::new(inner, self.floor)?)
        } else {
            inner
        })
    }

    /// The value of a rule parameter these options hold (`None`: the rule's default).
    fn parameter(&self, name: &str) -> Option<f64> {
        match name {
            "gamma" => Some(self.gamma),
            "eta" => self.eta,
            "temperature" => self.temperature,
            _ => None,
        }
    }

    /// The update cadence.
    pub fn cadence(&self) -> Cadence {
        self.update_every.map_or(Cadence::Epoch, Cadence::Steps)
    }
}

impl StrategyOptions for Learn2MixOptions {
    fn defaults() -> Self {
        Self::paper(DEFAULT_GAMMA)
    }

    fn validate(&self) -> Result<()> {
        // A rule parameter given for a rule that does not read it is a mistake, named.
        let entry = self.rule.entry()?;
        for (option, given) in [("eta", self.eta), ("temperature", self.temperature)] {
            if given.is_some() && !entry.takes(option) {
                let takers: Vec<&str> = l2m_core::rules::RULES
                    .iter()
                    .filter(|r| r.takes(option))
                    .map(|r| r.name)
                    .collect();
                return Err(EngineError::Strategy {
                    strategy: "learn2mix".into(),
                    message: format!(
                        "{option} applies to rule {} only (rule is {:?})",
                        takers.join(", "),
                        self.rule.name()
                    ),
                });
            }
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
        if let LossSource::HeldOut(f) = self.loss_source
            && !(f > 0.0 && f < 1.0)
        {
            return Err(l2m_core::CoreError::InvalidParameter {
                name: "loss_source held-out fraction",
                value: f,
                expected: "in (0, 1)",
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
        let (train, held_out) = match self.loss_source {
            LossSource::Train => (None, None),
            LossSource::HeldOut(f) => {
                let (t, h) = hold_out(setup.train, f, setup.seed)?;
                (Some(t), Some(h))
            }
        };
        let trained_on = train.as_ref().unwrap_or(setup.train);
        let mixer = Mixer::new(
            self.rule()?,
            self.allocation,
            setup.batch_size,
            trained_on.class_sizes(),
        )?;
        Ok(Box::new(Learn2MixStrategy {
            batches: MixedBatches::new(
                Schedule::new(mixer, self.estimator, Some(self.ema), self.cadence())?,
                CyclicSampler::new(trained_on.members().to_vec(), setup.seed)?,
            ),
            train,
            held_out,
        }))
    }
}

/// Splits every class of `train`: a seeded fraction `f` (at least one sample, and at least
/// one left to train on) is held out. Both parts are views of the same store.
fn hold_out(train: &ClassDataset, f: f64, seed: u64) -> Result<(ClassDataset, ClassDataset)> {
    let mut rng = seeded_rng(seed, RngStream::HeldOut);
    let mut kept = Vec::with_capacity(train.num_classes());
    let mut held = Vec::with_capacity(train.num_classes());
    for (c, members) in train.members().iter().enumerate() {
        if members.len() < 2 {
            return Err(EngineError::Strategy {
                strategy: "learn2mix".into(),
                message: format!(
                    "loss_source held-out needs 2 samples of every class; class {} has {}",
                    train.class_names().get(c).map_or("?", String::as_str),
                    members.len()
                ),
            });
        }
        let mut m = members.clone();
        m.shuffle(&mut rng);
        let n = ((m.len() as f64 * f).round() as usize).clamp(1, m.len() - 1);
        held.push(m[..n].to_vec());
        let mut rest = m[n..].to_vec();
        rest.sort_unstable();
        kept.push(rest);
    }
    Ok((
        train.with_member_lists(kept)?,
        train
            .with_member_lists(held)?
            .renamed(format!("{} (held out)", train.name())),
    ))
}

struct Learn2MixStrategy {
    batches: MixedBatches,
    /// With a held-out loss source: the part trained on, and the part evaluated.
    train: Option<ClassDataset>,
    held_out: Option<ClassDataset>,
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

    fn record_losses(
        &mut self,
        sums: &[Vec<f64>],
        counts: &[Vec<u64>],
        eval: &mut Evaluate<'_>,
    ) -> Result<()> {
        match &self.held_out {
            None => self.batches.record_losses(sums, counts),
            Some(h) => self.batches.tick(sums.len(), &mut || eval(h)),
        }
    }

    fn end_epoch(&mut self, eval: &mut Evaluate<'_>) -> Result<()> {
        match &self.held_out {
            None => self.batches.end_epoch(),
            Some(h) if self.batches.schedule.updates_at_epoch_end() => {
                self.batches.schedule.update_from(&eval(h)?)?;
                Ok(())
            }
            Some(_) => Ok(()),
        }
    }

    fn train_set(&self) -> Option<&ClassDataset> {
        self.train.as_ref()
    }

    fn notes(&self) -> Vec<String> {
        self.held_out
            .iter()
            .map(|h| {
                format!(
                    "learn2mix: {} training samples held out to estimate the class losses \
                     (per class {:?}), not trained on",
                    h.len(),
                    h.class_sizes()
                )
            })
            .collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use l2m_data::synthetic::MeanEstimation;

    #[test]
    fn the_held_out_split_is_disjoint_seeded_and_leaves_every_class_some() {
        let (train, _) = MeanEstimation {
            train_counts: [40, 30, 3, 2],
            test_per_class: 2,
            draws: 3,
        }
        .generate(1)
        .expect("data");
        let (kept, held) = hold_out(&train, 0.25, 9).expect("split");
        assert_eq!(held.class_sizes(), vec![10, 8, 1, 1]);
        assert_eq!(kept.class_sizes(), vec![30, 22, 2, 1]);
        for c in 0..4 {
            let mut all: Vec<u32> = kept.members()[c]
                .iter()
                .chain(&held.members()[c])
                .copied()
                .collect();
            all.sort_unstable();
            let mut original = train.members()[c].clone();
            original.sort_unstable();
            assert_eq!(all, original, "class {c}: disjoint parts that cover it");
        }
        let (_, again) = hold_out(&train, 0.25, 9).expect("split");
        assert_eq!(again.members(), held.members(), "seeded");
        let (_, other) = hold_out(&train, 0.25, 10).expect("split");
        assert_ne!(other.members(), held.members());
        let (tiny, _) = MeanEstimation {
            train_counts: [5, 5, 5, 1],
            test_per_class: 2,
            draws: 3,
        }
        .generate(1)
        .expect("data");
        let e = hold_out(&tiny, 0.5, 1).expect_err("a class of one");
        assert!(e.to_string().contains("needs 2 samples"), "{e}");
    }

    #[test]
    fn loss_sources_parse() {
        assert_eq!("train".parse::<LossSource>(), Ok(LossSource::Train));
        assert_eq!(
            "held-out:0.1".parse::<LossSource>(),
            Ok(LossSource::HeldOut(0.1))
        );
        for bad in ["held-out:1", "held-out:x", "test", "held-out"] {
            assert!(bad.parse::<LossSource>().is_err(), "{bad}");
        }
    }
}
