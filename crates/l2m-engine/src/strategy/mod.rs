//! Strategies: everything a comparison varies, behind one interface.
//!
//! A strategy is configured as a [`StrategySpec`] (a registered name and its options, as
//! JSON/TOML: `{ kind = "learn2mix", gamma = 0.1 }`) and runs as a [`Strategy`] object that
//! owns what it changes in the loop and its own state:
//!
//! - the training set it trains on ([`Strategy::train_set`]: SMOTE oversamples);
//! - the per-sample loss and how a batch's losses become the loss to minimise
//!   ([`Strategy::per_sample_loss`]: focal loss; [`Strategy::batch_loss`]: Group DRO's
//!   weighting);
//! - a warm-up phase before training ([`Strategy::warm_up`]: the curriculum's scoring run);
//! - which samples fill each batch ([`Strategy::next_batch`]) and a per-step filter
//!   ([`Strategy::select`]: importance sampling);
//! - what it learns from the class-wise training losses ([`Strategy::record_losses`],
//!   [`Strategy::end_epoch`]: learn2mix's proportions);
//! - its checkpointed state ([`Strategy::save`], [`Strategy::restore`]).
//!
//! The training loop calls these hooks in the same order for every strategy and never asks
//! which strategy it runs. Adding one is a new file with an options type implementing
//! [`StrategyOptions`] and one line in [`REGISTRY`].

mod balanced;
mod batches;
mod classical;
mod curriculum;
mod focal;
mod group_dro;
mod importance;
mod learn2mix;
mod smote;
mod stratified;

use std::fmt;

use candle_core::{Device, Tensor};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use l2m_core::Mixture;
use l2m_data::ClassDataset;

use crate::{EngineError, Result, Task};

pub use group_dro::GroupDroOptions;
pub use learn2mix::{Learn2MixOptions, LossSource, RuleKind};

/// Every strategy the engine knows, in the order `l2m` lists them: one line per strategy.
pub const REGISTRY: &[StrategyEntry] = &[
    StrategyEntry::of::<Learn2MixOptions>(
        "learn2mix",
        "batches drawn class by class with proportions moved toward the class-wise losses",
    )
    .reference(),
    StrategyEntry::of::<classical::ClassicalOptions>(
        "classical",
        "the training set shuffled and cut into batches",
    ),
    StrategyEntry::of::<stratified::StratifiedOptions>(
        "stratified",
        "exactly the training set's proportions alpha* in every batch",
    ),
    StrategyEntry::of::<balanced::BalancedOptions>(
        "balanced",
        "uniform class proportions in every batch (class-balanced sampling)",
    ),
    StrategyEntry::of::<focal::FocalOptions>(
        "focal",
        "shuffled batches, class-balanced focal loss",
    ),
    StrategyEntry::of::<smote::SmoteOptions>(
        "smote",
        "every class oversampled to the largest with SMOTE, then shuffled batches",
    ),
    StrategyEntry::of::<importance::ImportanceOptions>(
        "importance",
        "train on half of each shuffled batch, drawn in proportion to the loss",
    ),
    StrategyEntry::of::<curriculum::CurriculumOptions>(
        "curriculum",
        "classical warm-up, then the easiest fraction of the data, growing",
    ),
    StrategyEntry::of::<GroupDroOptions>(
        "group-dro",
        "classical batches, per-sample losses weighted by Group DRO's class weights",
    ),
];

/// The names of the registered strategies.
pub fn strategy_names() -> Vec<&'static str> {
    REGISTRY.iter().map(|e| e.name).collect()
}

/// What a strategy may look at when it is built for one run.
pub struct Setup<'a> {
    /// The (imbalanced) training set of the run.
    pub train: &'a ClassDataset,
    /// The task.
    pub task: Task,
    /// Training batch size `B`.
    pub batch_size: usize,
    /// Optimiser steps per epoch, `floor(N / B)`.
    pub steps_per_epoch: usize,
    /// The run's seed.
    pub seed: u64,
    /// The device the model trains on.
    pub device: &'a Device,
}

