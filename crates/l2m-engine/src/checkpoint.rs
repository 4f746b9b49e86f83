//! Checkpoints: everything a strategy-seed run needs to continue exactly where it stopped.
//!
//! After every epoch a run directory gets, in this order:
//! 1. `checkpoint-e<epoch>.safetensors`: the model's variables (`param.<name>`, batch-norm
//!    statistics included) and Adam's moments (`adam.m.<name>`, `adam.v.<name>`);
//! 2. the records up to that epoch and `run.json`;
//! 3. `checkpoint.json`: the epoch, the tensor file's name, the optimiser's step count,
//!    the strategy's own state (for learn2mix the proportions, the samplers' permutations,
//!    cursors and random generator; for importance sampling its generator; ...) and the
//!    dropout counters.
//!
//! Each file is written atomically (temporary file, rename) and `checkpoint.json` is
//! written last: it is the commit point. It carries the SHA-256 of its tensor file and of
//! its own content (format 3), both verified on resume. The previous commit is kept as
//! `checkpoint.prev.json` with its tensor file, so that a checkpoint found corrupt or
//! edited is refused by name and the run resumes from the one before it (or says that it
//! must start over when that one is not intact either). Files are fsynced before their rename when the
//! caller asks (the engine does at most every 30 seconds and at a run's end), so a
//! killed process never costs more than the epoch it was in, and a power loss at most
//! the epochs of the last 30 seconds, without an fsync per epoch slowing small models. A crash before it leaves the previous
//! checkpoint in force, and resuming truncates the records to the committed epoch. Older
//! tensor files are removed once the new `checkpoint.json` is in place.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use l2m_core::RngState;
use l2m_run::RunFiles;
use serde::{Deserialize, Serialize};

use crate::optim::Adam;
use crate::record::{TrainOutcome, read_json, read_records, write_json_with};
use crate::{EngineError, EpochRecord, Result, RunInfo};

/// The name of the commit file.
pub(crate) const STATE_FILE: &str = l2m_run::CHECKPOINT_STATE;

/// The previous commit, kept as a fallback.
pub(crate) const PREVIOUS_FILE: &str = l2m_run::CHECKPOINT_PREVIOUS;

/// The version of the checkpoint format this build writes: 3 adds the checksums. Formats 1
/// (a batch policy's state and an importance generator beside it) and 2 are still read,
/// unverified.
const FORMAT: u32 = 3;

/// `checkpoint.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CheckpointState {
    /// Format version.
    pub format: u32,
    /// Epochs completed.
    pub epoch: usize,
    /// The tensor file, relative to the run directory.
    pub tensors: String,
    /// Optimiser steps taken.
    pub optimizer_steps: u64,
    /// The strategy's state after the epoch (see [`crate::strategy::Strategy::save`]).
    #[serde(default)]
    pub strategy: serde_json::Value,
    /// Format 1: the batch policy's state (now part of `strategy`).
    #[serde(default, skip_serializing)]
    pub policy: Option<serde_json::Value>,
    /// Format 1: the importance sampler's generator (now part of `strategy`).
    #[serde(default, skip_serializing)]
    pub importance_rng: Option<RngState>,
    /// Masks drawn by each dropout layer.
    pub model_rng: Vec<u64>,
    /// SHA-256 of the tensor file (format 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tensors_sha256: Option<String>,
    /// SHA-256 of this state serialised without this field (format 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_sha256: Option<String>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The checksum of a state: its JSON without `state_sha256`.
