//! Reports of a finished (or interrupted) run directory: the paper's table layout (the
//! test metric at 25%, 50% and 100% of the epochs, mean and 95% confidence interval over
//! seeds), epochs to a common target, and a plain verdict per strategy.

use std::fmt::Write as _;
use std::path::Path;

use l2m_core::convergence::{Direction, Summary};

use crate::compare::{Metric, SeedRun, summarize};
use crate::options::RunOptions;
use crate::record::{read_json, read_records};
use crate::{Comparison, EngineError, ExperimentConfig, Result, write_atomic};

/// Reads `config.json` and every `seed-*/<strategy>/` run (records and `run.json`) of a
/// run directory, and summarises them with [`crate::compare::summarize`], the one
/// statistics model of the table, `summary.json`, this report and the plots. Interrupted
/// runs are summarised over the epochs every run has completed.
pub fn load_run(dir: &Path) -> Result<(ExperimentConfig, Comparison)> {
    load_run_by(dir, Metric::Task)
}

/// [`load_run`], judged by `metric`.
pub fn load_run_by(dir: &Path, metric: Metric) -> Result<(ExperimentConfig, Comparison)> {
    let (cfg, runs) = load_seed_runs(dir)?;
    if metric.needs_classes() && cfg.task != crate::Task::Classification {
        return Err(EngineError::Config(format!(
            "--metric {}: a classification metric, and {} is {:?}",
            metric.name(cfg.task),
            cfg.name,
            cfg.task
        )));
    }
    let comparison = summarize(&cfg, &runs, &RunOptions::new().metric(metric));
    Ok((cfg, comparison))
}

/// The configuration of a run directory and the records of every strategy-seed run it
/// holds (per strategy in configuration order, the seeds that have records).
pub fn load_seed_runs(dir: &Path) -> Result<(ExperimentConfig, Vec<Vec<SeedRun>>)> {
    let layout = l2m_run::Layout::new(dir);
    let cfg_path = layout.config();
    let bytes = std::fs::read(&cfg_path).map_err(|source| EngineError::Io {
        path: cfg_path.clone(),
        source,
    })?;
    let cfg: ExperimentConfig =
        serde_json::from_slice(&bytes).map_err(|source| EngineError::Json {
            path: cfg_path.clone(),
            source,
        })?;
    let mut runs: Vec<Vec<SeedRun>> = Vec::new();
    for spec in &cfg.strategies {
        let mut seeds = Vec::new();
        for &seed in &cfg.seeds {
            let run = layout.run(seed, spec.name());
            let (records, info) = (run.records_jsonl(), run.info());
            if records.is_file() && info.is_file() {
                let info: crate::RunInfo = read_json(&info)?;
                seeds.push((read_records(&records)?, info));
            }
        }
        runs.push(seeds);
    }
    Ok((cfg, runs))
}

fn fmt(v: f64) -> String {
    if v == 0.0 || (1e-3..1e4).contains(&v.abs()) {
        format!("{v:.4}")
    } else {
        format!("{v:.3e}")
    }
}

fn cell(m: &Summary) -> String {
    match m.n {
        0 => "-".into(),
        1 => fmt(m.mean),
        _ => format!("{} ± {}", fmt(m.mean), fmt(m.ci95)),
    }
}

