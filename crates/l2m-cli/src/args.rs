//! Command-line flags, and their validation into an experiment configuration.

use std::path::PathBuf;

use std::io::Write;

use clap::{Args, Parser, Subcommand};

use l2m_engine::DeviceKind;
use l2m_engine::strategy::LossSource;
use l2m_engine::{ExperimentConfig, Metric, StrategySpec, Variant};

/// Train neural networks with learn2mix and compare it with the alternatives.
#[derive(Debug, Parser)]
#[command(name = "l2m", version, about)]
pub struct Cli {
    /// Log debug messages to standard error (or set L2M_LOG, e.g. L2M_LOG=l2m_engine=debug).
    #[arg(long, global = true)]
    pub debug: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train every strategy of an experiment for several seeds and compare them.
    Compare(Box<CompareArgs>),
    /// List the built-in experiments.
    List,
    /// Load an experiment's data and print its class counts, load time and peak memory.
    Data(DataArgs),
    /// Run one of the paper's experiments (every strategy it compares, 5 seeds) and write
    /// its report.
    Reproduce(ReproduceArgs),
    /// Run an experiment described in a TOML file and write its report.
    Run(RunArgs),
    /// Apply a model trained on your own data (`l2m compare --data ...`) to new data: one
    /// output row per input row (or image), with class probabilities or the value.
    Predict(PredictArgs),
    /// Sweep numeric options of a strategy (learn2mix's gamma, eta, floor, ...) over a
    /// grid, every point paired with a reference strategy on the same seeds, and write
    /// `sweep.md` with the best point, the values within noise of it, plots and a
    /// recommendation. Resumable: one run directory per point.
    Sweep(Box<SweepArgs>),
    /// Write `report.md` for a run directory (also after an interruption).
    Report {
        /// The run directory.
        dir: PathBuf,
        /// The metric the tables, the target and the verdicts judge by (see `compare`).
        #[arg(long, default_value = "task", value_parser = parse_metric)]
        metric: Metric,
        /// Also export the run's per-epoch scalars as TensorBoard event files here.
        #[arg(long, value_name = "DIR")]
        tensorboard: Option<PathBuf>,
    },
}

/// Flags of `l2m predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// The run directory of a comparison on your own data.
    pub dir: PathBuf,
    /// The data to predict: a CSV or Parquet file with the training columns, or a folder of
    /// images.
    #[arg(long)]
    pub data: PathBuf,
    /// The CSV file to write (refused if it exists).
    #[arg(long)]
    pub out: PathBuf,
    /// Whose model: a strategy of the run (default: learn2mix).
    #[arg(long)]
    pub strategy: Option<String>,
    /// Which seed's model (default: the run's first seed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Device: cpu, cuda[:N] or metal[:N].
    #[arg(long)]
    pub device: Option<DeviceKind>,
}

