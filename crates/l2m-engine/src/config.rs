//! Experiment configuration and the built-in presets (the paper's Table 3).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use l2m_data::load::imdb::Vocabulary;
use l2m_data::own::{OwnData, Preprocessing, RowIds, SourceKind};
use l2m_data::paper::{PaperDataset, PixelUse};
use l2m_data::synthetic::MeanEstimation;
use l2m_data::{ClassDataset, Imbalance, TaskKind};
use l2m_models::{DeviceKind, ModelConfig};

use crate::variant::kind::Variant;
use crate::{EngineError, Result, StrategySpec, Task};

/// The optimiser: Adam (the paper's choice for every experiment), or AdamW when
/// `weight_decay` is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizerConfig {
    /// Learning rate.
    pub lr: f64,
    /// Decoupled weight decay (AdamW); 0, the default, is Adam.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub weight_decay: f64,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

impl OptimizerConfig {
    /// "Adam", or "AdamW (weight decay X)" with decay.
    pub fn describe(&self) -> String {
        if self.weight_decay == 0.0 {
            "Adam".to_string()
        } else {
            format!("AdamW (weight decay {})", self.weight_decay)
        }
    }
}

/// Where the training and test sets come from.
///
/// In a configuration file this is the `[dataset]` table, tagged by `kind`: the built-in
/// `mean-estimation` and `paper`, or the name of a registered data source
/// ([`l2m_data::own::SOURCES`]: `csv`, `parquet`, `image-folder`, `hub`, ...) with the
/// [`OwnData`] fields beside it.
#[derive(Debug, Clone, PartialEq)]
pub enum DatasetSpec {
    /// The synthetic Mean Estimation set, generated from the run's seed.
    MeanEstimation(MeanEstimation),
    /// A dataset of the paper, read from the data folder; the training split is imbalanced
    /// with `imbalance` (seeded), the test split never.
    Paper {
        /// Which dataset.
        dataset: PaperDataset,
        /// How pixels are presented.
        pixels: PixelUse,
        /// The training-set imbalance of the experiment.
        imbalance: Imbalance,
    },
    /// The user's data, read by a registered source.
    Own {
        /// The source that reads it.
        source: SourceKind,
        /// Where the data is and how to read it.
        data: Box<OwnData>,
    },
}

/// The built-in kinds, as serde reads and writes them.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
enum Builtin {
    MeanEstimation(MeanEstimation),
    Paper {
        dataset: PaperDataset,
        pixels: PixelUse,
        imbalance: Imbalance,
    },
}

/// The user's data as written: the source's name, then its fields.
#[derive(Serialize)]
struct OwnTagged<'a> {
    kind: &'static str,
    #[serde(flatten)]
    data: &'a OwnData,
}

impl Serialize for DatasetSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            DatasetSpec::MeanEstimation(m) => Builtin::MeanEstimation(m.clone()).serialize(s),
            DatasetSpec::Paper {
                dataset,
                pixels,
                imbalance,
            } => Builtin::Paper {
                dataset: *dataset,
                pixels: *pixels,
                imbalance: imbalance.clone(),
            }
            .serialize(s),
            DatasetSpec::Own { source, data } => OwnTagged {
                kind: source.name(),
                data,
            }
            .serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for DatasetSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error;
        // Read once into a neutral value (TOML and JSON alike), then by `kind`.
        let mut value = serde_json::Value::deserialize(d)?;
        let kind = value
            .get("kind")
            .and_then(|k| k.as_str())
            .map(str::to_string)
            .ok_or_else(|| D::Error::missing_field("kind"))?;
        if let Some(source) = SourceKind::named(&kind) {
            if let Some(map) = value.as_object_mut() {
                map.remove("kind");
            }
            let data = Box::new(OwnData::deserialize(value).map_err(D::Error::custom)?);
            return Ok(DatasetSpec::Own { source, data });
        }
        match Builtin::deserialize(value) {
            Ok(Builtin::MeanEstimation(m)) => Ok(DatasetSpec::MeanEstimation(m)),
            Ok(Builtin::Paper {
                dataset,
                pixels,
                imbalance,
            }) => Ok(DatasetSpec::Paper {
                dataset,
                pixels,
                imbalance,
            }),
            Err(e) if e.to_string().starts_with("unknown variant") => {
                Err(D::Error::custom(format!(
                    "unknown dataset kind {kind:?}; expected mean-estimation, paper, or a data \
                     source: {}",
                    SourceKind::names().join(", ")
                )))
            }
            Err(e) => Err(D::Error::custom(e)),
        }
    }
}

