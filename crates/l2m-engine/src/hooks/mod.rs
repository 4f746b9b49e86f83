//! Run hooks: what a run does around its training besides training. The loop
//! ([`crate::train`]) calls every hook at the same points, in the order given:
//!
//! - [`RunHook::start`], before the first epoch (a checkpoint resumes the run here);
//! - [`RunHook::inspect`], when an epoch's record is made, before it is kept (the ranks'
//!   agreement is checked, coverage alarms are added);
//! - [`RunHook::commit`], after the record is kept (the final model and predictions are
//!   saved, the checkpoint commits the epoch);
//! - [`RunHook::finish`], when the last epoch is done.
//!
//! A new concern of a run is one file here with one `impl RunHook`, and one line where
//! [`crate::train`] lists its hooks.

mod checkpoint;
mod coverage;
mod predictions;
mod rank_check;

pub(crate) use checkpoint::Checkpoints;
pub(crate) use coverage::Coverage;
pub(crate) use predictions::Predictions;
pub(crate) use rank_check::RankCheck;

use candle_core::Device;

use crate::collective::Collective;
use crate::model::Trainable;
use crate::observer::Observer;
use crate::strategy::Strategy;
use crate::{EpochRecord, ExperimentConfig, Result, RunInfo};

/// What a hook may see and change of the run it is called for.
pub(crate) struct RunCtx<'a> {
    pub(crate) cfg: &'a ExperimentConfig,
    /// The strategy's name in records.
    pub(crate) name: &'a str,
    pub(crate) seed: u64,
    pub(crate) device: &'a Device,
    pub(crate) comm: &'a dyn Collective,
    pub(crate) t: &'a mut Trainable,
    pub(crate) strategy: &'a mut dyn Strategy,
    /// Every record so far (the current epoch's once kept).
    pub(crate) records: &'a mut Vec<EpochRecord>,
    pub(crate) info: &'a mut RunInfo,
    pub(crate) observer: &'a mut dyn Observer,
    /// The epoch just trained (0 before the first).
    pub(crate) epoch: usize,
}

impl RunCtx<'_> {
    /// Whether the epoch just trained is the run's last.
    pub(crate) fn last(&self) -> bool {
        self.epoch == self.cfg.epochs
    }
}

/// One concern of a run, called by the loop at its four points; each has a neutral
/// default.
pub(crate) trait RunHook {
    /// Before the first epoch of this process's run.
    fn start(&mut self, _run: &mut RunCtx<'_>) -> Result<()> {
        Ok(())
    }

    /// When an epoch's record is made, before it is kept.
    fn inspect(&mut self, _run: &mut RunCtx<'_>, _record: &mut EpochRecord) -> Result<()> {
        Ok(())
    }

    /// After the epoch's record is kept and the run's facts are updated.
    fn commit(&mut self, _run: &mut RunCtx<'_>) -> Result<()> {
        Ok(())
    }

    /// After the last epoch.
    fn finish(&mut self, _run: &mut RunCtx<'_>) -> Result<()> {
        Ok(())
    }
}
