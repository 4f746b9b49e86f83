//! Coverage: what an epoch left unobserved (a class with data that got no sample, a
//! proportion below one sample per batch), kept in each record and summed up in one line
//! per run. Strategies that draw the training set's own proportions raise none.

use l2m_data::ClassDataset;

use super::{RunCtx, RunHook};
use crate::{EpochRecord, Result};

/// The coverage alarms of a run.
pub(crate) struct Coverage<'a> {
    train: &'a ClassDataset,
    batch_size: usize,
    epochs: usize,
    total: usize,
}

impl<'a> Coverage<'a> {
    pub(crate) fn new(train: &'a ClassDataset, batch_size: usize) -> Self {
        Self {
            train,
            batch_size,
            epochs: 0,
            total: 0,
        }
    }
}

impl RunHook for Coverage<'_> {
    fn inspect(&mut self, run: &mut RunCtx<'_>, record: &mut EpochRecord) -> Result<()> {
        if run.strategy.data_proportions() {
            return Ok(());
        }
        let alarms = coverage_alarms(
            self.train,
            &record.train_samples_per_class,
            &record.alpha,
            self.batch_size,
        );
        if !alarms.is_empty() {
            self.epochs += 1;
            self.total += alarms.len();
            for a in &alarms {
                tracing::debug!(
                    strategy = run.name,
                    seed = run.seed,
                    epoch = record.epoch,
                    "coverage: {a}"
                );
            }
        }
        record.coverage_alarms = alarms;
        Ok(())
    }

    fn finish(&mut self, run: &mut RunCtx<'_>) -> Result<()> {
        if self.epochs > 0 {
            // One line per run; every alarm is in the records and the report.
            tracing::warn!(
                "coverage: {}, seed {}: {} alarm(s) in {} of {} epochs (a class with no sample, or a proportion below one sample per batch; see records.jsonl and report.md)",
                run.name,
                run.seed,
                self.total,
                self.epochs,
                run.cfg.epochs
            );
        }
        Ok(())
    }
}

/// What went unobserved in an epoch: a class with training data that got no sample, and a
/// class whose proportion was below one sample per batch.
/// (Not asked of strategies that draw the training set's own proportions.)
fn coverage_alarms(
    train: &ClassDataset,
    drawn: &[u64],
    alpha: &[f64],
    batch_size: usize,
) -> Vec<String> {
    let mut alarms = Vec::new();
    for (c, &size) in train.class_sizes().iter().enumerate() {
        if size == 0 {
            continue;
        }
        let name = train.class_names().get(c).map_or("?", String::as_str);
        if drawn.get(c) == Some(&0) {
            alarms.push(format!("class {name} got no sample this epoch"));
        }
        if let Some(&a) = alpha.get(c)
            && a * (batch_size as f64) < 1.0
        {
            alarms.push(format!(
                "class {name} had proportion {a:.5}, below one sample per batch of {batch_size}"
            ));
        }
    }
    alarms
}
