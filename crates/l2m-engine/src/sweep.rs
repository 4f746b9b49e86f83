//! Sweeps: a grid of values of one or more numeric strategy options (learn2mix's `gamma`,
//! `eta`, `floor`, ...), every point paired with a reference strategy on the same seeds.
//!
//! A sweep directory holds one ordinary run directory per point
//! (`points/<option>=<value>[+...]/`) and one for the reference (`reference/`). Each is
//! resumed when present, so an interrupted sweep continues where it stopped and a grid
//! extended by a value trains only the new point. Initial weights depend only on the seed,
//! so every point and the reference start from the same weights on the same data: their
//! differences are paired by seed.
//!
//! [`summarise`] reads the directories back into a [`SweepSummary`] (final metric, paired
//! difference to the reference and epochs to the common target per point, the best point
//! and the points within noise of it), and [`write_outputs`] writes `sweep.md`,
//! `sweep.json` and the plots.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use l2m_core::convergence::{self, Direction, Summary};
use serde::{Deserialize, Serialize};

use crate::compare::{Metric, Observer, SeedRun, run_experiment, summarize};
use crate::options::RunOptions;
use crate::record::RunDir;
use crate::report::load_seed_runs;
use crate::{EngineError, ExperimentConfig, Result, StrategySpec, write_atomic};

/// The most points one sweep may have.
pub const MAX_POINTS: usize = 400;

/// One swept option and its values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Axis {
    /// The strategy option (`gamma`, `eta`, `floor`, ...).
    pub option: String,
    /// Its values, in the order given.
    pub values: Vec<f64>,
}

/// What to sweep.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// The experiment every point runs (its seeds, epochs, data and model); its
    /// strategies are replaced by each point's.
    pub base: ExperimentConfig,
    /// The strategy whose options are swept (for example learn2mix, or
    /// `learn2mix:rule=eg`).
    pub strategy: StrategySpec,
    /// The strategy every point is compared with, on the same seeds.
    pub reference: StrategySpec,
    /// The swept options (the grid is their product).
    pub axes: Vec<Axis>,
    /// The metric the summary judges by.
    pub metric: Metric,
}

/// One point of the grid.
#[derive(Debug, Clone)]
pub struct Point {
    /// One value per axis.
    pub values: Vec<f64>,
    /// The strategy with these values, labelled `option=value[+...]`.
    pub spec: StrategySpec,
}

/// A number as it appears in labels and tables: the shortest form that reads back the same.
fn number(v: f64) -> String {
    let s = format!("{v}");
    if s.len() > 12 { format!("{v:.6e}") } else { s }
}

