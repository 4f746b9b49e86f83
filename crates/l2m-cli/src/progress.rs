//! Progress bars on standard error, fed by the engine's observer.

use indicatif::{ProgressBar, ProgressStyle};

use l2m_engine::{EpochRecord, ExperimentConfig, Observer};

/// One bar for the whole comparison; its message names the current strategy, seed, epoch
/// and test metric.
pub struct Bars {
    bar: ProgressBar,
    metric: &'static str,
}

impl Bars {
    pub fn new(cfg: &ExperimentConfig, quiet: bool) -> Self {
        let total = (cfg.epochs * cfg.seeds.len() * cfg.strategies.len()) as u64;
        let bar = if quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(total)
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} epochs (eta {eta}) {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        Self {
            bar,
            metric: cfg.task.metric_name(),
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Observer for Bars {
    fn epoch_done(&mut self, r: &EpochRecord) {
        self.bar.inc(1);
        self.bar.set_message(format!(
            "{} seed {} epoch {}: test {} {:.4}",
            r.strategy, r.seed, r.epoch, self.metric, r.test_loss
        ));
    }
}
