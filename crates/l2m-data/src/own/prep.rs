//! The preprocessing fitted on the training split, and its application to any rows.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::table::{self, Dict, MISSING, Missing, Raw, Role};
use super::{OwnData, OwnLoaded, PredictInput, RowIds, SourceKind, TableFormat};
use crate::load::image_folder::{ImageFolderOptions, decode, is_image_name, load_named};
use crate::load::imdb::{Vocabulary, tokenize};
use crate::load::split::stratified_indices;
use crate::load::{Normalisation, format_err};
use crate::{ClassDataset, DataError, Features, Result, Targets, TaskKind};

/// A numeric feature: standardised with its training mean and standard deviation; a
/// missing value (with `--missing mean`) becomes the mean.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericColumn {
    /// Column name.
    pub name: String,
    /// Training mean.
    pub mean: f64,
    /// Training standard deviation (1 where it is 0).
    pub std: f64,
}

/// A categorical feature: one-hot encoded over its categories; a missing value (with
/// `--missing mean`) becomes the training frequencies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoricalColumn {
    /// Column name.
    pub name: String,
    /// Categories, in one-hot order.
    pub categories: Vec<String>,
    /// Training frequency of each category.
    pub frequencies: Vec<f32>,
}

/// What the model's input is made of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Input {
    /// Numeric features, then one-hot categorical features.
    Table {
        /// Numeric features, in input order.
        numeric: Vec<NumericColumn>,
        /// Categorical features, after the numeric ones.
        categorical: Vec<CategoricalColumn>,
        /// The missing-value policy of training.
        missing: Missing,
    },
    /// Token ids of a text column.
    Text {
        /// Column name.
        column: String,
        /// Tokens per sequence.
        max_len: usize,
        /// Tokens by id (`<pad>`, `<unk>` first).
        vocabulary: Vec<String>,
    },
    /// Images, `[channels, height, width]` bytes scaled as `(p / 255 - mean) / std`.
    Image {
        /// The column of a table, `None` for an image folder.
        column: Option<String>,
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// 1 or 3.
        channels: usize,
        /// Per-channel mean of `p / 255`.
        mean: Vec<f32>,
        /// Per-channel standard deviation.
        std: Vec<f32>,
    },
}

/// Everything fitted on the training split that turns raw rows into model inputs, saved
/// with a run so that `l2m predict` applies exactly the preprocessing of training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocessing {
    /// Where the training data came from.
    pub source: SourceKind,
    /// Classification or regression.
    pub task: TaskKind,
    /// The target column (tables).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Regression: the group column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Class names (classification) or group names (regression), in label order.
    pub classes: Vec<String>,
    /// The model input.
    pub input: Input,
    /// Regression: the training mean and standard deviation of the target. The model
    /// learns `(y - mean) / std` (so its MSE is in standard deviations squared);
    /// predictions are scaled back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_scale: Option<(f64, f64)>,
}

/// A preprocessing just fitted, with what a user should know about it.
pub struct Prepared {
    /// The preprocessing.
    pub preprocessing: Preprocessing,
    /// Notes.
    pub notes: Vec<String>,
}

impl Preprocessing {
    /// The shape of one model input.
    pub fn sample_shape(&self) -> Vec<usize> {
        match &self.input {
            Input::Table {
                numeric,
                categorical,
                ..
            } => vec![
                numeric.len()
                    + categorical
                        .iter()
                        .map(|c| c.categories.len())
                        .sum::<usize>(),
            ],
            Input::Text { max_len, .. } => vec![*max_len],
            Input::Image {
                width,
                height,
                channels,
                ..
            } => vec![*channels, *height as usize, *width as usize],
        }
    }

    /// The names of the feature columns a file must have for prediction.
    pub fn input_columns(&self) -> Vec<String> {
        match &self.input {
            Input::Table {
                numeric,
                categorical,
                ..
            } => numeric
                .iter()
                .map(|c| c.name.clone())
                .chain(categorical.iter().map(|c| c.name.clone()))
                .collect(),
            Input::Text { column, .. } => vec![column.clone()],
            Input::Image { column, .. } => column.iter().cloned().collect(),
        }
    }

    /// The vocabulary of a text input.
    pub fn vocabulary(&self) -> Option<Vocabulary> {
        match &self.input {
            Input::Text { vocabulary, .. } => {
                Vocabulary::from_text(&(vocabulary.join("\n") + "\n")).ok()
            }
            _ => None,
        }
    }