/// Flags that point `l2m compare` at the user's own data instead of a preset.
#[derive(Debug, Args, Default)]
pub struct OwnArgs {
    /// Your own data: a CSV or Parquet file, a folder of images (DIR/<class>/*.jpg|png, or
    /// DIR/train/<class>/ with DIR/test/<class>/), or hf://datasets/OWNER/NAME.
    #[arg(
        long,
        value_name = "PATH|DIR|hf://datasets/OWNER/NAME",
        conflicts_with_all = ["experiment", "variant"]
    )]
    pub data: Option<String>,
    /// A separate test file (or folder), preprocessed as the training data.
    #[arg(long, requires = "data")]
    pub test: Option<PathBuf>,
    /// Without --test: the fraction of each class (or group) held out for testing, seeded.
    #[arg(long, requires = "data", value_parser = open_unit)]
    pub test_fraction: Option<f64>,
    /// The column to predict.
    #[arg(long, requires = "data")]
    pub target: Option<String>,
    /// Regression: the column whose values are the groups learn2mix mixes (for
    /// classification the groups are the classes).
    #[arg(long, requires = "data")]
    pub group: Option<String>,
    /// Feature columns (default: every other usable column).
    #[arg(long, requires = "data", value_delimiter = ',')]
    pub features: Option<Vec<String>>,
    /// A text column: a text classifier on it (tokeniser and the transformer).
    #[arg(long, requires = "data")]
    pub text: Option<String>,
    /// Resize images to N x N pixels (default 32).
    #[arg(long, requires = "data", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub image_size: Option<u32>,
    /// Image channels: 1 (grey) or 3 (RGB, default).
    #[arg(long, requires = "data", value_parser = clap::value_parser!(u8).range(1..=3))]
    pub channels: Option<u8>,
    /// Hub datasets: the training split (default train).
    #[arg(long, requires = "data")]
    pub split: Option<String>,
    /// Hub datasets: the test split (default: a fraction of the training split).
    #[arg(long, requires = "data")]
    pub test_split: Option<String>,
    /// classification or regression (default: inferred from the target, and printed).
    #[arg(long, requires = "data", value_parser = ["classification", "regression"])]
    pub task: Option<String>,
    /// The model: mlp, lenet, resnet18 or transformer (default: mlp for tables, the
    /// transformer for text, lenet for 32 x 32 RGB or 28 x 28 grey images, else resnet18).
    #[arg(long, requires = "data", value_parser = ["mlp", "lenet", "resnet18", "transformer"])]
    pub model: Option<String>,
    /// Hidden layer widths of the MLP.
    #[arg(long, requires = "data", value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub hidden: Option<Vec<u32>>,
    /// Impose one of the paper's imbalance profiles on the training split:
    /// linear:FIRST,LAST, log:FIRST,LAST or factors:F1,F2,... (a fraction kept per class).
    #[arg(long, requires = "data", value_parser = parse_imbalance)]
    pub imbalance: Option<l2m_engine::Imbalance>,
    /// Missing values: error (default), drop (leave such rows out) or mean (fill features
    /// with their training mean).
    #[arg(long, requires = "data", value_parser = ["error", "drop", "mean"])]
    pub missing: Option<String>,
}

/// Flags of `l2m compare`; anything not given keeps the experiment's paper setting.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Built-in experiment to run (see `l2m list`).
    #[arg(long, short = 'e', default_value = "mean-estimation")]
    pub experiment: String,
    /// Your own data instead of a preset.
    #[command(flatten)]
    pub own: OwnArgs,
    /// Print the resolved configuration as TOML (a file `l2m run` accepts) and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Whose settings: table3 (the paper's Table 3) or authors (the authors' code, where it
    /// differs; `l2m reproduce --list --variant authors` lists the differences).
    #[arg(long, default_value = "table3", value_parser = parse_variant)]
    pub variant: Variant,
    /// Settings to override.
    #[command(flatten)]
    pub overrides: Overrides,
}

/// Flags of `l2m reproduce`.
#[derive(Debug, Args)]
pub struct ReproduceArgs {
    /// The experiment (see `--list`).
    #[arg(required_unless_present = "list")]
    pub experiment: Option<String>,
    /// List the experiments and exit (with `--variant authors`: every setting in which the
    /// authors' code differs from Table 3).
    #[arg(long)]
    pub list: bool,
    /// Whose settings: table3 (the paper's Table 3) or authors (the authors' code, where it
    /// differs).
    #[arg(long, default_value = "table3", value_parser = parse_variant)]
    pub variant: Variant,
    /// Print the experiment's configuration as TOML (a file `l2m run` accepts) and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Settings to override.
    #[command(flatten)]
    pub overrides: Overrides,
}

/// Flags of `l2m run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// An experiment described in TOML (see `l2m reproduce <name> --print-config`).
    pub config: PathBuf,
    /// Settings to override.
    #[command(flatten)]
    pub overrides: Overrides,
}