/// Data ready for a run.
#[derive(Debug, Clone)]
pub struct LoadedData {
    /// The (imbalanced) training set.
    pub train: ClassDataset,
    /// The test set.
    pub test: ClassDataset,
    /// What a user should know about the data (lossy copy, dropped rows, ...).
    pub notes: Vec<String>,
    /// IMDB's vocabulary (or that of the user's text column).
    pub vocab: Option<Vocabulary>,
    /// The user's data: the preprocessing fitted on the training split and the id of each
    /// test sample (for `l2m predict` and the saved predictions).
    pub own: Option<OwnMeta>,
}

/// What a run keeps of the user's data.
#[derive(Debug, Clone)]
pub struct OwnMeta {
    /// The preprocessing fitted on the training split.
    pub preprocessing: Preprocessing,
    /// The id of every sample of the test store.
    pub test_ids: std::sync::Arc<RowIds>,
}

impl DatasetSpec {
    /// The data for `seed`: synthetic data is generated from it; real data is split (where
    /// the paper defines the split) and imbalanced with it. `limit` keeps at most that many
    /// samples per class in both splits, for quick runs.
    pub fn load(&self, data_dir: &Path, seed: u64, limit: Option<usize>) -> Result<LoadedData> {
        let mut own = None;
        let (mut train, mut test, notes, vocab) = match self {
            DatasetSpec::MeanEstimation(g) => {
                let (train, test) = g.generate(seed)?;
                (train, test, Vec::new(), None)
            }
            DatasetSpec::Own { source, data: d } => {
                let l = source.source().load(d, seed)?;
                let mut notes = vec![format!("read from {}", d.path)];
                notes.extend(l.notes);
                let vocab = l.preprocessing.vocabulary();
                own = Some(OwnMeta {
                    preprocessing: l.preprocessing,
                    test_ids: l.test_ids,
                });
                let train = match &d.imbalance {
                    Some(imb) => l.train.imbalanced(imb, seed)?,
                    None => l.train,
                };
                (train, l.test, notes, vocab)
            }
            DatasetSpec::Paper {
                dataset,
                pixels,
                imbalance,
            } => {
                let l = dataset.load(data_dir, *pixels, seed)?;
                let mut notes = l.notes;
                notes.insert(0, format!("read from {}", l.source.display()));
                (l.train.imbalanced(imbalance, seed)?, l.test, notes, l.vocab)
            }
        };
        if let Some(n) = limit {
            train = train.limit_per_class(n)?;
            test = test.limit_per_class(n)?;
        }
        Ok(LoadedData {
            train,
            test,
            notes,
            vocab,
            own,
        })
    }

    /// The user's data spec and its source, for the user's data.
    pub fn own(&self) -> Option<(SourceKind, &OwnData)> {
        match self {
            DatasetSpec::Own { source, data } => Some((*source, &**data)),
            _ => None,
        }
    }

    /// The data a user must have fetched, if any.
    pub fn needs(&self) -> Option<PaperDataset> {
        match self {
            DatasetSpec::Paper { dataset, .. } => Some(*dataset),
            _ => None,
        }
    }
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}

/// Everything that defines a comparison. Unknown keys are refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Experiment name (used for the run directory).
    pub name: String,
    /// The data.
    pub dataset: DatasetSpec,
    /// The model (a transformer's vocabulary size 0 means "from the data").
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
    /// One run per seed and strategy; a seed fixes data generation or splitting and
    /// imbalancing, the initial parameters (shared by the strategies) and sampling.
    pub seeds: Vec<u64>,
    /// The strategies compared.
    pub strategies: Vec<StrategySpec>,
    /// The device.
    pub device: DeviceKind,
    /// Where datasets are read from.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// At most this many samples per class in each split (quick runs); `None`: all.
    #[serde(default)]
    pub limit: Option<usize>,
    /// Standard deviation of Gaussian noise added to every initial parameter (seeded per
    /// seed, shared by the strategies), as the authors' reconstruction runs do; `None`: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_noise: Option<f64>,
    /// Whose settings a preset follows: the paper's Table 3 (the default) or the authors'
    /// code (see [`crate::variant`]).
    #[serde(default, skip_serializing_if = "Variant::is_table3")]
    pub variant: Variant,
}

