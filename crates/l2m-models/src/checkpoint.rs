//! Model checkpoints: `model.safetensors` and `model.json` (the config) in one folder.

use std::path::Path;

use candle_core::{DType, Device};
use candle_nn::VarMap;

use crate::{ModelConfig, ModelError, Result};

fn io(path: &Path, e: std::io::Error) -> ModelError {
    ModelError::InvalidConfig(format!("{}: {e}", path.display()))
}

/// Writes the parameters of `varmap` as safetensors and `cfg` as JSON into `dir`, each
/// through a temporary file and a rename, so a crash leaves the previous checkpoint whole.
pub fn save_checkpoint(varmap: &VarMap, cfg: &ModelConfig, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let weights = dir.join("model.safetensors");
    let tmp = dir.join(".model.safetensors.tmp");
    varmap.save(&tmp)?;
    std::fs::rename(&tmp, &weights).map_err(|e| io(&weights, e))?;
    let json =
        serde_json::to_vec_pretty(cfg).map_err(|e| ModelError::InvalidConfig(e.to_string()))?;
    let cfg_path = dir.join("model.json");
    let tmp = dir.join(".model.json.tmp");
    std::fs::write(&tmp, json).map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, &cfg_path).map_err(|e| io(&cfg_path, e))?;
    Ok(())
}

/// Reads a checkpoint written by [`save_checkpoint`]: the config and a `VarMap` holding
/// the parameters on `device`, from which [`ModelConfig::build`] rebuilds the model.
pub fn load_checkpoint(dir: &Path, device: &Device) -> Result<(ModelConfig, VarMap)> {
    let cfg_path = dir.join("model.json");
    let text = std::fs::read_to_string(&cfg_path).map_err(|e| io(&cfg_path, e))?;
    let cfg: ModelConfig = serde_json::from_str(&text)
        .map_err(|e| ModelError::InvalidConfig(format!("{}: {e}", cfg_path.display())))?;
    let mut varmap = VarMap::new();
    // Create every variable with the right shape, then overwrite from the file.
    let vb = candle_nn::VarBuilder::from_varmap(&varmap, DType::F32, device);
    cfg.build(vb, 0)?;
    varmap.load(dir.join("model.safetensors"))?;
    Ok((cfg, varmap))
}
