//! Applying a trained model to new data (`l2m predict`), and the predictions a run saves
//! of its final evaluation (`predictions.csv` beside each run's `model.safetensors`).
//!
//! Both compute the outputs the same way and write them with [`table`], so `l2m predict` on the training file gives,
//! for the test rows, the values the run saved.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;

use l2m_core::{RngStream, seeded_rng};
use l2m_data::ClassDataset;
use l2m_data::own::{Preprocessing, RowIds};
use l2m_models::{BoxedModel, DeviceKind, ModelConfig, seeded_var_builder, select_device};

use crate::data::DeviceData;
use crate::record::read_json;
use crate::{EngineError, ExperimentConfig, Result, RunInfo, Task};

/// The file a finished run keeps its trained parameters in.
pub const MODEL_FILE: &str = l2m_run::MODEL;
/// The file a run keeps the predictions of its final evaluation in.
pub const PREDICTIONS_FILE: &str = l2m_run::PREDICTIONS;
/// The file (under `seed-N/`) that keeps the preprocessing fitted on that seed's split.
pub const PREPROCESSING_FILE: &str = l2m_run::PREPROCESSING;

/// Model outputs for the samples `indices` of `data`, in evaluation mode: class
/// probabilities (softmax of the logits) or the predicted value.
pub(crate) fn outputs(
    model: &BoxedModel,
    data: &DeviceData,
    indices: &[u32],
    batch: usize,
    task: Task,
) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(indices.len());
    for chunk in indices.chunks(batch.max(1)) {
        let b = data.batch(chunk)?;
        let y = model.forward_t(&b.x, false)?;
        let y = match task {
            Task::Classification => candle_nn::ops::softmax_last_dim(&y)?,
            _ => y,
        };
        let y = y.to_dtype(DType::F32)?.flatten_from(1)?;
        out.extend(y.to_vec2::<f32>()?);
    }
    Ok(out)
}

