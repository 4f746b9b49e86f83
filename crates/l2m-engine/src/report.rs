//! Reports of a finished (or interrupted) run directory: the paper's table layout (the
//! test metric at 25%, 50% and 100% of the epochs, mean and 95% confidence interval over
//! seeds), epochs to a common target, and a plain verdict per strategy.

use std::fmt::Write as _;
use std::path::Path;

use l2m_core::convergence::{self, Direction};

use crate::record::read_records;
use crate::{EngineError, ExperimentConfig, Result, write_atomic};

/// One strategy's per-seed curves.
#[derive(Debug, Clone)]
pub struct StrategyCurves {
    /// Strategy name.
    pub strategy: String,
    /// `(seed, test metric per epoch)`.
    pub seeds: Vec<(u64, Vec<f64>)>,
    /// `(seed, alpha per epoch)`.
    pub alpha: Vec<(u64, Vec<Vec<f64>>)>,
    /// Class names.
    pub class_names: Vec<String>,
    /// Last recorded test metric per class, mean over seeds.
    pub final_per_class: Vec<f64>,
}

/// Epochs completed by every seed of every strategy (what a report can cover).
pub fn epochs_done(curves: &[StrategyCurves]) -> usize {
    curves
        .iter()
        .flat_map(|c| c.seeds.iter().map(|(_, v)| v.len()))
        .min()
        .unwrap_or(0)
}

/// Reads `config.json` and every `seed-*/<strategy>/records.jsonl` of a run directory.
pub fn load_run(dir: &Path) -> Result<(ExperimentConfig, Vec<StrategyCurves>)> {
    let cfg_path = dir.join("config.json");
    let bytes = std::fs::read(&cfg_path).map_err(|source| EngineError::Io {
        path: cfg_path.clone(),
        source,
    })?;
    let cfg: ExperimentConfig =
        serde_json::from_slice(&bytes).map_err(|source| EngineError::Json {
            path: cfg_path.clone(),
            source,
        })?;
    let mut curves = Vec::new();
    for spec in &cfg.strategies {
        let mut seeds = Vec::new();
        let mut alpha = Vec::new();
        let mut finals: Vec<Vec<f64>> = Vec::new();
        for &seed in &cfg.seeds {
            let p = dir
                .join(format!("seed-{seed}"))
                .join(spec.name())
                .join("records.jsonl");
            if p.is_file() {
                let recs = read_records(&p)?;
                seeds.push((seed, recs.iter().map(|r| r.test_metric).collect()));
                alpha.push((seed, recs.iter().map(|r| r.alpha.clone()).collect()));
                if let Some(last) = recs.last() {
                    finals.push(last.test_metric_per_class.clone());
                }
            }
        }
        let k = finals.first().map_or(0, Vec::len);
        let final_per_class = (0..k)
            .map(|i| finals.iter().map(|f| f[i]).sum::<f64>() / finals.len() as f64)
            .collect();
        let info_path = dir
            .join(format!("seed-{}", cfg.seeds.first().copied().unwrap_or(0)))
            .join(spec.name())
            .join("run.json");
        let class_names = std::fs::read(&info_path)
            .ok()
            .and_then(|b| serde_json::from_slice::<crate::RunInfo>(&b).ok())
            .map(|i| i.class_names)
            .unwrap_or_else(|| (0..k).map(|i| i.to_string()).collect());
        curves.push(StrategyCurves {
            strategy: spec.name().to_string(),
            seeds,
            alpha,
            class_names,
            final_per_class,
        });
    }
    Ok((cfg, curves))
}

fn fmt(v: f64) -> String {
    if v == 0.0 || (1e-3..1e4).contains(&v.abs()) {
        format!("{v:.4}")
    } else {
        format!("{v:.3e}")
    }
}

