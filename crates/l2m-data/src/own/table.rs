//! Tables (CSV and Parquet) streamed into raw columns: one contiguous row-major matrix of
//! numeric features, one code per row for each categorical feature and for the label, the
//! regression target, texts and images. No field is kept as a `String` beyond its row.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::load::{clip, format_err, io_err};
use crate::text::MAX_NAME_BYTES;
use crate::{DataError, Result, TaskKind};

/// What to do with a missing value (an empty field, `NA`, `NaN`, `null`, `None`, `?`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Missing {
    /// Refuse the file, naming the row and the column (the default).
    #[default]
    Error,
    /// Leave out every row with a missing value in a column used.
    Drop,
    /// Fill a missing feature with its training mean (for a categorical feature, the
    /// training frequencies of its categories); rows with a missing target are left out.
    Mean,
}

/// How a column is stored, as read from a CSV sample or a Parquet schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// Some variants are built only by the Parquet reader.
#[cfg_attr(not(feature = "parquet"), allow(dead_code))]
pub(crate) enum Kind {
    /// Every value is a number (or missing).
    Number,
    /// Strings (or numbers mixed with strings).
    Category,
    /// Encoded image bytes (Parquet `binary` or the Hub's `{bytes, path}` struct).
    Image,
    /// A type this loader does not use.
    Other,
}

/// Column names and kinds of a table, and, from a sample of rows, what the task inference
/// needs.
#[derive(Debug, Clone)]
pub(crate) struct Header {
    pub names: Vec<String>,
    pub kinds: Vec<Kind>,
    /// Per column: distinct values seen in the sample (up to 64) and whether every numeric
    /// value was an integer.
    pub distinct: Vec<usize>,
    pub integral: Vec<bool>,
    /// Per column, class names from the file's metadata (the Hub's `ClassLabel`).
    pub label_names: HashMap<String, Vec<String>>,
    /// Estimated number of rows (for reserving memory once).
    pub rows_estimate: usize,
}

impl Header {
    pub fn index(&self, path: &Path, flag: &str, name: &str) -> Result<usize> {
        self.names.iter().position(|n| n == name).ok_or_else(|| {
            format_err(
                path,
                format!(
                    "{flag}: there is no column {name:?}; the columns are {}",
                    self.names.join(", ")
                ),
            )
        })
    }
}

/// The part each read column plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The `i`-th numeric feature.
    Numeric(usize),
    /// The `i`-th categorical feature.
    Categorical(usize),
    /// The classification label (also the group).
    Label,
    /// The regression target.
    Target,
    /// The regression group.
    Group,
    /// The text of a text classifier.
    Text,
    /// The image of an image classifier.
    Image,
}

/// Which columns are read and what each becomes.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// `(column index in the file, role)`, in file order.
    pub columns: Vec<(usize, Role)>,
    pub names: Vec<String>,
    pub numeric: usize,
    pub categorical: usize,
    pub missing: Missing,
    /// Largest number of categories a categorical feature may have.
    pub max_categories: usize,
    /// Image size `(width, height)` and channels, when an image column is read.
    pub image: Option<((u32, u32), usize)>,
    /// One-hot columns expected from the sample of rows (memory is reserved for them).
    pub onehot_estimate: usize,
    /// Whether the label (or group) column holds numbers: its values are then compared as
    /// numbers (`1`, `01` and `1.0` are one class).
    pub numeric_labels: bool,
}

/// A string-to-code dictionary; frozen ones (from training) refuse new values.
#[derive(Debug, Clone, Default)]
pub(crate) struct Dict {
    index: HashMap<String, u32>,
    pub names: Vec<String>,
    frozen: bool,
}

impl Dict {
    pub fn frozen(names: &[String]) -> Self {
        Self {
            index: names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.clone(), i as u32))
                .collect(),
            names: names.to_vec(),
            frozen: true,
        }
    }

    fn code(&mut self, s: &str) -> Option<u32> {
        if let Some(&c) = self.index.get(s) {
            return Some(c);
        }
        if self.frozen {
            return None;
        }
        let c = self.names.len() as u32;
        self.names.push(s.to_string());
        self.index.insert(s.to_string(), c);
        Some(c)
    }

    /// Sorts the names (numerically when every name is a number) and renumbers `codes`.
    pub fn sort(&mut self, codes: &mut [u32]) {
        let mut order: Vec<u32> = (0..self.names.len() as u32).collect();
        let numbers: Option<Vec<f64>> = self.names.iter().map(|n| n.parse().ok()).collect();
        match numbers {
            Some(v) => order.sort_by(|&a, &b| v[a as usize].total_cmp(&v[b as usize])),
            None => order.sort_by(|&a, &b| self.names[a as usize].cmp(&self.names[b as usize])),
        }
        let mut new_code = vec![0u32; order.len()];
        for (new, &old) in order.iter().enumerate() {
            new_code[old as usize] = new as u32;
        }
        for c in codes.iter_mut() {
            if *c != MISSING {
                *c = new_code[*c as usize];
            }
        }
        let names: Vec<String> = order
            .iter()
            .map(|&o| self.names[o as usize].clone())
            .collect();
        *self = Dict {
            index: names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.clone(), i as u32))
                .collect(),
            names,
            frozen: self.frozen,
        };
    }
}