impl Sweep {
    /// Checks the axes: at least one, each a distinct option the strategy has, with
    /// distinct finite values, at most [`MAX_POINTS`] points in all.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| EngineError::Config(format!("sweep: {m}"));
        if self.axes.is_empty() {
            return Err(bad(
                "name at least one option to sweep (for example --gamma 0.01,0.1,1)".into(),
            ));
        }
        let mut total: usize = 1;
        for (i, a) in self.axes.iter().enumerate() {
            if self.axes[..i].iter().any(|b| b.option == a.option) {
                return Err(bad(format!("the option {} is swept twice", a.option)));
            }
            if !self.strategy.has_option(&a.option) {
                // Options at their default may be left out of the JSON: try setting it.
                let mut probe = self.strategy.clone();
                let value = a.values.first().copied().unwrap_or(0.0);
                if let Err(e) = probe.set_option(&a.option, serde_json::json!(value)) {
                    let e = e.to_string();
                    if e.contains("unknown field") {
                        return Err(bad(format!(
                            "{} has no option {:?} ({e})",
                            self.strategy.kind(),
                            a.option
                        )));
                    }
                }
            }
            if a.values.is_empty() {
                return Err(bad(format!("{}: no values", a.option)));
            }
            if let Some(v) = a.values.iter().find(|v| !v.is_finite()) {
                return Err(bad(format!("{}: {v} is not a finite number", a.option)));
            }
            for (j, v) in a.values.iter().enumerate() {
                if a.values[..j].contains(v) {
                    return Err(bad(format!("{}: the value {v} is given twice", a.option)));
                }
            }
            total = total.saturating_mul(a.values.len());
        }
        if total > MAX_POINTS {
            return Err(bad(format!(
                "{total} points, more than the {MAX_POINTS} a sweep may have"
            )));
        }
        Ok(())
    }

    /// Every point of the grid (the first axis varies slowest), each strategy validated
    /// with its values: a value the strategy refuses is an error naming it.
    pub fn points(&self) -> Result<Vec<Point>> {
        self.validate()?;
        let mut points: Vec<Vec<f64>> = vec![Vec::new()];
        for a in &self.axes {
            points = points
                .into_iter()
                .flat_map(|p| {
                    a.values.iter().map(move |v| {
                        let mut q = p.clone();
                        q.push(*v);
                        q
                    })
                })
                .collect();
        }
        points
            .into_iter()
            .map(|values| {
                let mut spec = self.strategy.clone();
                let mut label = Vec::new();
                for (a, v) in self.axes.iter().zip(&values) {
                    spec.set_option(&a.option, serde_json::json!(v))
                        .map_err(|e| {
                            EngineError::Config(format!("sweep: {}={}: {e}", a.option, number(*v)))
                        })?;
                    label.push(format!("{}={}", a.option, number(*v)));
                }
                spec.set_label(&label.join("+"))?;
                Ok(Point { values, spec })
            })
            .collect()
    }

    fn config_with(&self, spec: &StrategySpec) -> ExperimentConfig {
        let mut cfg = self.base.clone();
        cfg.strategies = vec![spec.clone()];
        cfg
    }

    /// The run directory of a point.
    pub fn point_dir(out: &Path, point: &Point) -> PathBuf {
        out.join("points").join(point.spec.name())
    }

    /// The run directory of the reference.
    pub fn reference_dir(out: &Path) -> PathBuf {
        out.join("reference")
    }

    /// Every run of the sweep: the reference first, then the points.
    pub fn runs(&self, out: &Path) -> Result<Vec<(PathBuf, ExperimentConfig)>> {
        let mut v = vec![(Self::reference_dir(out), self.config_with(&self.reference))];
        for p in self.points()? {
            v.push((Self::point_dir(out, &p), self.config_with(&p.spec)));
        }
        Ok(v)
    }
}

/// Runs (or resumes) every run of `sweep` under `out`, then summarises and writes
/// `sweep.md`, `sweep.json` and the plots there.
pub fn run_sweep(sweep: &Sweep, out: &Path, observer: &mut dyn Observer) -> Result<SweepSummary> {
    let runs = sweep.runs(out)?;
    claim(out)?;
    for (dir, cfg) in &runs {
        let run_dir = RunDir::create(dir)?;
        run_experiment(
            cfg,
            &run_dir,
            &mut RunOptions::new().observer(&mut *observer),
        )?;
    }
    let summary = summarise(sweep, out)?;
    write_outputs(out, &summary)?;
    Ok(summary)
}

/// The marker of a sweep directory.
const MARKER: &str = ".l2m-sweep";

/// Makes `out` a sweep directory: created with its marker, or already one. A folder that
/// exists, holds files and has no marker is someone else's: refused, never written into.
fn claim(out: &Path) -> Result<()> {
    let io = |source| EngineError::Io {
        path: out.to_path_buf(),
        source,
    };
    let marker = out.join(MARKER);
    if out.exists() && !marker.is_file() {
        let mut entries = std::fs::read_dir(out).map_err(io)?;
        if entries.next().is_some() {
            return Err(EngineError::Config(format!(
                "{} exists and is not a sweep directory of l2m (no {MARKER} in it): choose another --out",
                out.display()
            )));
        }
    }
    std::fs::create_dir_all(out).map_err(io)?;
    if !marker.is_file() {
        write_atomic(&marker, b"l2m sweep directory\n")?;
    }
    Ok(())
}

/// A point's (or the reference's) figures over seeds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PointSummary {
    /// The run's label (`gamma=0.1`, or the reference's name).
    pub label: String,
    /// One value per axis (empty for the reference).
    pub values: Vec<f64>,
    /// Final test metric.
    pub final_metric: Summary,
    /// Paired over seeds: this point's final metric minus the reference's.
    pub minus_reference: Option<Summary>,
    /// Epochs until each seed's curve first reaches the common target, over the seeds
    /// that reach it.
    pub epochs_to_target: Option<Summary>,
    /// How many seeds reach the target.
    pub reached: usize,
    /// Seeds summarised.
    pub seeds: usize,
    /// Training seconds until the target, over the seeds that reach it.
    pub seconds_to_target: Option<Summary>,
    /// Paired over seeds: this point's final metric minus the best point's.
    #[serde(default)]
    pub minus_best: Option<Summary>,
}

