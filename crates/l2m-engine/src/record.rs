//! What each epoch records, and the run directory it is written to.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{EngineError, Result};

pub use l2m_run::EpochRecord;

/// What one strategy-seed run produced.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// One record per epoch.
    pub records: Vec<EpochRecord>,
    /// Facts about the run.
    pub info: RunInfo,
}

/// Facts about one strategy-seed run, written beside its records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// Strategy name.
    pub strategy: String,
    /// Seed.
    pub seed: u64,
    /// Training samples per class after imbalancing.
    pub train_class_sizes: Vec<usize>,
    /// Samples per class of the set the strategy trains on, where it differs (SMOTE's
    /// oversampled set, learn2mix without its held-out split).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trained_class_sizes: Vec<usize>,
    /// Test samples per class.
    pub test_class_sizes: Vec<usize>,
    /// Class names.
    pub class_names: Vec<String>,
    /// The model, as built (a transformer's vocabulary resolved).
    pub model: l2m_models::ModelConfig,
    /// Trainable parameters.
    pub parameters: usize,
    /// What a user should know about the data and the strategy.
    pub notes: Vec<String>,
    /// Test confusion matrix after the last epoch (rows: true class, columns: predicted),
    /// for classification.
    pub confusion: Option<Vec<Vec<u64>>>,
    /// Sum and sum of squares of the initial parameters: equal across the strategies of a
    /// seed, which is how the run shows they started from the same weights.
    pub init_checksum: (f64, f64),
    /// Optimiser steps per epoch (`floor(N / B)`).
    pub steps_per_epoch: usize,
    /// Epochs completed.
    pub epochs_done: usize,
    /// Proportions after the last update.
    pub final_alpha: Vec<f64>,
    /// Per-class loss weights after the last epoch, for strategies that weight losses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_loss_weights: Option<Vec<f64>>,
    /// SHA-256 of the trained model's `model.safetensors` (hex), checked before the model
    /// is used (`l2m predict`): a replaced or damaged model file is refused by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_sha256: Option<String>,
}

/// The marker file of every run directory `l2m` creates; the process using the directory
/// holds an OS lock on it (released by the kernel when the process ends, however it ends)
/// and writes its PID into it.
pub const RUN_MARKER: &str = l2m_run::MARKER;

/// A run directory this process writes: its [`Layout`] (where every file lives) and the
/// directory's lock, held for as long as the `RunDir` (or a clone) lives.
#[derive(Debug, Clone)]
pub struct RunDir {
    layout: Layout,
    /// The lock of a directory this process writes; `None` for a read-only handle.
    lock: Option<Arc<std::fs::File>>,
}

use l2m_run::{Layout, written_at_root, written_in_run, written_in_seed};

/// Where [`remove_ours`] is in a run directory.
#[derive(Clone, Copy, PartialEq)]
enum Level {
    Root,
    Seed,
    Run,
}

/// Removes the entries of `dir` that a run writes at `level`, descending into `seed-*` and
/// strategy folders (never through a link); everything else is pushed to `kept`.
fn remove_ours(dir: &Path, level: Level, kept: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<std::fs::DirEntry> = std::fs::read_dir(dir)
        .map_err(io_at(dir))?
        .collect::<std::io::Result<_>>()
        .map_err(io_at(dir))?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for e in entries {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        let kind = std::fs::symlink_metadata(&path)
            .map_err(io_at(&path))?
            .file_type();
        let sub = match level {
            Level::Root if Layout::seed_of(&name).is_some() => Some(Level::Seed),
            Level::Seed => Some(Level::Run),
            _ => None,
        };
        if kind.is_dir() {
            match sub {
                Some(sub) => {
                    let before = kept.len();
                    remove_ours(&path, sub, kept)?;
                    if kept.len() == before {
                        std::fs::remove_dir(&path).map_err(io_at(&path))?;
                    }
                }
                None => kept.push(path),
            }
            continue;
        }
        let ours = kind.is_file()
            && match level {
                Level::Root => written_at_root(&name) && name != RUN_MARKER,
                Level::Seed => written_in_seed(&name),
                Level::Run => written_in_run(&name),
            };
        if ours {
            std::fs::remove_file(&path).map_err(io_at(&path))?;
        } else if !(level == Level::Root && name == RUN_MARKER) {
            kept.push(path);
        }
    }
    Ok(())
}