/// A run's budget and place: what every training command, `sweep` included, can set;
/// anything not given keeps the experiment's own value.
#[derive(Debug, Args, Default, Clone)]
pub struct Budget {
    /// Epochs per run.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub epochs: Option<u64>,
    /// Number of seeds; runs seeds FIRST_SEED..FIRST_SEED+N.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub seeds: Option<u64>,
    /// First seed.
    #[arg(long, default_value_t = 0)]
    pub first_seed: u64,
    /// Adam learning rate (a positive number).
    #[arg(long, value_parser = positive_f64, allow_negative_numbers = true)]
    pub lr: Option<f64>,
    /// Training batch size.
    #[arg(long, short = 'b', value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_size: Option<u64>,
    /// Folder the datasets are read from (default: data, filled by `cargo xtask fetch-data`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// At most N samples per class in each split (after imbalancing), for quick runs; a cap
    /// below the smaller classes' sizes also flattens the imbalance.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
    /// Device: cpu, cuda[:N] or metal[:N] (GPU devices need the matching build feature).
    #[arg(long)]
    pub device: Option<DeviceKind>,
}

/// Settings every training command can override; anything not given keeps the
/// experiment's own value.
#[derive(Debug, Args, Default)]
pub struct Overrides {
    /// Epochs, seeds, learning rate, batch size, data and device.
    #[command(flatten)]
    pub budget: Budget,
    /// learn2mix mixing rate gamma, in (0, 1].
    #[arg(long, value_parser = unit_interval, allow_negative_numbers = true)]
    pub gamma: Option<f64>,
    /// Comma-separated strategies: learn2mix, classical, stratified, balanced, focal,
    /// smote, importance, curriculum, group-dro (default: those the paper compares for the
    /// experiment). `KIND:OPTION=VALUE...` sets options of one entry and labels it, so the
    /// same kind can run twice: `learn2mix,learn2mix:update_every=10`.
    #[arg(long, value_delimiter = ',')]
    pub strategies: Option<Vec<String>>,
    /// learn2mix's rule, one of the registered rules (`l2m list` shows them): learn2mix
    /// (the paper), eg (exponentiated gradient), tempered.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(l2m_engine::rule_names()))]
    pub rule: Option<String>,
    /// Step size of exponentiated gradient: learn2mix with --rule eg, and group-dro.
    #[arg(long, value_parser = positive_f64, allow_negative_numbers = true)]
    pub eta: Option<f64>,
    /// Temperature of learn2mix's tempered rule (target proportional to L^(1/T)).
    #[arg(long, value_parser = positive_f64, allow_negative_numbers = true)]
    pub temperature: Option<f64>,
    /// Mix learn2mix's proportions with uniform by this weight after every update, in [0, 1).
    #[arg(long, value_parser = zero_to_one, allow_negative_numbers = true)]
    pub floor: Option<f64>,
    /// Exponential moving average of learn2mix's class-wise losses (weight on the past,
    /// in [0, 1)).
    #[arg(long, value_parser = zero_to_one, allow_negative_numbers = true)]
    pub ema: Option<f64>,
    /// Update learn2mix's proportions every STEPS optimiser steps instead of every epoch.
    #[arg(long, value_name = "STEPS", value_parser = clap::value_parser!(u64).range(1..))]
    pub update_every: Option<u64>,
    /// Where learn2mix's class-wise losses come from: train (the training steps, no extra
    /// cost) or held-out:F (a seeded fraction F of every class, not trained on, evaluated
    /// at every update).
    #[arg(long, value_name = "train|held-out:F", value_parser = parse_loss_source)]
    pub loss_source: Option<LossSource>,
    /// Run directory (default: runs/<experiment>-<hash of the settings>). A directory that
    /// holds the same settings is resumed; one holding other settings is refused.
    #[arg(long, short = 'o')]
    pub out: Option<PathBuf>,
    /// Discard what the run directory holds and start over.
    #[arg(long)]
    pub fresh: bool,
    /// No progress bars.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// The metric the table, the target and the verdicts judge by: accuracy (or mse, the
    /// task's), balanced-accuracy, macro-f1 or worst-class. Training is the same whatever it is.
    #[arg(long, default_value = "task", value_parser = parse_metric)]
    pub metric: Metric,
    /// Also export the per-epoch scalars of every run as TensorBoard event files under
    /// this folder (`<strategy>/seed-<n>/`), once the runs finish.
    #[arg(long, value_name = "DIR")]
    pub tensorboard: Option<PathBuf>,
}

/// Flags of `l2m data`.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// Built-in experiment whose data to load (see `l2m list`).
    pub experiment: String,
    /// Folder the datasets are read from.
    #[arg(long, default_value = "data")]
    pub data_dir: PathBuf,
    /// Seed of the split and the imbalance.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