/// The code of a missing categorical value.
pub(crate) const MISSING: u32 = u32::MAX;

/// One value of a row, as a source hands it over.
// Some variants are built only by the Parquet reader.
#[cfg_attr(not(feature = "parquet"), allow(dead_code))]
pub(crate) enum Value<'a> {
    Missing,
    Number(f64),
    Str(&'a str),
    Bytes(&'a [u8]),
}

/// Whether a text field means "no value".
pub(crate) fn is_missing(s: &str) -> bool {
    matches!(
        s,
        "" | "NA" | "N/A" | "NaN" | "nan" | "null" | "NULL" | "None" | "?"
    )
}

/// The raw columns of a read table.
#[derive(Debug, Clone, Default)]
pub(crate) struct Raw {
    /// The row number of each kept row in its source (1-based data rows).
    pub rows: Vec<u64>,
    /// `rows.len() * numeric` values; NaN is missing.
    pub numbers: Vec<f32>,
    /// Per categorical feature, one code per row ([`MISSING`] is missing).
    pub categories: Vec<Vec<u32>>,
    pub category_dicts: Vec<Dict>,
    /// Classification labels, or regression groups.
    pub labels: Vec<u32>,
    pub label_dict: Dict,
    /// Regression targets.
    pub targets: Vec<f32>,
    pub texts: Vec<String>,
    /// Encoded images waiting to be decoded, with their row.
    pub images: Vec<Vec<u8>>,
    /// Rows left out for a missing value.
    pub dropped: usize,
    /// Their row numbers (kept only when reading for prediction).
    pub dropped_rows: Vec<u64>,
}

/// Reads rows into a [`Raw`] following a [`Plan`].
pub(crate) struct Sink<'p> {
    pub plan: &'p Plan,
    pub raw: Raw,
    path: PathBuf,
    /// Whether labels must be present (training and test data; not for prediction).
    pub needs_label: bool,
    row_start_numbers: usize,
    row_dropped: bool,
    pending_text: Option<String>,
    pending_image: Option<Vec<u8>>,
    pending_cats: Vec<u32>,
    pending_label: Option<u32>,
    pending_target: Option<f32>,
    /// Set when a categorical column had more values than one-hot encoding takes.
    pub overflowed: bool,
    /// When set, such columns are collected (`overflow`: file column and first row
    /// past the limit) and reading goes on, so that one error can name them all.
    pub collect_overflow: bool,
    pub overflow: Vec<(usize, u64)>,
}

impl<'p> Sink<'p> {
    pub fn new(plan: &'p Plan, path: &Path, dicts: Option<(&[Dict], &Dict)>, rows: usize) -> Self {
        // Dictionaries handed over come from training: they are frozen, so that a value
        // training never saw is an error rather than a new code.
        let (category_dicts, label_dict) = match dicts {
            Some((c, l)) => (
                c.iter().map(|d| Dict::frozen(&d.names)).collect(),
                Dict::frozen(&l.names),
            ),
            None => (vec![Dict::default(); plan.categorical], Dict::default()),
        };
        let raw = Raw {
            // Room for the one-hot columns too: the matrix is widened in place.
            numbers: Vec::with_capacity(
                rows.saturating_mul(plan.numeric + plan.onehot_estimate)
                    .min(1 << 31),
            ),
            rows: Vec::with_capacity(rows.min(1 << 28)),
            categories: vec![Vec::new(); plan.categorical],
            category_dicts,
            label_dict,
            ..Raw::default()
        };
        Self {
            plan,
            raw,
            path: path.to_path_buf(),
            needs_label: true,
            row_start_numbers: 0,
            row_dropped: false,
            pending_text: None,
            pending_image: None,
            pending_cats: vec![MISSING; plan.categorical],
            pending_label: None,
            pending_target: None,
            overflowed: false,
            collect_overflow: false,
            overflow: Vec::new(),
        }
    }

    /// Points error messages at another file of the same table.
    pub fn set_path(&mut self, path: &Path) {
        self.path = path.to_path_buf();
    }

    pub fn begin_row(&mut self) {
        self.row_start_numbers = self.raw.numbers.len();
        self.row_dropped = false;
        self.pending_label = None;
        self.pending_target = None;
        self.pending_text = None;
        self.pending_image = None;
    }

    fn err(&self, row: u64, col: usize, what: String) -> DataError {
        format_err(
            &self.path,
            format!("row {row}, column {:?}: {what}", self.plan.names[col]),
        )
    }

    fn missing(&mut self, row: u64, col: usize, feature: bool) -> Result<()> {
        match (self.plan.missing, feature) {
            (Missing::Error, _) => Err(self.err(
                row,
                col,
                "missing value; pass --missing drop (leave such rows out) or --missing mean \
                 (fill features with their training mean)"
                    .into(),
            )),
            (Missing::Drop, _) | (Missing::Mean, false) => {
                self.row_dropped = true;
                Ok(())
            }
            (Missing::Mean, true) => Ok(()),
        }
    }

