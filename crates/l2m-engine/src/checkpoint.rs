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
//! written last: it is the commit point. Files are fsynced before their rename when the
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
use serde::{Deserialize, Serialize};

use crate::optim::Adam;
use crate::record::write_json_with;
use crate::{EngineError, Result};

/// The name of the commit file.
pub(crate) const STATE_FILE: &str = "checkpoint.json";

/// The version of the checkpoint format this build writes. Format 1 (a batch policy's
/// state and an importance generator beside it) is still read.
const FORMAT: u32 = 2;

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
    let name = format!("checkpoint-e{}.safetensors", state.epoch);
    let path = dir.join(&name);
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    {
        let vars = varmap
            .data()
            .lock()
            .map_err(|_| EngineError::Checkpoint("parameter map lock poisoned".into()))?;
        for (n, v) in vars.iter() {
            tensors.insert(format!("param.{n}"), v.as_tensor().clone());
        }
    }
    tensors.extend(opt.state_tensors());
    // A fresh, exclusively created file of a random name: Candle writes to it by path.
    let tmp = crate::atomic::exclusive_temp(&path)?;
    candle_core::safetensors::save(&tensors, tmp.path())?;
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
    write_json_with(&dir.join(STATE_FILE), &state, sync)?;
    // The new checkpoint is committed: earlier tensor files are garbage.
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let file = entry.file_name().to_string_lossy().into_owned();
        if file.starts_with("checkpoint-e") && file.ends_with(".safetensors") && file != name {
            let p = entry.path();
            fs::remove_file(&p).map_err(io(&p))?;
        }
    }
    Ok(())
}

/// The committed checkpoint of `dir`, if there is one.
pub(crate) fn load_state(dir: &Path) -> Result<Option<CheckpointState>> {
    let path = dir.join(STATE_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    let bytes = fs::read(&path).map_err(io(&path))?;
    let state: CheckpointState =
        serde_json::from_slice(&bytes).map_err(|source| EngineError::Json {
            path: path.clone(),
            source,
        })?;
    let mut state = state;
    match state.format {
        FORMAT => {}
        1 => {
            // Format 1 kept the batch policy's state and the importance generator apart.
            let mut policy = state.policy.take().ok_or_else(|| {
                EngineError::Checkpoint(format!("{}: format 1 without a policy", path.display()))
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
            state.format = FORMAT;
        }
        other => {
            return Err(EngineError::Checkpoint(format!(
                "{}: format {other} (this build reads formats 1 and {FORMAT})",
                path.display()
            )));
        }
    }
    Ok(Some(state))
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
    let context = |e: EngineError| EngineError::Checkpoint(format!("{}: {e}", path.display()));
    let tensors = candle_core::safetensors::load(&path, device)
        .map_err(|e| context(EngineError::Candle(e)))?;
    {
        let vars = varmap
            .data()
            .lock()
            .map_err(|_| EngineError::Checkpoint("parameter map lock poisoned".into()))?;
        for (n, v) in vars.iter() {
            let key = format!("param.{n}");
            let t = tensors.get(&key).ok_or_else(|| {
                EngineError::Checkpoint(format!("{}: no tensor {key}", path.display()))
            })?;
            if t.shape() != v.shape() {
                return Err(EngineError::Checkpoint(format!(
                    "{}: {key} has shape {:?}, the model needs {:?}",
                    path.display(),
                    t.dims(),
                    v.dims()
                )));
            }
            v.set(&t.to_dtype(v.dtype())?)?;
        }
    }
    opt.load_state(&tensors, state.optimizer_steps)
        .map_err(context)
}
