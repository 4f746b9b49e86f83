//! What the engine tells whoever watches a run: progress, and whether to stop.

use crate::EpochRecord;

/// Receives progress from the engine (the CLI draws progress bars with it). Every method
/// has an empty default.
pub trait Observer {
    /// A seed's data is loaded (before any training on it).
    fn data_loaded(&mut self, _seed: u64, _data: &crate::LoadedData) {}
    /// A strategy-seed run begins (or resumes, with `done` epochs already completed).
    fn run_started(&mut self, _strategy: &str, _seed: u64, _epochs: usize, _done: usize) {}
    /// An epoch ended.
    fn epoch_done(&mut self, _record: &EpochRecord) {}
    /// A strategy-seed run ended.
    fn run_finished(&mut self, _strategy: &str, _seed: u64) {}
    /// Asked after each checkpointed epoch: `true` stops the run there with
    /// [`crate::EngineError::Interrupted`] (it can be resumed later).
    fn should_stop(&self) -> bool {
        false
    }
}

/// An observer that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct SilentObserver;

impl Observer for SilentObserver {}