pub(crate) fn parse_metric(s: &str) -> Result<Metric, String> {
    s.parse()
}

fn parse_loss_source(s: &str) -> Result<LossSource, String> {
    s.parse()
}

fn parse_variant(s: &str) -> Result<Variant, String> {
    s.parse::<Variant>().map_err(|e| e.to_string())
}

fn open_unit(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v < 1.0 => Ok(v),
        Ok(v) => Err(format!("expected a number in (0, 1), got {v}")),
        Err(e) => Err(format!("expected a number in (0, 1): {e}")),
    }
}

fn parse_imbalance(s: &str) -> Result<l2m_engine::Imbalance, String> {
    let (kind, values) = s.split_once(':').ok_or_else(|| {
        format!("expected linear:FIRST,LAST, log:FIRST,LAST or factors:F1,F2,..., got {s:?}")
    })?;
    let numbers: Vec<f64> = values
        .split(',')
        .map(|v| {
            v.trim()
                .parse::<f64>()
                .ok()
                .filter(|x| *x > 0.0 && *x <= 1.0)
                .ok_or_else(|| format!("{v:?} is not a fraction in (0, 1]"))
        })
        .collect::<Result<_, _>>()?;
    match (kind, numbers.as_slice()) {
        ("linear", [first, last]) => Ok(l2m_engine::Imbalance::Linear {
            first: *first,
            last: *last,
        }),
        ("log", [first, last]) => Ok(l2m_engine::Imbalance::Log {
            first: *first,
            last: *last,
        }),
        ("factors", keep) if !keep.is_empty() => Ok(l2m_engine::Imbalance::Factors {
            keep: keep.to_vec(),
        }),
        _ => Err(format!(
            "expected linear:FIRST,LAST, log:FIRST,LAST or factors:F1,F2,..., got {s:?}"
        )),
    }
}

fn zero_to_one(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..1.0).contains(&v) => Ok(v),
        Ok(v) => Err(format!("expected a number in [0, 1), got {v}")),
        Err(e) => Err(format!("expected a number in [0, 1): {e}")),
    }
}

fn positive_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        Ok(v) => Err(format!("expected a positive number, got {v}")),
        Err(e) => Err(format!("expected a positive number: {e}")),
    }
}

fn unit_interval(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
        Ok(v) => Err(format!("expected a number in (0, 1], got {v}")),
        Err(e) => Err(format!("expected a number in (0, 1]: {e}")),
    }
}

impl CompareArgs {
    /// The experiment preset (or the user's data) with these flags applied, validated.
    pub fn resolve(&self) -> anyhow::Result<ExperimentConfig> {
        let cfg = match &self.own.data {
            Some(_) => self
                .own
                .config(self.overrides.budget.batch_size.is_some())?,
            None => l2m_engine::preset_variant(&self.experiment, self.variant)
                .map_err(|e| anyhow::anyhow!("--experiment: {e}"))?,
        };
        self.overrides.apply(cfg)
    }
}