/// The first entry (by name) of an existing, non-empty directory that is not a run
/// directory of `l2m`; `None` for a missing or empty directory, or one of l2m's.
fn foreign_entry(root: &Path) -> Result<Option<String>> {
    if !root.is_dir() || RunDir::is_run_dir(root) {
        return Ok(None);
    }
    let mut names: Vec<String> = std::fs::read_dir(root)
        .map_err(io_at(root))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    names.sort();
    Ok(names.into_iter().next())
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> EngineError + '_ {
    move |source| EngineError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Opens (creating) the marker of `root` and takes its lock without waiting; a directory
/// in use by another process is refused with that process's PID.
fn lock_marker(root: &Path) -> Result<std::fs::File> {
    use std::io::{Read, Seek, Write};
    let marker = root.join(RUN_MARKER);
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        // Never follow a link planted at the marker's name.
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    let mut file = options.open(&marker).map_err(io_at(&marker))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return Err(EngineError::Locked {
                path: root.to_path_buf(),
                holder: holder.trim().to_string(),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io_at(&marker)(e)),
    }
    file.set_len(0).map_err(io_at(&marker))?;
    file.rewind().map_err(io_at(&marker))?;
    writeln!(file, "{}", std::process::id()).map_err(io_at(&marker))?;
    Ok(file)
}

impl RunDir {
    /// Creates the directory (and parents), marks it as a run directory of `l2m` and locks
    /// it for this process. A directory another process is using is refused at once
    /// ([`EngineError::Locked`], naming its PID).
    ///
    /// A directory that exists, holds anything, and is not already a run directory of
    /// `l2m` ([`RunDir::is_run_dir`]) is someone else's: it is refused
    /// ([`EngineError::ForeignDir`]) and nothing is written into it, so a later `--fresh`
    /// can never take it for l2m's.
    pub fn create(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        if let Some(entry) = foreign_entry(&root)? {
            return Err(EngineError::ForeignDir { path: root, entry });
        }
        std::fs::create_dir_all(&root).map_err(io_at(&root))?;
        let lock = lock_marker(&root)?;
        Ok(Self {
            layout: Layout::new(root),
            lock: Some(Arc::new(lock)),
        })
    }

    /// A handle that only reads the run directory at `root` (the ranks of a data-parallel
    /// run other than rank 0, which alone writes): no lock is taken, nothing is written.
    pub fn read_only(root: impl Into<PathBuf>) -> Self {
        Self {
            layout: Layout::new(root),
            lock: None,
        }
    }

    /// Whether this process writes the directory (it holds its lock).
    pub fn writes(&self) -> bool {
        self.lock.is_some()
    }

    /// Whether `dir` is recognisably a run directory of `l2m`: it holds the marker, or (a
    /// directory written before the marker existed) a `config.json` and nothing but the
    /// files and `seed-*` folders a run writes.
    pub fn is_run_dir(dir: &Path) -> bool {
        if dir.join(RUN_MARKER).is_file() {
            return true;
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return false;
        };
        let mut has_config = false;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            has_config |= name == l2m_run::CONFIG;
            if !written_at_root(&name) {
                return false;
            }
        }
        has_config
    }

    /// Removes what `l2m` wrote in the run directory `dir` (for `--fresh`): only in a
    /// directory that [`RunDir::is_run_dir`] recognises, only while no other process uses
    /// it, and only the files and folders a run writes, by name. Anything else (a file the
    /// user put there later, a link) is left where it is and returned; the directory itself
    /// is removed when nothing else is left in it.
    pub fn remove(dir: &Path) -> Result<Vec<PathBuf>> {
        if !Self::is_run_dir(dir) {
            return Err(EngineError::NotARunDir {
                path: dir.to_path_buf(),
            });
        }
        let lock = lock_marker(dir)?;
        let mut kept = Vec::new();
        remove_ours(dir, Level::Root, &mut kept)?;
        drop(lock);
        // The marker goes last (an interrupted removal is still recognised as l2m's), and
        // stays while the directory holds what someone else put there: it is still the run
        // directory it was, and the next run may use it.
        if kept.is_empty() {
            let marker = dir.join(RUN_MARKER);
            if marker.exists() {
                std::fs::remove_file(&marker).map_err(io_at(&marker))?;
            }
            std::fs::remove_dir(dir).map_err(io_at(dir))?;
        }
        Ok(kept)
    }

    /// The root path.
    pub fn path(&self) -> &Path {
        self.layout.root()
    }

    /// Where every file of the directory lives.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The directory of one strategy and seed, created if missing.
    pub fn run_path(&self, strategy: &str, seed: u64) -> Result<PathBuf> {
        let p = self.layout.run(seed, strategy).dir().to_path_buf();
        std::fs::create_dir_all(&p).map_err(|source| EngineError::Io {
            path: p.clone(),
            source,
        })?;
        Ok(p)
    }
}

/// Serialises `value` as pretty JSON into `path`, atomically.
pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    write_json_with(path, value, true)
}