fn state_checksum(state: &CheckpointState) -> Result<String> {
    let mut copy = state.clone();
    copy.state_sha256 = None;
    let bytes = serde_json::to_vec(&copy).map_err(|source| EngineError::Json {
        path: PathBuf::from(STATE_FILE),
        source,
    })?;
    Ok(sha256_hex(&bytes))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EngineError + '_ {
    move |source| EngineError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes the tensors of a checkpoint, then the state that commits it, and removes the
/// tensor files of earlier epochs.
pub(crate) fn save(
    dir: &Path,
    varmap: &VarMap,
    opt: &Adam,
    mut state: CheckpointState,
    sync: bool,
    write_records: impl FnOnce(bool) -> Result<()>,
) -> Result<()> {
    let name = RunFiles::checkpoint_tensors_name(state.epoch);
    let path = dir.join(&name);
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    {
        let vars = varmap.data().lock().map_err(|_| EngineError::Poisoned)?;
        for (n, v) in vars.iter() {
            tensors.insert(format!("param.{n}"), v.as_tensor().clone());
        }
    }
    tensors.extend(opt.state_tensors());
    // A fresh, exclusively created file of a random name: Candle writes to it by path.
    let tmp = crate::atomic::exclusive_temp(&path)?;
    // A full disk (or any write error) names the checkpoint it was writing.
    candle_core::safetensors::save(&tensors, tmp.path()).map_err(|e| {
        EngineError::CheckpointWrite {
            path: path.clone(),
            reason: format!("the tensors: {e}"),
        }
    })?;
    if sync {
        fs::File::open(tmp.path())
            .and_then(|f| f.sync_all())
            .map_err(io(tmp.path()))?;
    }
    tmp.persist(&path).map_err(|e| EngineError::Io {
        path: path.clone(),
        source: e.error,
    })?;
    write_records(sync)?;
    state.format = FORMAT;
    state.tensors = name.clone();
    let tensor_bytes = fs::read(&path).map_err(io(&path))?;
    state.tensors_sha256 = Some(sha256_hex(&tensor_bytes));
    drop(tensor_bytes);
    state.state_sha256 = None;
    state.state_sha256 = Some(state_checksum(&state)?);
    // The commit in force becomes the fallback (a crash right after this leaves only the
    // fallback, which resuming then uses), then the new state commits.
    let current = dir.join(STATE_FILE);
    let previous = dir.join(PREVIOUS_FILE);
    if current.is_file() {
        fs::rename(&current, &previous).map_err(io(&current))?;
    }
    write_json_with(&current, &state, sync)?;
    // Tensor files neither commit names are garbage.
    let kept_previous = read_state_file(&previous)
        .ok()
        .map(|s| s.tensors)
        .unwrap_or_default();
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let file = entry.file_name().to_string_lossy().into_owned();
        if RunFiles::is_checkpoint_tensors(&file) && file != name && file != kept_previous {
            let p = entry.path();
            fs::remove_file(&p).map_err(io(&p))?;
        }
    }
    Ok(())
}

/// The committed checkpoint of `dir`, if there is one, verified: a corrupt or edited
/// `checkpoint.json` (or tensor file) is refused by name, and the previous commit is used
/// when it is intact (with a warning); when neither is, the error says the run must start
/// over.
pub(crate) fn load_state(dir: &Path) -> Result<Option<CheckpointState>> {
    let current = dir.join(STATE_FILE);
    let previous = dir.join(PREVIOUS_FILE);
    if !current.is_file() && !previous.is_file() {
        return Ok(None);
    }
    let first = if current.is_file() {
        verified(dir, &current)
    } else {
        Err(EngineError::Resume {
            path: current.clone(),
            reason: "missing (a crash between two commits)".into(),
        })
    };
    let problem = match first {
        Ok(state) => return Ok(Some(state)),
        Err(e) => e,
    };
    if previous.is_file() {
        match verified(dir, &previous) {
            Ok(state) => {
                tracing::warn!(
                    "{problem}; resuming from the previous checkpoint, {} (epoch {})",
                    previous.display(),
                    state.epoch
                );
                return Ok(Some(state));
            }
            Err(e) => {
                return Err(EngineError::Checkpoint(format!(
                    "{problem}; the previous checkpoint is not intact either ({e}): start this run over (--fresh)"
                )));
            }
        }
    }
    Err(EngineError::Checkpoint(format!(
        "{problem}; there is no earlier checkpoint: start this run over (--fresh)"
    )))
}

/// A state file and its tensor file, checked against their checksums (format 3).
fn verified(dir: &Path, path: &Path) -> Result<CheckpointState> {
    let state = read_state_file(path)?;
    if state.format < FORMAT {
        return Ok(state);
    }
    let expected = state.state_sha256.clone().unwrap_or_default();
    if state_checksum(&state)? != expected {
        return Err(EngineError::Resume {
            path: path.to_path_buf(),
            reason: "its content does not match its checksum (edited or corrupt)".into(),
        });
    }
    let tensors = dir.join(&state.tensors);
    let bytes = fs::read(&tensors).map_err(io(&tensors))?;
    if Some(sha256_hex(&bytes)) != state.tensors_sha256 {
        return Err(EngineError::Resume {
            path: tensors.clone(),
            reason: format!(
                "the tensors do not match the checksum in {} (corrupt)",
                path.display()
            ),
        });
    }
    Ok(state)
}

