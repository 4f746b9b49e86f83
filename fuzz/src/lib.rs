//! Coverage-guided fuzz targets for every l2m parser that reads untrusted bytes.
//!
//! Each [`Target`] takes arbitrary bytes, puts them where a loader reads its input (a file
//! of the right name in a scratch folder, an archive, a configuration string, a
//! checkpoint in a run directory) and calls the loader. A typed error is the expected
//! outcome of almost every input; a panic, an abort, a hang or an allocation past the
//! fuzzer's memory limit is a defect.
//!
//! The first byte of an input picks a mode where a target has several (a plain or gzipped
//! file, a tar archive packed as given, gzipped by the harness so that the fuzzer mutates
//! the tar structure rather than compressed bits, or unpacked into a folder), and the rest
//! is the content. [`seeds`] makes the seed corpus: small valid inputs of every mode.
//!
//! `cargo xtask fuzz` builds the `l2m-fuzz` binary with cargo-afl and runs AFL++ on each
//! target; without the `afl` feature the binary replays files, which is how CI runs the
//! seed corpus and every crash ever found (`fuzz/regressions/`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, Result};

mod seeds;
pub use seeds::seeds;

/// A parser under fuzzing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// IDX image and label files (MNIST, Fashion-MNIST), raw and gzipped.
    Idx,
    /// CIFAR-10 and CIFAR-100 binary batches in a tar archive or a folder.
    Cifar,
    /// The image-folder reader (`split/class/file`), archive or folder.
    ImageFolder,
    /// The IMDB reviews reader, archive or folder.
    Imdb,
    /// The CSV loaders: `load_csv`, Wine Quality, California Housing and own-data CSV
    /// (inspection, loading, and reading new data for prediction).
    Csv,
    /// Own data from a Parquet file.
    Parquet,
    /// A TOML experiment configuration.
    Config,
    /// A run directory's `checkpoint.json`, resumed.
    Checkpoint,
}

impl Target {
    /// Every target, in the order the fuzzing table lists them.
    pub const ALL: [Target; 8] = [
        Target::Idx,
        Target::Cifar,
        Target::ImageFolder,
        Target::Imdb,
        Target::Csv,
        Target::Parquet,
        Target::Config,
        Target::Checkpoint,
    ];

