//! How a run is carried out, beside what it trains: who watches it, which processes share
//! it, which model it builds, and by which metric it is summarised. One type for every
//! entry point ([`crate::train`], [`crate::run_experiment`], [`crate::summarize`]).

use crate::collective::{Collective, Solo};
use crate::metric::Metric;
use crate::model::BuildModel;
use crate::observer::{Observer, SilentObserver};

/// The options of a run; [`RunOptions::new`] is one silent process training the
/// configuration's model, summarised by the task's metric against the configuration's
/// reference strategy.
///
/// ```
/// use l2m_engine::{RunOptions, SilentObserver};
///
/// let mut watcher = SilentObserver;
/// let opts = RunOptions::new().observer(&mut watcher);
/// assert_eq!(opts.ranks(), 1);
/// ```
pub struct RunOptions<'a> {
    observer: Option<&'a mut dyn Observer>,
    comm: &'a dyn Collective,
    model: Option<&'a dyn BuildModel>,
    metric: Metric,
    reference: Option<usize>,
}

impl Default for RunOptions<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> RunOptions<'a> {
    /// One silent process, the configuration's model, the task's metric.
    pub fn new() -> Self {
        Self {
            observer: None,
            comm: &Solo,
            model: None,
            metric: Metric::Task,
            reference: None,
        }
    }

    /// Progress (and stop requests) go to `observer`.
    pub fn observer(mut self, observer: &'a mut dyn Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Trains as one rank of the process group `comm` ([`crate::collective`]).
    pub fn comm(mut self, comm: &'a dyn Collective) -> Self {
        self.comm = comm;
        self
    }

    /// Trains `model` (one the caller wrote, see [`crate::CustomModel`]) instead of the
    /// configuration's.
    pub fn model(mut self, model: &'a dyn BuildModel) -> Self {
        self.model = Some(model);
        self
    }

    /// Summarises by `metric` (tables, the common target, verdicts).
    pub fn metric(mut self, metric: Metric) -> Self {
        self.metric = metric;
        self
    }

    /// Takes paired differences against the strategy at `index` of the configuration
    /// (default: [`crate::reference_index`]).
    pub fn reference(mut self, index: usize) -> Self {
        self.reference = Some(index);
        self
    }

    /// The number of processes the run is shared by.
    pub fn ranks(&self) -> usize {
        self.comm.ranks()
    }

    pub(crate) fn comm_ref(&self) -> &'a dyn Collective {
        self.comm
    }

    pub(crate) fn model_ref(&self) -> Option<&'a dyn BuildModel> {
        self.model
    }

    pub(crate) fn metric_kind(&self) -> Metric {
        self.metric
    }

    pub(crate) fn reference_index(&self) -> Option<usize> {
        self.reference
    }

    /// The observer, or one that ignores everything.
    pub(crate) fn observer_mut<'s>(
        &'s mut self,
        silent: &'s mut SilentObserver,
    ) -> &'s mut dyn Observer {
        match &mut self.observer {
            Some(o) => &mut **o,
            None => silent,
        }
    }
}
