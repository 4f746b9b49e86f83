//! Typed errors of training runs.

use std::path::PathBuf;

/// Everything that can stop a training run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// A loss became NaN or infinite.
    #[error("training diverged: {what} is {value} at epoch {epoch} of strategy {strategy} (seed {seed}); records up to epoch {} are kept", epoch - 1)]
    Diverged {
        /// Strategy name.
        strategy: String,
        /// Seed.
        seed: u64,
        /// Epoch (1-based) at which it happened.
        epoch: usize,
        /// Which quantity.
        what: String,
        /// Its value.
        value: f64,
    },
    /// The observer asked to stop (for example on Ctrl-C); the run can be resumed.
    #[error(
        "stopped after epoch {epoch} of strategy {strategy} (seed {seed}); run the same command again to resume"
    )]
    Interrupted {
        /// Strategy name.
        strategy: String,
        /// Seed.
        seed: u64,
        /// The last epoch completed and checkpointed.
        epoch: usize,
    },
    /// A run directory another process is using.
    #[error(
        "{path} is in use by another l2m process (PID {holder}); wait for it or choose another --out"
    )]
    Locked {
        /// The run directory.
        path: PathBuf,
        /// What the holder wrote into the marker: its PID.
        holder: String,
    },
    /// A directory that `--fresh` would remove but that `l2m` did not create.
    #[error(
        "{path} is not a run directory of l2m (no .l2m-run marker, and it holds files l2m does not write); not removing it"
    )]
    NotARunDir {
        /// The directory.
        path: PathBuf,
    },
    /// A directory given as a run directory that exists, is not empty and is not one of
    /// l2m's: never written into, so never mistaken for l2m's later.
    #[error(
        "{path} already holds files l2m did not write (such as {entry:?}) and is not a run directory of l2m; nothing was written there: choose a new or empty --out"
    )]
    ForeignDir {
        /// The directory.
        path: PathBuf,
        /// One of the entries found in it.
        entry: String,
    },
    /// A trained model whose file is not the one its run wrote.
    #[error(
        "{path} is not the model this run trained (SHA-256 {found}, the run recorded {expected}): it was replaced or damaged; retrain it (--fresh) or restore the file"
    )]
    ModelMismatch {
        /// The model file.
        path: PathBuf,
        /// The checksum in `run.json`.
        expected: String,
        /// The file's checksum.
        found: String,
    },
    /// A trained model that cannot be read.
    #[error("{path}: cannot load the trained model: {reason}")]
    TrainedModel {
        /// The model file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A run folder's checkpoint (or the records beside it) that cannot be resumed from.
    #[error("cannot resume from {path}: {reason}")]
    Resume {
        /// The file or folder.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A checkpoint that could not be written (a full disk, say).
    #[error("{path}: cannot write the checkpoint: {reason}")]
    CheckpointWrite {
        /// The file being written.
        path: PathBuf,
        /// The cause.
        reason: String,
    },
    /// The transport of a data-parallel group failed (MPI, NCCL).
    #[error("rank {rank}: the process group's transport failed: {what}")]
    Transport {
        /// The rank that saw the failure.
        rank: usize,
        /// What failed.
        what: String,
    },
    /// A rank whose mixture or parameters no longer have rank 0's bits.
    #[error(
        "rank {rank} of {ranks} no longer agrees with rank 0 after epoch {epoch} (mixture and parameter checksum {state:?} against {lead:?})"
    )]
    RanksDisagree {
        /// The rank.
        rank: usize,
        /// The group's size.
        ranks: usize,
        /// The epoch checked.
        epoch: usize,
        /// This rank's state.
        state: Vec<f64>,
        /// Rank 0's state.
        lead: Vec<f64>,
    },
    /// The parameter map's lock was poisoned by a thread that panicked holding it.
    #[error("the parameter map's lock is poisoned (a thread panicked while holding it)")]
    Poisoned,
    /// A checkpoint that cannot be resumed from.
    #[error("cannot resume: {0}")]
    Checkpoint(String),
    /// A strategy name that is not registered.
    #[error("unknown strategy {name:?}: expected one of {known}")]
    UnknownStrategy {
        /// The name given.
        name: String,
        /// The registered names.
        known: String,
    },
    /// A strategy's options are invalid.
    #[error("strategy {strategy}: {message}")]
    Strategy {
        /// The strategy.
        strategy: String,
        /// What is wrong, naming the option.
        message: String,
    },
    /// A baseline (SMOTE, focal loss) rejected its input.
    #[error(transparent)]
    Baseline(#[from] l2m_baselines::BaselineError),
    /// A configuration value that cannot work.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Reading or writing a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Serialising records.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// Writing CSV records.
    #[error("{path}: {source}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: csv::Error,
    },
    /// The mixing mathematics rejected a value.
    #[error(transparent)]
    Core(#[from] l2m_core::CoreError),
    /// A dataset could not be built.
    #[error(transparent)]
    Data(#[from] l2m_data::DataError),
    /// A model could not be built.
    #[error(transparent)]
    Model(#[from] l2m_models::ModelError),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, EngineError>;
