//! A CSV (or `.tsv`) file: the catch-all source.

use std::path::PathBuf;

use super::{Source, SourceKind, TableFormat, Tables};
use crate::Result;
use crate::own::OwnData;

/// A CSV file, with an optional separate test file.
pub struct Csv;

impl SourceKind {
    /// A CSV (or `.tsv`) file.
    pub const CSV: SourceKind = SourceKind("csv");
}

impl Source for Csv {
    fn name(&self) -> &'static str {
        "csv"
    }

    fn about(&self) -> &'static str {
        "a CSV or TSV file (any path no other source claims)"
    }

    fn claims(&self, _data: &str) -> bool {
        true
    }

    fn tables(&self, spec: &OwnData) -> Result<Tables> {
        Ok(Tables {
            format: TableFormat::Csv,
            train: vec![PathBuf::from(&spec.path)],
            test: spec.test.clone().map(|t| vec![t]),
            display: PathBuf::from(&spec.path),
        })
    }
}
