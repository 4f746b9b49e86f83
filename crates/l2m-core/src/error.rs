//! Typed errors of the mixing mathematics.

/// Everything that can be wrong with the inputs of the mixing mathematics.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// The mixing rate must lie in (0, 1].
    #[error("mixing rate gamma must be in (0, 1], got {0}")]
    InvalidGamma(f64),
    /// A batch of zero samples.
    #[error("batch size must be at least 1, got 0")]
    ZeroBatchSize,
    /// A mixture or dataset with no classes.
    #[error("at least one class is required, got none")]
    NoClasses,
    /// A class-wise loss that is negative, NaN or infinite.
    #[error("class {class} has loss {value}; class-wise losses must be finite and non-negative")]
    InvalidLoss {
        /// Index of the class.
        class: usize,
        /// The offending value.
        value: f64,
    },
    /// Mixing weights that are not a point of the probability simplex.
    #[error("mixing weights must be finite, non-negative and sum to 1: {reason}")]
    NotOnSimplex {
        /// What is wrong.
        reason: String,
    },
    /// A class with no samples where samples are required.
    #[error("class {class} has no samples")]
    EmptyClass {
        /// Index of the class.
        class: usize,
    },
    /// Two per-class vectors of different lengths.
    #[error("expected {expected} classes, got {got}")]
    ClassCountMismatch {
        /// Number of classes expected.
        expected: usize,
        /// Number of classes given.
        got: usize,
    },
    /// The minimum per class cannot be honoured within one batch.
    #[error(
        "a minimum of {min_per_class} samples for each of {classes} non-empty classes exceeds the batch size {batch_size}"
    )]
    MinimumExceedsBatch {
        /// Requested minimum per class.
        min_per_class: usize,
        /// Non-empty classes.
        classes: usize,
        /// Batch size.
        batch_size: usize,
    },
    /// Saved sampler state that cannot be a sampler's (for example from a damaged
    /// checkpoint).
    #[error("invalid sampler state: {0}")]
    InvalidState(String),
    /// A class label outside `0..classes`.
    #[error("class index {class} is out of range for {classes} classes")]
    ClassOutOfRange {
        /// The label.
        class: usize,
        /// Number of classes.
        classes: usize,
    },
    /// A parameter of a mixing rule or schedule outside its range.
    #[error("{name} must be {expected}, got {value}")]
    InvalidParameter {
        /// The parameter (`eta`, `temperature`, `floor`, `ema`, `update_every`, ...).
        name: &'static str,
        /// The value given.
        value: f64,
        /// What is expected, e.g. "in (0, 1]".
        expected: &'static str,
    },
    /// A mixing rule's parameter that has no default and was not given.
    #[error("rule {rule} needs {name}")]
    MissingParameter {
        /// The rule.
        rule: &'static str,
        /// The parameter.
        name: &'static str,
    },
    /// A rule name that is not registered ([`crate::rules::RULES`]).
    #[error("unknown rule {name:?}: expected one of {known}")]
    UnknownRule {
        /// The name given.
        name: String,
        /// The registered names.
        known: String,
    },
    /// Testbed constants that do not define a strongly convex problem.
    #[error("invalid testbed: {0}")]
    InvalidTestbed(String),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, CoreError>;