    /// The name used on the command line and for corpus folders.
    pub fn name(self) -> &'static str {
        match self {
            Target::Idx => "idx",
            Target::Cifar => "cifar",
            Target::ImageFolder => "image-folder",
            Target::Imdb => "imdb",
            Target::Csv => "csv",
            Target::Parquet => "parquet",
            Target::Config => "config",
            Target::Checkpoint => "checkpoint",
        }
    }

    /// The target called `name`.
    pub fn parse(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.name() == name)
            .with_context(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|t| t.name()).collect();
                format!(
                    "unknown fuzz target {name:?}; expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// The folder a target writes its files into; every call starts from an empty one.
#[derive(Debug)]
pub struct Scratch {
    root: PathBuf,
    _owned: Option<tempfile::TempDir>,
}

impl Scratch {
    /// A scratch folder at `root` (created when missing), or a temporary one.
    pub fn new(root: Option<PathBuf>) -> Result<Self> {
        match root {
            Some(root) => {
                std::fs::create_dir_all(&root)
                    .with_context(|| format!("creating {}", root.display()))?;
                Ok(Scratch { root, _owned: None })
            }
            None => {
                let dir = tempfile::tempdir().context("creating a scratch folder")?;
                Ok(Scratch {
                    root: dir.path().to_path_buf(),
                    _owned: Some(dir),
                })
            }
        }
    }

    /// The folder itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `root/name`, emptied.
    fn fresh(&self, name: &str) -> PathBuf {
        let dir = self.root.join(name);
        if dir.exists() {
            // Only what an earlier input of this harness left there.
            let _ = std::fs::remove_dir_all(&dir);
        }
        let _ = std::fs::create_dir_all(&dir);
        dir
    }
}

/// What a loader said about an input: `Err` with its message when it refused it.
pub type Outcome = std::result::Result<(), String>;

fn said<T, E: std::fmt::Display>(r: std::result::Result<T, E>) -> Outcome {
    r.map(|_| ()).map_err(|e| e.to_string())
}

/// [`said`], keeping the value.
fn kept<T, E: std::fmt::Display>(r: std::result::Result<T, E>) -> std::result::Result<T, String> {
    r.map_err(|e| e.to_string())
}

/// Runs `target` on `data` and returns what the loader said (the first refusal where a
/// mode calls several). Refusals are the expected outcome of fuzzed input; whatever else
/// happens (a panic, an abort) is the defect the fuzzer looks for. Every seed is accepted.
pub fn run(target: Target, data: &[u8], scratch: &Scratch) -> Outcome {
    let (mode, rest) = match data.split_first() {
        Some((m, r)) => (*m, r),
        None => (0, data),
    };
    match target {
        Target::Idx => idx(mode, rest, scratch),
        Target::Cifar => cifar(mode, rest, scratch),
        Target::ImageFolder => image_folder(mode, rest, scratch),
        Target::Imdb => imdb(mode, rest, scratch),
        Target::Csv => csv(mode, rest, scratch),
        Target::Parquet => parquet(rest, scratch),
        Target::Config => config(rest),
        Target::Checkpoint => checkpoint(mode, rest, scratch),
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = e.write_all(bytes);
    e.finish().unwrap_or_default()
}

fn write(path: &Path, bytes: &[u8]) {
    let _ = std::fs::write(path, bytes);
}

/// Mode bit 0: labels instead of images; bit 1: gzipped by the harness; bit 2: the rest
/// written as is under a `.gz` name (the gzip layer itself fuzzed).
fn idx(mode: u8, rest: &[u8], scratch: &Scratch) -> Outcome {
    let dir = scratch.fresh("idx");
    let labels = mode & 1 == 1;
    let base = if labels {
        "train-labels-idx1-ubyte"
    } else {
        "train-images-idx3-ubyte"
    };
    let (name, bytes) = match mode >> 1 & 3 {
        1 => (format!("{base}.gz"), gzip(rest)),
        2 => (format!("{base}.gz"), rest.to_vec()),
        _ => (base.to_string(), rest.to_vec()),
    };
    let path = dir.join(name);
    write(&path, &bytes);
    if labels {
        said(l2m_data::load::idx::read_labels(&path))
    } else {
        said(l2m_data::load::idx::read_images(&path))
    }
}

/// Places a tar archive (`rest`) as the loader's source, per `mode % 4`: 0 a `.tar` as
/// given, 1 gzipped by the harness (`.tar.gz`), 2 as given under a `.tar.gz` name, 3
/// unpacked into a folder (links and all: the loader must not follow them out).
fn archive(mode: u8, rest: &[u8], scratch: &Scratch, stem: &str) -> PathBuf {
    let dir = scratch.fresh("archive");
    match mode % 4 {
        0 => {
            let p = dir.join(format!("{stem}.tar"));
            write(&p, rest);
            p
        }
        1 => {
            let p = dir.join(format!("{stem}.tar.gz"));
            write(&p, &gzip(rest));
            p
        }
        2 => {
            let p = dir.join(format!("{stem}.tar.gz"));
            write(&p, rest);
            p
        }
        _ => {
            let p = dir.join(stem);
            let _ = std::fs::create_dir_all(&p);
            let mut a = tar::Archive::new(rest);
            // The tar crate refuses entries that would land outside `p`; what it cannot
            // unpack is simply missing from the folder.
            if let Ok(entries) = a.entries() {
                for mut e in entries.flatten().take(64) {
                    if e.size() > 1 << 20 {
                        continue;
                    }
                    let _ = e.unpack_in(&p);
                }
            }
            p
        }
    }
}

fn cifar(mode: u8, rest: &[u8], scratch: &Scratch) -> Outcome {
    let path = archive(mode, rest, scratch, "cifar");
    let norm = l2m_data::load::Normalisation::cifar();
    if mode & 4 == 0 {
        said(l2m_data::load::cifar::load_cifar10(&path, norm))
    } else {
        said(l2m_data::load::cifar::load_cifar100(&path, norm))
    }
}

fn image_folder(mode: u8, rest: &[u8], scratch: &Scratch) -> Outcome {
    use l2m_data::load::image_folder::{ImageFolderOptions, load_image_folder};
    let path = archive(mode, rest, scratch, "images");
    let opts = ImageFolderOptions {
        size: Some((8, 8)),
        channels: if mode & 4 == 0 { 3 } else { 1 },
        classes: None,
        norm: l2m_data::load::Normalisation::unit(if mode & 4 == 0 { 3 } else { 1 }),
    };
    let splits: &[&str] = if mode & 8 == 0 {
        &["train", "test"]
    } else {
        &[]
    };
    if mode & 16 != 0 {
        // The own-data image reader over the same folder or archive.
        let spec = own_spec(&path);
        let loaded = kept(l2m_data::own::load(
            l2m_data::own::SourceKind::IMAGE_FOLDER,
            &spec,
            1,
        ))?;
        check_classes(&loaded.train, false);
        // Every image is counted once: the samples are at most the image files.
        let files = image_files(&path);
        assert!(
            loaded.train.len() + loaded.test.len() <= files,
            "{} samples from {files} image files",
            loaded.train.len() + loaded.test.len()
        );
        Ok(())
    } else {
        said(load_image_folder(&path, splits, &opts))
    }
}

fn imdb(mode: u8, rest: &[u8], scratch: &Scratch) -> Outcome {
    use l2m_data::load::imdb::{ImdbOptions, load_imdb};
    let path = archive(mode, rest, scratch, "aclImdb");
    let opts = ImdbOptions {
        max_len: 16,
        min_count: 1,
        ..ImdbOptions::default()
    };
    said(load_imdb(&path, &opts))
}

fn own_spec(path: &Path) -> l2m_data::own::OwnData {
    let text = format!("path = {:?}", path.to_string_lossy());
    // The defaults of every other field, as a configuration file would give them.
    toml::from_str(&text).unwrap_or_else(|e| panic!("own-data defaults: {e}"))
}

/// Mode % 8: 0 `load_csv` (target `y`, group `g`, comma), 1 the same with `;`, 6 and 7
/// the same dropping rows with missing values, 2 Wine Quality's red file (beside a valid
/// white one), 3 California Housing, 4 own-data CSV (target `label`, task inferred; groups `g` from mode 128), 5
/// own-data CSV with missing values filled, then the same bytes read as new data for
/// prediction with the preprocessing of a valid file.
fn csv(mode: u8, rest: &[u8], scratch: &Scratch) -> Outcome {
    use l2m_data::load::tabular::{CsvOptions, load_california_housing, load_csv};
    use l2m_data::own::{Missing, SourceKind};
    let dir = scratch.fresh("csv");
    match mode % 8 {
        0 | 1 | 6 | 7 => {
            let path = dir.join("data.csv");
            write(&path, rest);
            let opts = CsvOptions {
                target: "y".into(),
                group: "g".into(),
                delimiter: if mode.is_multiple_of(2) { b',' } else { b';' },
                test_fraction: 0.25,
                seed: 1,
                drop_missing: mode % 8 >= 6,
            };
            said(load_csv(&path, &opts))
        }
        2 => {
            write(&dir.join("winequality-red.csv"), rest);
            write(
                &dir.join("winequality-white.csv"),
                seeds::WINE_WHITE.as_bytes(),
            );
            said(l2m_data::load::tabular::load_wine_quality(&dir, 1))
        }
        3 => {
            write(&dir.join("housing.csv"), rest);
            said(load_california_housing(&dir.join("housing.csv"), 1))
        }
        4 => {
            let path = dir.join("own.csv");
            write(&path, rest);
            let mut spec = own_spec(&path);
            spec.target = Some("label".into());
            if mode >= 128 {
                spec.group = Some("g".into());
            }
            let seen = kept(l2m_data::own::inspect(SourceKind::CSV, &spec))?;
            let loaded = kept(l2m_data::own::load(SourceKind::CSV, &spec, 1))?;
            check_classes(&loaded.train, !seen.why.contains("text labels"));
            Ok(())
        }
        _ => {
            let path = dir.join("own.csv");
            write(&path, rest);
            let mut spec = own_spec(&path);
            spec.target = Some("label".into());
            spec.missing = Missing::Mean;
            let loaded = said(l2m_data::own::load(SourceKind::CSV, &spec, 1));
            // The same bytes as new data for a model trained on a valid file.
            let prep = trained_preprocessing(scratch).ok_or("no trained preprocessing")?;
            let predicted = said(l2m_data::own::read_for_prediction(&path, prep));
            loaded.and(predicted)
        }
    }
}

/// The preprocessing fitted on a small valid CSV with numeric, categorical and target
/// columns, made once per process.
fn trained_preprocessing(scratch: &Scratch) -> Option<&'static l2m_data::own::Preprocessing> {
    static PREP: OnceLock<Option<l2m_data::own::Preprocessing>> = OnceLock::new();
    PREP.get_or_init(|| {
        let dir = scratch.root.join("csv-trained");
        std::fs::create_dir_all(&dir).ok()?;
        let path = dir.join("train.csv");
        std::fs::write(&path, seeds::OWN_CSV).ok()?;
        let mut spec = own_spec(&path);
        spec.target = Some("label".into());
        l2m_data::own::load(l2m_data::own::SourceKind::CSV, &spec, 1)
            .ok()
            .map(|l| l.preprocessing)
    })
    .as_ref()
}

fn parquet(rest: &[u8], scratch: &Scratch) -> Outcome {
    use l2m_data::own::SourceKind;
    let dir = scratch.fresh("parquet");
    let path = dir.join("own.parquet");
    write(&path, rest);
    let mut spec = own_spec(&path);
    spec.target = Some("label".into());
    let seen = kept(l2m_data::own::inspect(SourceKind::PARQUET, &spec))?;
    let loaded = kept(l2m_data::own::load(SourceKind::PARQUET, &spec, 1))?;
    check_classes(&loaded.train, !seen.why.contains("text labels"));
    Ok(())
}

/// What every class of a loaded own dataset must be (a panic here is a defect the fuzzer
/// reports): a name of at most `MAX_NAME_BYTES`; in an image folder, a top-level folder
/// (no `/`); where the label column holds numbers (`numeric`), no two classes the same
/// finite number spelled twice (`1`, `01`, `1.0`); and a name that, escaped for the
/// terminal, holds no control character.
pub fn check_classes(train: &l2m_data::ClassDataset, numeric: bool) {
    use l2m_data::text::{MAX_NAME_BYTES, terminal_safe};
    let names = train.class_names();
    for n in names {
        assert!(
            n.len() <= MAX_NAME_BYTES,
            "a class name of {} bytes",
            n.len()
        );
        assert!(!n.contains('/'), "a class name with a folder: {n:?}");
        let shown = terminal_safe(n);
        assert!(
            !shown.chars().any(char::is_control),
            "a class name that reaches the terminal raw: {n:?}"
        );
    }
    if !numeric {
        return;
    }
    let mut v: Vec<f64> = names
        .iter()
        .filter_map(|n| n.parse::<f64>().ok())
        .filter(|x| x.is_finite())
        .collect();
    {
        v.sort_by(f64::total_cmp);
        assert!(
            v.windows(2).all(|w| w[0] != w[1]),
            "one number spelled as two classes: {names:?}"
        );
    }
}

/// The image files under `path` (a folder or an archive), by name.
fn image_files(path: &Path) -> usize {
    let mut n = 0;
    let _ = l2m_data::load::archive::Source::open(path).and_then(|s| {
        s.for_each(
            |_| true,
            |name, _| {
                let lower = name.to_ascii_lowercase();
                n += usize::from([".jpg", ".jpeg", ".png"].iter().any(|e| lower.ends_with(e)));
                Ok(())
            },
        )
    });
    n
}

/// A configuration file as `l2m compare config.toml` reads it: parsed, validated, its
/// model bounded, and written back.
fn config(rest: &[u8]) -> Outcome {
    let text = std::str::from_utf8(rest).map_err(|e| e.to_string())?;
    let cfg: l2m_engine::ExperimentConfig = toml::from_str(text).map_err(|e| e.to_string())?;
    said(cfg.validate())?;
    said(toml::to_string_pretty(&cfg))
}

/// The strategies whose checkpoints are fuzzed (mode % their number picks one).
pub const CHECKPOINT_STRATEGIES: [&str; 5] = [
    "learn2mix",
    "classical",
    "importance",
    "group-dro",
    "stratified",
];

/// Epochs in a checkpoint template; resuming trains one more.
const TEMPLATE_EPOCHS: usize = 1;

/// A tiny Mean Estimation experiment (4 classes, 300 samples, batches of 50).
pub fn checkpoint_config(epochs: usize) -> l2m_engine::ExperimentConfig {
    let mut cfg = l2m_engine::preset("mean-estimation")
        .unwrap_or_else(|e| panic!("the mean-estimation preset: {e}"));
    cfg.dataset = l2m_engine::DatasetSpec::MeanEstimation(l2m_data::synthetic::MeanEstimation {
        train_counts: [100, 100, 80, 20],
        test_per_class: 20,
        draws: 10,
    });
    cfg.batch_size = 50;
    cfg.epochs = epochs;
    cfg.seeds = vec![3];
    cfg
}

fn checkpoint_data() -> &'static l2m_engine::LoadedData {
    static DATA: OnceLock<l2m_engine::LoadedData> = OnceLock::new();
    DATA.get_or_init(|| {
        let cfg = checkpoint_config(TEMPLATE_EPOCHS);
        cfg.dataset
            .load(&cfg.data_dir, 3, None)
            .unwrap_or_else(|e| panic!("mean estimation data: {e}"))
    })
}