    /// Hands over the value of file column `col` in its role; `row` names it in errors.
    pub fn value(&mut self, row: u64, col: usize, role: Role, v: Value<'_>) -> Result<()> {
        let v = match v {
            Value::Str(s) if is_missing(s.trim()) => Value::Missing,
            Value::Number(x) if x.is_nan() => Value::Missing,
            other => other,
        };
        match role {
            Role::Numeric(_) => {
                let x = self.numeric(row, col, v)?;
                self.raw.numbers.push(x);
            }
            Role::Categorical(i) => {
                let code = match v {
                    Value::Missing => {
                        self.missing(row, col, true)?;
                        MISSING
                    }
                    Value::Number(x) => self.category(row, col, i, &format_number(x))?,
                    Value::Str(s) if s.trim().len() > MAX_NAME_BYTES => {
                        return Err(self.err(
                            row,
                            col,
                            format!(
                                "a category of {} bytes ({}): at most {MAX_NAME_BYTES} bytes are allowed",
                                s.trim().len(),
                                clip(s)
                            ),
                        ));
                    }
                    Value::Str(s) => self.category(row, col, i, s.trim())?,
                    Value::Bytes(_) => {
                        return Err(self.err(
                            row,
                            col,
                            "binary data where a category belongs".into(),
                        ));
                    }
                };
                self.pending_cats[i] = code;
            }
            Role::Label | Role::Group => {
                let name = match v {
                    Value::Missing => {
                        if self.needs_label {
                            self.missing(row, col, false)?;
                        }
                        return Ok(());
                    }
                    Value::Number(x) => format_number(x),
                    // In a column of numbers, `1`, `01` and `1.0` name one class.
                    Value::Str(s) if self.plan.numeric_labels => match s.trim().parse::<f64>() {
                        Ok(x) if x.is_finite() => format_number(x),
                        _ => s.trim().to_string(),
                    },
                    Value::Str(s) => s.trim().to_string(),
                    Value::Bytes(_) => {
                        return Err(self.err(row, col, "binary data where a label belongs".into()));
                    }
                };
                if name.len() > MAX_NAME_BYTES {
                    return Err(self.err(
                        row,
                        col,
                        format!(
                            "a {} of {} bytes ({}): at most {MAX_NAME_BYTES} bytes are allowed",
                            if role == Role::Label {
                                "class label"
                            } else {
                                "group"
                            },
                            name.len(),
                            clip(&name)
                        ),
                    ));
                }
                match self.raw.label_dict.code(&name) {
                    Some(c) => self.pending_label = Some(c),
                    None => {
                        return Err(self.err(
                            row,
                            col,
                            format!(
                                "{:?} is not one of the training data's {}: {}",
                                clip(&name),
                                if role == Role::Label {
                                    "classes"
                                } else {
                                    "groups"
                                },
                                clip(&self.raw.label_dict.names.join(", "))
                            ),
                        ));
                    }
                }
            }
            Role::Target => match v {
                Value::Missing => {
                    if self.needs_label {
                        self.missing(row, col, false)?;
                    }
                }
                Value::Number(x) => {
                    self.pending_target = Some(to_f32(x).map_err(|w| self.err(row, col, w))?)
                }
                Value::Str(s) => match s.trim().parse::<f64>() {
                    Ok(x) => {
                        self.pending_target = Some(to_f32(x).map_err(|w| self.err(row, col, w))?);
                    }
                    _ => {
                        return Err(self.err(
                            row,
                            col,
                            format!("{:?} is not a number (a regression target)", clip(s)),
                        ));
                    }
                },
                Value::Bytes(_) => {
                    return Err(self.err(row, col, "binary data where a number belongs".into()));
                }
            },
            Role::Text => match v {
                Value::Missing => self.pending_text = Some(String::new()),
                Value::Number(x) => self.pending_text = Some(format_number(x)),
                Value::Str(s) => self.pending_text = Some(s.to_string()),
                Value::Bytes(b) => self.pending_text = Some(String::from_utf8_lossy(b).into()),
            },
            Role::Image => match v {
                Value::Bytes(b) => self.pending_image = Some(b.to_vec()),
                Value::Missing => return Err(self.err(row, col, "no image".into())),
                _ => {
                    return Err(self.err(row, col, "not encoded image bytes".into()));
                }
            },
        }
        Ok(())
    }

    /// The value of a numeric feature: NaN for a missing one the policy fills (the row is
    /// marked left out where the policy drops it).
    fn numeric(&mut self, row: u64, col: usize, v: Value<'_>) -> Result<f32> {
        let x = match v {
            Value::Missing => {
                self.missing(row, col, true)?;
                return Ok(f32::NAN);
            }
            Value::Number(x) if x.is_nan() => {
                self.missing(row, col, true)?;
                return Ok(f32::NAN);
            }
            Value::Number(x) => to_f32(x).map_err(|w| self.err(row, col, w))?,
            Value::Str(s) if is_missing(s.trim()) => {
                self.missing(row, col, true)?;
                return Ok(f32::NAN);
            }
            Value::Str(s) => {
                let x = s.trim().parse::<f64>().map_err(|_| {
                    self.err(
                        row,
                        col,
                        format!(
                            "{:?} is not a number, and the column holds numbers (leave it out with --features, or fix the value)",
                            clip(s)
                        ),
                    )
                })?;
                to_f32(x).map_err(|w| self.err(row, col, w))?
            }
            Value::Bytes(_) => {
                return Err(self.err(row, col, "binary data where a number belongs".into()));
            }
        };
        Ok(x)
    }

