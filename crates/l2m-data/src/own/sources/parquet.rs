//! A Parquet file, or a folder of Parquet files with the same columns.

use std::path::{Path, PathBuf};

use super::{Source, SourceKind, TableFormat, Tables};
use crate::own::OwnData;
use crate::{DataError, Result};

/// Parquet files.
pub struct Parquet;

impl SourceKind {
    /// One Parquet file, or a folder of them.
    pub const PARQUET: SourceKind = SourceKind("parquet");
}

impl Source for Parquet {
    fn name(&self) -> &'static str {
        "parquet"
    }

    fn about(&self) -> &'static str {
        "a Parquet file (.parquet, .pq) or a folder of them"
    }

    fn claims(&self, data: &str) -> bool {
        let lower = data.to_ascii_lowercase();
        let path = Path::new(data);
        lower.ends_with(".parquet")
            || lower.ends_with(".pq")
            || (path.is_dir() && parquet_files(path).is_ok_and(|f| !f.is_empty()))
    }

    fn tables(&self, spec: &OwnData) -> Result<Tables> {
        let path = PathBuf::from(&spec.path);
        let train = parquet_files(&path)?;
        if train.is_empty() {
            return Err(DataError::Missing {
                what: "Parquet files".into(),
                tried: vec![path],
            });
        }
        let test = match &spec.test {
            Some(t) => Some(parquet_files(t)?),
            None => None,
        };
        Ok(Tables {
            format: TableFormat::Parquet,
            train,
            test,
            display: path,
        })
    }
}

/// The Parquet files of a folder (sorted), or the file itself.
pub(crate) fn parquet_files(path: &Path) -> Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(crate::load::io_err(path))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
        })
        .collect();
    files.sort();
    Ok(files)
}