/// The markdown report of `cfg`'s run with these curves.
pub fn markdown(cfg: &ExperimentConfig, curves: &[StrategyCurves]) -> String {
    let direction = cfg.task.direction();
    let metric = cfg.task.metric_name();
    let mut s = String::new();
    let _ = writeln!(s, "# {}: learn2mix and the alternatives\n", cfg.name);
    let _ = writeln!(
        s,
        "{}, Adam lr {}, batch {}, {} epochs, seeds {:?}. Test {metric} ({}).\n",
        cfg.model.name(),
        cfg.optimizer.lr,
        cfg.batch_size,
        cfg.epochs,
        cfg.seeds,
        match direction {
            Direction::LowerIsBetter => "lower is better",
            Direction::HigherIsBetter => "higher is better",
        }
    );
    let done = epochs_done(curves);
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
    let points: Vec<usize> = [0.25, 0.5, 1.0]
        .iter()
        .map(|f| ((done as f64 * f).round() as usize).clamp(1, done))
        .collect();
    let _ = writeln!(
        s,
        "| strategy | epoch {} (25%) | epoch {} (50%) | epoch {} (100%) | seeds |",
        points[0], points[1], points[2]
    );
    let _ = writeln!(s, "|---|---|---|---|---|");
    for c in curves {
        let cells: Vec<String> = points
            .iter()
            .map(|&e| {
                let v: Vec<f64> = c.seeds.iter().map(|(_, curve)| curve[e - 1]).collect();
                match convergence::summarize(&v) {
                    Some(m) if m.n > 1 => format!("{} ± {}", fmt(m.mean), fmt(m.ci95)),
                    Some(m) => fmt(m.mean),
                    None => "-".into(),
                }
            })
            .collect();
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            c.strategy,
            cells[0],
            cells[1],
            cells[2],
            c.seeds.len()
        );
    }
    let _ = writeln!(
        s,
        "\nValues are the mean over seeds ± the half-width of a 95% Student-t confidence interval.\n"
    );

    // Epochs to the common target on the seed-mean curves.
    let means: Vec<Vec<f64>> = curves
        .iter()
        .map(|c| {
            (0..done)
                .map(|e| c.seeds.iter().map(|(_, v)| v[e]).sum::<f64>() / c.seeds.len() as f64)
                .collect()
        })
        .collect();
    let refs: Vec<&[f64]> = means.iter().map(Vec::as_slice).collect();
    let Some(target) = convergence::common_target(&refs, direction) else {
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
    let _ = writeln!(s, "| strategy | epoch (seed mean) | per seed |");
    let _ = writeln!(s, "|---|---|---|");
    let reached: Vec<Option<usize>> = means
        .iter()
        .map(|m| convergence::epochs_to_target(m, target, direction))
        .collect();
    for (c, r) in curves.iter().zip(&reached) {
        let per_seed: Vec<String> = c
            .seeds
            .iter()
            .map(|(_, v)| {
                convergence::epochs_to_target(v, target, direction)
                    .map_or("never".into(), |e| e.to_string())
            })
            .collect();
        let _ = writeln!(
            s,
            "| {} | {} | {} |",
            c.strategy,
            r.map_or("never".into(), |e| e.to_string()),
            per_seed.join(", ")
        );
    }
    // Verdict against learn2mix, when it ran.
    if let Some(l) = curves.iter().position(|c| c.strategy == "learn2mix") {
        let _ = writeln!(s, "\n## Verdict\n");
        for (i, c) in curves.iter().enumerate() {
            if i == l {
                continue;
            }
            let sentence = match (reached[l], reached[i]) {
                (Some(a), Some(b)) if a < b => format!(
                    "learn2mix reached the target sooner than {} (epoch {a} against {b}).",
                    c.strategy
                ),
                (Some(a), Some(b)) if a > b => format!(
                    "learn2mix reached the target later than {} (epoch {a} against {b}).",
                    c.strategy
                ),
                (Some(a), Some(_)) => format!(
                    "learn2mix and {} reached the target at the same epoch ({a}).",
                    c.strategy
                ),
                _ => format!(
                    "no comparison with {}: a seed-mean curve is missing.",
                    c.strategy
                ),
            };
            let finals: Vec<f64> = c.seeds.iter().map(|(_, v)| v[done - 1]).collect();
            let l2m: Vec<f64> = curves[l].seeds.iter().map(|(_, v)| v[done - 1]).collect();
            let diffs: Vec<f64> = finals.iter().zip(&l2m).map(|(o, m)| o - m).collect();
            let paired = match convergence::summarize(&diffs) {
                Some(d) if d.n > 1 => {
                    let sign = if (d.mean - d.ci95) > 0.0 || (d.mean + d.ci95) < 0.0 {
                        ""
                    } else {
                        " (the interval includes 0: no clear difference)"
                    };
                    format!(
                        " Final test {metric}, {} minus learn2mix, paired over seeds: {:+.4} ± {:.4}{sign}.",
                        c.strategy, d.mean, d.ci95
                    )
                }
                Some(d) => format!(
                    " Final test {metric}, {} minus learn2mix (one seed): {:+.4}.",
                    c.strategy, d.mean
                ),
                None => String::new(),
            };
            let _ = writeln!(s, "- {sentence}{paired}");
        }
    }
    s
}

/// Writes the plots and `report.md` into `dir` (atomically) and returns the report's text.
pub fn write_report(dir: &Path) -> Result<String> {
    let (cfg, curves) = load_run(dir)?;
    let mut text = markdown(&cfg, &curves);
    match crate::plots::write_plots(dir, &cfg, &curves)? {
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
    write_atomic(&dir.join("report.md"), text.as_bytes())?;
    Ok(text)
}