impl OwnArgs {
    /// The experiment on the user's data: what the data is (inferred where not given,
    /// and said on standard error), the model for it, and the defaults of
    /// [`ExperimentConfig::own_data`].
    pub fn config(&self, batch_given: bool) -> anyhow::Result<ExperimentConfig> {
        use l2m_engine::own::{InputKind, Missing, OwnData, SourceKind};
        use l2m_engine::{ModelConfig, TaskKind};
        let data = self.data.as_deref().unwrap_or_default();
        let kind = SourceKind::infer(data);
        let mut spec = OwnData::new(data);
        spec.test = self.test.clone();
        if let Some(f) = self.test_fraction {
            spec.test_fraction = f;
        }
        spec.target = self.target.clone();
        spec.group = self.group.clone();
        spec.features = self.features.clone();
        spec.text = self.text.clone();
        spec.image_size = self.image_size;
        spec.channels = self.channels.map(usize::from);
        spec.split = self.split.clone();
        spec.test_split = self.test_split.clone();
        spec.imbalance = self.imbalance.clone();
        spec.task = match self.task.as_deref() {
            Some("classification") => Some(TaskKind::Classification),
            Some("regression") => Some(TaskKind::Regression),
            _ => None,
        };
        spec.missing = match self.missing.as_deref() {
            Some("drop") => Missing::Drop,
            Some("mean") => Missing::Mean,
            _ => Missing::Error,
        };
        let seen =
            l2m_engine::own::inspect(kind, &spec).map_err(|e| anyhow::anyhow!("--data: {e}"))?;
        // A task given by --task stays in the configuration; an inferred one is inferred
        // again (the same way) when the data is read, and announced as inferred.
        let task = match seen.task {
            TaskKind::Regression => l2m_engine::Task::Regression,
            _ => l2m_engine::Task::Classification,
        };
        let hidden: Vec<usize> = self.hidden.as_ref().map_or_else(
            || vec![128, 64],
            |h| h.iter().map(|&v| v as usize).collect(),
        );
        let mlp = ModelConfig::Mlp(l2m_engine::MlpConfig {
            input_dim: 0,
            hidden,
            output_dim: 0,
        });
        let lenet = |size: u32, channels: usize| match (size, channels) {
            (28, 1) => Ok(ModelConfig::LeNet5(l2m_engine::LeNet5Config { classes: 0 })),
            (32, 3) => Ok(ModelConfig::LeNetCifar(l2m_engine::LeNetCifarConfig {
                classes: 0,
                dropout: 0.5,
            })),
            _ => Err(anyhow::anyhow!(
                "--model lenet: takes 32 x 32 RGB or 28 x 28 grey images (--image-size 32 --channels 3, or --image-size 28 --channels 1), not {size} x {size} with {channels} channel(s)"
            )),
        };
        let resnet = ModelConfig::ResNet18(l2m_engine::ResNet18Config { classes: 0 });
        let transformer = ModelConfig::Transformer(l2m_engine::TransformerConfig {
            classes: 0,
            max_len: spec.max_len,
            ..l2m_engine::TransformerConfig::paper(0)
        });
        if self.hidden.is_some() && !matches!(self.model.as_deref(), None | Some("mlp")) {
            anyhow::bail!(
                "--hidden: sets the MLP's widths, and --model is {:?}",
                self.model.as_deref().unwrap_or_default()
            );
        }
        let model = match (self.model.as_deref(), seen.input) {
            (None | Some("mlp"), InputKind::Table) => mlp,
            (Some("mlp"), InputKind::Image { .. }) => mlp,
            (None | Some("transformer"), InputKind::Text) => transformer,
            (None, InputKind::Image { size, channels }) => lenet(size, channels).unwrap_or(resnet),
            (Some("lenet"), InputKind::Image { size, channels }) => lenet(size, channels)?,
            (Some("resnet18"), InputKind::Image { channels: 3, .. }) => resnet,
            (Some(m), input) => anyhow::bail!(
                "--model {m}: does not fit {} (mlp for tables, transformer for text, lenet or resnet18 for RGB images)",
                match input {
                    InputKind::Table => "a table of features".to_string(),
                    InputKind::Text => "text".to_string(),
                    InputKind::Image { size, channels } =>
                        format!("{size} x {size} images with {channels} channel(s)"),
                }
            ),
        };
        // A batch of 128, or an eighth of the training rows for small files (at least 16,
        // or every row of a smaller file, so that each class can have a place in it).
        let train_rows = (seen.rows_estimate as f64 * (1.0 - spec.test_fraction)) as usize;
        let batch = if batch_given || train_rows == 0 {
            128
        } else {
            128.min((train_rows / 8).max(train_rows.min(16)))
        };
        let _ = writeln!(
            std::io::stderr(),
            "l2m: {}: {} ({}); model {}",
            l2m_engine::text::terminal_safe(data),
            match seen.task {
                TaskKind::Regression => "regression",
                _ => "classification",
            },
            l2m_engine::text::terminal_safe(&seen.why),
            model.name()
        );
        let name = l2m_engine::own::dataset_name(data);
        let dataset = l2m_engine::DatasetSpec::Own {
            source: kind,
            data: Box::new(spec),
        };
        Ok(ExperimentConfig::own_data(
            &name, dataset, model, task, batch,
        )?)
    }
}

