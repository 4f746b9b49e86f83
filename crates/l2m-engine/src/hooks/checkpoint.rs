//! Checkpoints: a run resumes from its folder's committed checkpoint (every rank reads
//! it), and after every epoch rank 0 writes the records, `run.json` and a checkpoint that
//! commits them. On the CPU a resumed run's records are exactly an uninterrupted run's.

use std::path::Path;
use std::time::Instant;

use super::{RunCtx, RunHook};
use crate::Result;
use crate::checkpoint::{self, CheckpointState, committed_records};
use crate::record::{write_json_with, write_records};

/// Resumes from a folder ([`Checkpoints::resume`], first of the hooks) or commits every
/// epoch there ([`Checkpoints::commit`], rank 0, last of the hooks).
pub(crate) struct Checkpoints<'a> {
    /// Where the run resumes from, and the checkpoint found there.
    read: Option<&'a Path>,
    resume: Option<CheckpointState>,
    /// Where the run writes (rank 0).
    write: Option<&'a Path>,
    /// The class names of the records' table.
    class_names: &'a [String],
    last_sync: Instant,
}

impl<'a> Checkpoints<'a> {
    /// Resumes from `state`, the checkpoint found in `dir`, before the first epoch.
    pub(crate) fn resume(dir: Option<&'a Path>, state: Option<CheckpointState>) -> Self {
        Self {
            read: dir,
            resume: state,
            write: None,
            class_names: &[],
            last_sync: Instant::now(),
        }
    }

    /// Commits every epoch in `dir`: records (with `class_names` in their table),
    /// `run.json`, then the checkpoint.
    pub(crate) fn commit(dir: &'a Path, class_names: &'a [String]) -> Self {
        Self {
            read: None,
            resume: None,
            write: Some(dir),
            class_names,
            last_sync: Instant::now(),
        }
    }
}

impl RunHook for Checkpoints<'_> {
    fn start(&mut self, run: &mut RunCtx<'_>) -> Result<()> {
        let (Some(dir), Some(state)) = (self.read, self.resume.take()) else {
            return Ok(());
        };
        checkpoint::restore_tensors(dir, &state, &run.t.varmap, &mut run.t.opt, run.device)?;
        run.strategy.restore(state.strategy)?;
        run.t.model.set_rng_counters(&state.model_rng)?;
        *run.records = committed_records(dir, state.epoch)?;
        run.info.epochs_done = state.epoch;
        run.info.final_alpha = run.strategy.alpha().as_slice().to_vec();
        run.info.final_loss_weights = run.strategy.loss_weights();
        run.epoch = state.epoch;
        tracing::info!(
            strategy = run.name,
            seed = run.seed,
            epoch = state.epoch,
            "resuming"
        );
        Ok(())
    }

    fn commit(&mut self, run: &mut RunCtx<'_>) -> Result<()> {
        let Some(dir) = self.write else {
            return Ok(());
        };
        let state = CheckpointState {
            format: 0,
            epoch: run.epoch,
            tensors: String::new(),
            optimizer_steps: run.t.opt.steps(),
            strategy: run.strategy.save()?,
            policy: None,
            importance_rng: None,
            model_rng: run.t.model.rng_counters(),
            tensors_sha256: None,
            state_sha256: None,
        };
        let sync =
            run.last() || self.last_sync.elapsed().as_secs() >= 30 || run.observer.should_stop();
        let (records, info, names) = (&*run.records, &*run.info, self.class_names);
        checkpoint::save(dir, &run.t.varmap, &run.t.opt, state, sync, |sync| {
            write_records(dir, records, names, sync)?;
            write_json_with(&l2m_run::RunFiles::new(dir).info(), info, sync)
        })?;
        if sync {
            self.last_sync = Instant::now();
        }
        Ok(())
    }
}