    /// A numeric feature straight from its bytes; anything but a plain finite number
    /// (a missing marker, a stray string, text that is not UTF-8) takes [`Sink::value`]'s
    /// path, which decides and names it.
    #[inline]
    pub fn number_bytes(&mut self, row: u64, col: usize, bytes: &[u8]) -> Result<f32> {
        let b = bytes.trim_ascii();
        if let Ok((x, n)) = fast_float2::parse_partial::<f32, _>(b)
            && n == b.len()
            && x.is_finite()
            && !b.is_empty()
        {
            return Ok(x);
        }
        let s = std::str::from_utf8(bytes).map_err(|_| {
            format_err(
                &self.path,
                format!(
                    "row {row}, column {:?}: not UTF-8 text",
                    self.plan.names[col]
                ),
            )
        })?;
        self.numeric(row, col, Value::Str(s))
    }

    fn category(&mut self, row: u64, col: usize, i: usize, s: &str) -> Result<u32> {
        let max = self.plan.max_categories;
        if self.collect_overflow && self.overflow.iter().any(|o| o.0 == col) {
            return Ok(MISSING);
        }
        let code = self.raw.category_dicts[i].code(s);
        match code {
            Some(c) if (c as usize) < max => Ok(c),
            Some(_) => {
                self.overflowed = true;
                if self.collect_overflow {
                    self.overflow.push((col, row));
                    return Ok(MISSING);
                }
                Err(self.err(
                    row,
                    col,
                    format!(
                        "more than {max} distinct values: too many to one-hot encode (an identifier \
                         or free text?); leave the column out with --features, or read it as text \
                         with --text"
                    ),
                ))
            }
            None => Err(self.err(
                row,
                col,
                format!(
                    "{:?} is a category the training data does not have (it has {})",
                    clip(s),
                    clip(&self.raw.category_dicts[i].names.join(", "))
                ),
            )),
        }
    }

    /// Keeps the row (unless a value was missing and the policy leaves it out).
    pub fn end_row(&mut self, row: u64) {
        if self.row_dropped {
            self.raw.numbers.truncate(self.row_start_numbers);
            self.raw.dropped += 1;
            if !self.needs_label {
                self.raw.dropped_rows.push(row);
            }
            return;
        }
        self.raw.rows.push(row);
        for (i, c) in self.pending_cats.iter_mut().enumerate() {
            self.raw.categories[i].push(*c);
            *c = MISSING;
        }
        if let Some(l) = self.pending_label.take() {
            self.raw.labels.push(l);
        }
        if let Some(t) = self.pending_target.take() {
            self.raw.targets.push(t);
        }
        if let Some(t) = self.pending_text.take() {
            self.raw.texts.push(t);
        }
        if let Some(b) = self.pending_image.take() {
            self.raw.images.push(b);
        }
    }
}

/// A number of the file as the 32-bit float the model sees: infinities, and finite values
/// beyond `f32::MAX` (`1e300`), are an error saying which.
pub(crate) fn to_f32(x: f64) -> std::result::Result<f32, String> {
    if x.is_infinite() {
        return Err(format!("{x} is not a finite number"));
    }
    let y = x as f32;
    if y.is_infinite() {
        return Err(format!(
            "{x:e} is too large for 32-bit floats (at most {:e} in magnitude)",
            f32::MAX
        ));
    }
    Ok(y)
}

/// Every column name of `path` no longer than [`MAX_NAME_BYTES`]; a longer one is an error
/// naming its position.
pub(crate) fn check_names(path: &Path, names: &[String]) -> Result<()> {
    for (i, n) in names.iter().enumerate() {
        if n.len() > MAX_NAME_BYTES {
            return Err(format_err(
                path,
                format!(
                    "column {} has a name of {} bytes ({}): at most {MAX_NAME_BYTES} bytes are allowed",
                    i + 1,
                    n.len(),
                    clip(n)
                ),
            ));
        }
    }
    Ok(())
}

/// A number as a category or class name: integers without a fraction (`3`, not `3.0`).
pub(crate) fn format_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// The delimiter of a CSV: a tab for `.tsv`, else `;` when the header has `;` and no `,`.
pub(crate) fn delimiter(path: &Path, first_line: &str) -> u8 {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    if ext.as_deref() == Some("tsv") {
        b'\t'
    } else if first_line.contains(';') && !first_line.contains(',') {
        b';'
    } else {
        b','
    }
}

fn csv_reader(path: &Path) -> Result<(csv::Reader<std::fs::File>, u64, u8)> {
    crate::load::regular_file(path)?;
    let size = std::fs::metadata(path).map_err(io_err(path))?.len();
    let first_line = {
        use std::io::BufRead;
        let f = std::fs::File::open(path).map_err(io_err(path))?;
        let mut line = String::new();
        let mut r = std::io::BufReader::new(f).take(1 << 20);
        let _ = r.read_line(&mut line);
        line
    };
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    let delim = delimiter(path, &first_line);
    let reader = csv::ReaderBuilder::new()
        .delimiter(delim)
        .has_headers(true)
        .buffer_capacity(1 << 20)
        .from_reader(file);
    Ok((reader, size, delim))
}

use std::io::Read as _;