/// The options of one strategy: serde (unknown fields refused), defaults, validation, and
/// the strategy object they build.
pub trait StrategyOptions: Serialize + DeserializeOwned + 'static {
    /// The options when only the name is given.
    fn defaults() -> Self;
    /// Checks every value, naming the option.
    fn validate(&self) -> Result<()> {
        Ok(())
    }
    /// Whether the strategy needs class labels as targets (classification).
    fn needs_classes(&self) -> bool {
        false
    }
    /// The strategy for one run.
    fn build(&self, setup: &Setup<'_>) -> Result<Box<dyn Strategy>>;
}

/// One registered strategy.
#[derive(Clone, Copy)]
pub struct StrategyEntry {
    /// Its name on the command line, in TOML and in records.
    pub name: &'static str,
    /// One line for listings.
    pub summary: &'static str,
    defaults: fn() -> Result<serde_json::Value>,
    normalise: fn(&'static str, serde_json::Value) -> Result<serde_json::Value>,
    needs_classes: fn(&serde_json::Value) -> Result<bool>,
    build: fn(&serde_json::Value, &Setup<'_>) -> Result<Box<dyn Strategy>>,
    /// Whether comparisons take paired differences against this strategy (and `l2m
    /// predict` uses its model) when it runs: the method under test, learn2mix.
    pub is_reference: bool,
}

impl fmt::Debug for StrategyEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StrategyEntry")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

fn typed<O: StrategyOptions>(name: &str, options: &serde_json::Value) -> Result<O> {
    O::deserialize(options).map_err(|e| EngineError::Strategy {
        strategy: name.to_string(),
        message: e.to_string(),
    })
}

fn to_json(options: &impl Serialize) -> Result<serde_json::Value> {
    serde_json::to_value(options).map_err(|e| EngineError::Strategy {
        strategy: "options".into(),
        message: e.to_string(),
    })
}

impl StrategyEntry {
    /// The entry of the strategy whose options are `O`.
    pub const fn of<O: StrategyOptions>(name: &'static str, summary: &'static str) -> Self {
        fn defaults<O: StrategyOptions>() -> Result<serde_json::Value> {
            to_json(&O::defaults())
        }
        fn normalise<O: StrategyOptions>(
            name: &'static str,
            v: serde_json::Value,
        ) -> Result<serde_json::Value> {
            let o: O = typed(name, &v)?;
            o.validate().map_err(|e| match e {
                EngineError::Strategy { .. } => e,
                other => EngineError::Strategy {
                    strategy: name.to_string(),
                    message: other.to_string(),
                },
            })?;
            to_json(&o)
        }
        fn needs_classes<O: StrategyOptions>(v: &serde_json::Value) -> Result<bool> {
            Ok(typed::<O>("strategy", v)?.needs_classes())
        }
        fn build<O: StrategyOptions>(
            v: &serde_json::Value,
            setup: &Setup<'_>,
        ) -> Result<Box<dyn Strategy>> {
            typed::<O>("strategy", v)?.build(setup)
        }
        Self {
            name,
            summary,
            defaults: defaults::<O>,
            normalise: normalise::<O>,
            needs_classes: needs_classes::<O>,
            build: build::<O>,
            is_reference: false,
        }
    }

    /// Marks the entry as the reference of comparisons (one entry is).
    pub const fn reference(mut self) -> Self {
        self.is_reference = true;
        self
    }
}

fn entry(name: &str) -> Result<&'static StrategyEntry> {
    let name = if name == "l2m" { "learn2mix" } else { name };
    REGISTRY
        .iter()
        .find(|e| e.name == name)
        .ok_or_else(|| EngineError::UnknownStrategy {
            name: name.to_string(),
            known: strategy_names().join(", "),
        })
}

/// A configured strategy: a registered kind, an optional label (so that one kind can run
/// twice in a comparison with different options) and its options (every option present,
/// each valid). Serialised as `{"kind": kind, "label": label, ...options}`.
#[derive(Debug, Clone, PartialEq)]
pub struct StrategySpec {
    entry: &'static StrategyEntry,
    label: Option<String>,
    options: serde_json::Value,
}

/// Checks a label: it names the strategy in tables and its directories, so it is short and
/// made of letters, digits and `. _ + = -`.
fn check_label(label: &str) -> Result<()> {
    let ok = !label.is_empty()
        && label.len() <= 64
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+=-".contains(c))
        && !label.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(EngineError::Strategy {
            strategy: label.to_string(),
            message: "a label must be 1 to 64 letters, digits or . _ + = - (not starting with .)"
                .into(),
        })
    }
}