/// A sweep's summary: what `sweep.md` and `sweep.json` hold.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepSummary {
    /// The experiment.
    pub experiment: String,
    /// The swept strategy's kind.
    pub strategy: String,
    /// The swept options.
    pub axes: Vec<Axis>,
    /// The metric's name.
    pub metric: String,
    /// Whether lower or higher is better.
    pub direction: Direction,
    /// Epochs every run completed (what the figures cover).
    pub epochs_done: usize,
    /// Epochs configured.
    pub epochs: usize,
    /// The common target every point's and the reference's mean curve reaches.
    pub target: Option<f64>,
    /// The reference.
    pub reference: PointSummary,
    /// Every point, in grid order.
    pub points: Vec<PointSummary>,
    /// The index of the best point by final metric.
    pub best: Option<usize>,
    /// The best point and those whose paired difference to it has a 95% interval that
    /// includes 0.
    pub flat: Vec<usize>,
}

fn over_seeds(c: &crate::StrategySummary, seeds: usize) -> PointSummary {
    let epochs: Vec<f64> = c
        .epochs_to_target_per_seed
        .iter()
        .flatten()
        .map(|&e| e as f64)
        .collect();
    PointSummary {
        label: c.strategy.clone(),
        values: Vec::new(),
        final_metric: c.final_test,
        minus_reference: c.final_minus_reference,
        epochs_to_target: convergence::summarize(&epochs),
        reached: epochs.len(),
        seeds,
        seconds_to_target: c.seconds_to_target,
        minus_best: None,
    }
}

/// Each seed's final value of `metric` after `done` epochs.
fn finals(runs: &[SeedRun], metric: Metric, done: usize) -> Vec<(u64, f64)> {
    runs.iter()
        .filter_map(|(r, info)| {
            r.get(done.wrapping_sub(1))
                .and_then(|r| metric.of(r))
                .map(|v| (info.seed, v))
        })
        .collect()
}

/// Paired over the seeds both have: `a` minus `b`.
fn paired(a: &[(u64, f64)], b: &[(u64, f64)]) -> Option<Summary> {
    let d: Vec<f64> = a
        .iter()
        .filter_map(|(s, v)| b.iter().find(|(t, _)| t == s).map(|(_, w)| v - w))
        .collect();
    convergence::summarize(&d)
}

/// Reads every run of `sweep` under `out` back (what has been trained so far) and
/// summarises it.
pub fn summarise(sweep: &Sweep, out: &Path) -> Result<SweepSummary> {
    let points = sweep.points()?;
    let mut cfg = sweep.base.clone();
    cfg.strategies = std::iter::once(sweep.reference.clone())
        .chain(points.iter().map(|p| p.spec.clone()))
        .collect();
    let mut runs: Vec<Vec<SeedRun>> = Vec::new();
    for (dir, _) in sweep.runs(out)? {
        let (_, mut r) = load_seed_runs(&dir)?;
        runs.push(r.pop().unwrap_or_default());
    }
    let c = summarize(
        &cfg,
        &runs,
        &RunOptions::new().metric(sweep.metric).reference(0),
    );
    let seeds = |i: usize| runs.get(i).map_or(0, Vec::len);
    let reference = over_seeds(&c.strategies[0], seeds(0));
    let summaries: Vec<PointSummary> = c.strategies[1..]
        .iter()
        .zip(&points)
        .enumerate()
        .map(|(i, (s, p))| PointSummary {
            values: p.values.clone(),
            ..over_seeds(s, seeds(i + 1))
        })
        .collect();
    let best = summaries
        .iter()
        .enumerate()
        .filter(|(_, p)| p.final_metric.mean.is_finite())
        .min_by(|a, b| {
            let key = |p: &PointSummary| match c.direction {
                Direction::LowerIsBetter => p.final_metric.mean,
                Direction::HigherIsBetter => -p.final_metric.mean,
            };
            key(a.1).total_cmp(&key(b.1))
        })
        .map(|(i, _)| i);
    // Within noise of the best: the paired difference to it (same seeds, same initial
    // weights) has a 95% interval that includes 0. With one seed there is no interval, and
    // only the best itself is listed.
    let mut summaries = summaries;
    let mut flat = Vec::new();
    if let Some(b) = best {
        let per_seed: Vec<Vec<(u64, f64)>> = runs[1..]
            .iter()
            .map(|r| finals(r, sweep.metric, c.epochs_done))
            .collect();
        for (i, p) in summaries.iter_mut().enumerate() {
            if i == b {
                flat.push(i);
                continue;
            }
            p.minus_best = paired(&per_seed[i], &per_seed[b]);
            if let Some(d) = &p.minus_best
                && d.n >= 2
                && d.ci95.is_finite()
                && d.mean.abs() <= d.ci95
            {
                flat.push(i);
            }
        }
    }
    Ok(SweepSummary {
        experiment: sweep.base.name.clone(),
        strategy: sweep.strategy.name().to_string(),
        axes: sweep.axes.clone(),
        metric: c.metric.clone(),
        direction: c.direction,
        epochs_done: c.epochs_done,
        epochs: c.epochs,
        target: c.target,
        reference,
        points: summaries,
        best,
        flat,
    })
}