/// Names of the built-in presets: the paper's 12 experiments.
/// The built-in experiments: each is a configuration file in `crates/l2m-engine/presets/`
/// (what `l2m compare --experiment NAME --print-config` prints), embedded in the binary.
/// A new preset is one TOML file plus one line here.
const PRESET_FILES: &[(&str, &str)] = &[
    ("mnist", include_str!("../presets/mnist.toml")),
    (
        "fashion-mnist",
        include_str!("../presets/fashion-mnist.toml"),
    ),
    ("cifar10", include_str!("../presets/cifar10.toml")),
    ("imagenette", include_str!("../presets/imagenette.toml")),
    ("cifar100", include_str!("../presets/cifar100.toml")),
    ("imdb", include_str!("../presets/imdb.toml")),
    (
        "mean-estimation",
        include_str!("../presets/mean-estimation.toml"),
    ),
    ("wine-quality", include_str!("../presets/wine-quality.toml")),
    (
        "california-housing",
        include_str!("../presets/california-housing.toml"),
    ),
    (
        "mnist-reconstruction",
        include_str!("../presets/mnist-reconstruction.toml"),
    ),
    (
        "fashion-mnist-reconstruction",
        include_str!("../presets/fashion-mnist-reconstruction.toml"),
    ),
    (
        "cifar10-reconstruction",
        include_str!("../presets/cifar10-reconstruction.toml"),
    ),
];

/// The names of the built-in experiments, in the order `l2m list` shows them.
pub const PRESETS: &[&str] = &{
    let mut names = [""; PRESET_FILES.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = PRESET_FILES[i].0;
        i += 1;
    }
    names
};

/// The strategies run on the user's data by default (`presets/own-data.toml`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OwnDataDefaults {
    classification_tabular: Vec<String>,
    classification: Vec<String>,
    other: Vec<String>,
}

impl OwnDataDefaults {
    fn read() -> Result<Self> {
        toml::from_str(include_str!("../presets/own-data.toml")).map_err(|e| {
            EngineError::Config(format!(
                "the built-in presets/own-data.toml does not parse: {e}"
            ))
        })
    }
}

/// A built-in experiment with the paper's settings (Table 3; epoch budgets from the spec),
/// read from its embedded configuration file.
pub fn preset(name: &str) -> Result<ExperimentConfig> {
    let Some((_, text)) = PRESET_FILES.iter().find(|(n, _)| *n == name) else {
        return Err(EngineError::Config(format!(
            "unknown experiment {name:?}: expected one of {}",
            PRESETS.join(", ")
        )));
    };
    let cfg: ExperimentConfig = toml::from_str(text).map_err(|e| {
        EngineError::Config(format!("the built-in preset {name} does not parse: {e}"))
    })?;
    if cfg.name != name {
        return Err(EngineError::Config(format!(
            "the built-in preset file {name}.toml names itself {:?}",
            cfg.name
        )));
    }
    Ok(cfg)
}

impl ExperimentConfig {
    /// An experiment on the user's data with the defaults `l2m compare --data` starts
    /// from: Adam at lr 1e-3, batch size `batch_size`, 20 epochs, 3 seeds, learn2mix
    /// (gamma 0.1) against classical training, and for classification also focal loss and
    /// SMOTE (SMOTE only for tabular features).
    pub fn own_data(
        name: &str,
        dataset: DatasetSpec,
        model: ModelConfig,
        task: Task,
        batch_size: usize,
    ) -> Result<Self> {
        let tabular = matches!(model, ModelConfig::Mlp(_) | ModelConfig::Fc(_));
        let defaults = OwnDataDefaults::read()?;
        let names = match (task, tabular) {
            (Task::Classification, true) => defaults.classification_tabular,
            (Task::Classification, false) => defaults.classification,
            _ => defaults.other,
        };
        Ok(ExperimentConfig {
            name: name.into(),
            dataset,
            model,
            task,
            optimizer: OptimizerConfig {
                lr: 1e-3,
                weight_decay: 0.0,
            },
            batch_size: batch_size.max(1),
            eval_batch_size: 1000,
            epochs: 20,
            seeds: (0..3).collect(),
            strategies: names
                .iter()
                .map(|n| StrategySpec::parse(n))
                .collect::<Result<_>>()?,
            device: DeviceKind::Cpu,
            data_dir: default_data_dir(),
            limit: None,
            init_noise: None,
            variant: Variant::Table3,
        })
    }