    /// Model inputs for the rows of `raw`.
    fn features(&self, raw: &mut Raw) -> Result<Features> {
        match &self.input {
            Input::Table {
                numeric,
                categorical,
                ..
            } => Ok(Features::F32(table_features(numeric, categorical, raw))),
            Input::Text {
                max_len,
                vocabulary,
                ..
            } => {
                let vocab = Vocabulary::from_text(&(vocabulary.join("\n") + "\n"))?;
                let texts = std::mem::take(&mut raw.texts);
                let ids: Vec<Vec<u32>> = texts
                    .par_iter()
                    .map(|t| vocab.encode(&tokenize(t), *max_len))
                    .collect();
                Ok(Features::Tokens(ids.concat()))
            }
            Input::Image {
                width,
                height,
                channels,
                mean,
                std,
                column,
            } => {
                let images = std::mem::take(&mut raw.images);
                let rows = raw.rows.clone();
                let decoded: Vec<Vec<u8>> = images
                    .par_iter()
                    .zip(rows.par_iter())
                    .map(|(b, row)| {
                        decode(b, Some((*width, *height)), *channels)
                            .map(|d| d.0)
                            .map_err(|e| DataError::InvalidParameter {
                                what: "image",
                                reason: format!(
                                    "row {row}, column {:?}: {e}",
                                    column.as_deref().unwrap_or("image")
                                ),
                            })
                    })
                    .collect::<Result<_>>()?;
                Ok(Features::Pixels {
                    data: decoded.concat(),
                    mean: mean.clone(),
                    std: std.clone(),
                })
            }
        }
    }

    /// A dataset of every row of `raw` (with its labels when `labelled`, else one class).
    pub(crate) fn dataset(&self, name: &str, mut raw: Raw, labelled: bool) -> Result<ClassDataset> {
        let features = self.features(&mut raw)?;
        let n = raw.rows.len();
        let (classes, names) = if labelled {
            (std::mem::take(&mut raw.labels), self.classes.clone())
        } else {
            (vec![0; n], vec!["(unlabelled)".to_string()])
        };
        let targets = match self.task {
            TaskKind::Regression if labelled => {
                let (mean, std) = self.target_scale.unwrap_or((0.0, 1.0));
                Targets::Regression(
                    std::mem::take(&mut raw.targets)
                        .into_iter()
                        .map(|t| ((f64::from(t) - mean) / std) as f32)
                        .collect(),
                )
            }
            TaskKind::Regression => Targets::Regression(vec![0.0; n]),
            _ => Targets::Classes,
        };
        ClassDataset::new(name, features, self.sample_shape(), targets, classes, names)
    }
}

/// `(v - mean) / std` in f64, rounded to f32; a missing value is the mean (0).
fn standardise(v: f32, c: &NumericColumn) -> f32 {
    if v.is_nan() {
        0.0
    } else {
        ((f64::from(v) - c.mean) / c.std) as f32
    }
}

/// The feature matrix of `raw`: numeric features standardised, then one-hot categories.
/// Without categorical features the numeric matrix is transformed in place.
fn table_features(
    numeric: &[NumericColumn],
    categorical: &[CategoricalColumn],
    raw: &mut Raw,
) -> Vec<f32> {
    let n = raw.rows.len();
    let nn = numeric.len();
    let dim = nn
        + categorical
            .iter()
            .map(|c| c.categories.len())
            .sum::<usize>();
    let mut numbers = std::mem::take(&mut raw.numbers);
    if categorical.is_empty() {
        numbers.par_chunks_mut(nn.max(1)).for_each(|row| {
            for (v, c) in row.iter_mut().zip(numeric) {
                *v = standardise(*v, c);
            }
        });
        return numbers;
    }
    // Widened in place, last row first (a row only moves up), so that the matrix is
    // never held twice.
    numbers.resize(n * dim, 0.0);
    let cats = &raw.categories;
    for r in (0..n).rev() {
        numbers.copy_within(r * nn..(r + 1) * nn, r * dim);
        let row = &mut numbers[r * dim..(r + 1) * dim];
        for (v, c) in row[..nn].iter_mut().zip(numeric) {
            *v = standardise(*v, c);
        }
        row[nn..].fill(0.0);
        let mut at = nn;
        for (col, codes) in categorical.iter().zip(cats) {
            let k = col.categories.len();
            match codes[r] {
                MISSING => row[at..at + k].copy_from_slice(&col.frequencies),
                code => row[at + code as usize] = 1.0,
            }
            at += k;
        }
    }
    numbers
}