fn fmt(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e4).contains(&a) {
        format!("{v:.3e}")
    } else {
        format!("{v:.4}")
    }
}

fn cell(s: &Summary) -> String {
    if s.n == 0 || !s.mean.is_finite() {
        "-".into()
    } else {
        format!("{} ± {}", fmt(s.mean), fmt(s.ci95))
    }
}

fn epochs_cell(p: &PointSummary) -> String {
    match &p.epochs_to_target {
        Some(e) if p.reached == p.seeds => format!("{:.1} ± {:.1}", e.mean, e.ci95),
        Some(e) => format!(
            "{:.1} ± {:.1} ({}/{} seeds)",
            e.mean, e.ci95, p.reached, p.seeds
        ),
        None => format!("never (0/{} seeds)", p.seeds),
    }
}

/// Whether the 95% interval of a paired difference excludes 0, and which way.
fn verdict(d: &Summary, direction: Direction, reference: &str) -> String {
    if d.n < 2 || !d.ci95.is_finite() {
        return "one seed: no interval".into();
    }
    if d.mean - d.ci95 <= 0.0 && d.mean + d.ci95 >= 0.0 {
        return "no clear difference".into();
    }
    let better = match direction {
        Direction::LowerIsBetter => d.mean < 0.0,
        Direction::HigherIsBetter => d.mean > 0.0,
    };
    if better {
        format!("better than {reference}")
    } else {
        format!("worse than {reference}")
    }
}