/// The markdown report of `cfg`'s run, from its comparison.
pub fn markdown(cfg: &ExperimentConfig, c: &Comparison) -> String {
    let direction = c.direction;
    let metric = &c.metric;
    let mut s = String::new();
    let _ = writeln!(s, "# {}: learn2mix and the alternatives\n", cfg.name);
    let _ = writeln!(
        s,
        "{}, {} lr {}, batch {}, {} epochs, seeds {:?}. Test {metric} ({}).\n",
        cfg.model.name(),
        cfg.optimizer.describe(),
        cfg.optimizer.lr,
        cfg.batch_size,
        cfg.epochs,
        cfg.seeds,
        match direction {
            Direction::LowerIsBetter => "lower is better",
            Direction::HigherIsBetter => "higher is better",
        }
    );
    let done = c.epochs_done;
    if done == 0 {
        let _ = writeln!(s, "No completed epoch yet.");
        return s;
    }
    if done < cfg.epochs {
        let _ = writeln!(
            s,
            "Only {done} of {} epochs are complete; the table covers those.\n",
            cfg.epochs
        );
    }
    let points: Vec<usize> = c
        .strategies
        .first()
        .map(|x| x.test_at.iter().map(|(e, _)| *e).collect())
        .unwrap_or_default();
    if points.len() == 3 {
        let _ = writeln!(
            s,
            "| strategy | epoch {} (25%) | epoch {} (50%) | epoch {} (100%) | seeds |",
            points[0], points[1], points[2]
        );
        let _ = writeln!(s, "|---|---|---|---|---|");
        for x in &c.strategies {
            let cells: Vec<String> = x.test_at.iter().map(|(_, m)| cell(m)).collect();
            let _ = writeln!(
                s,
                "| {} | {} | {} |",
                x.strategy,
                cells.join(" | "),
                x.seeds.len()
            );
        }
    }
    let _ = writeln!(
        s,
        "\nValues are the mean over seeds ± the half-width of a 95% Student-t confidence interval.\n"
    );
    // Imbalance-aware views of the final epoch.
    if c.strategies.iter().any(|x| x.final_worst_class.is_some()) {
        let classification = c
            .strategies
            .iter()
            .any(|x| x.final_balanced_accuracy.is_some());
        let _ = writeln!(
            s,
            "## The worst class{}\n\nAfter epoch {done}; the worst class is the one with the {} test {} in each run.\n",
            if classification {
                ", balanced accuracy and macro-F1"
            } else {
                ""
            },
            if cfg.task.direction() == Direction::LowerIsBetter {
                "highest"
            } else {
                "lowest"
            },
            cfg.task.metric_name()
        );
        let opt = |m: &Option<Summary>| m.as_ref().map_or("-".to_string(), cell);
        if classification {
            let _ = writeln!(
                s,
                "| strategy | worst-class accuracy | balanced accuracy | macro-F1 |\n|---|---|---|---|"
            );
            for x in &c.strategies {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} |",
                    x.strategy,
                    opt(&x.final_worst_class),
                    opt(&x.final_balanced_accuracy),
                    opt(&x.final_macro_f1)
                );
            }
        } else {
            let _ = writeln!(
                s,
                "| strategy | worst-class {} |\n|---|---|",
                cfg.task.metric_name()
            );
            for x in &c.strategies {
                let _ = writeln!(s, "| {} | {} |", x.strategy, opt(&x.final_worst_class));
            }
        }
        let _ = writeln!(s);
    }
    // Coverage: how much of each class the last epoch trained on, and the alarms.
    if c.strategies.iter().any(|x| !x.final_coverage.is_empty()) {
        let _ = writeln!(
            s,
            "## Coverage\n\nThe fraction of each class's training samples trained on in epoch {done} (distinct samples over the class's size, mean over seeds: 1 means every sample of the class was trained on), and the coverage alarms over all epochs and seeds (a class with data that got no sample in an epoch, or a proportion below one sample per batch; each is in the records).\n"
        );
        let _ = writeln!(
            s,
            "| strategy | {} | alarms |\n|---|{}---|",
            c.class_names.join(" | "),
            "---|".repeat(c.class_names.len())
        );
        for x in &c.strategies {
            let cells: Vec<String> = x.final_coverage.iter().map(|v| format!("{v:.3}")).collect();
            let _ = writeln!(
                s,
                "| {} | {} | {} |",
                x.strategy,
                cells.join(" | "),
                x.coverage_alarms
            );
        }
        let _ = writeln!(s);
    }
    let Some(target) = c.target else {
        return s;
    };
    let _ = writeln!(
        s,
        "## Epochs to a common target\n\nTarget: test {metric} {} {} — the best seed-mean value that every strategy reaches, so each reaches it; the question is when.\n",
        if direction == Direction::LowerIsBetter {
            "<="
        } else {
            ">="
        },
        fmt(target)
    );
    let _ = writeln!(
        s,
        "| strategy | epoch (seed mean) | per seed | training seconds to the target (seeds that reach it) |"
    );
    let _ = writeln!(s, "|---|---|---|---|");
    for x in &c.strategies {
        let per_seed: Vec<String> = x
            .epochs_to_target_per_seed
            .iter()
            .map(|e| e.map_or("never".into(), |e| e.to_string()))
            .collect();
        let seconds = x.seconds_to_target.as_ref().map_or("-".to_string(), |m| {
            format!("{} ({} of {})", cell(m), m.n, x.seeds.len())
        });
        let _ = writeln!(
            s,
            "| {} | {} | {} | {seconds} |",
            x.strategy,
            x.epochs_to_target.map_or("never".into(), |e| e.to_string()),
            per_seed.join(", ")
        );
    }
    // Verdict against the reference strategy (learn2mix when it ran).
    let Some(reference) = c.strategies.iter().find(|x| x.strategy == c.reference) else {
        return s;
    };
    let r = &c.reference;
    let _ = writeln!(s, "\n## Verdict\n");
    for x in c.strategies.iter().filter(|x| x.strategy != *r) {
        let sentence = match (reference.epochs_to_target, x.epochs_to_target) {
            (Some(a), Some(b)) if a < b => format!(
                "{r} reached the target sooner than {} (epoch {a} against {b}).",
                x.strategy
            ),
            (Some(a), Some(b)) if a > b => format!(
                "{r} reached the target later than {} (epoch {a} against {b}).",
                x.strategy
            ),
            (Some(a), Some(_)) => format!(
                "{r} and {} reached the target at the same epoch ({a}).",
                x.strategy
            ),
            _ => format!(
                "no comparison with {}: a seed-mean curve is missing.",
                x.strategy
            ),
        };
        let paired = match &x.final_minus_reference {
            Some(d) if d.n > 1 => {
                let sign = if (d.mean - d.ci95) > 0.0 || (d.mean + d.ci95) < 0.0 {
                    ""
                } else {
                    " (the interval includes 0: no clear difference)"
                };
                format!(
                    " Final test {metric}, {} minus {r}, paired over seeds: {:+.4} ± {:.4}{sign}.",
                    x.strategy, d.mean, d.ci95
                )
            }
            Some(d) => format!(
                " Final test {metric}, {} minus {r} (one seed): {:+.4}.",
                x.strategy, d.mean
            ),
            None => String::new(),
        };
        let _ = writeln!(s, "- {sentence}{paired}");
    }
    s
}

