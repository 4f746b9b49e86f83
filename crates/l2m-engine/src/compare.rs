//! Running a comparison: every strategy for every seed, then a summary across seeds.

use serde::{Deserialize, Serialize};

use l2m_core::convergence::{self, Direction, Summary};

use crate::{EpochRecord, ExperimentConfig, Result, RunDir, RunInfo, train_one};

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

/// One strategy's results across seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrategySummary {
    /// Strategy name.
    pub strategy: String,
    /// Final test metric over seeds.
    pub final_test: Summary,
    /// Paired over seeds (same data and initial weights): this strategy's final test
    /// metric minus the reference strategy's (the first configured). `None` for the
    /// reference itself.
    pub final_minus_reference: Option<Summary>,
    /// Final test metric per class, mean over seeds.
    pub final_test_per_class: Vec<f64>,
    /// Best test metric over the epochs, mean over seeds.
    pub best_test: Summary,
    /// Epoch at which the seed-mean test curve first reaches the common target.
    pub epochs_to_target: Option<usize>,
    /// Per seed, the epoch at which its own curve first reaches the common target
    /// (`None` where it never does).
    pub epochs_to_target_per_seed: Vec<Option<usize>>,
    /// Proportions after the last update, mean over seeds.
    pub final_alpha: Vec<f64>,
    /// Per-class loss weights after the last epoch, mean over seeds (Group DRO).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_loss_weights: Option<Vec<f64>>,
    /// Mean wall-clock training seconds per epoch.
    pub train_seconds_per_epoch: f64,
    /// The seed-mean test curve, one value per epoch.
    pub mean_test_curve: Vec<f64>,
}

/// The result of a comparison, as written to `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Experiment name.
    pub experiment: String,
    /// Metric name (for example "MSE").
    pub metric: String,
    /// Whether lower or higher is better.
    pub direction: Direction,
    /// Epochs per run.
    pub epochs: usize,
    /// Seeds run.
    pub seeds: Vec<u64>,
    /// Class names.
    pub class_names: Vec<String>,
    /// Training samples per class (of the first seed).
    pub train_class_sizes: Vec<usize>,
    /// The strategy paired differences are taken against (the first configured).
    pub reference: String,
    /// The common target: the best seed-mean test value that every strategy reaches.
    pub target: Option<f64>,
    /// One entry per strategy, in configuration order.
    pub strategies: Vec<StrategySummary>,
}

/// Refuses a run directory that holds another experiment's configuration, naming the
/// first setting that differs.
fn check_same_config(dir: &RunDir, cfg: &ExperimentConfig) -> Result<()> {
    let path = dir.path().join("config.json");
    if !path.is_file() {
        return Ok(());
    }
    let saved: serde_json::Value = crate::record::read_json(&path)?;
    let ours = serde_json::to_value(cfg).map_err(|source| crate::EngineError::Json {
        path: path.clone(),
        source,
    })?;
    if saved == ours {
        return Ok(());
    }
    let differs = match (&saved, &ours) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            b.iter().find(|(k, v)| a.get(*k) != Some(v)).map(|(k, v)| {
                format!(
                    "{k} is {} there, {v} now",
                    a.get(k).map_or("missing".to_string(), |x| x.to_string())
                )
            })
        }
        _ => None,
    }
    .unwrap_or_else(|| "the configurations differ".into());
    Err(crate::EngineError::Checkpoint(format!(
        "{} holds another experiment ({differs}); choose another output directory",
        dir.path().display()
    )))
}

/// Runs every strategy for every seed of `cfg`, writing records into `dir`, and returns
/// (and writes to `summary.json`) the comparison across seeds.
///
/// A directory that already holds this configuration is resumed: finished runs are read
/// back, interrupted ones continue from their last checkpoint. A directory holding another
/// configuration is refused.
pub fn run_experiment(
    cfg: &ExperimentConfig,
    dir: &RunDir,
    observer: &mut dyn Observer,
) -> Result<Comparison> {
    cfg.validate()?;
    check_same_config(dir, cfg)?;
    dir.write_json("config.json", cfg)?;
    let mut runs: Vec<Vec<(Vec<EpochRecord>, RunInfo)>> = vec![Vec::new(); cfg.strategies.len()];
    for &seed in &cfg.seeds {
        // A seed whose runs all finished needs no data.
        let mut done = Vec::with_capacity(cfg.strategies.len());
        for strategy in &cfg.strategies {
            done.push(crate::finished_run(
                &dir.run_path(strategy.name(), seed)?,
                cfg.epochs,
            )?);
        }
        if done.iter().all(Option::is_some) {
            for ((s, strategy), outcome) in cfg.strategies.iter().enumerate().zip(done) {
                if let Some(o) = outcome {
                    observer.run_started(strategy.name(), seed, cfg.epochs, cfg.epochs);
                    observer.run_finished(strategy.name(), seed);
                    runs[s].push((o.records, o.info));
                }
            }
            continue;
        }
        let data = cfg.dataset.load(&cfg.data_dir, seed, cfg.limit)?;
        observer.data_loaded(seed, &data);
        if let Some(vocab) = &data.vocab {
            let seed_dir = dir.path().join(format!("seed-{seed}"));
            std::fs::create_dir_all(&seed_dir).map_err(|source| crate::EngineError::Io {
                path: seed_dir.clone(),
                source,
            })?;
            crate::write_atomic(&seed_dir.join("vocab.txt"), vocab.to_text().as_bytes())?;
        }
        for (s, strategy) in cfg.strategies.iter().enumerate() {
            let path = dir.run_path(strategy.name(), seed)?;
            let outcome = train_one(cfg, strategy, &data, seed, Some(&path), observer)?;
            runs[s].push((outcome.records, outcome.info));
        }
    }
    let comparison = summarize(cfg, &runs);
    dir.write_json("summary.json", &comparison)?;
    Ok(comparison)
}

