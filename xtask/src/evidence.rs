//! `cargo xtask results --evidence DIR`: the two evidence sections of `docs/results.md`,
//! from the run directories under `DIR` (by default `runs/evidence`):
//!
//! - "Ablations": `ablation-<experiment>/`, each `l2m reproduce <experiment> --strategies
//!   ABLATION_STRATEGIES --seeds 5`, as a table per experiment (final metric, worst-class
//!   metric, paired difference to learn2mix with its verdict, epochs and seconds to the
//!   common target) read from its `summary.json`;
//! - "Gamma sensitivity": `sweep-<experiment>/`, each `l2m sweep <experiment> --gamma
//!   SWEEP_GAMMAS --seeds 5`, as its `sweep.md` with the plots copied to
//!   `docs/results/sweeps/<experiment>/`.
//!
//! Experiments without a run directory yet are listed with the command that makes it, so
//! the page says what is missing rather than leaving it out. Each section replaces the
//! page's section of the same heading and nothing else.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::results::{Stat, Summary, number};

/// The experiments of the ablation table, in its order (those the evidence issue names).
pub const ABLATION_EXPERIMENTS: [&str; 6] = [
    "mean-estimation",
    "wine-quality",
    "california-housing",
    "mnist",
    "fashion-mnist",
    "mnist-reconstruction",
];

/// The strategies every ablation runs: learn2mix, the baselines of part 1 and learn2mix's
/// own variants (EG rule, a floor, per-step cadence), all on the same seeds.
pub const ABLATION_STRATEGIES: &str = "learn2mix,classical,stratified,balanced,group-dro,learn2mix:rule=eg,learn2mix:floor=0.05,learn2mix:update_every=1";

/// The experiments of the gamma-sensitivity section.
pub const SWEEP_EXPERIMENTS: [&str; 3] = ["mnist", "wine-quality", "mean-estimation"];

/// The gamma values swept.
pub const SWEEP_GAMMAS: &str = "0.01,0.05,0.1,0.3,0.5,1";

/// Headings of the two sections.
pub const ABLATION_HEADING: &str =
    "## Ablations: learn2mix against stronger baselines and its own variants";
/// See [`ABLATION_HEADING`].
pub const SWEEP_HEADING: &str = "## Gamma sensitivity";

/// Where the person-written reading of the evidence is kept (included verbatim).
const NOTES: &str = "docs/results/evidence-notes.md";

#[derive(Deserialize)]
struct SweepSummary {
    #[serde(default)]
    epochs_done: usize,
    epochs: usize,
}

fn cell(s: &Stat) -> String {
    if s.n == 0 || !s.mean.is_finite() {
        "-".into()
    } else {
        format!("{} ± {}", number(s.mean), number(s.ci95))
    }
}