/// Writes the plots and `report.md` into `dir` (atomically) and returns the report's text.
pub fn write_report(dir: &Path) -> Result<String> {
    write_report_by(dir, Metric::Task)
}

/// [`write_report`], with the tables, target and verdicts judged by `metric`.
pub fn write_report_by(dir: &Path, metric: Metric) -> Result<String> {
    let (cfg, comparison) = load_run_by(dir, metric)?;
    let mut text = markdown(&cfg, &comparison);
    match crate::plots::write_plots(dir, &cfg, &comparison)? {
        Some(files) if !files.is_empty() => {
            let _ = writeln!(text, "\n## Plots\n");
            for (file, caption) in [
                (
                    "test_metric.png",
                    "Test metric per epoch, mean over seeds with a 95% band",
                ),
                (
                    "alpha.png",
                    "learn2mix's class proportions per epoch (mean over seeds)",
                ),
                ("per_class.png", "Final test metric per class"),
            ] {
                if dir.join(file).is_file() {
                    let _ = writeln!(text, "![{caption}]({file})\n");
                }
            }
            let _ = writeln!(text, "Each plot is also written as SVG beside its PNG.");
        }
        Some(_) => {}
        None => {
            let _ = writeln!(
                text,
                "\nNo plots: no TrueType font was found (set L2M_PLOT_FONT to a .ttf file)."
            );
        }
    }
    write_atomic(&l2m_run::Layout::new(dir).report(), text.as_bytes())?;
    Ok(text)
}
