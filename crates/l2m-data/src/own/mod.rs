//! The user's own data: a CSV or Parquet table, an image folder, or a Hugging Face Hub
//! dataset, loaded into the same class-partitioned datasets as the paper's, with the
//! preprocessing that was fitted on the training split recorded so that a trained model
//! can be applied to new data exactly as it was trained ([`Preprocessing`]).
//!
//! - Tables: numeric columns become features, standardised with training statistics;
//!   text columns are one-hot encoded (at most `max_categories` values each). The target
//!   is a class label (classification) or a number (regression, where `group` names the
//!   column whose values learn2mix mixes). A CSV is streamed into one contiguous matrix.
//! - A text column (`text`) makes a text classifier: tokens, a vocabulary of the training
//!   split, sequences of `max_len` ids.
//! - Image folders (`DIR/<class>/*.jpg|png`, or `DIR/train/<class>/` with `DIR/test/` or
//!   `DIR/val/`) and image columns of Parquet files (the Hub's `{bytes, path}` structs):
//!   decoded, resized, stored as bytes and scaled to [-1, 1].
//!
//! ```
//! use l2m_data::own::{OwnData, SourceKind, load};
//! let dir = tempfile::tempdir()?;
//! let csv = dir.path().join("customers.csv");
//! let mut text = String::from("age,plan,churned\n");
//! for i in 0..40 {
//!     text += &format!("{},{},{}\n", 20 + i, if i % 3 == 0 { "pro" } else { "basic" }, i % 4 == 0);
//! }
//! std::fs::write(&csv, text)?;
//! let spec = OwnData { target: Some("churned".into()), ..OwnData::new(csv.to_str().unwrap()) };
//! let data = load(SourceKind::CSV, &spec, 0)?;
//! assert_eq!(data.train.class_names(), &["false".to_string(), "true".to_string()]);
//! // age (standardised) and plan (two one-hot columns).
//! assert_eq!(data.train.samples().feature_dim(), 3);
//! assert_eq!(data.train.len() + data.test.len(), 40);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[cfg(feature = "parquet")]
mod parquet_footer;
#[cfg(feature = "parquet")]
mod parquet_source;
#[cfg(not(feature = "parquet"))]
#[path = "parquet_disabled.rs"]
mod parquet_source;
pub(crate) mod prep;
pub mod sources;
mod table;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use prep::{CategoricalColumn, Input, NumericColumn, Prepared, Preprocessing};
pub use sources::{SOURCES, Source, SourceKind, TableFormat, Tables};
pub use table::Missing;

use crate::load::split::stratified_indices;
use crate::{ClassDataset, DataError, Result, TaskKind};

fn default_test_fraction() -> f64 {
    0.2
}
fn default_max_categories() -> usize {
    100
}
fn default_max_len() -> usize {
    256
}
fn default_min_count() -> usize {
    2
}
fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// How to read the user's data (the `[dataset]` table of a configuration file, and the
/// flags of `l2m compare --data`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnData {
    /// A file, a folder, or `hf://datasets/OWNER/NAME`.
    pub path: String,
    /// A separate test file (or folder), read with the training preprocessing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<PathBuf>,
    /// Without test data: the fraction of each class (or group) held out, seeded.
    #[serde(default = "default_test_fraction")]
    pub test_fraction: f64,
    /// The column to predict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Regression: the column whose values are the groups learn2mix mixes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The feature columns (default: every other usable column).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<Vec<String>>,
    /// A text column: a text classifier on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Images are resized to `image_size` x `image_size` (default 32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<u32>,
    /// Image channels: 1 (grey) or 3 (RGB, the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<usize>,
    /// Hub datasets: the training split (default `train`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<String>,
    /// Hub datasets: the test split (default: none, a fraction of the training split).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_split: Option<String>,
    /// Classification or regression (default: inferred from the target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskKind>,
    /// What to do with missing values.
    #[serde(default, skip_serializing_if = "is_default")]
    pub missing: Missing,
    /// Most categories a one-hot encoded column may have.
    #[serde(default = "default_max_categories")]
    pub max_categories: usize,
    /// Text: tokens per sequence.
    #[serde(default = "default_max_len")]
    pub max_len: usize,
    /// Text: a token enters the vocabulary when seen this often in the training split.
    #[serde(default = "default_min_count")]
    pub min_count: usize,
    /// One of the paper's imbalance profiles imposed on the training split (seeded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imbalance: Option<crate::Imbalance>,
}

