//! Progress bars on standard error, fed by the engine's observer.

use indicatif::{ProgressBar, ProgressStyle};

use std::io::Write;

use l2m_engine::{EpochRecord, ExperimentConfig, LoadedData, Observer};

/// Writes the class counts of the training and test sets and the data notes.
pub fn print_data(out: &mut impl Write, data: &LoadedData) -> std::io::Result<()> {
    let line = |d: &l2m_data::ClassDataset| {
        d.class_names()
            .iter()
            .zip(d.class_sizes())
            .map(|(n, s)| format!("{n} {s}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    writeln!(
        out,
        "{}: {} samples: {}",
        data.train.name(),
        data.train.len(),
        line(&data.train)
    )?;
    writeln!(
        out,
        "{}: {} samples: {}",
        data.test.name(),
        data.test.len(),
        line(&data.test)
    )?;
    for n in &data.notes {
        writeln!(out, "note: {n}")?;
    }
    Ok(())
}

/// One bar for the whole comparison; its message names the current strategy, seed, epoch
/// and test metric.
pub struct Bars {
    bar: ProgressBar,
    quiet: bool,
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
            quiet,
            metric: cfg.task.metric_name(),
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Observer for Bars {
    fn data_loaded(&mut self, seed: u64, data: &LoadedData) {
        let mut text = Vec::new();
        let _ = writeln!(text, "seed {seed}:");
        let _ = print_data(&mut text, data);
        let text = String::from_utf8_lossy(&text).trim_end().to_string();
        if self.quiet {
            tracing::info!("{text}");
        } else if self.bar.is_hidden() {
            // Not a terminal (a log file, a pipe): plain lines on stderr.
            let _ = writeln!(std::io::stderr(), "{text}");
        } else {
            self.bar.println(text);
        }
    }

    fn epoch_done(&mut self, r: &EpochRecord) {
        self.bar.inc(1);
        self.bar.set_message(format!(
            "{} seed {} epoch {}: test {} {:.4}",
            r.strategy, r.seed, r.epoch, self.metric, r.test_loss
        ));
    }
}
