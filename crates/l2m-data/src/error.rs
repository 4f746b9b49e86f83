//! Typed errors of dataset construction, loading and imbalancing.

use l2m_core::CoreError;

/// Everything that can go wrong building or transforming a dataset.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// Buffers whose lengths do not agree.
    #[error("{what}: expected {expected} values, got {got}")]
    Shape {
        /// Which buffer.
        what: &'static str,
        /// Expected length.
        expected: usize,
        /// Actual length.
        got: usize,
    },
    /// A sample whose class label is not one of the dataset's classes.
    #[error("sample {index} has class {class}, but the dataset has {classes} classes")]
    ClassOutOfRange {
        /// Sample index.
        index: usize,
        /// Its label.
        class: u32,
        /// Number of classes.
        classes: usize,
    },
    /// A class left with no samples where every class needs some.
    #[error("class {class:?} has no samples{context}")]
    EmptyClass {
        /// Class name.
        class: String,
        /// Where it happened (for example " after imbalancing (keep 0.001 of 100)").
        context: String,
    },
    /// An imbalance factor outside (0, 1].
    #[error("imbalance factor for class {class} must be in (0, 1], got {value}")]
    InvalidFactor {
        /// Class index.
        class: usize,
        /// The factor.
        value: f64,
    },
    /// A feature or target that is NaN or infinite.
    #[error("{what} of sample {index} is {value}; values must be finite")]
    NonFinite {
        /// Which value.
        what: &'static str,
        /// Sample index.
        index: usize,
        /// The value.
        value: f32,
    },
    /// Invalid generator or loader parameters.
    #[error("invalid {what}: {reason}")]
    InvalidParameter {
        /// Which parameter.
        what: &'static str,
        /// What is wrong and what is expected.
        reason: String,
    },
    /// A file or folder that could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file whose content is not what its format requires.
    #[error("{}: {reason}", path.display())]
    Format {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong, and what was expected.
        reason: String,
    },
    /// A required file or folder that is not there.
    #[error("{what} not found: looked for {}", tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    Missing {
        /// What was looked for.
        what: String,
        /// The paths tried.
        tried: Vec<std::path::PathBuf>,
    },
    /// A class folder whose name is not one of the dataset's classes.
    #[error("{}: unknown class folder {class:?}; expected one of {expected}", path.display())]
    UnknownClass {
        /// The folder.
        path: std::path::PathBuf,
        /// Its name.
        class: String,
        /// The known classes.
        expected: String,
    },
    /// An error of the mixing mathematics.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// A Hugging Face Hub dataset that could not be resolved to local files: it does not exist,
    /// the Hub cannot be reached, it lacks the split, or offline mode finds it missing from the
    /// cache.
    #[error("Hugging Face Hub dataset {repo}: {reason}")]
    Hub {
        /// The repository, `OWNER/NAME`.
        repo: String,
        /// What went wrong and what was expected.
        reason: String,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, DataError>;