fn csv_error(path: &Path, e: csv::Error) -> DataError {
    format_err(path, format!("malformed CSV: {e}"))
}

/// The header of a CSV and the kinds of its columns, from its first 2,000 rows.
pub(crate) fn sniff_csv(path: &Path) -> Result<Header> {
    const SAMPLE: usize = 2000;
    let (mut reader, size, _) = csv_reader(path)?;
    let names: Vec<String> = reader
        .headers()
        .map_err(|e| csv_error(path, e))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    if names.is_empty() || names.iter().all(String::is_empty) {
        return Err(format_err(
            path,
            "empty file: expected a header row of column names",
        ));
    }
    check_names(path, &names)?;
    let mut seen = std::collections::HashSet::new();
    for n in &names {
        if !seen.insert(n) {
            return Err(format_err(
                path,
                format!("the column name {n:?} appears twice"),
            ));
        }
    }
    let k = names.len();
    let mut numbers = vec![0usize; k];
    let mut any = vec![0usize; k];
    let mut integral = vec![true; k];
    let mut distinct: Vec<std::collections::HashSet<String>> = vec![Default::default(); k];
    let mut record = csv::StringRecord::new();
    let mut rows = 0usize;
    let mut bytes = 0u64;
    while rows < SAMPLE
        && reader
            .read_record(&mut record)
            .map_err(|e| csv_error(path, e))?
    {
        rows += 1;
        bytes = record.position().map_or(0, |p| p.byte());
        for (c, field) in record.iter().enumerate() {
            let f = field.trim();
            if is_missing(f) {
                continue;
            }
            any[c] += 1;
            if let Ok(x) = f.parse::<f64>()
                && x.is_finite()
            {
                numbers[c] += 1;
                integral[c] &= x.fract() == 0.0;
            }
            if distinct[c].len() < 64 {
                // `1`, `01` and `1.0` are one value, as the reader will label them.
                distinct[c].insert(match f.parse::<f64>() {
                    Ok(x) if x.is_finite() => format_number(x),
                    _ => f.to_string(),
                });
            }
        }
    }
    if rows == 0 {
        return Err(format_err(path, "no data rows below the header"));
    }
    let per_row = (bytes as f64 / rows as f64).max(1.0);
    Ok(Header {
        // A column of numbers with a few stray strings is numeric, so that a stray value is
        // reported by name rather than turning the column into hundreds of categories.
        kinds: (0..k)
            .map(|c| {
                if any[c] > 0 && numbers[c] * 10 >= any[c] * 9 {
                    Kind::Number
                } else {
                    Kind::Category
                }
            })
            .collect(),
        names,
        distinct: distinct.iter().map(|d| d.len()).collect(),
        integral,
        label_names: HashMap::new(),
        rows_estimate: ((size as f64 / per_row) * 1.02) as usize + 16,
    })
}

/// Streams a CSV through `sink`, numbering rows from `first_row`: in parallel blocks of
/// lines when the file has no quoted fields (a quoted field may hold a line break), else
/// record by record. Any error is reported by the sequential reader, with its row.
pub(crate) fn read_csv(path: &Path, sink: &mut Sink<'_>, first_row: u64) -> Result<u64> {
    let start = (
        sink.raw.rows.len(),
        sink.raw.numbers.len(),
        sink.raw.dropped,
    );
    let before = sink.raw.clone_shape();
    let dicts = (sink.raw.category_dicts.clone(), sink.raw.label_dict.clone());
    if !sink.collect_overflow
        && let Ok(Some(row)) = read_csv_blocks(path, sink, first_row)
    {
        return Ok(row);
    }
    // Undo what the block reader added, then read record by record.
    sink.raw.truncate_to(start, before);
    (sink.raw.category_dicts, sink.raw.label_dict) = dicts;
    read_csv_records(path, sink, first_row)
}

fn read_csv_records(path: &Path, sink: &mut Sink<'_>, first_row: u64) -> Result<u64> {
    let (mut reader, _, _) = csv_reader(path)?;
    let width = reader.headers().map_err(|e| csv_error(path, e))?.len();
    sink.set_path(path);
    let mut record = csv::ByteRecord::new();
    let mut row = first_row;
    let columns = sink.plan.columns.clone();
    while reader
        .read_byte_record(&mut record)
        .map_err(|e| csv_error(path, e))?
    {
        row += 1;
        parse_record(path, sink, &columns, &record, width, row)?;
    }
    Ok(row)
}

fn parse_record(
    path: &Path,
    sink: &mut Sink<'_>,
    columns: &[(usize, Role)],
    record: &csv::ByteRecord,
    width: usize,
    row: u64,
) -> Result<()> {
    if record.len() != width {
        return Err(format_err(
            path,
            format!("row {row} has {} fields, the header {width}", record.len()),
        ));
    }
    sink.begin_row();
    for &(col, role) in columns {
        let bytes = &record[col];
        let s = std::str::from_utf8(bytes).map_err(|_| {
            format_err(
                path,
                format!(
                    "row {row}, column {:?}: not UTF-8 text",
                    sink.plan.names[col]
                ),
            )
        })?;
        sink.value(row, col, role, Value::Str(s))?;
    }
    sink.end_row(row);
    Ok(())
}