impl OwnData {
    /// Defaults for the data at `path`.
    pub fn new(path: &str) -> Self {
        Self {
            path: path.to_string(),
            test: None,
            test_fraction: default_test_fraction(),
            target: None,
            group: None,
            features: None,
            text: None,
            image_size: None,
            channels: None,
            split: None,
            test_split: None,
            task: None,
            missing: Missing::Error,
            max_categories: default_max_categories(),
            max_len: default_max_len(),
            min_count: default_min_count(),
            imbalance: None,
        }
    }

    pub(crate) fn check(&self) -> Result<()> {
        let bad =
            |what: &'static str, reason: String| Err(DataError::InvalidParameter { what, reason });
        if !(self.test_fraction > 0.0 && self.test_fraction < 1.0) {
            return bad(
                "--test-fraction",
                format!("expected a number in (0, 1), got {}", self.test_fraction),
            );
        }
        if let Some(c) = self.channels
            && c != 1
            && c != 3
        {
            return bad("--channels", format!("expected 1 or 3, got {c}"));
        }
        if let Some(s) = self.image_size
            && !(1..=1024).contains(&s)
        {
            return bad(
                "--image-size",
                format!("expected 1 to 1024 pixels, got {s}"),
            );
        }
        if self.max_categories == 0 || self.max_len == 0 || self.min_count == 0 {
            return bad(
                "max_categories, max_len and min_count",
                "each must be at least 1".into(),
            );
        }
        Ok(())
    }

    pub(crate) fn image_shape(&self) -> ((u32, u32), usize) {
        let s = self.image_size.unwrap_or(32);
        ((s, s), self.channels.unwrap_or(3))
    }
}

/// How the rows (or images) of a store are named in predictions: their row number in the
/// source (1-based data rows), or their file name.
#[derive(Debug, Clone, PartialEq)]
pub enum RowIds {
    /// Row numbers.
    Rows(Vec<u64>),
    /// File names.
    Files(Vec<String>),
}

impl RowIds {
    /// The id of stored sample `i`.
    pub fn get(&self, i: usize) -> String {
        match self {
            RowIds::Rows(r) => r.get(i).map_or_else(String::new, u64::to_string),
            RowIds::Files(f) => f.get(i).cloned().unwrap_or_default(),
        }
    }

    /// The column header the ids go under.
    pub fn header(&self) -> &'static str {
        match self {
            RowIds::Rows(_) => "row",
            RowIds::Files(_) => "file",
        }
    }
}

/// The user's data, loaded.
#[derive(Debug, Clone)]
pub struct OwnLoaded {
    /// The training split.
    pub train: ClassDataset,
    /// The test split.
    pub test: ClassDataset,
    /// The task the data defines.
    pub task: TaskKind,
    /// What was fitted on the training split, to apply to new data.
    pub preprocessing: Preprocessing,
    /// The id of every stored sample (of the test store when it is a separate file).
    pub test_ids: Arc<RowIds>,
    /// Facts a user should know (rows left out, the task inferred, ...).
    pub notes: Vec<String>,
}

/// What a look at the data (its header and first rows) tells before loading it.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspection {
    /// The task (given or inferred).
    pub task: TaskKind,
    /// How the task was chosen.
    pub why: String,
    /// Tabular, text or image inputs.
    pub input: InputKind,
    /// Roughly how many rows (or files) there are.
    pub rows_estimate: usize,
}

/// The kind of model input the data makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// A feature vector.
    Table,
    /// Token ids.
    Text,
    /// Images `[channels, size, size]`.
    Image {
        /// Side in pixels.
        size: u32,
        /// 1 or 3.
        channels: usize,
    },
}

fn sniff(f: &Tables) -> Result<table::Header> {
    match f.format {
        TableFormat::Csv => table::sniff_csv(&f.train[0]),
        TableFormat::Parquet => parquet_source::sniff(&f.train),
    }
}

fn choice<'a>(spec: &'a OwnData, h: &table::Header) -> table::Choice<'a> {
    let _ = h;
    table::Choice {
        target: spec.target.as_deref(),
        group: spec.group.as_deref(),
        features: spec.features.as_deref(),
        text: spec.text.as_deref(),
        image: None,
        task: spec.task,
        missing: spec.missing,
        max_categories: spec.max_categories,
        image_shape: Some(spec.image_shape()),
    }
}

/// Looks at the header and the first rows: the task, the kind of input, the size.
pub fn inspect(kind: SourceKind, spec: &OwnData) -> Result<Inspection> {
    kind.source().inspect(spec)
}

