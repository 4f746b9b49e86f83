//! Running a comparison: every strategy for every seed, then a summary across seeds.

use l2m_core::convergence::{self, Direction, Summary};

use crate::options::RunOptions;
use crate::{EpochRecord, ExperimentConfig, Result, RunDir, RunInfo, StrategySpec};

pub use crate::metric::Metric;
pub use crate::observer::Observer;
pub use l2m_run::{Comparison, StrategySummary};

/// Refuses a run directory that holds another experiment's configuration, naming the
/// first setting that differs.
fn check_same_config(dir: &RunDir, cfg: &ExperimentConfig) -> Result<()> {
    let path = dir.layout().config();
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
///
/// With several ranks in `opts` ([`crate::collective`]) every rank calls it with the same
/// configuration: rank 0 passes the locked run directory ([`RunDir::create`]) and alone
/// writes there, the other ranks pass [`RunDir::read_only`] of the same path and read it
/// only to resume. Every rank returns the same comparison.
pub fn run_experiment(
    cfg: &ExperimentConfig,
    dir: &RunDir,
    opts: &mut RunOptions<'_>,
) -> Result<Comparison> {
    let comm = opts.comm_ref();
    if (comm.rank() == 0) != dir.writes() {
        return Err(crate::EngineError::Config(format!(
            "rank {} of {}: rank 0, and only rank 0, holds the run directory",
            comm.rank(),
            comm.ranks()
        )));
    }
    let root = dir.path();
    let dir = Some(dir).filter(|d| d.writes());
    cfg.validate()?;
    if let Some(dir) = dir {
        check_same_config(dir, cfg)?;
        crate::record::write_json(&dir.layout().config(), cfg)?;
    }
    let layout = l2m_run::Layout::new(root);
    let run_path = |strategy: &str, seed: u64| -> Result<std::path::PathBuf> {
        match dir {
            Some(d) => d.run_path(strategy, seed),
            None => Ok(layout.run(seed, strategy).dir().to_path_buf()),
        }
    };
    let mut runs: Vec<Vec<(Vec<EpochRecord>, RunInfo)>> = vec![Vec::new(); cfg.strategies.len()];
    for &seed in &cfg.seeds {
        // A seed whose runs all finished needs no data.
        let mut done = Vec::with_capacity(cfg.strategies.len());
        for strategy in &cfg.strategies {
            done.push(crate::finished_run(
                &run_path(strategy.name(), seed)?,
                cfg.epochs,
            )?);
        }
        if done.iter().all(Option::is_some) {
            for ((s, strategy), outcome) in cfg.strategies.iter().enumerate().zip(done) {
                if let Some(o) = outcome {
                    let mut silent = crate::SilentObserver;
                    let observer = opts.observer_mut(&mut silent);
                    observer.run_started(strategy.name(), seed, cfg.epochs, cfg.epochs);
                    observer.run_finished(strategy.name(), seed);
                    runs[s].push((o.records, o.info));
                }
            }
            continue;
        }
        let data = cfg.dataset.load(&cfg.data_dir, seed, cfg.limit)?;
        {
            let mut silent = crate::SilentObserver;
            opts.observer_mut(&mut silent).data_loaded(seed, &data);
        }
        let writes = dir.is_some();
        if writes && (data.vocab.is_some() || data.own.is_some()) {
            let seed_dir = layout.seed(seed);
            std::fs::create_dir_all(&seed_dir).map_err(|source| crate::EngineError::Io {
                path: seed_dir.clone(),
                source,
            })?;
        }
        if let (true, Some(vocab)) = (writes, &data.vocab) {
            crate::write_atomic(&layout.vocab(seed), vocab.to_text().as_bytes())?;
        }
        if let (true, Some(own)) = (writes, &data.own) {
            crate::record::write_json(&layout.preprocessing(seed), &own.preprocessing)?;
        }
        for (s, strategy) in cfg.strategies.iter().enumerate() {
            let path = run_path(strategy.name(), seed)?;
            let outcome = crate::train(cfg, strategy, &data, seed, Some(&path), opts)?;
            runs[s].push((outcome.records, outcome.info));
        }
    }
    let comparison = summarize(cfg, &runs, opts);
    if let Some(dir) = dir {
        crate::record::write_json(&dir.layout().summary(), &comparison)?;
        crate::write_atomic(
            &dir.layout().per_class(),
            crate::per_class::per_class_csv(&comparison)?.as_bytes(),
        )?;
    }
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

/// The strategy paired differences are taken against: learn2mix (the first strategy of
/// that kind) when it runs, otherwise the first configured. The table, the report and the
/// plots all use this one choice.
pub fn reference_index(cfg: &ExperimentConfig) -> usize {
    cfg.strategies
        .iter()
        .position(StrategySpec::is_reference)
        .unwrap_or(0)
}

/// One strategy-seed run's records and facts, as the summary reads them.
pub type SeedRun = (Vec<EpochRecord>, RunInfo);

/// The comparison across seeds of `runs` (per strategy in configuration order, the seeds
/// that have records), judged by the metric of `opts` against its reference strategy.
pub fn summarize(
    cfg: &ExperimentConfig,
    runs: &[Vec<SeedRun>],
    opts: &RunOptions<'_>,
) -> Comparison {
    let reference = opts
        .reference_index()
        .unwrap_or_else(|| reference_index(cfg));
    summarize_against(cfg, runs, opts.metric_kind(), reference)
}

/// [`summarize`] with paired differences taken against the strategy at `reference` (an
/// index into `cfg.strategies`).
fn summarize_against(
    cfg: &ExperimentConfig,
    runs: &[Vec<SeedRun>],
    metric: Metric,
    reference: usize,
) -> Comparison {
    let direction = match metric {
        Metric::BalancedAccuracy | Metric::MacroF1 => Direction::HigherIsBetter,
        Metric::Task | Metric::WorstClass => cfg.task.direction(),
    };
    let done = runs
        .iter()
        .flatten()
        .map(|(r, _)| r.len())
        .min()
        .unwrap_or(0);
    let curves: Vec<Vec<(u64, Vec<f64>)>> = runs
        .iter()
        .map(|seeds| {
            seeds
                .iter()
                .map(|(recs, info)| {
                    (
                        info.seed,
                        recs.iter()
                            .take(done)
                            .map(|r| metric.of(r).unwrap_or(f64::NAN))
                            .collect(),
                    )
                })
                .collect()
        })
        .collect();
    let means: Vec<Vec<f64>> = curves
        .iter()
        .map(|c| mean_curve(&c.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>()))
        .collect();
    let refs: Vec<&[f64]> = means.iter().map(Vec::as_slice).collect();
    let target = if done > 0 {
        convergence::common_target(&refs, direction)
    } else {
        None
    };
    let empty = Summary {
        n: 0,
        mean: f64::NAN,
        std: f64::NAN,
        ci95: f64::NAN,
    };
    let reference = reference.min(runs.len().saturating_sub(1));
    let at = |seed_curves: &[(u64, Vec<f64>)], epoch: usize| -> Vec<(u64, f64)> {
        seed_curves
            .iter()
            .filter_map(|(s, c)| c.get(epoch.wrapping_sub(1)).map(|v| (*s, *v)))
            .collect()
    };
    let reference_finals = curves
        .get(reference)
        .map(|c| at(c, done))
        .unwrap_or_default();
    let points: Vec<usize> = if done == 0 {
        Vec::new()
    } else {
        [0.25, 0.5, 1.0]
            .iter()
            .map(|f| ((done as f64 * f).round() as usize).clamp(1, done))
            .collect()
    };
    let strategies = cfg
        .strategies
        .iter()
        .zip(runs)
        .zip(curves.iter().zip(&means))
        .enumerate()
        .map(|(index, ((spec, seeds), (seed_curves, mean)))| {
            let finals = at(seed_curves, done);
            let values: Vec<f64> = finals.iter().map(|(_, v)| *v).collect();
            let diffs: Vec<f64> = finals
                .iter()
                .filter_map(|(s, v)| {
                    reference_finals
                        .iter()
                        .find(|(r, _)| r == s)
                        .map(|(_, r)| v - r)
                })
                .collect();
            let bests: Vec<f64> = seed_curves
                .iter()
                .filter_map(|(_, c)| convergence::best(c, direction))
                .collect();
            let last: Vec<&EpochRecord> = seeds
                .iter()
                .filter_map(|(r, _)| r.get(done.wrapping_sub(1)))
                .collect();
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
                .flat_map(|(r, _)| r.iter().take(done))
                .fold((0.0, 0usize), |(s, n), r| (s + r.train_seconds, n + 1));
            let over_seeds = |f: fn(&EpochRecord) -> Option<f64>| -> Option<Summary> {
                let v: Option<Vec<f64>> = last.iter().map(|r| f(r)).collect();
                v.and_then(|v| convergence::summarize(&v))
            };
            StrategySummary {
                strategy: spec.name().to_string(),
                final_test: convergence::summarize(&values).unwrap_or(empty),
                final_worst_class: over_seeds(|r| r.test_worst_class),
                final_balanced_accuracy: over_seeds(|r| r.test_balanced_accuracy),
                final_macro_f1: over_seeds(|r| r.test_macro_f1),
                final_minus_reference: if index == reference {
                    None
                } else {
                    convergence::summarize(&diffs)
                },
                test_at: points
                    .iter()
                    .map(|&e| {
                        let v: Vec<f64> = at(seed_curves, e).into_iter().map(|(_, v)| v).collect();
                        (e, convergence::summarize(&v).unwrap_or(empty))
                    })
                    .collect(),
                final_test_per_class: mean_vec(&per_class),
                best_test: convergence::summarize(&bests).unwrap_or(empty),
                epochs_to_target: target
                    .and_then(|t| convergence::epochs_to_target(mean, t, direction)),
                epochs_to_target_per_seed: seed_curves
                    .iter()
                    .map(|(_, c)| {
                        target.and_then(|t| convergence::epochs_to_target(c, t, direction))
                    })
                    .collect(),
                seconds_to_target: {
                    let secs: Vec<f64> = seeds
                        .iter()
                        .zip(seed_curves)
                        .filter_map(|((recs, _), (_, c))| {
                            let e = target
                                .and_then(|t| convergence::epochs_to_target(c, t, direction))?;
                            Some(recs.iter().take(e).map(|r| r.train_seconds).sum())
                        })
                        .collect();
                    convergence::summarize(&secs)
                },
                final_coverage: {
                    let fractions: Vec<Vec<f64>> = seeds
                        .iter()
                        .filter_map(|(recs, info)| {
                            let r = recs.get(done.wrapping_sub(1))?;
                            (!r.train_distinct_per_class.is_empty()).then(|| {
                                let sizes = if info.trained_class_sizes.is_empty() {
                                    &info.train_class_sizes
                                } else {
                                    &info.trained_class_sizes
                                };
                                r.train_distinct_per_class
                                    .iter()
                                    .zip(sizes)
                                    .map(|(&d, &n)| d as f64 / n.max(1) as f64)
                                    .collect()
                            })
                        })
                        .collect();
                    let refs: Vec<&[f64]> = fractions.iter().map(Vec::as_slice).collect();
                    mean_vec(&refs)
                },
                coverage_alarms: seeds
                    .iter()
                    .flat_map(|(r, _)| r.iter().take(done))
                    .map(|r| r.coverage_alarms.len())
                    .sum(),
                seeds: seed_curves.iter().map(|(s, _)| *s).collect(),
                final_alpha: mean_vec(&alphas),
                final_loss_weights: {
                    let w: Option<Vec<&[f64]>> = seeds
                        .iter()
                        .map(|(_, i)| i.final_loss_weights.as_deref())
                        .collect();
                    w.filter(|w| !w.is_empty()).map(|w| mean_vec(&w))
                },
                train_seconds_per_epoch: if epochs > 0 {
                    secs / epochs as f64
                } else {
                    0.0
                },
                mean_test_curve: mean.clone(),
                test_curve_ci95: (1..=done)
                    .map(|e| {
                        let v: Vec<f64> = at(seed_curves, e).into_iter().map(|(_, v)| v).collect();
                        convergence::summarize(&v).map_or(0.0, |s| s.ci95)
                    })
                    .collect(),
                mean_alpha_curve: (0..done)
                    .map(|e| {
                        let a: Vec<&[f64]> =
                            seeds.iter().map(|(r, _)| r[e].alpha.as_slice()).collect();
                        mean_vec(&a)
                    })
                    .collect(),
            }
        })
        .collect();
    let first_info = runs.iter().flat_map(|s| s.first()).map(|(_, i)| i).next();
    Comparison {
        schema: l2m_run::SUMMARY_SCHEMA,
        experiment: cfg.name.clone(),
        metric: metric.name(cfg.task),
        direction,
        epochs: cfg.epochs,
        epochs_done: done,
        seeds: cfg.seeds.clone(),
        class_names: first_info
            .map(|i| i.class_names.clone())
            .unwrap_or_default(),
        train_class_sizes: first_info
            .map(|i| i.train_class_sizes.clone())
            .unwrap_or_default(),
        reference: cfg
            .strategies
            .get(reference)
            .map(|s| s.name().to_string())
            .unwrap_or_default(),
        target,
        strategies,
    }
}
