//! `cargo xtask results RUN_DIR...`: assembles `docs/results.md` from finished run
//! directories of `l2m reproduce`.
//!
//! Every number in that page comes from the run directories: each experiment's section is
//! its `report.md` (written by `l2m reproduce` or `l2m report`), with the plots copied to
//! `docs/results/<experiment>/`; the overview table is read from each `summary.json`, and
//! the compute time is the sum of the per-epoch training and evaluation seconds in the
//! records. Rerunning the same `l2m reproduce` commands and this one rewrites the same page
//! (but for the times).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

const PLOTS: [&str; 3] = ["test_metric.png", "alpha.png", "per_class.png"];

/// Epochs to a fixed test target quoted in the paper's text (learn2mix first, then the
/// other strategies in the order of the presets), from the specification's section 7. The
/// paper's targets were lost in conversion, so these compare orderings, not epochs.
const PAPER: [(&str, &str); 6] = [
    ("mnist", "14, 20, 18, 19"),
    ("fashion-mnist", "35, 49, 44, 49"),
    ("cifar10", "50, 60, 61, 60"),
    ("mnist-reconstruction", "35, 40"),
    ("fashion-mnist-reconstruction", "50, 65"),
    ("cifar10-reconstruction", "100, 110"),
];

#[derive(Deserialize)]
struct Stat {
    mean: f64,
    ci95: f64,
    n: usize,
}

#[derive(Deserialize)]
struct StrategySummary {
    strategy: String,
    final_test: Stat,
    final_minus_reference: Option<Stat>,
    epochs_to_target: Option<usize>,
}

#[derive(Deserialize)]
struct Summary {
    experiment: String,
    metric: String,
    epochs: usize,
    seeds: Vec<u64>,
    reference: String,
    strategies: Vec<StrategySummary>,
}

#[derive(Deserialize)]
struct Record {
    train_seconds: f64,
    eval_seconds: f64,
}

/// What one run directory contributes.
struct Run {
    summary: Summary,
    report: String,
    compute_seconds: f64,
}

/// Writes the page; returns what to tell the user.
pub fn run(root: &Path, args: &[String]) -> anyhow::Result<String> {
    let mut out = root.join("docs/results.md");
    let mut dirs = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--out" => out = PathBuf::from(it.next().context("--out needs a file")?),
            flag if flag.starts_with("--") => {
                bail!("unknown flag {flag:?}; expected --out FILE and run directories")
            }
            dir => dirs.push(PathBuf::from(dir)),
        }
    }
    if dirs.is_empty() {
        bail!("usage: cargo xtask results [--out FILE] RUN_DIR...");
    }
    let plots_root = out
        .parent()
        .map(|p| p.join("results"))
        .unwrap_or_else(|| PathBuf::from("results"));
    let mut runs = Vec::new();
    for dir in &dirs {
        let run = read_run(dir)?;
        let dest = plots_root.join(&run.summary.experiment);
        std::fs::create_dir_all(&dest).with_context(|| format!("creating {}", dest.display()))?;
        for plot in PLOTS {
            // Copied under a temporary name, then renamed: a reader never sees half a plot.
            let (from, to) = (dir.join(plot), dest.join(plot));
            let tmp = dest.join(format!(".{plot}.tmp"));
            std::fs::copy(&from, &tmp)
                .with_context(|| format!("copying {} to {}", from.display(), tmp.display()))?;
            std::fs::rename(&tmp, &to)
                .with_context(|| format!("renaming {} to {}", tmp.display(), to.display()))?;
        }
        runs.push(run);
    }
    let page = page(&runs);
    let tmp = out.with_extension("md.tmp");
    std::fs::write(&tmp, page).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &out).with_context(|| format!("renaming to {}", out.display()))?;
    Ok(format!(
        "wrote {} ({} experiments)",
        out.display(),
        runs.len()
    ))
}