/// [`Source::inspect`] for a table source.
pub fn inspect_tables(f: &Tables, spec: &OwnData) -> Result<Inspection> {
    spec.check()?;
    let h = sniff(f)?;
    let (plan, task, why) = table::plan(&f.display, &h, &choice(spec, &h))?;
    let input = if plan.columns.iter().any(|c| c.1 == table::Role::Text) {
        InputKind::Text
    } else if let Some(((size, _), channels)) = plan.image {
        InputKind::Image { size, channels }
    } else {
        InputKind::Table
    };
    Ok(Inspection {
        task,
        why,
        input,
        rows_estimate: h.rows_estimate,
    })
}

/// Reads a table through the plan its header and the options make.
fn read_table(
    f: &Tables,
    files: &[PathBuf],
    h: &table::Header,
    spec: &OwnData,
    dicts: Option<(&[table::Dict], &table::Dict)>,
    needs_label: bool,
) -> Result<(table::Plan, TaskKind, String, table::Raw)> {
    let (plan, task, why) = table::plan(&f.display, h, &choice(spec, h))?;
    let read = |sink: &mut table::Sink<'_>| -> Result<()> {
        match f.format {
            TableFormat::Csv => {
                let mut first = 0;
                for file in files {
                    first = table::read_csv(file, sink, first)?;
                }
            }
            TableFormat::Parquet => parquet_source::read(files, sink)?,
        }
        Ok(())
    };
    let mut sink = table::Sink::new(&plan, &files[0], dicts, h.rows_estimate);
    sink.needs_label = needs_label;
    if let Err(e) = read(&mut sink) {
        if !sink.overflowed {
            return Err(e);
        }
        // A column with too many categories: read again, collecting every such column,
        // so that one error names them all.
        let mut again = table::Sink::new(&plan, &files[0], dicts, 0);
        again.needs_label = needs_label;
        again.collect_overflow = true;
        read(&mut again)?;
        if again.overflow.is_empty() {
            return Err(e);
        }
        let columns: Vec<String> = again
            .overflow
            .iter()
            .map(|&(c, row)| format!("{:?} (from row {row})", plan.names[c]))
            .collect();
        return Err(crate::load::format_err(
            &f.display,
            format!(
                "{} {}: more than {} distinct values: too many to one-hot encode (identifiers or \
                 free text?); leave {} out with --features, or read a text column with --text",
                if columns.len() == 1 {
                    "column"
                } else {
                    "columns"
                },
                columns.join(", "),
                plan.max_categories,
                if columns.len() == 1 { "it" } else { "them" }
            ),
        ));
    }
    let raw = sink.raw;
    Ok((plan, task, why, raw))
}

/// Loads the data: reads it, splits it (seeded, stratified by class or group) unless test
/// data is given, fits the preprocessing on the training split and applies it to both.
pub fn load(kind: SourceKind, spec: &OwnData, seed: u64) -> Result<OwnLoaded> {
    kind.source().load(spec, seed)
}

