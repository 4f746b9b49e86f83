//! Progress bars on standard error, fed by the engine's observer, and the Ctrl-C flag.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use l2m_engine::text::{terminal_safe, terminal_safe_text};
use l2m_engine::{EpochRecord, ExperimentConfig, LoadedData, Observer};

/// Writes the class counts of the training and test sets and the data notes.
pub fn print_data(out: &mut impl Write, data: &LoadedData) -> std::io::Result<()> {
    print_counts(out, data)?;
    print_notes(out, data)
}

/// The data notes, escaped.
fn print_notes(out: &mut impl Write, data: &LoadedData) -> std::io::Result<()> {
    for n in &data.notes {
        writeln!(out, "note: {}", terminal_safe_text(n))?;
    }
    Ok(())
}

/// The class counts of the training and test sets.
fn print_counts(out: &mut impl Write, data: &LoadedData) -> std::io::Result<()> {
    let line =
        |d: &l2m_engine::ClassDataset| crate::table::class_sizes(d.class_names(), &d.class_sizes());
    writeln!(
        out,
        "{}: {} samples: {}",
        terminal_safe(data.train.name()),
        data.train.len(),
        line(&data.train)
    )?;
    writeln!(
        out,
        "{}: {} samples: {}",
        terminal_safe(data.test.name()),
        data.test.len(),
        line(&data.test)
    )?;
    Ok(())
}

/// Set by the first Ctrl-C: the engine stops after the epoch it is in, with a checkpoint.
/// A second Ctrl-C exits at once (the last checkpoint is still there).
pub fn stop_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let handler = flag.clone();
    let installed = ctrlc::set_handler(move || {
        if handler.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        let _ = writeln!(
            std::io::stderr(),
            "\nl2m: stopping after this epoch (Ctrl-C again to stop now; the same command resumes)"
        );
    });
    if let Err(e) = installed {
        tracing::warn!("no Ctrl-C handler ({e}): an interrupted run resumes from its last epoch");
    }
    flag
}

/// An overall bar (epochs of every run) and one bar per strategy-seed run, showing its
/// strategy, seed, epoch and latest test metric; a finished run's bar stays as a line.
pub struct Bars {
    multi: MultiProgress,
    total: ProgressBar,
    run: Option<ProgressBar>,
    quiet: bool,
    metric: &'static str,
    stop: Arc<AtomicBool>,
    /// Whether the data notes were printed (once per run, with the first seed's data).
    notes_shown: bool,
}

impl Bars {
    pub fn new(cfg: &ExperimentConfig, quiet: bool, stop: Arc<AtomicBool>) -> Self {
        let multi = if quiet {
            MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
        } else {
            MultiProgress::new()
        };
        let total_epochs = (cfg.epochs * cfg.seeds.len() * cfg.strategies.len()) as u64;
        let total = multi.add(ProgressBar::new(total_epochs));
        total.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} epochs in all (eta {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        Self {
            multi,
            total,
            run: None,
            quiet,
            metric: cfg.task.metric_name(),
            stop,
            notes_shown: false,
        }
    }

    pub fn finish(&self) {
        self.total.finish_and_clear();
    }

    fn println(&self, text: &str) {
        if self.quiet {
            // Quiet runs still hear the data's warnings.
            for line in text.lines().filter(|l| l.starts_with("note: warning: ")) {
                tracing::warn!("{}", &line["note: warning: ".len()..]);
            }
            tracing::info!("{text}");
        } else if self.total.is_hidden() {
            // Not a terminal (a log file, a pipe): plain lines on stderr.
            let _ = writeln!(std::io::stderr(), "{text}");
        } else {
            let _ = self.multi.println(text);
        }
    }
}

impl Observer for Bars {
    fn data_loaded(&mut self, seed: u64, data: &LoadedData) {
        let mut text = Vec::new();
        let _ = writeln!(text, "seed {seed}:");
        let _ = print_counts(&mut text, data);
        if !std::mem::replace(&mut self.notes_shown, true) {
            let _ = print_notes(&mut text, data);
        }
        self.println(String::from_utf8_lossy(&text).trim_end());
    }

    fn run_started(&mut self, strategy: &str, seed: u64, epochs: usize, done: usize) {
        let bar = self
            .multi
            .insert_before(&self.total, ProgressBar::new(epochs as u64));
        bar.set_style(
            ProgressStyle::with_template("{prefix:>24} [{bar:20}] epoch {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("{strategy} seed {seed}"));
        bar.set_position(done as u64);
        if done > 0 {
            bar.set_message(if done == epochs {
                "(done earlier)".to_string()
            } else {
                format!("(resumed after epoch {done})")
            });
        }
        self.total.inc(done as u64);
        self.run = Some(bar);
    }

    fn epoch_done(&mut self, r: &EpochRecord) {
        self.total.inc(1);
        if let Some(bar) = &self.run {
            bar.inc(1);
            bar.set_message(format!("test {} {:.4}", self.metric, r.test_metric));
        }
    }

    fn run_finished(&mut self, _strategy: &str, _seed: u64) {
        if let Some(bar) = self.run.take() {
            bar.finish();
        }
    }

    fn should_stop(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}