fn read_run(dir: &Path) -> anyhow::Result<Run> {
    let path = dir.join("summary.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let summary: Summary =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let report_path = dir.join("report.md");
    let report = std::fs::read_to_string(&report_path).with_context(|| {
        format!(
            "reading {} (write it with `l2m report {}`)",
            report_path.display(),
            dir.display()
        )
    })?;
    let mut compute_seconds = 0.0;
    for seed in &summary.seeds {
        for s in &summary.strategies {
            let records = dir.join(format!("seed-{seed}/{}/records.jsonl", s.strategy));
            let text = std::fs::read_to_string(&records)
                .with_context(|| format!("reading {}", records.display()))?;
            let mut epochs = 0;
            for (i, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                let r: Record = serde_json::from_str(line)
                    .with_context(|| format!("{} line {}", records.display(), i + 1))?;
                compute_seconds += r.train_seconds + r.eval_seconds;
                epochs += 1;
            }
            if epochs < summary.epochs {
                bail!(
                    "{} holds {epochs} of {} epochs: the run is not finished",
                    records.display(),
                    summary.epochs
                );
            }
        }
    }
    Ok(Run {
        summary,
        report,
        compute_seconds,
    })
}

fn duration(seconds: f64) -> String {
    if seconds < 120.0 {
        format!("{seconds:.0} s")
    } else {
        format!("{:.1} min", seconds / 60.0)
    }
}

fn number(v: f64) -> String {
    if v != 0.0 && v.abs() < 1e-3 {
        format!("{v:.3e}")
    } else {
        format!("{v:.4}")
    }
}

fn page(runs: &[Run]) -> String {
    let mut p = String::new();
    let _ = writeln!(
        p,
        "# Results on this machine\n\n\
         Reports of the experiments run on this repository's development machine, each produced by\n\
         `l2m reproduce <experiment>` with the paper's settings (Table 3) and the epoch budget of\n\
         `l2m reproduce --list`, seeds 0-4, data fetched with\n\
         `cargo xtask fetch-data --mirror ../shared/data --all`, then assembled by\n\
         `cargo xtask results runs/<experiment>-<hash> ...`. Every number below is copied from the\n\
         run directories; rerunning the commands gives the same numbers (the runs are seeded and\n\
         deterministic on CPU), and only the times change.\n\n\
         Machine: {}; release build, CPU only.\n",
        crate::bench::machine()
    );
    let _ = writeln!(
        p,
        "| experiment | command | epochs x seeds | compute time | epochs to the common target | paper's epochs to its target | final metric, other strategy minus learn2mix, paired over seeds (mean ± 95% CI) |\n|---|---|---|---|---|---|---|"
    );
    for r in runs {
        let s = &r.summary;
        let epochs_to = s
            .strategies
            .iter()
            .map(|x| {
                format!(
                    "{} {}",
                    x.strategy,
                    x.epochs_to_target.map_or("never".into(), |e| e.to_string())
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let diffs = s
            .strategies
            .iter()
            .filter(|x| x.strategy != s.reference)
            .map(|x| match &x.final_minus_reference {
                Some(d) if d.n > 1 => format!(
                    "{} {}{} ± {}",
                    x.strategy,
                    if d.mean >= 0.0 { "+" } else { "" },
                    number(d.mean),
                    number(d.ci95)
                ),
                Some(d) => format!("{} {} (one seed)", x.strategy, number(d.mean)),
                None => format!("{} -", x.strategy),
            })
            .collect::<Vec<_>>()
            .join("; ");
        let _ = writeln!(
            p,
            "| {} | `l2m reproduce {} --epochs {} --seeds {}` | {} x {} | {} | {} | {} | {} {} |",
            s.experiment,
            s.experiment,
            s.epochs,
            s.seeds.len(),
            s.epochs,
            s.seeds.len(),
            duration(r.compute_seconds),
            epochs_to,
            PAPER
                .iter()
                .find(|(e, _)| *e == s.experiment)
                .map_or("-", |(_, v)| v),
            s.metric,
            diffs
        );
    }
    let _ = writeln!(
        p,
        "\nCompute time is the sum of the training and evaluation seconds of every run of the \
         experiment, as recorded per epoch: wall-clock time, so it includes whatever else ran on \
         the machine meanwhile. The paper's column gives the epochs its text quotes for a fixed \
         target (learn2mix first, then the other strategies in the order of this table); its \
         targets were lost, so compare the order of the strategies, not the epochs. The common target is the best seed-mean test metric \
         that every strategy reaches; each section below states it and the epoch each strategy \
         reached it at. For accuracy, a positive difference means the other strategy ended \
         higher than learn2mix; for MSE, that it ended worse.\n"
    );
    for r in runs {
        let exp = &r.summary.experiment;
        for line in r.report.lines() {
            let mut line = line.to_string();
            if line.starts_with('#') {
                line.insert(0, '#');
            }
            for plot in PLOTS {
                line = line.replace(&format!("]({plot})"), &format!("](results/{exp}/{plot})"));
            }
            let _ = writeln!(p, "{line}");
        }
        let _ = writeln!(
            p,
            "\nFinal test {} per strategy: {}.\n",
            r.summary.metric,
            r.summary
                .strategies
                .iter()
                .map(|x| format!(
                    "{} {} ± {}",
                    x.strategy,
                    number(x.final_test.mean),
                    number(x.final_test.ci95)
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A finished two-seed run directory with two strategies, as `l2m reproduce` leaves it.
    fn fake_run(dir: &Path, epochs: usize) {
        let summary = serde_json::json!({
            "experiment": "wine-quality", "metric": "MSE", "direction": "lower-is-better",
            "epochs": 3, "seeds": [0, 1], "reference": "learn2mix",
            "strategies": [
                {"strategy": "learn2mix", "final_test": {"n": 2, "mean": 1.5, "std": 0.1, "ci95": 0.9},
                 "final_minus_reference": null, "epochs_to_target": 2},
                {"strategy": "classical", "final_test": {"n": 2, "mean": 1.75, "std": 0.1, "ci95": 0.9},
                 "final_minus_reference": {"n": 2, "mean": 0.25, "std": 0.01, "ci95": 0.125},
                 "epochs_to_target": null}
            ]
        });
        std::fs::write(dir.join("summary.json"), summary.to_string()).expect("summary");
        std::fs::write(
            dir.join("report.md"),
            "# wine-quality: learn2mix and the alternatives\n\n## Plots\n\n![m](test_metric.png)\n",
        )
        .expect("report");
        for plot in PLOTS {
            std::fs::write(dir.join(plot), b"png").expect("plot");
        }
        for seed in 0..2 {
            for s in ["learn2mix", "classical"] {
                let d = dir.join(format!("seed-{seed}/{s}"));
                std::fs::create_dir_all(&d).expect("dir");
                let line = r#"{"train_seconds": 1.5, "eval_seconds": 0.5}"#;
                std::fs::write(d.join("records.jsonl"), vec![line; epochs].join("\n"))
                    .expect("records");
            }
        }
    }

    #[test]
    fn the_page_comes_from_the_run_directories() {
        let tmp = tempfile::tempdir().expect("tmp");
        let run_dir = tmp.path().join("run");
        std::fs::create_dir_all(&run_dir).expect("dir");
        fake_run(&run_dir, 3);
        let out = tmp.path().join("docs/results.md");
        std::fs::create_dir_all(out.parent().expect("parent")).expect("docs");
        run(
            tmp.path(),
            &[
                "--out".into(),
                out.display().to_string(),
                run_dir.display().to_string(),
            ],
        )
        .expect("results");
        let page = std::fs::read_to_string(&out).expect("page");
        // 2 seeds x 2 strategies x 3 epochs x 2 s.
        assert!(page.contains("| wine-quality | `l2m reproduce wine-quality --epochs 3 --seeds 2` | 3 x 2 | 24 s | learn2mix 2, classical never | - | MSE classical +0.2500 ± 0.1250 |"), "{page}");
        assert!(page.contains("## wine-quality: learn2mix"), "{page}");
        assert!(
            page.contains("![m](results/wine-quality/test_metric.png)"),
            "{page}"
        );
        assert!(page.contains("classical 1.7500 ± 0.9000"), "{page}");
        assert!(
            tmp.path()
                .join("docs/results/wine-quality/alpha.png")
                .exists()
        );
    }

    #[test]
    fn unfinished_runs_are_refused() {
        let tmp = tempfile::tempdir().expect("tmp");
        fake_run(tmp.path(), 2);
        let e = read_run(tmp.path()).err().expect("unfinished");
        assert!(format!("{e:#}").contains("holds 2 of 3 epochs"), "{e:#}");
    }
}