impl Budget {
    /// Sets on `cfg` what was given.
    pub fn apply(&self, cfg: &mut ExperimentConfig) -> anyhow::Result<()> {
        if let Some(e) = self.epochs {
            cfg.epochs = usize::try_from(e)?;
        }
        let seeds = |n: u64| -> anyhow::Result<Vec<u64>> {
            let end = self.first_seed.checked_add(n).ok_or_else(|| {
                anyhow::anyhow!(
                    "--first-seed: {} + {n} seeds passes the largest seed {}",
                    self.first_seed,
                    u64::MAX
                )
            })?;
            Ok((self.first_seed..end).collect())
        };
        if let Some(n) = self.seeds {
            cfg.seeds = seeds(n)?;
        } else if self.first_seed != 0 {
            cfg.seeds = seeds(cfg.seeds.len() as u64)?;
        }
        if let Some(lr) = self.lr {
            cfg.optimizer.lr = lr;
        }
        if let Some(b) = self.batch_size {
            cfg.batch_size = usize::try_from(b)?;
        }
        if let Some(d) = self.device {
            cfg.device = d;
        }
        if let Some(d) = &self.data_dir {
            cfg.data_dir = d.clone();
        }
        if let Some(n) = self.limit {
            cfg.limit = Some(usize::try_from(n)?);
        }
        Ok(())
    }
}

/// The strategy item `item` (`KIND[:OPTION=VALUE]...`), with the option `key` set to
/// `value` when the strategy has it and the item does not set it itself.
fn item_with(item: &str, key: &str, value: Option<f64>) -> l2m_engine::Result<StrategySpec> {
    let spec = StrategySpec::parse_item(item)?;
    match value {
        Some(v) if !item.contains(&format!(":{key}=")) => {
            spec.with_option_if_any(key, serde_json::json!(v))
        }
        _ => Ok(spec),
    }
}

impl Overrides {
    /// `cfg` with these flags applied, validated.
    pub fn apply(&self, mut cfg: ExperimentConfig) -> anyhow::Result<ExperimentConfig> {
        self.budget.apply(&mut cfg)?;
        if let Some(names) = &self.strategies {
            // The experiment's mixing rate carries over to the strategies named here,
            // unless an item sets its own.
            let carried = cfg.gamma();
            cfg.strategies = names
                .iter()
                .map(|n| item_with(n.trim(), "gamma", carried))
                .collect::<Result<_, _>>()
                .map_err(|e| anyhow::anyhow!("--strategies: {e}"))?;
        }
        self.apply_strategy_options(&mut cfg)?;
        cfg.validate()?;
        if self.metric.needs_classes() && cfg.task != l2m_engine::Task::Classification {
            anyhow::bail!(
                "--metric: {} needs a classification experiment; {} is {:?}",
                self.metric.name(cfg.task),
                cfg.name,
                cfg.task
            );
        }
        Ok(cfg)
    }
}

impl Overrides {
    /// The strategy options given as flags, as (flag, option, value).
    fn strategy_options(&self) -> Vec<(&'static str, &'static str, serde_json::Value)> {
        let mut v = Vec::new();
        if let Some(x) = self.gamma {
            v.push(("--gamma", "gamma", serde_json::json!(x)));
        }
        if let Some(r) = &self.rule {
            v.push(("--rule", "rule", serde_json::json!(r)));
        }
        if let Some(x) = self.eta {
            v.push(("--eta", "eta", serde_json::json!(x)));
        }
        if let Some(x) = self.temperature {
            v.push(("--temperature", "temperature", serde_json::json!(x)));
        }
        if let Some(x) = self.floor {
            v.push(("--floor", "floor", serde_json::json!(x)));
        }
        if let Some(x) = self.ema {
            v.push(("--ema", "ema", serde_json::json!(x)));
        }
        if let Some(x) = self.update_every {
            v.push(("--update-every", "update_every", serde_json::json!(x)));
        }
        if let Some(x) = self.loss_source {
            v.push(("--loss-source", "loss_source", serde_json::json!(x)));
        }
        v
    }