impl PartialEq for StrategyEntry {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl StrategySpec {
    /// The strategy `name` with its default options; `l2m` is an alias of learn2mix.
    pub fn parse(name: &str) -> Result<Self> {
        let entry = entry(name)?;
        let options = (entry.defaults)()?;
        Self::with_options(entry.name, options)
    }

    /// This strategy with the option `key` set to `value` when it has that option (an
    /// option it lacks leaves it as it is: `gamma` for a strategy without a mixing rate);
    /// a bad value is an error naming the option.
    pub fn with_option_if_any(mut self, key: &str, value: serde_json::Value) -> Result<Self> {
        if self.has_option(key) {
            self.set_option(key, value)?;
        }
        Ok(self)
    }

    /// Parses a command-line item `KIND[:OPTION=VALUE]...`, e.g. `learn2mix:update_every=10`
    /// (values are JSON where they parse as JSON, strings otherwise). An item with options is
    /// labelled with the item itself, `:` written as `+`, so that it can sit beside the
    /// plain strategy in one comparison.
    pub fn parse_item(item: &str) -> Result<Self> {
        let mut segments = item.split(':');
        let kind = segments.next().unwrap_or_default().trim();
        let mut spec = Self::parse(kind)?;
        let mut labelled = false;
        // A segment without `=` continues the previous value (`loss_source=held-out:0.2`).
        let mut parts: Vec<String> = Vec::new();
        for seg in segments {
            match parts.last_mut() {
                Some(last) if !seg.contains('=') => {
                    last.push(':');
                    last.push_str(seg);
                }
                _ => parts.push(seg.to_string()),
            }
        }
        for part in &parts {
            let (key, value) = part.split_once('=').ok_or_else(|| EngineError::Strategy {
                strategy: kind.to_string(),
                message: format!("expected OPTION=VALUE after ':', got {part:?}"),
            })?;
            let value = serde_json::from_str(value.trim())
                .unwrap_or_else(|_| serde_json::Value::String(value.trim().to_string()));
            spec.set_option(key.trim(), value)?;
            labelled = true;
        }
        if labelled {
            spec.set_label(&item.trim().replace(':', "+"))?;
        }
        Ok(spec)
    }

    /// Names this strategy `label` in records, tables and directories.
    pub fn set_label(&mut self, label: &str) -> Result<()> {
        check_label(label)?;
        self.label = Some(label.to_string());
        Ok(())
    }

    /// Whether this is the registry's reference strategy (learn2mix), the one comparisons
    /// take paired differences against when it runs.
    pub fn is_reference(&self) -> bool {
        self.entry.is_reference
    }

    /// The registered kind (`learn2mix`, `classical`, ...), whatever the label.
    pub fn kind(&self) -> &'static str {
        self.entry.name
    }

    /// The strategy `name` with `options` (a JSON object; missing options take their
    /// defaults where the strategy has them), validated.
    pub fn with_options(name: &str, options: serde_json::Value) -> Result<Self> {
        let entry = entry(name)?;
        let options = (entry.normalise)(entry.name, options)?;
        Ok(Self {
            entry,
            label: None,
            options,
        })
    }

