//! The trained model of a finished run (`model.safetensors`, its SHA-256 in `run.json`)
//! and, for the user's own data, the predictions of its final evaluation, saved before the
//! checkpoint that marks the run finished: a finished run always has both.

use std::path::Path;

use l2m_data::ClassDataset;

use super::{RunCtx, RunHook};
use crate::Result;
use crate::config::LoadedData;
use crate::data::DeviceData;

/// Saves the final model and predictions into the run's folder (rank 0 only).
pub(crate) struct Predictions<'a> {
    pub(crate) dir: &'a Path,
    pub(crate) data: &'a LoadedData,
    pub(crate) test: &'a ClassDataset,
    pub(crate) test_data: &'a DeviceData,
}

impl RunHook for Predictions<'_> {
    fn commit(&mut self, run: &mut RunCtx<'_>) -> Result<()> {
        if !run.last() {
            return Ok(());
        }
        run.info.model_sha256 = Some(crate::predict::save_model(&run.t.varmap, self.dir)?);
        if let Some(own) = &self.data.own {
            let csv = crate::predict::final_predictions(
                &run.t.model,
                self.test_data,
                self.test,
                &own.preprocessing,
                &own.test_ids,
                run.cfg.eval_batch_size,
                run.cfg.task,
            )?;
            let files = l2m_run::RunFiles::new(self.dir);
            crate::write_atomic(&files.predictions(), csv.as_bytes())?;
        }
        Ok(())
    }
}