/// The verdict on a paired difference "other minus learn2mix".
fn verdict(d: &Stat, lower_is_better: bool, reference: &str) -> String {
    if d.n < 2 {
        return "one seed".into();
    }
    if d.mean - d.ci95 <= 0.0 && d.mean + d.ci95 >= 0.0 {
        return "no clear difference".into();
    }
    let other_better = if lower_is_better {
        d.mean < 0.0
    } else {
        d.mean > 0.0
    };
    if other_better {
        format!("better than {reference}")
    } else {
        format!("{reference} better")
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> anyhow::Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn ablation(dir: &Path, experiment: &str) -> anyhow::Result<String> {
    let command = format!(
        "`l2m reproduce {experiment} --strategies {ABLATION_STRATEGIES} --seeds 5 -o runs/evidence/ablation-{experiment}`"
    );
    let run = dir.join(format!("ablation-{experiment}"));
    let mut s = format!("### {experiment}\n\n");
    let path = l2m_run::Layout::new(&run).summary();
    if !path.is_file() {
        let state = if run.is_dir() {
            "In progress (the table comes once every run has finished)"
        } else {
            "Not run yet"
        };
        let _ = writeln!(s, "{state}: {command}.\n");
        return Ok(s);
    }
    let summary: Summary = read_json(&path)?;
    let lower = summary.direction == l2m_core::convergence::Direction::LowerIsBetter;
    let done = if summary.epochs_done < summary.epochs {
        format!(
            " **In progress: {} of {} epochs**; the figures cover the epochs every run has finished.",
            summary.epochs_done, summary.epochs
        )
    } else {
        String::new()
    };
    let _ = writeln!(
        s,
        "{command}: {} epochs x {} seeds, test {} ({}).{done} Common target: {}.\n",
        summary.epochs,
        summary.seeds.len(),
        summary.metric,
        if lower {
            "lower is better"
        } else {
            "higher is better"
        },
        summary.target.map_or("-".into(), number)
    );
    let _ = writeln!(
        s,
        "| strategy | final {m} | worst-class {m} | minus {r} (paired) | verdict | epochs to target | seconds to target |\n|---|---:|---:|---:|---|---:|---:|",
        m = summary.metric,
        r = summary.reference
    );
    for x in &summary.strategies {
        let (diff, v) = match &x.final_minus_reference {
            Some(d) => (cell(d), verdict(d, lower, &summary.reference)),
            None => ("(reference)".into(), "-".into()),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {diff} | {v} | {} | {} |",
            x.strategy,
            cell(&x.final_test),
            x.final_worst_class.as_ref().map_or("-".into(), cell),
            x.epochs_to_target.map_or("never".into(), |e| e.to_string()),
            x.seconds_to_target.as_ref().map_or("-".into(), cell)
        );
    }
    s.push('\n');
    Ok(s)
}

fn sweep(dir: &Path, experiment: &str, plots_root: &Path) -> anyhow::Result<String> {
    let command = format!(
        "`l2m sweep {experiment} --gamma {SWEEP_GAMMAS} --seeds 5 -o runs/evidence/sweep-{experiment}`"
    );
    let run = dir.join(format!("sweep-{experiment}"));
    let mut s = format!("### {experiment}\n\n");
    let md_path = run.join("sweep.md");
    if !md_path.is_file() {
        let state = if run.is_dir() {
            "In progress (the table comes once every point has finished)"
        } else {
            "Not run yet"
        };
        let _ = writeln!(s, "{state}: {command}.\n");
        return Ok(s);
    }
    let summary: SweepSummary = read_json(&run.join("sweep.json"))?;
    let md = std::fs::read_to_string(&md_path)
        .with_context(|| format!("reading {}", md_path.display()))?;
    let dest = plots_root.join("sweeps").join(experiment);
    std::fs::create_dir_all(&dest).with_context(|| format!("creating {}", dest.display()))?;
    let _ = writeln!(
        s,
        "{command}, the preset's budget of {} epochs.\n",
        summary.epochs
    );
    if summary.epochs_done < summary.epochs {
        let _ = writeln!(
            s,
            "**In progress: {} of {} epochs.**\n",
            summary.epochs_done, summary.epochs
        );
    }
    for line in md
        .lines()
        .skip_while(|l| l.starts_with("# ") || l.is_empty())
    {
        // Plot links point at the copies beside this page; sub-headings go one level down.
        if let Some(file) = line
            .strip_prefix("![")
            .and_then(|l| l.split_once("]("))
            .map(|(_, f)| f.trim_end_matches(')'))
        {
            for ext in ["svg", "png"] {
                let name = Path::new(file).with_extension(ext);
                crate::results::copy_file(&run.join(&name), &dest.join(&name))?;
            }
            let _ = writeln!(s, "![{file}](results/sweeps/{experiment}/{file})");
        } else if let Some(h) = line.strip_prefix("## ") {
            let _ = writeln!(s, "#### {h}");
        } else {
            let _ = writeln!(s, "{line}");
        }
    }
    s.push('\n');
    Ok(s)
}

/// `page` with the section headed `heading` replaced by `section` (appended when absent).
pub fn replace_section(page: &str, heading: &str, section: &str) -> String {
    let Some(start) = page.find(&format!("\n{heading}\n")) else {
        let mut p = page.trim_end().to_string();
        p.push_str("\n\n");
        p.push_str(section);
        return p;
    };
    let body = start + 1 + heading.len();
    let end = page[body..]
        .find("\n## ")
        .map_or(page.len(), |i| body + i + 1);
    format!("{}{}{}", &page[..start + 1], section, &page[end..])
}

/// Writes both sections into the page at `out`; returns what to tell the user.
pub fn write(root: &Path, out: &Path, dir: &Path) -> anyhow::Result<String> {
    if !dir.is_dir() {
        bail!("{} is not a folder of evidence runs", dir.display());
    }
    let plots_root = out
        .parent()
        .map(|p| p.join("results"))
        .unwrap_or_else(|| Path::new("results").to_path_buf());
    let notes = std::fs::read_to_string(root.join(NOTES)).unwrap_or_default();
    let mut ablations = format!(
        "{ABLATION_HEADING}\n\nlearn2mix beside classical, stratified, balanced and Group DRO batches and three variants of itself (the exponentiated-gradient rule, a floor of 0.05, proportions updated after every step), 5 seeds each, on the paper's budgets. Every strategy of a seed starts from the same initial weights; the paired differences are the other strategy's final metric minus learn2mix's, and \"no clear difference\" means their 95% interval includes 0. The worst-class metric is the worst class's test metric in each run (lowest accuracy, highest MSE). Seconds are measured training time to the common target, over the seeds that reach it.\n\n"
    );
    let mut present = 0;
    for e in ABLATION_EXPERIMENTS {
        let a = ablation(dir, e)?;
        present += usize::from(!a.contains("Not run yet") && !a.contains("In progress (the table"));
        ablations.push_str(&a);
    }
    let mut sweeps = format!(
        "{SWEEP_HEADING}\n\n`l2m sweep` over gamma in {{{SWEEP_GAMMAS}}}, each point paired with classical on the same 5 seeds and initial weights, the paper's budgets.\n\n"
    );
    for e in SWEEP_EXPERIMENTS {
        let sw = sweep(dir, e, &plots_root)?;
        present +=
            usize::from(!sw.contains("Not run yet") && !sw.contains("In progress (the table"));
        sweeps.push_str(&sw);
    }
    if !notes.trim().is_empty() {
        sweeps.push_str("### Reading the evidence\n\n");
        sweeps.push_str(notes.trim());
        sweeps.push_str("\n\n");
    }
    let page =
        std::fs::read_to_string(out).with_context(|| format!("reading {}", out.display()))?;
    let page = replace_section(&page, ABLATION_HEADING, &ablations);
    let page = replace_section(&page, SWEEP_HEADING, &sweeps);
    crate::results::write_page(out, &page)?;
    Ok(format!(
        "wrote the evidence sections of {} ({present} of {} run directories present)",
        out.display(),
        ABLATION_EXPERIMENTS.len() + SWEEP_EXPERIMENTS.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_replace_only_themselves_and_missing_runs_are_listed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("results.md");
        std::fs::write(
            &out,
            format!("# Results\n\nintro\n\n{ABLATION_HEADING}\n\nold\n\n## Other\n\nkept\n"),
        )
        .expect("write");
        let evidence = dir.path().join("evidence");
        let run = evidence.join("ablation-wine-quality");
        std::fs::create_dir_all(&run).expect("mkdir");
        use crate::results::tests::{stat, test_strategy, test_summary};
        let summary = test_summary(
            "wine-quality",
            300,
            Some(1.5),
            vec![
                test_strategy("learn2mix", stat(1.2, 0.9), None, None, Some(100)),
                test_strategy(
                    "classical",
                    stat(1.5, 0.9),
                    Some(stat(0.3, 0.1)),
                    Some(stat(2.0, 0.2)),
                    Some(300),
                ),
            ],
        );
        std::fs::write(
            run.join("summary.json"),
            serde_json::to_string(&summary).expect("json"),
        )
        .expect("summary");
        let said = write(dir.path(), &out, &evidence).expect("write");
        let total = ABLATION_EXPERIMENTS.len() + SWEEP_EXPERIMENTS.len();
        assert!(said.contains(&format!("1 of {total}")), "{said}");
        let page = std::fs::read_to_string(&out).expect("read");
        assert!(page.contains("## Other\n\nkept"), "{page}");
        assert!(!page.contains("\nold\n"), "{page}");
        assert!(page.contains("| classical | 1.5000 ± 0.9000 | 2.0000 ± 0.2000 | 0.3000 ± 0.1000 | learn2mix better | 300 | - |"), "{page}");
        assert!(
            page.contains("Not run yet: `l2m reproduce mnist --strategies"),
            "{page}"
        );
        assert!(page.contains(&format!("{SWEEP_HEADING}\n")), "{page}");
        assert!(
            page.contains("Not run yet: `l2m sweep wine-quality --gamma"),
            "{page}"
        );
    }
}