    /// learn2mix with typed options.
    pub fn learn2mix(options: Learn2MixOptions) -> Result<Self> {
        Self::with_options("learn2mix", to_json(&options)?)
    }

    /// The name used in records, tables and directories: the label if any, else the kind.
    pub fn name(&self) -> &str {
        self.label.as_deref().unwrap_or(self.entry.name)
    }

    /// The options, as JSON (every option present).
    pub fn options(&self) -> &serde_json::Value {
        &self.options
    }

    /// The options as their typed struct, when this is the strategy `name`.
    pub fn typed_options<O: StrategyOptions>(&self, name: &str) -> Option<O> {
        (self.entry.name == name)
            .then(|| O::deserialize(&self.options).ok())
            .flatten()
    }

    /// A numeric option, if the strategy has it.
    pub fn number(&self, key: &str) -> Option<f64> {
        self.options.get(key).and_then(serde_json::Value::as_f64)
    }

    /// Whether the strategy has the option `key`.
    pub fn has_option(&self, key: &str) -> bool {
        self.options.get(key).is_some()
    }

    /// Sets the option `key` to `value` and validates the result (the strategy is
    /// unchanged on error). Options a strategy does not have are refused by name.
    pub fn set_option(&mut self, key: &str, value: serde_json::Value) -> Result<()> {
        let mut options = self.options.clone();
        if let Some(map) = options.as_object_mut() {
            map.insert(key.to_string(), value);
        }
        self.options = (self.entry.normalise)(self.entry.name, options)?;
        Ok(())
    }

    /// Whether the strategy needs class labels as targets.
    pub fn needs_classes(&self) -> bool {
        (self.entry.needs_classes)(&self.options).unwrap_or(false)
    }

    /// The strategy object for one run.
    pub fn build(&self, setup: &Setup<'_>) -> Result<Box<dyn Strategy>> {
        (self.entry.build)(&self.options, setup)
    }
}

impl Serialize for StrategySpec {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let fields = self.options.as_object();
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("kind", self.entry.name)?;
        if let Some(label) = &self.label {
            map.serialize_entry("label", label)?;
        }
        for (k, v) in fields.into_iter().flatten() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for StrategySpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let mut value = serde_json::Map::deserialize(d)?;
        let kind = match value.remove("kind") {
            Some(serde_json::Value::String(k)) => k,
            _ => {
                return Err(serde::de::Error::custom(format!(
                    "a strategy needs `kind`, one of {}",
                    strategy_names().join(", ")
                )));
            }
        };
        let label = match value.remove("label") {
            None => None,
            Some(serde_json::Value::String(l)) => Some(l),
            Some(other) => {
                return Err(serde::de::Error::custom(format!(
                    "a strategy's label must be a string, got {other}"
                )));
            }
        };
        let mut spec = Self::with_options(&kind, serde_json::Value::Object(value))
            .map_err(serde::de::Error::custom)?;
        if let Some(l) = label {
            spec.set_label(&l).map_err(serde::de::Error::custom)?;
        }
        Ok(spec)
    }
}

/// A warm-up phase before training (the curriculum's scoring run), driven by the strategy
/// through the loop.
pub trait WarmUp {
    /// Trains `epochs` epochs of classical (shuffled) batches on the model.
    fn train_classical(&mut self, epochs: usize) -> Result<()>;
    /// `1 - p(y | x)` of every training sample (in the order of `all_members`), in
    /// evaluation mode.
    fn difficulty(&mut self) -> Result<Vec<f32>>;
    /// Restarts from the initial weights (and a fresh optimiser).
    fn restart(&mut self) -> Result<()>;
}

/// Scores a batch's samples with their per-sample task loss (training mode, no gradient).
pub type Scorer<'a> = dyn FnMut(&[u32]) -> Result<Vec<f32>> + 'a;

/// Evaluates the model now (evaluation mode, no gradient) on a view of the training store
/// (for example a held-out split), returning the per-class mean task loss.
pub type Evaluate<'a> = dyn FnMut(&ClassDataset) -> Result<l2m_core::ClassLossEstimate> + 'a;