/// Fits the preprocessing on the rows of `train` (per-class member lists).
#[allow(clippy::too_many_arguments)]
pub(crate) fn fit(
    plan: &table::Plan,
    raw: &Raw,
    train: &[Vec<u32>],
    task: TaskKind,
    classes: Vec<String>,
    target: Option<String>,
    group: Option<String>,
    spec: &OwnData,
    source: SourceKind,
) -> Result<Prepared> {
    // In store order, so that the passes below read the matrix front to back.
    let mut rows: Vec<usize> = train.iter().flatten().map(|&i| i as usize).collect();
    rows.sort_unstable();
    let mut notes = Vec::new();
    let column_of = |role: Role| {
        plan.columns
            .iter()
            .find(|c| c.1 == role)
            .map(|c| plan.names[c.0].clone())
    };
    let input = if let Some(column) = column_of(Role::Text) {
        let docs: Vec<Vec<String>> = rows.par_iter().map(|&r| tokenize(&raw.texts[r])).collect();
        let vocab = Vocabulary::build(docs.iter(), spec.min_count);
        notes.push(format!(
            "text column {column:?}: a vocabulary of {} tokens (seen at least {} times in the training split), {} tokens per sequence",
            vocab.len(),
            spec.min_count,
            spec.max_len
        ));
        Input::Text {
            column,
            max_len: spec.max_len,
            vocabulary: vocab.to_text().lines().map(String::from).collect(),
        }
    } else if let Some(column) = column_of(Role::Image) {
        let ((width, height), channels) = plan.image.unwrap_or(((32, 32), 3));
        let norm = Normalisation::half(channels);
        Input::Image {
            column: Some(column),
            width,
            height,
            channels,
            mean: norm.mean,
            std: norm.std,
        }
    } else {
        let nn = plan.numeric;
        let mut numeric = Vec::with_capacity(nn);
        let numeric_names: Vec<String> = plan
            .columns
            .iter()
            .filter(|c| matches!(c.1, Role::Numeric(_)))
            .map(|c| plan.names[c.0].clone())
            .collect();
        // Row-major passes over the training rows: the sums and counts of every column,
        // then the squared deviations. Chunks run in parallel, but their partial sums are
        // added in chunk order, so the statistics are the same bits on every run.
        let row_of = |r: usize| &raw.numbers[r * nn..(r + 1) * nn];
        let (sums, counts) = rows
            .par_chunks(4096)
            .map(|chunk| {
                let (mut s, mut c) = (vec![0f64; nn], vec![0usize; nn]);
                for &r in chunk {
                    for ((s, c), &v) in s.iter_mut().zip(c.iter_mut()).zip(row_of(r)) {
                        let present = !v.is_nan();
                        *s += if present { f64::from(v) } else { 0.0 };
                        *c += usize::from(present);
                    }
                }
                (s, c)
            })
            .collect::<Vec<_>>()
            .into_iter()
            .fold(
                (vec![0f64; nn], vec![0usize; nn]),
                |(mut s, mut c), (s2, c2)| {
                    s.iter_mut().zip(s2).for_each(|(a, b)| *a += b);
                    c.iter_mut().zip(c2).for_each(|(a, b)| *a += b);
                    (s, c)
                },
            );
        if let Some(j) = counts.iter().position(|&c| c == 0) {
            return Err(DataError::InvalidParameter {
                what: "column",
                reason: format!("{:?} has no value in the training split", numeric_names[j]),
            });
        }
        let means: Vec<f64> = sums
            .iter()
            .zip(&counts)
            .map(|(s, &c)| s / c as f64)
            .collect();
        let squares = rows
            .par_chunks(4096)
            .map(|chunk| {
                let mut q = vec![0f64; nn];
                for &r in chunk {
                    for ((q, m), &v) in q.iter_mut().zip(&means).zip(row_of(r)) {
                        let d = if v.is_nan() { 0.0 } else { f64::from(v) - m };
                        *q += d * d;
                    }
                }
                q
            })
            .collect::<Vec<_>>()
            .into_iter()
            .fold(vec![0f64; nn], |mut q, q2| {
                q.iter_mut().zip(q2).for_each(|(a, b)| *a += b);
                q
            });
        for (j, name) in numeric_names.into_iter().enumerate() {
            let var = squares[j] / counts[j] as f64;
            let std = if var > 0.0 { var.sqrt() } else { 1.0 };
            numeric.push(NumericColumn {
                name,
                mean: means[j],
                std,
            });
        }
        let cat_names: Vec<String> = plan
            .columns
            .iter()
            .filter(|c| matches!(c.1, Role::Categorical(_)))
            .map(|c| plan.names[c.0].clone())
            .collect();
        let mut categorical = Vec::with_capacity(cat_names.len());
        for (i, name) in cat_names.into_iter().enumerate() {
            let dict = &raw.category_dicts[i];
            let mut counts = vec![0usize; dict.names.len()];
            let mut seen = 0usize;
            for &r in &rows {
                let c = raw.categories[i][r];
                if c != MISSING {
                    counts[c as usize] += 1;
                    seen += 1;
                }
            }
            let frequencies = counts
                .iter()
                .map(|&c| {
                    if seen == 0 {
                        0.0
                    } else {
                        c as f32 / seen as f32
                    }
                })
                .collect();
            categorical.push(CategoricalColumn {
                name,
                categories: dict.names.clone(),
                frequencies,
            });
        }
        if !categorical.is_empty() {
            notes.push(format!(
                "one-hot encoded: {}",
                categorical
                    .iter()
                    .map(|c| format!("{} ({} values)", c.name, c.categories.len()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        Input::Table {
            numeric,
            categorical,
            missing: spec.missing,
        }
    };
    let target_scale = if task == TaskKind::Regression {
        let n = rows.len().max(1) as f64;
        let mean = rows.iter().map(|&r| f64::from(raw.targets[r])).sum::<f64>() / n;
        let var = rows
            .iter()
            .map(|&r| (f64::from(raw.targets[r]) - mean).powi(2))
            .sum::<f64>()
            / n;
        let std = if var > 0.0 { var.sqrt() } else { 1.0 };
        if var == 0.0 {
            let warning = format!(
                "warning: the regression target {} is {mean} in every training row: there is nothing to learn, and every strategy's MSE measures only how far the model drifts from that constant",
                target.as_deref().map_or_else(String::new, |t| format!(
                    "{:?}",
                    crate::text::terminal_safe(t)
                ))
            );
            notes.push(warning);
        }
        notes.push(format!(
            "the target is standardised with its training mean {mean:.6} and standard deviation {std:.6}: MSE is in units of its variance; predictions are in the target's own units"
        ));
        Some((mean, std))
    } else {
        None
    };
    Ok(Prepared {
        preprocessing: Preprocessing {
            source,
            task,
            target,
            group,
            classes,
            input,
            target_scale,
        },
        notes,
    })
}

fn image_options(spec: &OwnData, classes: Option<Vec<String>>) -> ImageFolderOptions {
    let ((w, h), channels) = spec.image_shape();
    ImageFolderOptions {
        size: Some((w, h)),
        channels,
        classes,
        norm: Normalisation::half(channels),
    }
}

/// An image folder: `DIR/train/<class>/` with `DIR/test/<class>/` (or `val`), or
/// `DIR/<class>/` split with the test fraction.
pub(crate) fn load_image_folder(spec: &OwnData, seed: u64) -> Result<OwnLoaded> {
    let path = PathBuf::from(&spec.path);
    let opts = image_options(spec, None);
    let test_split = ["test", "val"].into_iter().find(|s| path.join(s).is_dir());
    let archive = path.is_file();
    let split_layout = (path.join("train").is_dir() && test_split.is_some()) || archive;
    let mut notes = Vec::new();
    let named = if split_layout && spec.test.is_none() {
        let t = test_split.unwrap_or("test");
        match load_named(&path, &["train", t], &opts) {
            Ok((sets, n)) => {
                notes.extend(n);
                Some(sets)
            }
            Err(DataError::Missing { .. }) if archive => None,
            Err(e) => return Err(e),
        }
    } else {
        None
    };
    let name = super::dataset_name(&spec.path);
    let (train, test, test_names) = match named {
        Some(mut sets) => {
            let (test, test_names) = sets
                .pop()
                .ok_or_else(|| format_err(&path, "no test images"))?;
            let (train, _) = sets
                .pop()
                .ok_or_else(|| format_err(&path, "no training images"))?;
            notes.push("split given by the folder's train/ and test/ folders".into());
            (train, test, test_names)
        }
        None => {
            let (mut sets, n) = load_named(&path, &[], &opts)?;
            notes.extend(n);
            let (all, names) = sets.pop().ok_or_else(|| format_err(&path, "no images"))?;
            if all.num_classes() < 2 {
                return Err(format_err(
                    &path,
                    format!(
                        "an image folder with one class ({}); expected a folder per class, two or more",
                        all.class_names().join(", ")
                    ),
                ));
            }
            match &spec.test {
                Some(t) => {
                    let o = image_options(spec, Some(all.class_names().to_vec()));
                    let (mut ts, n) = load_named(t, &[], &o)?;
                    notes.extend(n);
                    let (test, test_names) = ts.pop().ok_or_else(|| format_err(t, "no images"))?;
                    (all, test, test_names)
                }
                None => {
                    for (c, m) in all.members().iter().enumerate() {
                        let n_test = (m.len() as f64 * spec.test_fraction).round() as usize;
                        if n_test == 0 || n_test == m.len() {
                            return Err(format_err(
                                &path,
                                format!(
                                    "class {:?} has {} image(s): too few to split into training and test images with --test-fraction {}",
                                    all.class_names()[c],
                                    m.len(),
                                    spec.test_fraction
                                ),
                            ));
                        }
                    }
                    let (tr, te) = stratified_indices(all.members(), spec.test_fraction, seed)?;
                    (
                        all.with_member_lists(tr)?,
                        all.with_member_lists(te)?,
                        names,
                    )
                }
            }
        }
    };
    if train.num_classes() < 2 {
        return Err(format_err(
            &path,
            "an image folder with one class; expected a folder per class, two or more",
        ));
    }
    let shape = train.samples().sample_shape().to_vec();
    let ((w, h), channels) = spec.image_shape();
    notes.push(format!(
        "images resized to {w}x{h}, {channels} channel(s), scaled to [-1, 1]"
    ));
    debug_assert_eq!(shape, vec![channels, h as usize, w as usize]);
    let norm = Normalisation::half(channels);
    Ok(OwnLoaded {
        preprocessing: Preprocessing {
            source: SourceKind::IMAGE_FOLDER,
            task: TaskKind::Classification,
            target: None,
            group: None,
            classes: train.class_names().to_vec(),
            input: Input::Image {
                column: None,
                width: w,
                height: h,
                channels,
                mean: norm.mean,
                std: norm.std,
            },
            target_scale: None,
        },
        train: train.renamed(format!("{name}/train")),
        test: test.renamed(format!("{name}/test")),
        task: TaskKind::Classification,
        test_ids: Arc::new(RowIds::Files(test_names)),
        notes,
    })
}

/// See [`super::read_for_prediction`].
pub(crate) fn read_for_prediction(path: &Path, prep: &Preprocessing) -> Result<PredictInput> {
    if let Input::Image {
        column: None,
        width,
        height,
        channels,
        mean,
        std,
    } = &prep.input
    {
        return predict_images(path, (*width, *height), *channels, mean, std, prep);
    }
    let name = path.to_string_lossy();
    let tables = SourceKind::infer(&name)
        .source()
        .tables(&OwnData::new(&name))
        .map_err(|_| {
            format_err(
                path,
                "expected a table (CSV, Parquet) like the training data",
            )
        })?;
    let files = tables.train;
    let mut h = match tables.format {
        TableFormat::Csv => table::sniff_csv(path)?,
        TableFormat::Parquet => super::parquet_source::sniff(&files)?,
    };
    let wanted = prep.input_columns();
    let absent: Vec<&String> = wanted.iter().filter(|c| !h.names.contains(c)).collect();
    if !absent.is_empty() {
        return Err(format_err(
            path,
            format!(
                "the model was trained on columns it lacks: {} (its columns are {}; the training columns are {})",
                absent
                    .iter()
                    .map(|c| format!("{c:?}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                h.names.join(", "),
                wanted.join(", ")
            ),
        ));
    }
    let mut columns = Vec::new();
    let (mut dicts, mut numeric, mut categorical) = (Vec::new(), 0, 0);
    let missing = match &prep.input {
        Input::Table {
            numeric: nums,
            categorical: cats,
            missing,
        } => {
            for c in nums {
                let i = h.names.iter().position(|n| *n == c.name).unwrap_or(0);
                h.kinds[i] = table::Kind::Number;
                columns.push((i, Role::Numeric(numeric)));
                numeric += 1;
            }
            for c in cats {
                let i = h.names.iter().position(|n| *n == c.name).unwrap_or(0);
                h.kinds[i] = table::Kind::Category;
                columns.push((i, Role::Categorical(categorical)));
                dicts.push(Dict::frozen(&c.categories));
                categorical += 1;
            }
            // A row with a missing value the model cannot fill gets an empty prediction.
            if *missing == Missing::Mean {
                Missing::Mean
            } else {
                Missing::Drop
            }
        }
        Input::Text { column, .. } => {
            let i = h.names.iter().position(|n| n == column).unwrap_or(0);
            columns.push((i, Role::Text));
            Missing::Drop
        }
        Input::Image { column, .. } => {
            let c = column.as_deref().unwrap_or_default();
            let i = h.names.iter().position(|n| n == c).unwrap_or(0);
            columns.push((i, Role::Image));
            Missing::Error
        }
    };
    // Input order is numeric then categorical; the sink takes the file's column order.
    columns.sort_by_key(|c| c.0);
    let image = match &prep.input {
        Input::Image {
            width,
            height,
            channels,
            ..
        } => Some(((*width, *height), *channels)),
        _ => None,
    };
    let plan = table::Plan {
        columns,
        names: h.names.clone(),
        numeric,
        categorical,
        missing,
        max_categories: usize::MAX,
        image,
        onehot_estimate: 0,
        // Classes that are all numbers were read as numbers in training.
        numeric_labels: !prep.classes.is_empty()
            && prep.classes.iter().all(|c| c.parse::<f64>().is_ok()),
    };
    let labels = Dict::frozen(&prep.classes);
    let mut sink = table::Sink::new(&plan, path, Some((&dicts, &labels)), h.rows_estimate);
    sink.needs_label = false;
    match tables.format {
        TableFormat::Csv => {
            table::read_csv(path, &mut sink, 0)?;
        }
        TableFormat::Parquet => super::parquet_source::read(&files, &mut sink)?,
    }
    let raw = sink.raw;
    if raw.rows.is_empty() {
        return Err(format_err(path, "no rows to predict"));
    }
    let ids = RowIds::Rows(raw.rows.clone());
    let skipped = raw.dropped_rows.clone();
    let data = prep.dataset("predict", raw, false)?;
    Ok(PredictInput { data, ids, skipped })
}

fn predict_images(
    path: &Path,
    size: (u32, u32),
    channels: usize,
    mean: &[f32],
    std: &[f32],
    prep: &Preprocessing,
) -> Result<PredictInput> {
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    if path.is_file() && is_image_name(&path.to_string_lossy()) {
        crate::load::regular_file(path)?;
        let bytes = std::fs::read(path).map_err(crate::load::io_err(path))?;
        entries.push((path.display().to_string(), bytes));
    } else {
        let source = crate::load::archive::Source::open(path)?;
        source.for_each(is_image_name, |n, b| {
            entries.push((n.to_string(), b));
            Ok(())
        })?;
        entries.sort_by(|a, b| a.0.cmp(&b.0));
    }
    if entries.is_empty() {
        return Err(DataError::Missing {
            what: "images (.jpg, .jpeg or .png) to predict".into(),
            tried: vec![path.to_path_buf()],
        });
    }
    let decoded: Vec<Vec<u8>> = entries
        .par_iter()
        .map(|(n, b)| {
            decode(b, Some(size), channels)
                .map(|d| d.0)
                .map_err(|e| format_err(&path.join(n), e))
        })
        .collect::<Result<_>>()?;
    let n = decoded.len();
    let data = ClassDataset::new(
        "predict",
        Features::Pixels {
            data: decoded.concat(),
            mean: mean.to_vec(),
            std: std.to_vec(),
        },
        prep.sample_shape(),
        Targets::Classes,
        vec![0; n],
        vec!["(unlabelled)".into()],
    )?;
    Ok(PredictInput {
        data,
        ids: RowIds::Files(entries.into_iter().map(|e| e.0).collect()),
        skipped: Vec::new(),
    })
}