    /// The numeric strategy option `key` (`gamma`, `eta`, ...) of the first strategy that
    /// has it.
    pub fn option(&self, key: &str) -> Option<f64> {
        self.strategies.iter().find_map(|s| s.number(key))
    }

    /// The mixing rate: [`ExperimentConfig::option`] of `gamma` (learn2mix's option, like
    /// any other strategy's).
    pub fn gamma(&self) -> Option<f64> {
        self.option("gamma")
    }

    /// Sets the numeric option `key` of every strategy that has it; a value a strategy
    /// refuses is an error naming the option, and nothing is changed then.
    pub fn set_option(&mut self, key: &str, value: f64) -> Result<()> {
        let mut strategies = self.strategies.clone();
        for s in &mut strategies {
            if s.has_option(key) {
                s.set_option(key, value.into())?;
            }
        }
        self.strategies = strategies;
        Ok(())
    }

    /// [`ExperimentConfig::set_option`] of `gamma`.
    pub fn set_gamma(&mut self, value: f64) -> Result<()> {
        self.set_option("gamma", value)
    }

    /// The model for data that has been loaded: a transformer takes the vocabulary size,
    /// and sizes left 0 (the user's data) are taken from the data: input width, classes,
    /// sequence length.
    pub fn model_for(&self, data: &LoadedData) -> Result<ModelConfig> {
        let mut model = self.model.clone();
        let outputs = match self.task {
            Task::Classification => data.train.num_classes(),
            _ => 1,
        };
        let shape = data.train.samples().sample_shape();
        let dim = data.train.samples().feature_dim();
        match &mut model {
            ModelConfig::Transformer(t) => {
                if t.vocab == 0 {
                    t.vocab = data.vocab.as_ref().map(Vocabulary::len).ok_or_else(|| {
                        EngineError::Config(
                            "the transformer needs a vocabulary from its dataset".into(),
                        )
                    })?;
                }
                if t.classes == 0 {
                    t.classes = outputs;
                }
                if t.max_len == 0 {
                    t.max_len = dim;
                }
            }
            ModelConfig::Mlp(m) => {
                if m.input_dim == 0 {
                    m.input_dim = dim;
                }
                if m.output_dim == 0 {
                    m.output_dim = outputs;
                }
            }
            ModelConfig::Fc(m) if m.input_dim == 0 => m.input_dim = dim,
            ModelConfig::LeNet5(m) if m.classes == 0 => m.classes = outputs,
            ModelConfig::LeNetCifar(m) if m.classes == 0 => m.classes = outputs,
            ModelConfig::ResNet18(m) if m.classes == 0 => m.classes = outputs,
            _ => {}
        }
        let image = |c: usize, h: usize| shape == [c, h, h];
        match &model {
            ModelConfig::LeNet5(_) if !image(1, 28) => Err(EngineError::Config(format!(
                "LeNet-5 takes 1 x 28 x 28 images, and {} holds {shape:?} (use --image-size 28 --channels 1, or --model resnet18)",
                data.train.name()
            ))),
            ModelConfig::LeNetCifar(_) if !image(3, 32) => Err(EngineError::Config(format!(
                "the CIFAR LeNet takes 3 x 32 x 32 images, and {} holds {shape:?} (use --image-size 32 --channels 3, or --model resnet18)",
                data.train.name()
            ))),
            ModelConfig::ResNet18(_) if shape.len() != 3 || shape[0] != 3 => {
                Err(EngineError::Config(format!(
                    "ResNet-18 takes RGB images, and {} holds {shape:?} (use --channels 3)",
                    data.train.name()
                )))
            }
            _ if model
                .parameter_bound()
                .is_none_or(|n| n > l2m_models::MAX_PARAMETERS) =>
            {
                Err(EngineError::Config(format!(
                    "model: {} for {} would hold more than {} parameters",
                    model.name(),
                    data.train.name(),
                    l2m_models::MAX_PARAMETERS
                )))
            }
            _ => Ok(model),
        }
    }