fn spec(strategy: &str) -> l2m_engine::StrategySpec {
    let cfg = checkpoint_config(TEMPLATE_EPOCHS);
    let gamma = cfg.gamma().unwrap_or(0.5);
    l2m_engine::StrategySpec::parse(strategy)
        .and_then(|s| s.with_option_if_any("gamma", serde_json::json!(gamma)))
        .unwrap_or_else(|e| panic!("strategy {strategy}: {e}"))
}

/// Trains `strategy` for one epoch into `dir` (the template a fuzzed
/// `checkpoint.json` is dropped into).
pub fn checkpoint_template(strategy: &str, dir: &Path) -> Result<()> {
    let cfg = checkpoint_config(TEMPLATE_EPOCHS);
    l2m_engine::train(
        &cfg,
        &spec(strategy),
        checkpoint_data(),
        3,
        Some(dir),
        &mut l2m_engine::RunOptions::new(),
    )
    .map(|_| ())
    .with_context(|| format!("training the {strategy} checkpoint template"))
}

/// Copies the template of `strategy` into a fresh run directory, replaces its
/// `checkpoint.json` by `rest` (and drops the fallback, so the fuzzed state is the one
/// resumed), and resumes for one more epoch.
fn checkpoint(mode: u8, rest: &[u8], scratch: &Scratch) -> Outcome {
    static TEMPLATES: OnceLock<Vec<std::result::Result<PathBuf, String>>> = OnceLock::new();
    let templates = TEMPLATES.get_or_init(|| {
        CHECKPOINT_STRATEGIES
            .iter()
            .map(|s| {
                let dir = scratch.root.join(format!("template-{s}"));
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
                checkpoint_template(s, &dir)
                    .map(|()| dir)
                    .map_err(|e| format!("{e:#}"))
            })
            .collect()
    });
    let which = usize::from(mode) % CHECKPOINT_STRATEGIES.len();
    let template = templates[which].as_ref()?;
    let run = scratch.fresh("run");
    let entries = std::fs::read_dir(template).map_err(|e| e.to_string())?;
    for e in entries.flatten() {
        let name = e.file_name();
        if name == "checkpoint.prev.json" {
            continue;
        }
        let _ = std::fs::copy(e.path(), run.join(&name));
    }
    write(&run.join("checkpoint.json"), rest);
    let cfg = checkpoint_config(TEMPLATE_EPOCHS + 1);
    said(l2m_engine::train(
        &cfg,
        &spec(CHECKPOINT_STRATEGIES[which]),
        checkpoint_data(),
        3,
        Some(&run),
        &mut l2m_engine::RunOptions::new(),
    ))
}
