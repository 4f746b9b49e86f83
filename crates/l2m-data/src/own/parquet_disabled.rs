//! Stand-in for the Parquet reader when l2m-data is built without its `parquet` feature:
//! a Parquet source is then a clear error naming the file and the feature.

use std::path::PathBuf;

use super::table::{Header, Sink};
use crate::{DataError, Result};

fn disabled(paths: &[PathBuf]) -> DataError {
    DataError::InvalidParameter {
        what: "--data",
        reason: format!(
            "{} is Parquet, and this build of l2m-data has no `parquet` feature \
             (build with default features to read it)",
            paths
                .first()
                .map_or_else(|| "the source".to_string(), |p| p.display().to_string())
        ),
    }
}

pub(crate) fn sniff(paths: &[PathBuf]) -> Result<Header> {
    Err(disabled(paths))
}

pub(crate) fn read(paths: &[PathBuf], _sink: &mut Sink<'_>) -> Result<()> {
    Err(disabled(paths))
}