/// The block reader: `None` when the file needs the sequential one (quotes, or any
/// problem, which the sequential reader then names).
fn read_csv_blocks(path: &Path, sink: &mut Sink<'_>, first_row: u64) -> Result<Option<u64>> {
    use rayon::prelude::*;
    use std::io::Read;
    const BLOCK: usize = 8 << 20;
    let (mut reader, _, delim) = csv_reader(path)?;
    let width = reader.headers().map_err(|e| csv_error(path, e))?.len();
    let header_end = reader.position().byte() as usize;
    let mut file = std::fs::File::open(path).map_err(io_err(path))?;
    std::io::copy(
        &mut (&mut file).take(header_end as u64),
        &mut std::io::sink(),
    )
    .map_err(io_err(path))?;
    sink.set_path(path);
    let columns = sink.plan.columns.clone();
    let threads = rayon::current_num_threads().max(1);
    let mut carry: Vec<u8> = Vec::new();
    let mut row = first_row;
    let mut eof = false;
    // Block buffers are reused: fresh ones would be zeroed page by page by the kernel.
    let mut pool: Vec<Vec<u8>> = Vec::new();
    while !eof {
        // Up to `threads` blocks, each cut after its last line break.
        let mut blocks: Vec<Vec<u8>> = Vec::with_capacity(threads);
        while blocks.len() < threads && !eof {
            let mut block = pool.pop().unwrap_or_default();
            block.clear();
            block.extend_from_slice(&carry);
            carry.clear();
            let have = block.len();
            block.resize(have + BLOCK, 0);
            let mut filled = have;
            while filled < block.len() {
                let n = file.read(&mut block[filled..]).map_err(io_err(path))?;
                if n == 0 {
                    eof = true;
                    break;
                }
                filled += n;
            }
            block.truncate(filled);
            if !eof {
                match memchr::memrchr(b'\n', &block) {
                    Some(cut) => {
                        carry.extend_from_slice(&block[cut + 1..]);
                        block.truncate(cut + 1);
                    }
                    None => return Ok(None),
                }
            }
            if memchr::memchr(b'"', &block).is_some() {
                return Ok(None);
            }
            if !block.is_empty() {
                blocks.push(block);
            }
        }
        let plan = sink.plan;
        let frozen = sink.raw.category_dicts.iter().all(|d| d.frozen);
        let (cats, labels) = (sink.raw.category_dicts.clone(), sink.raw.label_dict.clone());
        let needs_label = sink.needs_label;
        // Each block parses into its own rows of the matrix, in parallel.
        let nn = plan.numeric;
        let counts: Vec<usize> = blocks.par_iter().map(|b| count_lines(b)).collect();
        let base = sink.raw.numbers.len();
        let total: usize = counts.iter().sum();
        sink.raw.numbers.resize(base + total * nn, 0.0);
        let mut slices = Vec::with_capacity(blocks.len());
        let mut rest = &mut sink.raw.numbers[base..];
        for &c in &counts {
            let (a, b) = rest.split_at_mut(c * nn);
            slices.push(a);
            rest = b;
        }
        let parsed: Vec<Option<(Raw, usize)>> = blocks
            .par_iter()
            .zip(slices.into_par_iter())
            .map(|(block, out)| {
                let dicts = if frozen && labels.frozen {
                    Some((&cats[..], &labels))
                } else {
                    None
                };
                let mut local = Sink::new(plan, path, dicts, 0);
                local.needs_label = needs_label;
                let kept = parse_block(&mut local, &columns, block, delim, width, out).ok()?;
                Some((local.raw, kept))
            })
            .collect();
        pool = blocks;
        // Rows left out leave gaps at the ends of blocks: close them.
        let (mut write, mut read) = (base, base);
        for (part, &count) in parsed.into_iter().zip(&counts) {
            let Some((part, kept)) = part else {
                return Ok(None);
            };
            if write != read {
                sink.raw.numbers.copy_within(read..read + kept * nn, write);
            }
            write += kept * nn;
            read += count * nn;
            let lines = part.rows.len() as u64 + part.dropped as u64;
            if !sink.raw.absorb(part, row, sink.plan.max_categories) {
                return Ok(None);
            }
            row += lines;
        }
        sink.raw.numbers.truncate(write);
    }
    Ok(Some(row))
}

/// Parses a block of whole lines without quotes (so a field is what lies between two
/// delimiters), numbering its rows from 1. Any problem is an error; the caller then lets
/// the record reader name it.
fn parse_block(
    sink: &mut Sink<'_>,
    columns: &[(usize, Role)],
    block: &[u8],
    delim: u8,
    width: usize,
    out: &mut [f32],
) -> std::result::Result<usize, ()> {
    let nn = sink.plan.numeric;
    let mut fields: Vec<&[u8]> = Vec::with_capacity(width);
    let (mut n, mut kept) = (0u64, 0usize);
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', block).chain(std::iter::once(block.len())) {
        let line = &block[start..end];
        start = end + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            // csv skips empty lines too.
            continue;
        }
        n += 1;
        fields.clear();
        let mut from = 0;
        for at in memchr::memchr_iter(delim, line) {
            fields.push(&line[from..at]);
            from = at + 1;
        }
        fields.push(&line[from..]);
        if fields.len() != width {
            return Err(());
        }
        sink.begin_row();
        // The numbers of a row go straight to its place in the table's matrix; a row
        // left out is overwritten by the next one.
        let row = out.get_mut(kept * nn..(kept + 1) * nn).ok_or(())?;
        for &(col, role) in columns {
            match role {
                Role::Numeric(k) => {
                    row[k] = sink.number_bytes(n, col, fields[col]).map_err(|_| ())?
                }
                _ => {
                    let s = std::str::from_utf8(fields[col]).map_err(|_| ())?;
                    sink.value(n, col, role, Value::Str(s)).map_err(|_| ())?;
                }
            }
        }
        let before = sink.raw.rows.len();
        sink.end_row(n);
        kept += sink.raw.rows.len() - before;
    }
    Ok(kept)
}