fn mean_curve(curves: &[Vec<f64>]) -> Vec<f64> {
    let len = curves.iter().map(Vec::len).min().unwrap_or(0);
    (0..len)
        .map(|e| curves.iter().map(|c| c[e]).sum::<f64>() / curves.len() as f64)
        .collect()
}

fn mean_vec(vs: &[&[f64]]) -> Vec<f64> {
    let len = vs.first().map_or(0, |v| v.len());
    (0..len)
        .map(|i| vs.iter().map(|v| v[i]).sum::<f64>() / vs.len() as f64)
        .collect()
}

fn summarize(cfg: &ExperimentConfig, runs: &[Vec<(Vec<EpochRecord>, RunInfo)>]) -> Comparison {
    let direction = cfg.task.direction();
    let curves: Vec<Vec<Vec<f64>>> = runs
        .iter()
        .map(|seeds| {
            seeds
                .iter()
                .map(|(recs, _)| recs.iter().map(|r| r.test_metric).collect())
                .collect()
        })
        .collect();
    let means: Vec<Vec<f64>> = curves.iter().map(|c| mean_curve(c)).collect();
    let refs: Vec<&[f64]> = means.iter().map(Vec::as_slice).collect();
    let target = convergence::common_target(&refs, direction);
    let empty = Summary {
        n: 0,
        mean: f64::NAN,
        std: f64::NAN,
        ci95: f64::NAN,
    };
    let finals_of = |seed_curves: &[Vec<f64>]| -> Vec<f64> {
        seed_curves
            .iter()
            .filter_map(|c| c.last().copied())
            .collect()
    };
    let reference_finals = curves.first().map(|c| finals_of(c)).unwrap_or_default();
    let strategies = cfg
        .strategies
        .iter()
        .zip(runs)
        .zip(curves.iter().zip(&means))
        .enumerate()
        .map(|(index, ((spec, seeds), (seed_curves, mean)))| {
            let finals = finals_of(seed_curves);
            let diffs: Vec<f64> = finals
                .iter()
                .zip(&reference_finals)
                .map(|(a, b)| a - b)
                .collect();
            let bests: Vec<f64> = seed_curves
                .iter()
                .filter_map(|c| convergence::best(c, direction))
                .collect();
            let last: Vec<&EpochRecord> = seeds.iter().filter_map(|(r, _)| r.last()).collect();
            let per_class: Vec<&[f64]> = last
                .iter()
                .map(|r| r.test_metric_per_class.as_slice())
                .collect();
            let alphas: Vec<&[f64]> = seeds
                .iter()
                .map(|(_, i)| i.final_alpha.as_slice())
                .collect();
            let (secs, epochs) = seeds
                .iter()
                .flat_map(|(r, _)| r)
                .fold((0.0, 0usize), |(s, n), r| (s + r.train_seconds, n + 1));
            StrategySummary {
                strategy: spec.name().to_string(),
                final_test: convergence::summarize(&finals).unwrap_or(empty),
                final_minus_reference: if index == 0 {
                    None
                } else {
                    convergence::summarize(&diffs)
                },
                final_test_per_class: mean_vec(&per_class),
                best_test: convergence::summarize(&bests).unwrap_or(empty),
                epochs_to_target: target
                    .and_then(|t| convergence::epochs_to_target(mean, t, direction)),
                epochs_to_target_per_seed: seed_curves
                    .iter()
                    .map(|c| target.and_then(|t| convergence::epochs_to_target(c, t, direction)))
                    .collect(),
                final_alpha: mean_vec(&alphas),
                final_loss_weights: {
                    let w: Option<Vec<&[f64]>> = seeds
                        .iter()
                        .map(|(_, i)| i.final_loss_weights.as_deref())
                        .collect();
                    w.map(|w| mean_vec(&w))
                },
                train_seconds_per_epoch: if epochs > 0 {
                    secs / epochs as f64
                } else {
                    0.0
                },
                mean_test_curve: mean.clone(),
            }
        })
        .collect();
    let first_info = runs.iter().flat_map(|s| s.first()).map(|(_, i)| i).next();
    Comparison {
        experiment: cfg.name.clone(),
        metric: cfg.task.metric_name().to_string(),
        direction,
        epochs: cfg.epochs,
        seeds: cfg.seeds.clone(),
        class_names: first_info
            .map(|i| i.class_names.clone())
            .unwrap_or_default(),
        train_class_sizes: first_info
            .map(|i| i.train_class_sizes.clone())
            .unwrap_or_default(),
        reference: cfg
            .strategies
            .first()
            .map(|s| s.name().to_string())
            .unwrap_or_default(),
        target,
        strategies,
    }
}