    /// Applies each strategy option flag to every configured strategy that has that option
    /// (`--eta` reaches learn2mix with the EG rule and group-dro alike). The rule goes
    /// first, so that `--eta` finds learn2mix's EG rule; a flag no strategy takes is an
    /// error naming it.
    fn apply_strategy_options(&self, cfg: &mut ExperimentConfig) -> anyhow::Result<()> {
        for (flag, key, value) in self.strategy_options() {
            let mut taken = false;
            let mut reasons = Vec::new();
            for s in &mut cfg.strategies {
                match s.set_option(key, value.clone()) {
                    Ok(()) => taken = true,
                    // The strategy has the option but refuses the value.
                    Err(e) if s.has_option(key) => anyhow::bail!("{flag}: {e}"),
                    Err(e) => reasons.push(e.to_string()),
                }
            }
            if !taken {
                anyhow::bail!(
                    "{flag}: none of the strategies {} takes it ({})",
                    cfg.strategies
                        .iter()
                        .map(|s| s.name())
                        .collect::<Vec<_>>()
                        .join(", "),
                    reasons.join("; ")
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("l2m").chain(args.iter().copied()))
    }

    fn compare_args(args: &[&str]) -> CompareArgs {
        match parse(args).expect("parses").command {
            Command::Compare(a) => *a,
            _ => unreachable!("compare"),
        }
    }

    #[test]
    fn defaults_are_the_paper_settings() {
        let cfg = compare_args(&["compare"]).resolve().expect("valid");
        assert_eq!(cfg.name, "mean-estimation");
        assert_eq!(cfg.optimizer.lr, 5e-5);
        assert_eq!(cfg.gamma(), Some(0.01));
        assert_eq!(cfg.batch_size, 500);
        assert_eq!(cfg.seeds, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn flags_override() {
        let cfg = compare_args(&[
            "compare",
            "--epochs",
            "3",
            "--seeds",
            "2",
            "--first-seed",
            "10",
            "--lr",
            "1e-3",
            "--gamma",
            "0.5",
            "-b",
            "100",
            "--strategies",
            "classical,learn2mix,stratified",
        ])
        .resolve()
        .expect("valid");
        assert_eq!(cfg.epochs, 3);
        assert_eq!(cfg.seeds, vec![10, 11]);
        assert_eq!(cfg.optimizer.lr, 1e-3);
        assert_eq!(cfg.gamma(), Some(0.5));
        assert_eq!(cfg.batch_size, 100);
        let names: Vec<_> = cfg.strategies.iter().map(|s| s.name()).collect();
        assert_eq!(names, vec!["classical", "learn2mix", "stratified"]);
    }

    #[test]
    fn bad_values_name_the_flag() {
        for (args, flag) in [
            (vec!["compare", "--gamma", "1.5"], "--gamma"),
            (vec!["compare", "--gamma", "0"], "--gamma"),
            (vec!["compare", "--lr", "-1"], "--lr"),
            (vec!["compare", "--lr", "abc"], "--lr"),
            (vec!["compare", "--epochs", "0"], "--epochs"),
            (vec!["compare", "--batch-size", "0"], "--batch-size"),
            (vec!["compare", "--seeds", "0"], "--seeds"),
            (vec!["compare", "--device", "tpu"], "--device"),
        ] {
            let e = parse(&args).expect_err("invalid").to_string();
            assert!(e.contains(flag), "{args:?}: {e}");
        }
        let e = compare_args(&["compare", "--strategies", "learn2mix,focal"])
            .resolve()
            .expect_err("focal on regression")
            .to_string();
        assert!(
            e.contains("strategy focal needs a classification task"),
            "{e}"
        );
        let e = compare_args(&["compare", "--strategies", "learn2mix,dro"])
            .resolve()
            .expect_err("unknown strategy")
            .to_string();
        assert!(
            e.starts_with("--strategies: ") && e.contains("unknown strategy \"dro\""),
            "{e}"
        );
        let e = compare_args(&["compare", "--experiment", "imagenet"])
            .resolve()
            .expect_err("unknown")
            .to_string();
        assert!(e.starts_with("--experiment: "), "{e}");
        let e = compare_args(&["compare", "--strategies", "classical,classical"])
            .resolve()
            .expect_err("duplicate")
            .to_string();
        assert!(e.contains("each strategy may appear once"), "{e}");
    }
}

/// Flags of `l2m sweep`.
#[derive(Debug, Args)]
pub struct SweepArgs {
    /// A built-in experiment (see `l2m list`) or an experiment's TOML file.
    pub experiment: String,
    /// Values of learn2mix's gamma (comma-separated), e.g. 0.01,0.05,0.1,0.3,0.5,1.
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    pub gamma: Option<Vec<f64>>,
    /// Values of eta (the step size of the EG rule, and of group-dro).
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    pub eta: Option<Vec<f64>>,
    /// Values of the proportion floor.
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    pub floor: Option<Vec<f64>>,
    /// Any numeric option of the swept strategy, OPTION=V1,V2,... (repeatable); two
    /// options at once give a grid table and a heat map.
    #[arg(long = "option", value_name = "OPTION=V1,V2,...", value_parser = parse_axis)]
    pub options: Vec<l2m_engine::sweep::Axis>,
    /// The strategy whose options are swept, KIND[:OPTION=VALUE]..., e.g. learn2mix:rule=eg.
    #[arg(long, default_value = "learn2mix")]
    pub strategy: String,
    /// The strategy every point is paired with on the same seeds.
    #[arg(long, default_value = "classical")]
    pub reference: String,
    /// Epochs, seeds, learning rate, batch size, data and device.
    #[command(flatten)]
    pub budget: Budget,
    /// The sweep directory (default: runs/sweep-<experiment>-<hash of the settings>).
    #[arg(long, short = 'o')]
    pub out: Option<PathBuf>,
    /// No progress bars.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// The metric the summary judges by (see `compare`).
    #[arg(long, default_value = "task", value_parser = parse_metric)]
    pub metric: Metric,
}

/// `OPTION=V1,V2,...`.
fn parse_axis(s: &str) -> Result<l2m_engine::sweep::Axis, String> {
    let (option, values) = s
        .split_once('=')
        .ok_or_else(|| format!("expected OPTION=V1,V2,..., got {s:?}"))?;
    let values = values
        .split(',')
        .map(|v| {
            v.trim()
                .parse::<f64>()
                .map_err(|_| format!("{option}: {v:?} is not a number"))
        })
        .collect::<Result<Vec<f64>, String>>()?;
    Ok(l2m_engine::sweep::Axis {
        option: option.trim().to_string(),
        values,
    })
}

impl SweepArgs {
    /// The sweep these flags describe.
    pub fn sweep(&self) -> anyhow::Result<l2m_engine::sweep::Sweep> {
        use anyhow::Context as _;
        let path = std::path::Path::new(&self.experiment);
        let base = if self.experiment.ends_with(".toml") || path.is_file() {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            toml::from_str::<ExperimentConfig>(&text)
                .map_err(|e| anyhow::anyhow!("{}: not a valid experiment: {e}", path.display()))?
        } else {
            l2m_engine::preset(&self.experiment).map_err(|e| anyhow::anyhow!("{e}"))?
        };
        let overrides = Overrides {
            budget: self.budget.clone(),
            metric: self.metric,
            ..Overrides::default()
        };
        let base = overrides.apply(base)?;
        let gamma = base.gamma();
        let strategy = item_with(&self.strategy, "gamma", gamma)
            .map_err(|e| anyhow::anyhow!("--strategy: {e}"))?;
        let reference = item_with(&self.reference, "gamma", gamma)
            .map_err(|e| anyhow::anyhow!("--reference: {e}"))?;
        let mut axes = Vec::new();
        for (option, values) in [
            ("gamma", &self.gamma),
            ("eta", &self.eta),
            ("floor", &self.floor),
        ] {
            if let Some(values) = values {
                axes.push(l2m_engine::sweep::Axis {
                    option: option.to_string(),
                    values: values.clone(),
                });
            }
        }
        axes.extend(self.options.iter().cloned());
        let sweep = l2m_engine::sweep::Sweep {
            base,
            strategy,
            reference,
            axes,
            metric: self.metric,
        };
        sweep.validate()?;
        Ok(sweep)
    }
}