/// One strategy in one run. Every hook but the batch source has a neutral default.
pub trait Strategy {
    /// The training set this strategy trains on, if not the run's own (SMOTE).
    fn train_set(&self) -> Option<&ClassDataset> {
        None
    }

    /// What the user should know about this run (for `run.json`).
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }

    /// The per-sample loss minimised (default: the task's).
    fn per_sample_loss(&self, task: Task, output: &Tensor, target: &Tensor) -> Result<Tensor> {
        task.per_sample_loss(output, target)
    }

    /// Whether the strategy can train data-parallel ([`crate::collective`]): its batch
    /// loss is the mean of its per-sample losses and it does not choose samples by the
    /// model (default: yes).
    fn data_parallel(&self) -> bool {
        true
    }

    /// The loss of one batch from its per-sample losses and their classes (default: the
    /// mean).
    fn batch_loss(&mut self, per_sample: &Tensor, _classes: &Tensor) -> Result<Tensor> {
        Ok(per_sample.mean(0)?)
    }

    /// Before the first epoch of a fresh run (not on resume).
    fn warm_up(&mut self, _ctx: &mut dyn WarmUp) -> Result<()> {
        Ok(())
    }

    /// Start of an epoch.
    fn begin_epoch(&mut self) -> Result<()>;

    /// Appends the next batch's sample indices.
    fn next_batch(&mut self, out: &mut Vec<u32>) -> Result<()>;

    /// May replace the batch by a subset, scoring samples with `score` (default: keeps it).
    fn select(&mut self, _batch: &mut Vec<u32>, _score: &mut Scorer<'_>) -> Result<()> {
        Ok(())
    }

    /// Whether the class-wise losses of the `pending` steps not yet handed over must be
    /// handed over now (before the next step); otherwise they come at the end of the epoch.
    fn losses_due(&self, _pending: usize) -> bool {
        false
    }

    /// The per-class training loss sums and sample counts of consecutive steps, in order;
    /// `eval` evaluates the current model on a view of the training store.
    fn record_losses(
        &mut self,
        _sums: &[Vec<f64>],
        _counts: &[Vec<u64>],
        _eval: &mut Evaluate<'_>,
    ) -> Result<()> {
        Ok(())
    }

    /// End of an epoch (after its losses were recorded).
    fn end_epoch(&mut self, _eval: &mut Evaluate<'_>) -> Result<()> {
        Ok(())
    }

    /// The class proportions batches are drawn with now (in expectation for shuffled
    /// batches).
    fn alpha(&self) -> &Mixture;

    /// Whether batches are drawn with the training set's own class proportions (shuffled
    /// or stratified batches): a class too rare to appear in every batch is then the
    /// data, not the strategy's doing, and raises no coverage alarm (default: no).
    fn data_proportions(&self) -> bool {
        false
    }

    /// Per-class loss weights, for strategies that weight losses (Group DRO).
    fn loss_weights(&self) -> Option<Vec<f64>> {
        None
    }

    /// The state to checkpoint at the end of an epoch.
    fn save(&self) -> Result<serde_json::Value>;

    /// Continues from a saved state.
    fn restore(&mut self, state: serde_json::Value) -> Result<()>;
}