impl SweepSummary {
    fn label_of(&self, values: &[f64]) -> String {
        self.axes
            .iter()
            .zip(values)
            .map(|(a, v)| format!("{} = {}", a.option, number(*v)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `sweep.md`.
    pub fn markdown(&self, plots: &[String]) -> String {
        let mut s = String::new();
        let names: Vec<&str> = self.axes.iter().map(|a| a.option.as_str()).collect();
        let _ = writeln!(
            s,
            "# Sweep of {} on {}: {}\n",
            self.strategy,
            self.experiment,
            names.join(" x ")
        );
        let better = match self.direction {
            Direction::LowerIsBetter => "lower is better",
            Direction::HigherIsBetter => "higher is better",
        };
        let _ = writeln!(
            s,
            "Test {} after {} of {} epochs ({better}), mean ± 95% CI over {} seeds; every point is paired with **{}** on the same seeds and initial weights. A point is within noise of the best when its paired difference to the best has a 95% interval that includes 0. Common target: {}.\n",
            self.metric,
            self.epochs_done,
            self.epochs,
            self.reference.seeds,
            self.reference.label,
            self.target.map_or("-".into(), fmt)
        );
        let _ = writeln!(
            s,
            "| point | final {} | minus {} (paired) | verdict | minus the best (paired) | epochs to target | seconds to target |",
            self.metric, self.reference.label
        );
        let _ = writeln!(s, "|---|---:|---:|---|---:|---:|---:|");
        for (i, p) in self.points.iter().enumerate() {
            let mark = if Some(i) == self.best {
                " **(best)**"
            } else if self.flat.contains(&i) {
                " (within noise of the best)"
            } else {
                ""
            };
            let _ = writeln!(
                s,
                "| {}{mark} | {} | {} | {} | {} | {} | {} |",
                self.label_of(&p.values),
                cell(&p.final_metric),
                p.minus_reference.as_ref().map_or("-".into(), cell),
                p.minus_reference.as_ref().map_or("-".into(), |d| verdict(
                    d,
                    self.direction,
                    &self.reference.label
                )),
                p.minus_best.as_ref().map_or("-".into(), cell),
                epochs_cell(p),
                p.seconds_to_target.as_ref().map_or("-".into(), cell)
            );
        }
        let r = &self.reference;
        let _ = writeln!(
            s,
            "| {} (reference) | {} | - | - | - | {} | {} |\n",
            r.label,
            cell(&r.final_metric),
            epochs_cell(r),
            r.seconds_to_target.as_ref().map_or("-".into(), cell)
        );
        if self.axes.len() == 2 {
            s.push_str(&self.grid());
        }
        for p in plots {
            let _ = writeln!(s, "![{p}]({p})\n");
        }
        s.push_str("## Recommendation\n\n");
        s.push_str(&self.recommendation());
        s.push('\n');
        s
    }

    /// Two axes: the final metric as a table, rows the first option, columns the second.
    fn grid(&self) -> String {
        let (a, b) = (&self.axes[0], &self.axes[1]);
        let mut s = format!(
            "Final {} by {} (rows) and {} (columns):\n\n",
            self.metric, a.option, b.option
        );
        let _ = write!(s, "| {} \\ {} |", a.option, b.option);
        for v in &b.values {
            let _ = write!(s, " {} |", number(*v));
        }
        let _ = write!(s, "\n|---|");
        for _ in &b.values {
            s.push_str("---:|");
        }
        s.push('\n');
        for (r, va) in a.values.iter().enumerate() {
            let _ = write!(s, "| {} |", number(*va));
            for c in 0..b.values.len() {
                let p = &self.points[r * b.values.len() + c];
                let _ = write!(s, " {} |", cell(&p.final_metric));
            }
            s.push('\n');
        }
        s.push('\n');
        s
    }

    /// A plain recommendation from what was measured.
    pub fn recommendation(&self) -> String {
        let Some(b) = self.best else {
            return "No point has a finished epoch yet: nothing to recommend.\n".into();
        };
        let best = &self.points[b];
        let mut s = format!(
            "The best final {} is at {} ({}).",
            self.metric,
            self.label_of(&best.values),
            cell(&best.final_metric)
        );
        if self.axes.len() == 1 {
            let values: Vec<f64> = self
                .flat
                .iter()
                .map(|&i| self.points[i].values[0])
                .collect();
            let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let option = &self.axes[0].option;
            if self.flat.len() == self.points.len() {
                let _ = write!(
                    s,
                    " Every value tried is within noise of it: on this experiment the result is insensitive to {option} between {} and {}, and any of them will do.",
                    number(lo),
                    number(hi)
                );
            } else if self.flat.len() > 1 {
                // A contiguous run of the sorted values reads as a range; otherwise list them.
                let mut all: Vec<f64> = self.points.iter().map(|p| p.values[0]).collect();
                all.sort_by(f64::total_cmp);
                let inside = all.iter().filter(|v| (lo..=hi).contains(*v)).count();
                if inside == values.len() {
                    let _ = write!(
                        s,
                        " Values of {option} from {} to {} are within noise of it (paired over seeds, the 95% interval of their difference to it includes 0): choose within that range; the values outside it are measurably worse.",
                        number(lo),
                        number(hi)
                    );
                } else {
                    let mut listed = values.clone();
                    listed.sort_by(f64::total_cmp);
                    let listed: Vec<String> = listed.into_iter().map(number).collect();
                    let _ = write!(
                        s,
                        " The values of {option} within noise of it (paired over seeds) are {}, not a contiguous range: the response is noisy here, and more seeds would sharpen it.",
                        listed.join(", ")
                    );
                }
            } else {
                if best.final_metric.n < 2 {
                    s.push_str(
                        " With one seed there are no intervals: run more seeds before choosing.",
                    );
                } else {
                    let _ = write!(
                        s,
                        " Every other value is measurably worse (paired over seeds): {option} matters here, and {} is the value to use.",
                        number(best.values[0])
                    );
                }
            }
        } else {
            let _ = write!(
                s,
                " {} of the {} points are within noise of it.",
                self.flat.len(),
                self.points.len()
            );
        }
        match &best.minus_reference {
            Some(d) => {
                let v = verdict(d, self.direction, &self.reference.label);
                let _ = write!(
                    s,
                    " Against {} on the same seeds, the best point's paired difference is {}: {v}.",
                    self.reference.label,
                    cell(d)
                );
                if v == "no clear difference" {
                    s.push_str(" (With the best point chosen after the fact, a small advantage is expected by chance alone.)");
                }
            }
            None => s.push_str(" The reference has no finished runs to compare with."),
        }
        s.push('\n');
        s
    }
}

/// Writes `sweep.json`, the plots and `sweep.md` into `out`.
pub fn write_outputs(out: &Path, summary: &SweepSummary) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let json = serde_json::to_vec_pretty(summary).map_err(|source| EngineError::Json {
        path: out.join("sweep.json"),
        source,
    })?;
    write_atomic(&out.join("sweep.json"), &json)?;
    written.push(out.join("sweep.json"));
    let mut plots: Vec<String> = Vec::new();
    if summary.axes.len() == 1 {
        let axis = &summary.axes[0];
        // Values spanning more than a factor of 10 are plotted on log10.
        let positive = axis.values.iter().all(|v| *v > 0.0);
        let (lo, hi) = axis
            .values
            .iter()
            .fold((f64::INFINITY, 0f64), |(a, b), v| (a.min(*v), b.max(*v)));
        let log = positive && hi / lo >= 10.0;
        let x = |v: f64| if log { v.log10() } else { v };
        let x_label = if log {
            format!("log10 {}", axis.option)
        } else {
            axis.option.clone()
        };
        let mut order: Vec<usize> = (0..summary.points.len()).collect();
        order.sort_by(|a, b| summary.points[*a].values[0].total_cmp(&summary.points[*b].values[0]));
        let line = |f: &dyn Fn(&PointSummary) -> Option<Summary>| -> Vec<(f64, f64, f64)> {
            order
                .iter()
                .filter_map(|&i| {
                    let p = &summary.points[i];
                    f(p).filter(|s| s.mean.is_finite()).map(|s| {
                        (
                            x(p.values[0]),
                            s.mean,
                            if s.ci95.is_finite() { s.ci95 } else { 0.0 },
                        )
                    })
                })
                .collect()
        };
        let finals = line(&|p| Some(p.final_metric));
        let xs: Vec<f64> = finals.iter().map(|p| p.0).collect();
        let r = summary.reference.final_metric;
        let reference: Vec<(f64, f64, f64)> = xs
            .iter()
            .map(|&v| (v, r.mean, if r.ci95.is_finite() { r.ci95 } else { 0.0 }))
            .collect();
        let title = format!(
            "{}: final {} against {}",
            summary.experiment, summary.metric, axis.option
        );
        let series = vec![
            (summary.strategy.clone(), finals),
            (
                format!("{} (reference)", summary.reference.label),
                reference,
            ),
        ];
        if let Some(files) = crate::plots::write_sweep_lines(
            out,
            "sweep-final",
            &title,
            &x_label,
            &summary.metric,
            &series,
        )? {
            plots.push("sweep-final.svg".into());
            written.extend(files);
        }
        let epochs = line(&|p| p.epochs_to_target);
        if !epochs.is_empty() {
            let title = format!(
                "{}: epochs to the common target against {}",
                summary.experiment, axis.option
            );
            let series = vec![(summary.strategy.clone(), epochs)];
            if let Some(files) = crate::plots::write_sweep_lines(
                out,
                "sweep-epochs",
                &title,
                &x_label,
                "epochs to target",
                &series,
            )? {
                plots.push("sweep-epochs.svg".into());
                written.extend(files);
            }
        }
    } else if summary.axes.len() == 2 {
        let (a, b) = (&summary.axes[0], &summary.axes[1]);
        let rows: Vec<String> = a.values.iter().map(|v| number(*v)).collect();
        let columns: Vec<String> = b.values.iter().map(|v| number(*v)).collect();
        let values: Vec<Vec<f64>> = (0..a.values.len())
            .map(|r| {
                (0..b.values.len())
                    .map(|c| summary.points[r * b.values.len() + c].final_metric.mean)
                    .collect()
            })
            .collect();
        let title = format!(
            "{}: final {} (darker is better)",
            summary.experiment, summary.metric
        );
        if let Some(files) = crate::plots::write_heat_map(
            out,
            "sweep-heatmap",
            &title,
            (&b.option, &columns),
            (&a.option, &rows),
            &values,
            summary.direction == Direction::HigherIsBetter,
        )? {
            plots.push("sweep-heatmap.svg".into());
            written.extend(files);
        }
    }
    let md = summary.markdown(&plots);
    write_atomic(&out.join("sweep.md"), md.as_bytes())?;
    written.push(out.join("sweep.md"));
    Ok(written)
}