/// Reads and parses a state file (converting format 1).
fn read_state_file(path: &Path) -> Result<CheckpointState> {
    let path = path.to_path_buf();
    let bytes = fs::read(&path).map_err(io(&path))?;
    let state: CheckpointState =
        serde_json::from_slice(&bytes).map_err(|source| EngineError::Json {
            path: path.clone(),
            source,
        })?;
    let mut state = state;
    match state.format {
        2 | FORMAT => {}
        1 => {
            // Format 1 kept the batch policy's state and the importance generator apart.
            let mut policy = state.policy.take().ok_or_else(|| EngineError::Resume {
                path: path.to_path_buf(),
                reason: "format 1 without a policy".into(),
            })?;
            if let (Some(rng), Some(map)) = (state.importance_rng.take(), policy.as_object_mut()) {
                map.insert(
                    "rng".into(),
                    serde_json::to_value(rng).map_err(|source| EngineError::Json {
                        path: path.clone(),
                        source,
                    })?,
                );
            }
            state.strategy = policy;
            state.format = 2;
        }
        other => {
            return Err(EngineError::Resume {
                path: path.to_path_buf(),
                reason: format!("format {other} (this build reads formats 1 to {FORMAT})"),
            });
        }
    }
    Ok(state)
}

/// Loads the tensors of `state` into the model's variables and the optimiser.
pub(crate) fn restore_tensors(
    dir: &Path,
    state: &CheckpointState,
    varmap: &VarMap,
    opt: &mut Adam,
    device: &Device,
) -> Result<()> {
    let path: PathBuf = dir.join(&state.tensors);
    let context = |e: EngineError| EngineError::Resume {
        path: path.clone(),
        reason: e.to_string(),
    };
    let tensors = candle_core::safetensors::load(&path, device)
        .map_err(|e| context(EngineError::Candle(e)))?;
    {
        let vars = varmap.data().lock().map_err(|_| EngineError::Poisoned)?;
        for (n, v) in vars.iter() {
            let key = format!("param.{n}");
            let t = tensors.get(&key).ok_or_else(|| EngineError::Resume {
                path: path.clone(),
                reason: format!("no tensor {key}"),
            })?;
            if t.shape() != v.shape() {
                return Err(EngineError::Resume {
                    path: path.clone(),
                    reason: format!(
                        "{key} has shape {:?}, the model needs {:?}",
                        t.dims(),
                        v.dims()
                    ),
                });
            }
            v.set(&t.to_dtype(v.dtype())?)?;
        }
    }
    opt.load_state(&tensors, state.optimizer_steps)
        .map_err(context)
}

/// The outcome of a run whose directory holds a checkpoint of all `epochs` epochs, read
/// back without training; `None` when the run is not finished there.
pub fn finished_run(dir: &Path, epochs: usize) -> Result<Option<TrainOutcome>> {
    let Some(state) = load_state(dir)? else {
        return Ok(None);
    };
    if state.epoch > epochs {
        return Err(EngineError::Resume {
            path: dir.to_path_buf(),
            reason: format!(
                "it holds {} epochs, more than the {epochs} configured",
                state.epoch
            ),
        });
    }
    if state.epoch < epochs {
        return Ok(None);
    }
    let records = committed_records(dir, state.epoch)?;
    let info: RunInfo = read_json(&RunFiles::new(dir).info())?;
    Ok(Some(TrainOutcome { records, info }))
}

/// The records of `dir` up to the committed epoch (a crash between writing the records
/// and committing the checkpoint can leave one more).
pub(crate) fn committed_records(dir: &Path, epoch: usize) -> Result<Vec<EpochRecord>> {
    let path = RunFiles::new(dir).records_jsonl();
    let mut records = read_records(&path)?;
    if records.len() < epoch {
        return Err(EngineError::Resume {
            path: path.clone(),
            reason: format!("it holds {} epochs, the checkpoint {epoch}", records.len()),
        });
    }
    records.truncate(epoch);
    Ok(records)
}