/// Lines that are not empty (what [`parse_block`] reads as rows).
fn count_lines(block: &[u8]) -> usize {
    let mut start = 0;
    let mut n = 0;
    for end in memchr::memchr_iter(b'\n', block).chain(std::iter::once(block.len())) {
        let line = &block[start..end];
        start = end + 1;
        n += usize::from(!line.is_empty() && line != b"\r");
    }
    n
}

impl Raw {
    /// The lengths of the per-column lists, to undo an absorb.
    fn clone_shape(&self) -> (Vec<usize>, usize, usize, usize, usize, usize, usize) {
        (
            self.categories.iter().map(Vec::len).collect(),
            self.labels.len(),
            self.targets.len(),
            self.texts.len(),
            self.images.len(),
            self.dropped_rows.len(),
            self.label_dict.names.len(),
        )
    }

    fn truncate_to(
        &mut self,
        (rows, numbers, dropped): (usize, usize, usize),
        (cats, labels, targets, texts, images, dropped_rows, _): (
            Vec<usize>,
            usize,
            usize,
            usize,
            usize,
            usize,
            usize,
        ),
    ) {
        self.rows.truncate(rows);
        self.numbers.truncate(numbers);
        self.dropped = dropped;
        for (c, n) in self.categories.iter_mut().zip(cats) {
            c.truncate(n);
        }
        self.labels.truncate(labels);
        self.targets.truncate(targets);
        self.texts.truncate(texts);
        self.images.truncate(images);
        self.dropped_rows.truncate(dropped_rows);
    }

    /// Appends a block's rows (numbered from 1 in the block) after row `offset`,
    /// renumbering its codes into this table's dictionaries; `false` when a column
    /// passes `max_categories` or meets a value a frozen dictionary lacks.
    fn absorb(&mut self, part: Raw, offset: u64, max_categories: usize) -> bool {
        self.rows.extend(part.rows.iter().map(|r| r + offset));
        self.numbers.extend_from_slice(&part.numbers);
        self.dropped += part.dropped;
        self.dropped_rows
            .extend(part.dropped_rows.iter().map(|r| r + offset));
        for ((codes, dict), (local, local_dict)) in self
            .categories
            .iter_mut()
            .zip(self.category_dicts.iter_mut())
            .zip(part.categories.iter().zip(&part.category_dicts))
        {
            let map: Option<Vec<u32>> = local_dict.names.iter().map(|n| dict.code(n)).collect();
            let Some(map) = map else { return false };
            if dict.names.len() > max_categories {
                return false;
            }
            codes.extend(local.iter().map(|&c| {
                if c == MISSING {
                    MISSING
                } else {
                    map[c as usize]
                }
            }));
        }
        let map: Option<Vec<u32>> = part
            .label_dict
            .names
            .iter()
            .map(|n| self.label_dict.code(n))
            .collect();
        let Some(map) = map else { return false };
        self.labels
            .extend(part.labels.iter().map(|&c| map[c as usize]));
        self.targets.extend_from_slice(&part.targets);
        self.texts.extend(part.texts);
        self.images.extend(part.images);
        true
    }
}

/// Chooses what each column becomes: the task (inferred when not given), the label or
/// target, the group, and the features.
pub(crate) struct Choice<'a> {
    pub target: Option<&'a str>,
    pub group: Option<&'a str>,
    pub features: Option<&'a [String]>,
    pub text: Option<&'a str>,
    pub image: Option<&'a str>,
    pub task: Option<TaskKind>,
    pub missing: Missing,
    pub max_categories: usize,
    pub image_shape: Option<((u32, u32), usize)>,
}