/// Parses a saved state, naming the strategy on failure.
pub(crate) fn state<T: DeserializeOwned>(strategy: &str, v: serde_json::Value) -> Result<T> {
    serde_json::from_value(v).map_err(|e| {
        EngineError::Checkpoint(format!(
            "the checkpoint's strategy state does not fit {strategy}: {e}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names() {
        assert_eq!(
            StrategySpec::parse("classical").expect("valid").name(),
            "classical"
        );
        let l = StrategySpec::parse("learn2mix")
            .and_then(|s| s.with_option_if_any("gamma", serde_json::json!(0.3)))
            .expect("valid");
        assert_eq!(l.number("gamma"), Some(0.3));
        for name in strategy_names() {
            assert_eq!(StrategySpec::parse(name).expect("known").name(), name);
        }
        assert_eq!(
            StrategySpec::parse("l2m").expect("alias").name(),
            "learn2mix"
        );
        let e = StrategySpec::parse("dro").expect_err("unknown");
        assert!(e.to_string().contains("unknown strategy \"dro\""), "{e}");
        assert!(e.to_string().contains("group-dro"), "{e}");
    }

    #[test]
    fn serde_round_trip_keeps_the_old_layout() {
        let s = StrategySpec::parse("learn2mix")
            .and_then(|s| s.with_option_if_any("gamma", serde_json::json!(0.01)))
            .expect("valid");
        let json = serde_json::to_string(&s).expect("json");
        assert_eq!(
            json,
            r#"{"kind":"learn2mix","gamma":0.01,"allocation":{"kind":"largest-remainder","min_per_class":1},"estimator":"epoch-mean"}"#
        );
        let back: StrategySpec =
            serde_json::from_str(r#"{"kind":"learn2mix","gamma":0.5}"#).expect("defaults");
        assert_eq!(back.name(), "learn2mix");
        assert_eq!(
            serde_json::to_string(&StrategySpec::parse("classical").expect("c")).expect("json"),
            r#"{"kind":"classical"}"#
        );
        let e = serde_json::from_str::<StrategySpec>(r#"{"kind":"learn2mix","gama":0.5}"#)
            .expect_err("typo");
        assert!(e.to_string().contains("unknown field `gama`"), "{e}");
    }

    #[test]
    fn items_with_options_are_labelled() {
        let s = StrategySpec::parse_item("learn2mix:update_every=10:floor=0.01").expect("item");
        assert_eq!(s.kind(), "learn2mix");
        assert_eq!(s.name(), "learn2mix+update_every=10+floor=0.01");
        assert_eq!(s.options()["update_every"], serde_json::json!(10));
        let json = serde_json::to_string(&s).expect("json");
        assert!(
            json.starts_with(
                r#"{"kind":"learn2mix","label":"learn2mix+update_every=10+floor=0.01","#
            ),
            "{json}"
        );
        let back: StrategySpec = serde_json::from_str(&json).expect("back");
        assert_eq!(back, s);
        let s = StrategySpec::parse_item("learn2mix:loss_source=held-out:0.2:ema=0.5")
            .expect("held-out");
        assert_eq!(
            s.options()["loss_source"],
            serde_json::json!("held-out:0.2")
        );
        assert_eq!(s.number("ema"), Some(0.5));
        let s = StrategySpec::parse_item("learn2mix:rule=eg:eta=0.05").expect("rule");
        assert_eq!(s.options()["rule"], serde_json::json!("eg"));
        assert_eq!(
            StrategySpec::parse_item("classical").expect("plain").name(),
            "classical"
        );
        for bad in [
            "learn2mix:update_every",
            "learn2mix:gama=1",
            "classical:eta=1",
        ] {
            assert!(StrategySpec::parse_item(bad).is_err(), "{bad}");
        }
        assert!(
            StrategySpec::parse("classical")
                .expect("c")
                .set_label("../x")
                .is_err()
        );
    }

    #[test]
    fn options_are_set_by_name_and_validated() {
        let mut s = StrategySpec::parse("learn2mix").expect("valid");
        s.set_option("floor", serde_json::json!(0.01))
            .expect("floor");
        assert_eq!(s.number("floor"), Some(0.01));
        let e = s
            .set_option("floor", serde_json::json!(1.5))
            .expect_err("bad floor");
        assert!(e.to_string().contains("floor"), "{e}");
        assert_eq!(s.number("floor"), Some(0.01), "unchanged on error");
        let mut c = StrategySpec::parse("classical").expect("valid");
        assert!(c.set_option("eta", serde_json::json!(0.1)).is_err());
        assert!(!c.has_option("eta"));
    }
}
