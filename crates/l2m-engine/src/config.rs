//! Experiment configuration and the built-in presets (the paper's Table 3).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use l2m_data::load::imdb::Vocabulary;
use l2m_data::own::{OwnData, Preprocessing, RowIds, SourceKind};
use l2m_data::paper::{PaperDataset, PixelUse};
use l2m_data::synthetic::MeanEstimation;
use l2m_data::{ClassDataset, Imbalance, TaskKind};
use l2m_models::{
    AutoencoderConfig, DeviceKind, FcConfig, LeNet5Config, LeNetCifarConfig, ModelConfig,
    ResNet18Config, TransformerConfig,
};

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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
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
    /// The user's CSV file.
    Csv(OwnData),
    /// The user's Parquet file (or folder of them).
    Parquet(OwnData),
    /// The user's folder of images in class folders.
    ImageFolder(OwnData),
    /// A Hugging Face Hub dataset (`hf://datasets/OWNER/NAME`).
    Hub(OwnData),
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
            DatasetSpec::Csv(d)
            | DatasetSpec::Parquet(d)
            | DatasetSpec::ImageFolder(d)
            | DatasetSpec::Hub(d) => {
                let kind = self.own_kind().unwrap_or(SourceKind::Csv);
                let l = l2m_data::own::load(kind, d, seed)?;
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

    /// The user's data spec and its kind, for the own-data variants.
    pub fn own(&self) -> Option<(SourceKind, &OwnData)> {
        match self {
            DatasetSpec::Csv(d) => Some((SourceKind::Csv, d)),
            DatasetSpec::Parquet(d) => Some((SourceKind::Parquet, d)),
            DatasetSpec::ImageFolder(d) => Some((SourceKind::ImageFolder, d)),
            DatasetSpec::Hub(d) => Some((SourceKind::Hub, d)),
            _ => None,
        }
    }

    fn own_kind(&self) -> Option<SourceKind> {
        self.own().map(|(k, _)| k)
    }

    /// The spec for the user's data of `kind`.
    pub fn from_own(kind: SourceKind, data: OwnData) -> Self {
        match kind {
            SourceKind::Csv => DatasetSpec::Csv(data),
            SourceKind::Parquet => DatasetSpec::Parquet(data),
            SourceKind::ImageFolder => DatasetSpec::ImageFolder(data),
            SourceKind::Hub => DatasetSpec::Hub(data),
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
pub const PRESETS: &[&str] = &[
    "mnist",
    "fashion-mnist",
    "cifar10",
    "imagenette",
    "cifar100",
    "imdb",
    "mean-estimation",
    "wine-quality",
    "california-housing",
    "mnist-reconstruction",
    "fashion-mnist-reconstruction",
    "cifar10-reconstruction",
];

fn keep_classes(k: usize, f: impl Fn(usize) -> f64) -> Imbalance {
    Imbalance::Factors {
        keep: (0..k).map(f).collect(),
    }
}

struct Row {
    dataset: DatasetSpec,
    model: ModelConfig,
    task: Task,
    lr: f64,
    gamma: f64,
    batch: usize,
    epochs: usize,
}

fn paper(dataset: PaperDataset, pixels: PixelUse, imbalance: Imbalance) -> DatasetSpec {
    DatasetSpec::Paper {
        dataset,
        pixels,
        imbalance,
    }
}

/// A built-in experiment with the paper's settings (Table 3; epoch budgets from the spec).
pub fn preset(name: &str) -> Result<ExperimentConfig> {
    use PaperDataset as D;
    use PixelUse::{Classification as Cls, Reconstruction as Rec};
    let lenet5 = ModelConfig::LeNet5(LeNet5Config { classes: 10 });
    let lenet_cifar = |classes| {
        ModelConfig::LeNetCifar(LeNetCifarConfig {
            classes,
            dropout: 0.5,
        })
    };
    let ae = |d| ModelConfig::Autoencoder(AutoencoderConfig::paper(d));
    let fc = |d| ModelConfig::Fc(FcConfig::paper(d));
    let r = match name {
        "mnist" => Row {
            dataset: paper(D::Mnist, Cls, Imbalance::None),
            model: lenet5,
            task: Task::Classification,
            lr: 1e-5,
            gamma: 0.1,
            batch: 1000,
            epochs: 20,
        },
        "fashion-mnist" => Row {
            dataset: paper(D::FashionMnist, Cls, Imbalance::None),
            model: lenet5,
            task: Task::Classification,
            lr: 5e-6,
            gamma: 0.5,
            batch: 1000,
            epochs: 50,
        },
        "cifar10" => Row {
            dataset: paper(D::Cifar10, Cls, Imbalance::None),
            model: lenet_cifar(10),
            task: Task::Classification,
            lr: 1e-5,
            gamma: 0.1,
            batch: 1000,
            epochs: 65,
        },
        "imagenette" => Row {
            dataset: paper(
                D::Imagenette,
                Cls,
                Imbalance::Linear {
                    first: 1.0,
                    last: 0.1,
                },
            ),
            model: ModelConfig::ResNet18(ResNet18Config { classes: 10 }),
            task: Task::Classification,
            lr: 1e-6,
            gamma: 0.1,
            batch: 100,
            epochs: 25,
        },
        "cifar100" => Row {
            dataset: paper(
                D::Cifar100,
                Cls,
                Imbalance::Log {
                    first: 1.0,
                    last: 0.025,
                },
            ),
            model: lenet_cifar(100),
            task: Task::Classification,
            lr: 1e-4,
            gamma: 0.5,
            batch: 5000,
            epochs: 100,
        },
        "imdb" => Row {
            // The paper imbalances the positive class (label 1) to 30%.
            dataset: paper(
                D::Imdb,
                Cls,
                Imbalance::Factors {
                    keep: vec![1.0, 0.3],
                },
            ),
            model: ModelConfig::Transformer(TransformerConfig::paper(0)),
            task: Task::Classification,
            lr: 1e-4,
            gamma: 0.1,
            batch: 500,
            epochs: 20,
        },
        "mean-estimation" => Row {
            dataset: DatasetSpec::MeanEstimation(MeanEstimation::default()),
            model: fc(10),
            task: Task::Regression,
            lr: 5e-5,
            gamma: 0.01,
            batch: 500,
            epochs: 500,
        },
        "wine-quality" => Row {
            dataset: paper(
                D::WineQuality,
                Cls,
                Imbalance::Factors {
                    keep: vec![1.0, 0.1],
                },
            ),
            model: fc(11),
            task: Task::Regression,
            lr: 1e-4,
            gamma: 0.05,
            batch: 100,
            epochs: 300,
        },
        "california-housing" => Row {
            // <1H OCEAN, INLAND, NEAR BAY, NEAR OCEAN: all but INLAND keep 5%.
            dataset: paper(
                D::CaliforniaHousing,
                Cls,
                Imbalance::Factors {
                    keep: vec![0.05, 1.0, 0.05, 0.05],
                },
            ),
            model: fc(8),
            task: Task::Regression,
            lr: 5e-5,
            gamma: 0.01,
            batch: 1000,
            epochs: 1200,
        },
        "mnist-reconstruction" => Row {
            dataset: paper(
                D::Mnist,
                Rec,
                keep_classes(10, |c| if c >= 5 { 0.2 } else { 1.0 }),
            ),
            model: ae(784),
            task: Task::Reconstruction,
            lr: 5e-4,
            gamma: 0.1,
            batch: 1000,
            epochs: 40,
        },
        "fashion-mnist-reconstruction" => Row {
            dataset: paper(
                D::FashionMnist,
                Rec,
                keep_classes(10, |c| if c >= 5 { 0.2 } else { 1.0 }),
            ),
            model: ae(784),
            task: Task::Reconstruction,
            lr: 1e-5,
            gamma: 0.1,
            batch: 1000,
            epochs: 70,
        },
        "cifar10-reconstruction" => Row {
            dataset: paper(
                D::Cifar10,
                Rec,
                keep_classes(10, |c| if c == 4 || c == 5 { 1.0 } else { 0.1 }),
            ),
            model: ae(3072),
            task: Task::Reconstruction,
            lr: 1e-5,
            gamma: 0.1,
            batch: 1000,
            epochs: 110,
        },
        other => {
            return Err(EngineError::Config(format!(
                "unknown experiment {other:?}: expected one of {}",
                PRESETS.join(", ")
            )));
        }
    };
    let names: &[&str] = match r.task {
        Task::Classification => &["learn2mix", "classical", "focal", "smote"],
        _ => &["learn2mix", "classical"],
    };
    Ok(ExperimentConfig {
        name: name.into(),
        dataset: r.dataset,
        model: r.model,
        task: r.task,
        optimizer: OptimizerConfig {
            lr: r.lr,
            weight_decay: 0.0,
        },
        batch_size: r.batch,
        eval_batch_size: if r.batch > 1000 {
            r.batch
        } else {
            1000.max(r.batch)
        },
        epochs: r.epochs,
        seeds: (0..5).collect(),
        strategies: names
            .iter()
            .map(|n| {
                StrategySpec::parse(n)
                    .and_then(|s| s.with_option_if_any("gamma", serde_json::json!(r.gamma)))
            })
            .collect::<Result<_>>()?,
        device: DeviceKind::Cpu,
        data_dir: default_data_dir(),
        limit: None,
        init_noise: None,
        variant: Variant::Table3,
    })
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
        let names: &[&str] = match (task, tabular) {
            (Task::Classification, true) => &["learn2mix", "classical", "focal", "smote"],
            (Task::Classification, false) => &["learn2mix", "classical", "focal"],
            _ => &["learn2mix", "classical"],
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
