//! Where the user's data comes from: an open family of sources.
//!
//! A source turns a `--data` argument (a path or an address) into classes: a table source
//! names the table files to read ([`Tables`]), and the table reader does the rest (the
//! header, the plan, preprocessing, the split); any other source loads the data itself.
//! The engine keeps no list of sources: configurations name a source by its registered
//! [`Source::name`], and `--data` is claimed by the first source in [`SOURCES`] that
//! recognises it.
//!
//! A new source is one file here plus one line in [`SOURCES`]:
//!
//! ```ignore
//! pub struct JsonLines;
//! impl l2m_data::own::Source for JsonLines {
//!     fn name(&self) -> &'static str { "jsonl" }
//!     fn about(&self) -> &'static str { "a JSON Lines file" }
//!     fn claims(&self, data: &str) -> bool { data.ends_with(".jsonl") }
//!     fn load(&self, spec: &OwnData, seed: u64) -> Result<OwnLoaded> { /* ... */ }
//!     fn inspect(&self, spec: &OwnData) -> Result<Inspection> { /* ... */ }
//! }
//! ```

mod csv;
mod hub;
mod image_folder;
mod parquet;

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Inspection, OwnData, OwnLoaded};
use crate::{DataError, Result};

/// The sources, in the order they are asked to claim a `--data` argument: the first that
/// claims it reads it (so the catch-all, CSV, comes last).
pub const SOURCES: &[&dyn Source] = &[
    &hub::Hub,
    &parquet::Parquet,
    &image_folder::ImageFolder,
    &csv::Csv,
];

/// A kind of data the user can bring.
pub trait Source: Sync {
    /// The name configurations use (`kind = "csv"` in a `[dataset]` table).
    fn name(&self) -> &'static str;

    /// One line for `l2m list` and messages.
    fn about(&self) -> &'static str;

    /// Whether this source reads `data` (a `--data` argument).
    fn claims(&self, data: &str) -> bool;

    /// A table source's files; other sources keep the default (not a table).
    fn tables(&self, spec: &OwnData) -> Result<Tables> {
        Err(DataError::InvalidParameter {
            what: "--data",
            reason: format!("{} is {}, not a table", spec.path, self.about()),
        })
    }

    /// A look at the data (header and first rows) before loading it.
    fn inspect(&self, spec: &OwnData) -> Result<Inspection> {
        super::inspect_tables(&self.tables(spec)?, spec)
    }

    /// The data, read, split and preprocessed.
    fn load(&self, spec: &OwnData, seed: u64) -> Result<OwnLoaded> {
        super::load_tables(self.kind(), &self.tables(spec)?, spec, seed)
    }

    /// This source's kind (its registered name).
    fn kind(&self) -> SourceKind {
        SourceKind(self.name())
    }
}

/// How a table file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    /// Comma- (or tab-) separated text.
    Csv,
    /// Apache Parquet.
    Parquet,
}

/// The table files of a source's training and test data.
#[derive(Debug, Clone)]
pub struct Tables {
    /// How to read them.
    pub format: TableFormat,
    /// The training table (one or more files with the same columns).
    pub train: Vec<PathBuf>,
    /// A separate test table, if given.
    pub test: Option<Vec<PathBuf>>,
    /// The name messages use for the data.
    pub display: PathBuf,
}

/// A registered source, by name: what configurations and preprocessing records store.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceKind(&'static str);

impl SourceKind {
    /// The registered source called `name`.
    pub fn named(name: &str) -> Option<Self> {
        SOURCES
            .iter()
            .find(|s| s.name() == name)
            .map(|s| SourceKind(s.name()))
    }

    /// The source that claims a `--data` argument (the first in [`SOURCES`]; CSV when
    /// no other does).
    pub fn infer(data: &str) -> Self {
        SOURCES
            .iter()
            .find(|s| s.claims(data))
            .map_or(SourceKind(csv::Csv.name()), |s| s.kind())
    }

    /// The name used in configuration files.
    pub fn name(self) -> &'static str {
        self.0
    }

    /// The source itself.
    pub fn source(self) -> &'static dyn Source {
        // A SourceKind is only made from a registered name.
        SOURCES
            .iter()
            .copied()
            .find(|s| s.name() == self.0)
            .unwrap_or(&csv::Csv)
    }

    /// Every registered source's name, in claiming order.
    pub fn names() -> Vec<&'static str> {
        SOURCES.iter().map(|s| s.name()).collect()
    }
}

impl fmt::Debug for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SourceKind({})", self.0)
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Serialize for SourceKind {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for SourceKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        SourceKind::named(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown data source {name:?}; expected one of {}",
                SourceKind::names().join(", ")
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        let names = SourceKind::names();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "{names:?}");
        for n in names {
            let k = SourceKind::named(n).expect("registered");
            assert_eq!(k.source().name(), n);
            let json = serde_json::to_string(&k).expect("serialises");
            assert_eq!(
                serde_json::from_str::<SourceKind>(&json).expect("parses"),
                k
            );
        }
        let e = serde_json::from_str::<SourceKind>("\"xlsx\"").expect_err("unknown");
        assert!(
            e.to_string().contains("expected one of hub, parquet"),
            "{e}"
        );
    }

    #[test]
    fn the_catch_all_is_last() {
        // Every argument is claimed by someone, and CSV only when no other source does.
        assert!(SOURCES.last().is_some_and(|s| s.claims("anything")));
        assert_eq!(SourceKind::infer("hf://datasets/a/b").name(), "hub");
        assert_eq!(SourceKind::infer("t.PQ").name(), "parquet");
        assert_eq!(SourceKind::infer("pics.tgz").name(), "image-folder");
        assert_eq!(SourceKind::infer("t.tsv").name(), "csv");
    }
}