    /// Checks that the dataset's targets fit the task.
    pub fn check_data(&self, data: &LoadedData) -> Result<()> {
        let kind = data.train.task();
        let ok = match self.task {
            Task::Regression => kind == TaskKind::Regression,
            Task::Classification => kind == TaskKind::Classification,
            Task::Reconstruction => true,
        };
        if ok {
            Ok(())
        } else {
            Err(EngineError::Config(format!(
                "task {:?} does not fit dataset {} (its targets are {kind:?})",
                self.task,
                data.train.name()
            )))
        }
    }

    /// Checks every value; the error names the field and what is expected.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(EngineError::Config(m));
        // The name becomes a directory under the output folder: it must not leave it.
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && !self.name.starts_with('.')
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !name_ok {
            return bad(format!(
                "name must be 1 to 64 letters, digits, '.', '_' or '-' (not starting with '.'), got {:?}",
                self.name.chars().take(80).collect::<String>()
            ));
        }
        if !(self.optimizer.lr.is_finite() && self.optimizer.lr > 0.0) {
            return bad(format!(
                "optimizer.lr must be a positive number, got {}",
                self.optimizer.lr
            ));
        }
        if !(self.optimizer.weight_decay.is_finite() && self.optimizer.weight_decay >= 0.0) {
            return bad(format!(
                "optimizer.weight_decay must be a non-negative number, got {}",
                self.optimizer.weight_decay
            ));
        }
        if let Some(std) = self.init_noise
            && !(std.is_finite() && std >= 0.0)
        {
            return bad(format!(
                "init_noise must be a non-negative standard deviation, got {std}"
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
        if self.limit == Some(0) {
            return bad("limit must be at least 1 sample per class".into());
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
        if self
            .model
            .parameter_bound()
            .is_none_or(|n| n > l2m_models::MAX_PARAMETERS)
        {
            return bad(format!(
                "model: {} would hold more than {} parameters; its sizes are too large",
                self.model.name(),
                l2m_models::MAX_PARAMETERS
            ));
        }
        for s in &self.strategies {
            if s.needs_classes() && self.task != Task::Classification {
                return bad(format!(
                    "strategy {} needs a classification task, not {:?}",
                    s.name(),
                    self.task
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use l2m_models::FcConfig;

    /// The own-data defaults file names registered strategies, learn2mix first (the
    /// reference of the comparison), and SMOTE only where inputs are feature vectors.
    #[test]
    fn own_data_defaults_name_registered_strategies() {
        let d = OwnDataDefaults::read().expect("parses");
        for list in [&d.classification_tabular, &d.classification, &d.other] {
            assert_eq!(list.first().map(String::as_str), Some("learn2mix"));
            for n in list {
                StrategySpec::parse(n).expect("registered");
            }
        }
        assert!(d.classification_tabular.iter().any(|n| n == "smote"));
        assert!(!d.classification.iter().any(|n| n == "smote"));
    }

    #[test]
    fn datasets_are_tagged_by_kind_and_sources_by_their_registered_name() {
        let spec = DatasetSpec::Own {
            source: SourceKind::PARQUET,
            data: Box::new(OwnData {
                target: Some("y".into()),
                ..OwnData::new("t.parquet")
            }),
        };
        let json = serde_json::to_string(&spec).expect("serialises");
        assert!(
            json.starts_with(
                r#"{"kind":"parquet","path":"t.parquet","test_fraction":0.2,"target":"y""#
            ),
            "{json}"
        );
        assert_eq!(
            serde_json::from_str::<DatasetSpec>(&json).expect("reads"),
            spec
        );
        for name in PRESETS {
            let d = preset(name).expect("preset").dataset;
            let json = serde_json::to_string(&d).expect("serialises");
            assert_eq!(
                serde_json::from_str::<DatasetSpec>(&json).expect("reads"),
                d
            );
        }
        let e = serde_json::from_str::<DatasetSpec>(r#"{"kind":"xlsx","path":"a"}"#)
            .expect_err("unknown kind")
            .to_string();
        assert!(
            e.contains("\"xlsx\"") && e.contains("hub, parquet, image-folder, csv"),
            "{e}"
        );
        let e = serde_json::from_str::<DatasetSpec>(r#"{"kind":"csv","path":"a","colour":1}"#)
            .expect_err("unknown field")
            .to_string();
        assert!(e.contains("colour"), "{e}");
    }

    #[test]
    fn every_preset_is_valid_and_has_the_paper_strategies() {
        assert_eq!(PRESETS.len(), 12);
        for name in PRESETS {
            let c = preset(name).expect("preset");
            c.validate().expect("valid");
            let names: Vec<_> = c.strategies.iter().map(StrategySpec::name).collect();
            if c.task == Task::Classification {
                assert_eq!(
                    names,
                    ["learn2mix", "classical", "focal", "smote"],
                    "{name}"
                );
            } else {
                assert_eq!(names, ["learn2mix", "classical"], "{name}");
            }
        }
    }

    #[test]
    fn table_3_values() {
        let check = |name: &str, lr: f64, gamma: f64, b: usize, epochs: usize| {
            let c = preset(name).expect("preset");
            assert_eq!(
                (c.optimizer.lr, c.gamma(), c.batch_size, c.epochs),
                (lr, Some(gamma), b, epochs),
                "{name}"
            );
        };
        check("mnist", 1e-5, 0.1, 1000, 20);
        check("fashion-mnist", 5e-6, 0.5, 1000, 50);
        check("cifar10", 1e-5, 0.1, 1000, 65);
        check("imagenette", 1e-6, 0.1, 100, 25);
        check("cifar100", 1e-4, 0.5, 5000, 100);
        check("imdb", 1e-4, 0.1, 500, 20);
        check("mean-estimation", 5e-5, 0.01, 500, 500);
        check("wine-quality", 1e-4, 0.05, 100, 300);
        check("california-housing", 5e-5, 0.01, 1000, 1200);
        check("mnist-reconstruction", 5e-4, 0.1, 1000, 40);
        check("fashion-mnist-reconstruction", 1e-5, 0.1, 1000, 70);
        check("cifar10-reconstruction", 1e-5, 0.1, 1000, 110);
    }

    /// Sizes from a configuration file are checked before anything is allocated: a model
    /// too large (or whose sizes overflow) and a generator asked for too many values are
    /// errors naming them, not an abort.
    #[test]
    fn sizes_from_a_file_are_checked_before_allocating() {
        let mut c = preset("mean-estimation").expect("preset");
        c.model = ModelConfig::Fc(FcConfig {
            input_dim: 10,
            hidden: 1 << 40,
            output_dim: 1,
        });
        let e = c.validate().expect_err("huge").to_string();
        assert!(
            e.contains("model: FC 10-1099511627776-1 would hold more than"),
            "{e}"
        );
        c.model = ModelConfig::Fc(FcConfig {
            input_dim: usize::MAX,
            hidden: usize::MAX,
            output_dim: 1,
        });
        assert!(c.validate().is_err(), "overflowing sizes");
        let mut c = preset("mean-estimation").expect("preset");
        c.dataset = DatasetSpec::MeanEstimation(MeanEstimation {
            train_counts: [usize::MAX, 1, 1, 1],
            test_per_class: 1,
            draws: 10,
        });
        let e = c
            .dataset
            .load(Path::new("data"), 0, None)
            .expect_err("counts")
            .to_string();
        assert!(e.contains("train_counts, test_per_class and draws"), "{e}");
        c.dataset = DatasetSpec::MeanEstimation(MeanEstimation {
            draws: 1 << 40,
            ..MeanEstimation::default()
        });
        assert!(c.dataset.load(Path::new("data"), 0, None).is_err());
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
        let before = c.clone();
        assert!(
            c.set_gamma(2.0)
                .expect_err("gamma")
                .to_string()
                .contains("gamma must be in (0, 1]")
        );
        assert_eq!(c, before, "a refused value changes nothing");
        let mut c = preset("mean-estimation").expect("preset");
        c.seeds = vec![1, 1];
        assert!(
            c.validate()
                .expect_err("seeds")
                .to_string()
                .contains("distinct")
        );
        let mut c = preset("mean-estimation").expect("preset");
        c.strategies
            .push(StrategySpec::parse("focal").expect("focal"));
        assert!(
            c.validate()
                .expect_err("focal")
                .to_string()
                .contains("needs a classification task")
        );
        assert!(
            preset("imagenet")
                .expect_err("unknown")
                .to_string()
                .contains("mean-estimation")
        );
    }
}
