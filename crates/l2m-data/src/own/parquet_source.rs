//! Parquet files through the Arrow ecosystem's `parquet` crate.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float16Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type,
    UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::table::{Header, Kind, Sink, Value, format_number, is_missing};
use crate::Result;
use crate::load::{format_err, io_err};

thread_local! {
    /// The file this thread's Parquet reading is in (for an error after a panic).
    static READING: std::cell::RefCell<Option<PathBuf>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` over `paths`, a panic inside the `parquet` crate becoming an error naming the
/// file being read.
fn guarded<T>(paths: &[PathBuf], f: impl FnOnce() -> Result<T>) -> Result<T> {
    READING.with(|r| *r.borrow_mut() = paths.first().cloned());
    crate::load::catch_panics(
        || READING.with(|r| r.borrow().clone()).unwrap_or_default(),
        "Parquet",
        f,
    )
}

fn open(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<std::fs::File>> {
    READING.with(|r| *r.borrow_mut() = Some(path.to_path_buf()));
    crate::load::regular_file(path)?;
    super::parquet_footer::check(path)?;
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| format_err(path, format!("not a readable Parquet file: {e}")))
}

fn kind(t: &DataType) -> Kind {
    match t {
        DataType::Boolean
        | DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64
        | DataType::Float16
        | DataType::Float32
        | DataType::Float64 => Kind::Number,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Kind::Category,
        DataType::Dictionary(_, v) if kind(v) == Kind::Category => Kind::Category,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => Kind::Image,
        DataType::Struct(fields) if fields.iter().any(|f| f.name() == "bytes") => Kind::Image,
        _ => Kind::Other,
    }
}

/// The value at row `i` of `a`.
fn value(a: &dyn Array, i: usize) -> Value<'_> {
    if a.is_null(i) {
        return Value::Missing;
    }
    macro_rules! num {
        ($t:ty) => {
            Value::Number(a.as_primitive::<$t>().value(i) as f64)
        };
    }
    macro_rules! dict {
        ($k:ty) => {{
            let d = a.as_dictionary::<$k>();
            let key = d.keys().value(i) as usize;
            value(d.values().as_ref(), key)
        }};
    }
    match a.data_type() {
        DataType::Boolean => Value::Number(f64::from(u8::from(a.as_boolean().value(i)))),
        DataType::Int8 => num!(Int8Type),
        DataType::Int16 => num!(Int16Type),
        DataType::Int32 => num!(Int32Type),
        DataType::Int64 => num!(Int64Type),
        DataType::UInt8 => num!(UInt8Type),
        DataType::UInt16 => num!(UInt16Type),
        DataType::UInt32 => num!(UInt32Type),
        DataType::UInt64 => num!(UInt64Type),
        DataType::Float16 => Value::Number(a.as_primitive::<Float16Type>().value(i).to_f64()),
        DataType::Float32 => num!(Float32Type),
        DataType::Float64 => num!(Float64Type),
        DataType::Utf8 => Value::Str(a.as_string::<i32>().value(i)),
        DataType::LargeUtf8 => Value::Str(a.as_string::<i64>().value(i)),
        DataType::Utf8View => Value::Str(a.as_string_view().value(i)),
        DataType::Binary => Value::Bytes(a.as_binary::<i32>().value(i)),
        DataType::LargeBinary => Value::Bytes(a.as_binary::<i64>().value(i)),
        DataType::BinaryView => Value::Bytes(a.as_binary_view().value(i)),
        DataType::Struct(_) => {
            let s = a.as_struct();
            match s.column_by_name("bytes") {
                Some(b) => value(b.as_ref(), i),
                None => Value::Missing,
            }
        }
        DataType::Dictionary(k, _) => match k.as_ref() {
            DataType::Int8 => dict!(Int8Type),
            DataType::Int16 => dict!(Int16Type),
            DataType::Int32 => dict!(Int32Type),
            DataType::Int64 => dict!(Int64Type),
            DataType::UInt8 => dict!(UInt8Type),
            DataType::UInt16 => dict!(UInt16Type),
            DataType::UInt32 => dict!(UInt32Type),
            DataType::UInt64 => dict!(UInt64Type),
            _ => Value::Missing,
        },
        _ => Value::Missing,
    }
}

/// Class names the Hub's `datasets` library stores in the file's metadata (`ClassLabel`
/// features), per column.
fn label_names(
    builder: &ParquetRecordBatchReaderBuilder<std::fs::File>,
) -> HashMap<String, Vec<String>> {
    let mut out = HashMap::new();
    let Some(kv) = builder.metadata().file_metadata().key_value_metadata() else {
        return out;
    };
    for entry in kv {
        if entry.key != "huggingface" {
            continue;
        }
        let Some(v) = &entry.value else { continue };
        let Ok(json) = serde_json::from_str::<serde_json::Value>(v) else {
            continue;
        };
        let Some(features) = json.pointer("/info/features").and_then(|f| f.as_object()) else {
            continue;
        };
        for (name, f) in features {
            if let Some(names) = f.get("names").and_then(|n| n.as_array()) {
                let names: Vec<String> = names
                    .iter()
                    .map(|n| n.as_str().map_or_else(|| n.to_string(), str::to_string))
                    .collect();
                out.insert(name.clone(), names);
            }
        }
    }
    out
}

/// The header of a set of Parquet files (all must share the first one's columns), with
/// the task-inference facts from the first 2,000 rows.
pub(crate) fn sniff(paths: &[PathBuf]) -> Result<Header> {
    guarded(paths, || sniff_files(paths))
}

fn sniff_files(paths: &[PathBuf]) -> Result<Header> {
    let first = paths
        .first()
        .ok_or_else(|| crate::DataError::InvalidParameter {
            what: "--data",
            reason: "no Parquet file to read".into(),
        })?;
    let builder = open(first)?;
    let schema = builder.schema().clone();
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    super::table::check_names(first, &names)?;
    let kinds: Vec<Kind> = schema
        .fields()
        .iter()
        .map(|f| kind(f.data_type()))
        .collect();
    let labels = label_names(&builder);
    let mut rows = 0usize;
    for p in paths {
        let b = if p == first { None } else { Some(open(p)?) };
        let b = b.as_ref().unwrap_or(&builder);
        let other: Vec<String> = b
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        if other != names {
            return Err(format_err(
                p,
                format!(
                    "its columns ({}) differ from those of {} ({})",
                    other.join(", "),
                    first.display(),
                    names.join(", ")
                ),
            ));
        }
        rows += usize::try_from(b.metadata().file_metadata().num_rows()).unwrap_or(0);
    }
    let k = names.len();
    let mut integral = vec![true; k];
    let mut distinct: Vec<std::collections::HashSet<String>> = vec![Default::default(); k];
    // Only numeric and text columns are sampled (never images).
    let sampled: Vec<usize> = (0..k)
        .filter(|&i| matches!(kinds[i], Kind::Number | Kind::Category))
        .collect();
    let mask = ProjectionMask::roots(builder.parquet_schema(), sampled.iter().copied());
    let mut reader = builder
        .with_projection(mask)
        .with_batch_size(2000)
        .build()
        .map_err(|e| format_err(first, format!("not a readable Parquet file: {e}")))?;
    if let Some(batch) = reader.next() {
        let batch = batch.map_err(|e| format_err(first, format!("corrupt Parquet data: {e}")))?;
        for (pos, &c) in sampled.iter().enumerate() {
            let col: &ArrayRef = batch.column(pos);
            for i in 0..batch.num_rows() {
                let s = match value(col.as_ref(), i) {
                    Value::Number(x) => {
                        integral[c] &= x.fract() == 0.0;
                        format_number(x)
                    }
                    Value::Str(s) if !is_missing(s.trim()) => s.trim().to_string(),
                    _ => continue,
                };
                if distinct[c].len() < 64 {
                    distinct[c].insert(s);
                }
            }
        }
    }
    Ok(Header {
        names,
        kinds,
        distinct: distinct.iter().map(|d| d.len()).collect(),
        integral,
        label_names: labels,
        rows_estimate: rows,
    })
}

/// Streams Parquet files through `sink`, numbering rows across the files from 1.
pub(crate) fn read(paths: &[PathBuf], sink: &mut Sink<'_>) -> Result<()> {
    guarded(paths, || read_files(paths, sink))
}

fn read_files(paths: &[PathBuf], sink: &mut Sink<'_>) -> Result<()> {
    let columns = sink.plan.columns.clone();
    let mut row = 0u64;
    for path in paths {
        sink.set_path(path);
        let builder = open(path)?;
        // A column can play two parts (a regression group is also a feature).
        let mut read: Vec<usize> = columns.iter().map(|c| c.0).collect();
        read.dedup();
        let mask = ProjectionMask::roots(builder.parquet_schema(), read.iter().copied());
        let reader = builder
            .with_projection(mask)
            .with_batch_size(8192)
            .build()
            .map_err(|e| format_err(path, format!("not a readable Parquet file: {e}")))?;
        for batch in reader {
            let batch =
                batch.map_err(|e| format_err(path, format!("corrupt Parquet data: {e}")))?;
            // The projection keeps the file's column order, as `columns` does.
            for i in 0..batch.num_rows() {
                row += 1;
                sink.begin_row();
                for &(col, role) in &columns {
                    let pos = read.binary_search(&col).unwrap_or(0);
                    sink.value(row, col, role, value(batch.column(pos).as_ref(), i))?;
                }
                sink.end_row(row);
            }
        }
    }
    Ok(())
}
