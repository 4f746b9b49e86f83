//! Where each file of a run directory lives.

use std::path::{Path, PathBuf};

/// The marker of a run directory (and the file its lock is held on).
pub const MARKER: &str = ".l2m-run";
/// The experiment's configuration.
pub const CONFIG: &str = "config.json";
/// The comparison across seeds ([`crate::Comparison`]).
pub const SUMMARY: &str = "summary.json";
/// The report.
pub const REPORT: &str = "report.md";
/// Every class's final metric and proportion per strategy.
pub const PER_CLASS: &str = "per_class.csv";
/// Own data: the preprocessing fitted on a seed's training split.
pub const PREPROCESSING: &str = "preprocessing.json";
/// Text: a seed's vocabulary.
pub const VOCAB: &str = "vocab.txt";
/// One line per epoch ([`crate::EpochRecord`]).
pub const RECORDS_JSONL: &str = "records.jsonl";
/// The records as a table.
pub const RECORDS_CSV: &str = "records.csv";
/// Facts about one strategy-seed run.
pub const RUN_INFO: &str = "run.json";
/// The trained model's parameters.
pub const MODEL: &str = "model.safetensors";
/// A model's configuration, beside its parameters.
pub const MODEL_CONFIG: &str = "model.json";
/// Own data: the predictions of the final evaluation.
pub const PREDICTIONS: &str = "predictions.csv";
/// The committed checkpoint.
pub const CHECKPOINT_STATE: &str = "checkpoint.json";
/// The checkpoint before it, kept until the next one is committed.
pub const CHECKPOINT_PREVIOUS: &str = "checkpoint.prev.json";

const SEED_PREFIX: &str = "seed-";
const CHECKPOINT_TENSORS: (&str, &str) = ("checkpoint-e", ".safetensors");

/// A run directory: the paths of everything in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The run directory at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `.l2m-run`.
    pub fn marker(&self) -> PathBuf {
        self.root.join(MARKER)
    }

    /// `config.json`.
    pub fn config(&self) -> PathBuf {
        self.root.join(CONFIG)
    }

    /// `summary.json`.
    pub fn summary(&self) -> PathBuf {
        self.root.join(SUMMARY)
    }

    /// `report.md`.
    pub fn report(&self) -> PathBuf {
        self.root.join(REPORT)
    }

    /// `per_class.csv`.
    pub fn per_class(&self) -> PathBuf {
        self.root.join(PER_CLASS)
    }

    /// A file of the root by name (a plot).
    pub fn file(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// `seed-<seed>/`.
    pub fn seed(&self, seed: u64) -> PathBuf {
        self.root.join(format!("seed-{seed}"))
    }

    /// The seed a folder named `name` holds (`seed-3` -> 3).
    pub fn seed_of(name: &str) -> Option<u64> {
        name.strip_prefix(SEED_PREFIX)?.parse().ok()
    }

    /// `seed-<seed>/preprocessing.json`.
    pub fn preprocessing(&self, seed: u64) -> PathBuf {
        self.seed(seed).join(PREPROCESSING)
    }

    /// `seed-<seed>/vocab.txt`.
    pub fn vocab(&self, seed: u64) -> PathBuf {
        self.seed(seed).join(VOCAB)
    }

    /// The files of one strategy and seed, `seed-<seed>/<strategy>/`.
    pub fn run(&self, seed: u64, strategy: &str) -> RunFiles {
        RunFiles::new(self.seed(seed).join(strategy))
    }
}

/// The files of one strategy-seed run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFiles {
    dir: PathBuf,
}

impl RunFiles {
    /// The run whose files are in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The run's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `records.jsonl`.
    pub fn records_jsonl(&self) -> PathBuf {
        self.dir.join(RECORDS_JSONL)
    }

    /// `records.csv`.
    pub fn records_csv(&self) -> PathBuf {
        self.dir.join(RECORDS_CSV)
    }

    /// `run.json`.
    pub fn info(&self) -> PathBuf {
        self.dir.join(RUN_INFO)
    }

    /// `model.safetensors`.
    pub fn model(&self) -> PathBuf {
        self.dir.join(MODEL)
    }

    /// `predictions.csv`.
    pub fn predictions(&self) -> PathBuf {
        self.dir.join(PREDICTIONS)
    }

    /// `checkpoint.json`.
    pub fn checkpoint_state(&self) -> PathBuf {
        self.dir.join(CHECKPOINT_STATE)
    }

    /// `checkpoint.prev.json`.
    pub fn checkpoint_previous(&self) -> PathBuf {
        self.dir.join(CHECKPOINT_PREVIOUS)
    }

    /// The name of the tensor file of the checkpoint after `epoch`.
    pub fn checkpoint_tensors_name(epoch: usize) -> String {
        format!("{}{epoch}{}", CHECKPOINT_TENSORS.0, CHECKPOINT_TENSORS.1)
    }

    /// Whether `name` is a checkpoint's tensor file.
    pub fn is_checkpoint_tensors(name: &str) -> bool {
        name.starts_with(CHECKPOINT_TENSORS.0) && name.ends_with(CHECKPOINT_TENSORS.1)
    }
}

/// A temporary file of an atomic write (`.NAME.tmp`, or a random name of that shape).
pub fn is_temporary(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".tmp")
}

/// Whether a run writes an entry named `name` at the root of its directory.
pub fn written_at_root(name: &str) -> bool {
    matches!(name, CONFIG | SUMMARY | REPORT | PER_CLASS | MARKER)
        || name.starts_with(SEED_PREFIX)
        || name.ends_with(".png")
        || name.ends_with(".svg")
        || is_temporary(name)
}

/// Whether a run writes a file named `name` in a `seed-<s>/` folder.
pub fn written_in_seed(name: &str) -> bool {
    matches!(name, PREPROCESSING | VOCAB) || is_temporary(name)
}

/// Whether a run writes a file named `name` in a strategy's folder.
pub fn written_in_run(name: &str) -> bool {
    matches!(
        name,
        RECORDS_JSONL
            | RECORDS_CSV
            | RUN_INFO
            | MODEL
            | MODEL_CONFIG
            | PREDICTIONS
            | CHECKPOINT_STATE
            | CHECKPOINT_PREVIOUS
    ) || RunFiles::is_checkpoint_tensors(name)
        || is_temporary(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_is_under_the_root_and_recognised_as_written_by_a_run() {
        let l = Layout::new("r");
        for p in [
            l.marker(),
            l.config(),
            l.summary(),
            l.report(),
            l.per_class(),
        ] {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            assert!(written_at_root(name), "{name}");
        }
        for p in [l.preprocessing(2), l.vocab(2)] {
            assert!(p.starts_with("r/seed-2"));
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            assert!(written_in_seed(name), "{name}");
        }
        let run = l.run(2, "learn2mix");
        assert_eq!(run.dir(), Path::new("r/seed-2/learn2mix"));
        for p in [
            run.records_jsonl(),
            run.records_csv(),
            run.info(),
            run.model(),
            run.predictions(),
            run.checkpoint_state(),
            run.checkpoint_previous(),
            run.dir().join(RunFiles::checkpoint_tensors_name(7)),
        ] {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            assert!(written_in_run(name), "{name}");
        }
        for foreign in ["notes.txt", "photos", "data.csv"] {
            assert!(
                !written_at_root(foreign) && !written_in_run(foreign),
                "{foreign}"
            );
        }
        assert_eq!(Layout::seed_of("seed-12"), Some(12));
        assert_eq!(Layout::seed_of("seed-x"), None);
        assert_eq!(Layout::seed_of("notes"), None);
    }
}