/// [`write_json`], with the fsync only when `sync` is true.
pub(crate) fn write_json_with<T: Serialize>(path: &Path, value: &T, sync: bool) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|source| EngineError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    crate::atomic::write_atomic_with(path, &bytes, sync)
}

/// Reads the records of a `records.jsonl`.
pub(crate) fn read_records(path: &Path) -> Result<Vec<EpochRecord>> {
    let text = std::fs::read_to_string(path).map_err(|source| EngineError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).map_err(|source| EngineError::Json {
                path: path.to_path_buf(),
                source,
            })
        })
        .collect()
}

/// Reads a JSON document.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|source| EngineError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| EngineError::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// Rewrites `records.jsonl` and `records.csv` in `dir` with all `records`, atomically
/// (with an fsync when `sync` is true).
pub(crate) fn write_records(
    dir: &Path,
    records: &[EpochRecord],
    class_names: &[String],
    sync: bool,
) -> Result<()> {
    let files = l2m_run::RunFiles::new(dir);
    let jsonl_path = files.records_jsonl();
    let mut jsonl = Vec::new();
    for r in records {
        serde_json::to_writer(&mut jsonl, r).map_err(|source| EngineError::Json {
            path: jsonl_path.clone(),
            source,
        })?;
        jsonl.push(b'\n');
    }
    crate::atomic::write_atomic_with(&jsonl_path, &jsonl, sync)?;

    let csv_path = files.records_csv();
    let csv_err = |source| EngineError::Csv {
        path: csv_path.clone(),
        source,
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = [
        "epoch",
        "strategy",
        "seed",
        "train_loss",
        "test_loss",
        "test_metric",
        "train_seconds",
        "eval_seconds",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for prefix in [
        "train_loss",
        "test_loss",
        "test_metric",
        "alpha",
        "train_samples",
    ] {
        header.extend(class_names.iter().map(|c| format!("{prefix}[{c}]")));
    }
    w.write_record(&header).map_err(csv_err)?;
    for r in records {
        let mut row = vec![
            r.epoch.to_string(),
            r.strategy.clone(),
            r.seed.to_string(),
            r.train_loss.to_string(),
            r.test_loss.to_string(),
            r.test_metric.to_string(),
            r.train_seconds.to_string(),
            r.eval_seconds.to_string(),
        ];
        for v in [
            &r.train_loss_per_class,
            &r.test_loss_per_class,
            &r.test_metric_per_class,
            &r.alpha,
        ] {
            row.extend(v.iter().map(f64::to_string));
        }
        row.extend(r.train_samples_per_class.iter().map(u64::to_string));
        w.write_record(&row).map_err(csv_err)?;
    }
    let bytes = w.into_inner().map_err(|e| EngineError::Io {
        path: csv_path.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    crate::atomic::write_atomic_with(&csv_path, &bytes, sync)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(epoch: usize) -> EpochRecord {
        EpochRecord {
            epoch,
            strategy: "learn2mix".into(),
            seed: 3,
            train_loss: 1.5,
            train_loss_per_class: vec![1.0, 2.0],
            train_samples_per_class: vec![10, 10],
            test_loss: 2.5,
            test_loss_per_class: vec![2.0, 3.0],
            test_metric: 0.5,
            test_metric_per_class: vec![0.25, 0.75],
            alpha: vec![0.4, 0.6],
            loss_weights: None,
            train_distinct_per_class: Vec::new(),
            coverage_alarms: Vec::new(),
            test_worst_class: None,
            test_balanced_accuracy: None,
            test_macro_f1: None,
            train_seconds: 0.1,
            eval_seconds: 0.01,
        }
    }

    #[test]
    fn records_round_trip_through_jsonl_and_csv() {
        let dir = tempfile::tempdir().expect("tempdir");
        let recs = vec![record(1), record(2)];
        write_records(dir.path(), &recs, &["a".into(), "b".into()], true).expect("write");
        let text = std::fs::read_to_string(dir.path().join("records.jsonl")).expect("read");
        let back: Vec<EpochRecord> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("parse"))
            .collect();
        assert_eq!(back, recs);
        let csv = std::fs::read_to_string(dir.path().join("records.csv")).expect("read");
        let mut lines = csv.lines();
        assert_eq!(
            lines.next().expect("header"),
            "epoch,strategy,seed,train_loss,test_loss,test_metric,train_seconds,eval_seconds,train_loss[a],train_loss[b],test_loss[a],test_loss[b],test_metric[a],test_metric[b],alpha[a],alpha[b],train_samples[a],train_samples[b]"
        );
        assert_eq!(
            lines.next().expect("row"),
            "1,learn2mix,3,1.5,2.5,0.5,0.1,0.01,1,2,2,3,0.25,0.75,0.4,0.6,10,10"
        );
        assert_eq!(lines.count(), 1);
    }
}