/// The plan, the task and a sentence saying how the task was chosen.
pub(crate) fn plan(path: &Path, h: &Header, c: &Choice<'_>) -> Result<(Plan, TaskKind, String)> {
    let target = match c.target {
        Some(t) => Some(h.index(path, "--target", t)?),
        None => None,
    };
    let text = match c.text {
        Some(t) => Some(h.index(path, "--text", t)?),
        None => None,
    };
    let image = match c.image {
        Some(t) => Some(h.index(path, "--image-column", t)?),
        None if text.is_none() && c.features.is_none() => {
            h.kinds.iter().position(|k| *k == Kind::Image)
        }
        None => None,
    };
    let Some(target) = target else {
        return Err(format_err(
            path,
            format!(
                "--target: name the column to predict; the columns are {}",
                h.names.join(", ")
            ),
        ));
    };
    let (task, why) = match c.task {
        Some(TaskKind::Reconstruction) => {
            return Err(DataError::InvalidParameter {
                what: "--task",
                reason: "own data supports classification or regression".into(),
            });
        }
        Some(t) => (t, "as given by --task".to_string()),
        None => match h.kinds[target] {
            Kind::Number if h.integral[target] && h.distinct[target] <= 20 => (
                TaskKind::Classification,
                format!(
                    "the target {:?} holds {} distinct whole numbers (pass --task regression to predict it as a number)",
                    h.names[target], h.distinct[target]
                ),
            ),
            Kind::Number => (
                TaskKind::Regression,
                format!(
                    "the target {:?} holds numbers (pass --task classification to treat its values as classes)",
                    h.names[target]
                ),
            ),
            Kind::Category => (
                TaskKind::Classification,
                format!("the target {:?} holds text labels", h.names[target]),
            ),
            _ => {
                return Err(format_err(
                    path,
                    format!(
                        "--target: column {:?} holds neither numbers nor labels",
                        h.names[target]
                    ),
                ));
            }
        },
    };
    if task == TaskKind::Regression && h.kinds[target] != Kind::Number {
        return Err(format_err(
            path,
            format!(
                "--target: regression needs numbers, and column {:?} holds text",
                h.names[target]
            ),
        ));
    }
    let group = match (task, c.group) {
        (TaskKind::Regression, Some(g)) => Some(h.index(path, "--group", g)?),
        (TaskKind::Regression, None) => {
            let candidates: Vec<&str> = h
                .names
                .iter()
                .zip(&h.kinds)
                .enumerate()
                .filter(|(i, (_, k))| **k == Kind::Category && *i != target)
                .map(|(_, (n, _))| n.as_str())
                .collect();
            return Err(format_err(
                path,
                format!(
                    "--group: regression needs a column whose values are the groups learn2mix mixes{}",
                    if candidates.is_empty() {
                        String::new()
                    } else {
                        format!(" (categorical columns: {})", candidates.join(", "))
                    }
                ),
            ));
        }
        (TaskKind::Classification, Some(g)) if g != h.names[target] => {
            return Err(DataError::InvalidParameter {
                what: "--group",
                reason: format!(
                    "for classification the groups are the classes of the target {:?}; got {g:?}",
                    h.names[target]
                ),
            });
        }
        _ => None,
    };
    let mut columns = Vec::new();
    let mut numeric = 0;
    let mut categorical = 0;
    let used = |i: usize| Some(i) == group || i == target || Some(i) == text || Some(i) == image;
    if text.is_none() && image.is_none() {
        let chosen: Vec<usize> = match c.features {
            Some(list) => list
                .iter()
                .map(|f| h.index(path, "--features", f.trim()))
                .collect::<Result<_>>()?,
            None => (0..h.names.len())
                .filter(|&i| i != target && matches!(h.kinds[i], Kind::Number | Kind::Category))
                .collect(),
        };
        for &i in &chosen {
            if i == target {
                return Err(DataError::InvalidParameter {
                    what: "--features",
                    reason: format!("the target {:?} cannot also be a feature", h.names[i]),
                });
            }
        }
        if chosen.is_empty() {
            let unread: Vec<&str> = (0..h.names.len())
                .filter(|&i| i != target && h.kinds[i] == Kind::Other)
                .map(|i| h.names[i].as_str())
                .collect();
            return Err(format_err(
                path,
                if unread.is_empty() {
                    "no feature columns: the table has only its target".to_string()
                } else {
                    format!(
                        "no feature columns: besides the target, the table has only columns of a type l2m does not read ({})",
                        unread.join(", ")
                    )
                },
            ));
        }
        for i in 0..h.names.len() {
            if !chosen.contains(&i) {
                continue;
            }
            let role = match h.kinds[i] {
                Kind::Number => {
                    numeric += 1;
                    Role::Numeric(numeric - 1)
                }
                Kind::Category => {
                    categorical += 1;
                    Role::Categorical(categorical - 1)
                }
                _ => {
                    return Err(format_err(
                        path,
                        format!(
                            "--features: column {:?} holds neither numbers nor text",
                            h.names[i]
                        ),
                    ));
                }
            };
            columns.push((i, role));
        }
    }
    for i in 0..h.names.len() {
        if used(i) {
            let role = if i == target {
                if task == TaskKind::Classification {
                    Role::Label
                } else {
                    Role::Target
                }
            } else if Some(i) == group {
                Role::Group
            } else if Some(i) == text {
                Role::Text
            } else {
                Role::Image
            };
            columns.push((i, role));
        }
    }
    columns.sort_by_key(|&(i, _)| i);
    let onehot_estimate = columns
        .iter()
        .filter(|c| matches!(c.1, Role::Categorical(_)))
        .map(|c| h.distinct[c.0])
        .sum();
    let label_column = if task == TaskKind::Classification {
        Some(target)
    } else {
        group
    };
    let numeric_labels = label_column.is_some_and(|l| h.kinds[l] == Kind::Number);
    Ok((
        Plan {
            columns,
            names: h.names.clone(),
            numeric,
            categorical,
            missing: c.missing,
            max_categories: c.max_categories,
            image: image.map(|_| c.image_shape.unwrap_or(((32, 32), 3))),
            onehot_estimate,
            numeric_labels,
        },
        task,
        why,
    ))
}
