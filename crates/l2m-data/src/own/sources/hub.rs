//! A Hugging Face Hub dataset, `hf://datasets/OWNER/NAME`: its Parquet files, downloaded
//! (or found in the local cache) split by split.

use super::{Source, SourceKind, Tables};
use crate::Result;
use crate::own::OwnData;

/// The Hub.
pub struct Hub;

impl SourceKind {
    /// A Hugging Face Hub dataset.
    pub const HUB: SourceKind = SourceKind("hub");
}

impl Source for Hub {
    fn name(&self) -> &'static str {
        "hub"
    }

    fn about(&self) -> &'static str {
        "a Hugging Face Hub dataset, hf://datasets/OWNER/NAME"
    }

    fn claims(&self, data: &str) -> bool {
        data.starts_with("hf://")
    }

    #[cfg(not(feature = "hub"))]
    fn tables(&self, spec: &OwnData) -> Result<Tables> {
        Err(crate::DataError::InvalidParameter {
            what: "--data",
            reason: format!(
                "{} is a Hugging Face dataset, and this build of l2m-data has no `hub` feature",
                spec.path
            ),
        })
    }

    #[cfg(feature = "hub")]
    fn tables(&self, spec: &OwnData) -> Result<Tables> {
        use crate::load::hub::{HubAccess, HubDataset, split_files};
        let ds = HubDataset::parse(&spec.path)?;
        let access = HubAccess::from_env();
        let split = spec.split.as_deref().unwrap_or("train");
        let train = split_files(&ds, split, &access)?;
        let test = match &spec.test_split {
            Some(s) => Some(split_files(&ds, s, &access)?),
            None => None,
        };
        Ok(Tables {
            format: super::TableFormat::Parquet,
            train,
            test,
            display: std::path::PathBuf::from(&spec.path),
        })
    }
}