/// [`Source::load`] for a table source of `kind`.
pub fn load_tables(kind: SourceKind, f: &Tables, spec: &OwnData, seed: u64) -> Result<OwnLoaded> {
    spec.check()?;
    let h = sniff(f)?;
    let (plan, task, why, mut raw) = read_table(f, &f.train, &h, spec, None, true)?;
    let mut notes = vec![format!(
        "task: {} ({why})",
        format!("{task:?}").to_lowercase()
    )];
    if raw.dropped > 0 {
        notes.push(format!(
            "{} rows with a missing value left out (--missing {})",
            raw.dropped,
            match spec.missing {
                Missing::Drop => "drop",
                _ => "mean: rows without a target",
            }
        ));
    }
    if raw.rows.is_empty() {
        return Err(crate::load::format_err(
            &f.display,
            "no rows left to train on",
        ));
    }
    // Labels in a stable order (numeric order for numbers), named by the file's metadata
    // where it has class names.
    raw.label_dict.sort(&mut raw.labels);
    for (dict, codes) in raw.category_dicts.iter_mut().zip(raw.categories.iter_mut()) {
        dict.sort(codes);
    }
    let label_column = plan
        .columns
        .iter()
        .find(|c| matches!(c.1, table::Role::Label | table::Role::Group))
        .map(|c| h.names[c.0].clone());
    let target_column = plan
        .columns
        .iter()
        .find(|c| matches!(c.1, table::Role::Label | table::Role::Target))
        .map(|c| h.names[c.0].clone());
    let mut class_names = raw.label_dict.names.clone();
    if let Some(names) = label_column.as_ref().and_then(|c| h.label_names.get(c)) {
        let renamed: Option<Vec<String>> = class_names
            .iter()
            .map(|n| n.parse::<usize>().ok().and_then(|i| names.get(i).cloned()))
            .collect();
        if let Some(r) = renamed {
            class_names = r;
        }
    }
    let what = if task == TaskKind::Classification {
        "class"
    } else {
        "group"
    };
    if class_names.len() < 2 {
        return Err(crate::load::format_err(
            &f.display,
            format!(
                "column {:?} has a single {what} ({}); learn2mix needs two or more",
                label_column.unwrap_or_default(),
                class_names.first().cloned().unwrap_or_default()
            ),
        ));
    }
    let k = class_names.len();
    let test_raw = match &f.test {
        Some(test_files) => {
            let tf = Tables {
                format: f.format,
                train: test_files.clone(),
                test: None,
                display: test_files[0].clone(),
            };
            let mut th = sniff(&tf)?;
            // The test file is read with the training file's column kinds.
            for (i, n) in h.names.iter().enumerate() {
                if let Some(j) = th.names.iter().position(|m| m == n) {
                    th.kinds[j] = h.kinds[i];
                }
            }
            let (_, _, _, t) = read_table(
                &tf,
                test_files,
                &th,
                &OwnData {
                    task: Some(task),
                    ..spec.clone()
                },
                Some((&raw.category_dicts, &raw.label_dict)),
                true,
            )?;
            Some(t)
        }
        None => None,
    };
    let mut members = vec![Vec::new(); k];
    for (i, &c) in raw.labels.iter().enumerate() {
        members[c as usize].push(i as u32);
    }
    let (train_members, test_members) = match &test_raw {
        Some(_) => (members, None),
        None => {
            for (c, m) in members.iter().enumerate() {
                let n_test = (m.len() as f64 * spec.test_fraction).round() as usize;
                if n_test == 0 || n_test == m.len() {
                    return Err(crate::load::format_err(
                        &f.display,
                        format!(
                            "{what} {:?} has {} row(s): too few to split into training and test rows \
                             with --test-fraction {} (give more rows, a larger fraction, or --test FILE)",
                            class_names[c],
                            m.len(),
                            spec.test_fraction
                        ),
                    ));
                }
            }
            let (tr, te) = stratified_indices(&members, spec.test_fraction, seed)?;
            (tr, Some(te))
        }
    };
    let fitted = prep::fit(
        &plan,
        &raw,
        &train_members,
        task,
        class_names.clone(),
        target_column,
        if task == TaskKind::Regression {
            label_column
        } else {
            None
        },
        spec,
        kind,
    )?;
    let train_ids = RowIds::Rows(raw.rows.clone());
    let name = dataset_name(&spec.path);
    let all = fitted.preprocessing.dataset(&name, raw, true)?;
    let (train, test, test_ids) = match (test_raw, test_members) {
        (Some(t), _) => {
            let ids = RowIds::Rows(t.rows.clone());
            let test = fitted.preprocessing.dataset(&name, t, true)?;
            (
                all.with_member_lists(train_members)?
                    .renamed(format!("{name}/train")),
                test.renamed(format!("{name}/test")),
                ids,
            )
        }
        (None, Some(te)) => (
            all.with_member_lists(train_members)?
                .renamed(format!("{name}/train")),
            all.with_member_lists(te)?.renamed(format!("{name}/test")),
            train_ids,
        ),
        (None, None) => {
            return Err(DataError::InvalidParameter {
                what: "--test",
                reason: "neither test data nor a test split".into(),
            });
        }
    };
    notes.extend(fitted.notes);
    Ok(OwnLoaded {
        train,
        test,
        task,
        preprocessing: fitted.preprocessing,
        test_ids: Arc::new(test_ids),
        notes,
    })
}

/// A short dataset name from a path or Hub address.
pub fn dataset_name(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    let last = trimmed.rsplit('/').next().unwrap_or(trimmed);
    let stem = last.split('.').next().unwrap_or(last);
    let clean: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(48)
        .collect();
    if clean.is_empty() {
        "data".into()
    } else {
        clean
    }
}

/// New data to predict on, read and preprocessed exactly as the training data was.
#[derive(Debug, Clone)]
pub struct PredictInput {
    /// The samples (their classes are placeholders).
    pub data: ClassDataset,
    /// The id of every sample, in order.
    pub ids: RowIds,
    /// Rows with a missing value the training preprocessing cannot fill (trained with
    /// `--missing drop` or `error`): they get an empty prediction.
    pub skipped: Vec<u64>,
}

/// Reads `path` (a CSV or Parquet file, or an image folder) for prediction with the
/// training preprocessing; columns are matched by name, and a missing feature column, a
/// category or value the training data did not have is an error naming it.
pub fn read_for_prediction(path: &Path, prep: &Preprocessing) -> Result<PredictInput> {
    prep::read_for_prediction(path, prep)
}

#[cfg(test)]
mod tests;