/// Predictions as CSV text: one row per sample, its id, the predicted class (or value) and
/// for classification the probability of each class.
pub fn table(
    prep: &Preprocessing,
    ids: &RowIds,
    order: &[u32],
    outputs: &[Vec<f32>],
    skipped: &[u64],
) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let classification = prep.task == l2m_data::TaskKind::Classification;
    let mut header = vec![ids.header().to_string(), "prediction".to_string()];
    if classification {
        header.extend(prep.classes.iter().map(|c| format!("p_{c}")));
    }
    // Writing to a Vec cannot fail.
    let _ = w.write_record(&header);
    let mut skipped = skipped.iter().peekable();
    for (&i, o) in order.iter().zip(outputs) {
        // Rows without a prediction go in their place (row numbers ascend in both lists).
        if let RowIds::Rows(rows) = ids {
            let here = rows.get(i as usize).copied().unwrap_or(u64::MAX);
            while let Some(&&s) = skipped.peek().filter(|&&&s| s < here) {
                let _ = w.write_record(
                    std::iter::once(s.to_string())
                        .chain(std::iter::repeat_n(String::new(), header.len() - 1)),
                );
                skipped.next();
            }
        }
        let mut row = vec![ids.get(i as usize)];
        if classification {
            let best = o
                .iter()
                .enumerate()
                .fold(
                    (0, f32::NEG_INFINITY),
                    |b, (j, &p)| if p > b.1 { (j, p) } else { b },
                )
                .0;
            row.push(prep.classes.get(best).cloned().unwrap_or_default());
            row.extend(o.iter().map(|p| p.to_string()));
        } else {
            let (mean, std) = prep.target_scale.unwrap_or((0.0, 1.0));
            row.push(o.first().map_or_else(String::new, |&v| {
                ((f64::from(v) * std + mean) as f32).to_string()
            }));
        }
        let _ = w.write_record(&row);
    }
    for s in skipped {
        let _ = w.write_record(
            std::iter::once(s.to_string())
                .chain(std::iter::repeat_n(String::new(), header.len() - 1)),
        );
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// The test samples of a run's final evaluation, in store order, as CSV text.
pub(crate) fn final_predictions(
    model: &BoxedModel,
    data: &DeviceData,
    test: &ClassDataset,
    prep: &Preprocessing,
    ids: &RowIds,
    batch: usize,
    task: Task,
) -> Result<String> {
    let mut order = test.all_members();
    order.sort_unstable();
    let out = outputs(model, data, &order, batch, task)?;
    Ok(table(prep, ids, &order, &out, &[]))
}

/// Which trained model of a run to use.
#[derive(Debug, Clone, Default)]
pub struct Choose {
    /// The strategy (default: learn2mix, else the first).
    pub strategy: Option<String>,
    /// The seed (default: the first).
    pub seed: Option<u64>,
    /// The device (default: the CPU).
    pub device: Option<DeviceKind>,
}

/// Predictions for new data.
#[derive(Debug, Clone)]
pub struct Predictions {
    /// The CSV text (header and one row per input row or image).
    pub csv: String,
    /// Rows predicted.
    pub rows: usize,
    /// Rows without a prediction (a missing value the model cannot fill).
    pub skipped: usize,
    /// The strategy and seed whose model was used.
    pub strategy: String,
    /// The seed.
    pub seed: u64,
    /// The model file read.
    pub model_file: PathBuf,
}

/// Applies a trained model of the run in `run_dir` to the data at `input` (a CSV or
/// Parquet file like the training data, or a folder of images), with exactly the
/// preprocessing fitted in training.
pub fn predict(run_dir: &Path, input: &Path, choose: &Choose) -> Result<Predictions> {
    let layout = l2m_run::Layout::new(run_dir);
    let cfg: ExperimentConfig = read_json(&layout.config())?;
    if cfg.dataset.own().is_none() {
        return Err(EngineError::Config(format!(
            "{} is a run of the preset {}; `l2m predict` applies models trained on your own data (l2m compare --data ...)",
            run_dir.display(),
            cfg.name
        )));
    }
    let names: Vec<&str> = cfg.strategies.iter().map(|s| s.name()).collect();
    let strategy = match &choose.strategy {
        Some(s) if names.contains(&s.as_str()) => s.clone(),
        Some(s) => {
            return Err(EngineError::Config(format!(
                "--strategy: the run has no strategy {s:?}; it has {}",
                names.join(", ")
            )));
        }
        // The comparison's reference strategy (learn2mix when it ran).
        None => names
            .get(crate::reference_index(&cfg))
            .map(|s| s.to_string())
            .unwrap_or_default(),
    };
    let seed = match choose.seed {
        Some(s) if cfg.seeds.contains(&s) => s,
        Some(s) => {
            return Err(EngineError::Config(format!(
                "--seed: the run has no seed {s}; it has {:?}",
                cfg.seeds
            )));
        }
        None => cfg.seeds.first().copied().unwrap_or(0),
    };
    let files = layout.run(seed, &strategy);
    let model_file = files.model();
    if !model_file.is_file() {
        return Err(EngineError::Config(format!(
            "{} is missing: the run of {strategy}, seed {seed} has not finished (resume it with the same command)",
            model_file.display()
        )));
    }
    let prep: Preprocessing = read_json(&layout.preprocessing(seed))?;
    let info: RunInfo = read_json(&files.info())?;
    verify_model(&model_file, &info)?;
    let device = select_device(choose.device.unwrap_or(DeviceKind::Cpu))?;
    let model = load_model(&info.model, &model_file, seed, &device)?;
    let input_data = l2m_data::own::read_for_prediction(input, &prep)?;
    let task = match prep.task {
        l2m_data::TaskKind::Regression => Task::Regression,
        _ => Task::Classification,
    };
    let data = DeviceData::upload(&input_data.data, task, &device)?;
    let order: Vec<u32> = (0..input_data.data.len() as u32).collect();
    let out = outputs(&model, &data, &order, cfg.eval_batch_size, task)?;
    Ok(Predictions {
        csv: table(&prep, &input_data.ids, &order, &out, &input_data.skipped),
        rows: order.len(),
        skipped: input_data.skipped.len(),
        strategy,
        seed,
        model_file,
    })
}

/// Builds `config`'s model and loads its parameters from `file`.
fn load_model(config: &ModelConfig, file: &Path, seed: u64, device: &Device) -> Result<BoxedModel> {
    let mut varmap = VarMap::new();
    let vb = seeded_var_builder(
        &varmap,
        seeded_rng(seed, RngStream::Init),
        DType::F32,
        device,
    );
    let model = config.build(vb, seed)?;
    varmap.load(file).map_err(|e| EngineError::TrainedModel {
        path: file.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok(model)
}

/// The SHA-256 of a file's bytes, in hex.
fn file_sha256(path: &Path) -> Result<String> {
    use sha2::Digest;
    let bytes = std::fs::read(path).map_err(|source| EngineError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Checks `model_file` against the checksum its run recorded (runs written before the
/// checksum existed have none, and are read as they are).
fn verify_model(model_file: &Path, info: &RunInfo) -> Result<()> {
    let Some(expected) = &info.model_sha256 else {
        return Ok(());
    };
    let found = file_sha256(model_file)?;
    if &found != expected {
        return Err(EngineError::ModelMismatch {
            path: model_file.to_path_buf(),
            expected: expected.clone(),
            found,
        });
    }
    Ok(())
}

/// Saves the parameters of `varmap` (what [`load_model`] reads), atomically; returns the
/// SHA-256 of the file written.
pub(crate) fn save_model(varmap: &VarMap, dir: &Path) -> Result<String> {
    let path = dir.join(MODEL_FILE);
    let tmp = crate::atomic::exclusive_temp(&path)?;
    let tensors: std::collections::HashMap<String, Tensor> = {
        let vars = varmap.data().lock().map_err(|_| EngineError::Poisoned)?;
        vars.iter()
            .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
            .collect()
    };
    candle_core::safetensors::save(&tensors, tmp.path()).map_err(|e| {
        EngineError::Checkpoint(format!("{}: cannot write the model: {e}", path.display()))
    })?;
    let sha256 = file_sha256(tmp.path())?;
    tmp.persist(&path).map_err(|e| EngineError::Io {
        path: path.clone(),
        source: e.error,
    })?;
    Ok(sha256)
}
