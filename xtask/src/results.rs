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

/// A summary over seeds, as `summary.json` holds it.
pub(crate) use l2m_core::convergence::Summary as Stat;
/// `summary.json` of a run directory, in the schema the engine writes (`l2m-run`).
pub(crate) use l2m_run::Comparison as Summary;

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
    /// The preset variant of its `config.json` ("table3" when absent).
    variant: String,
    /// What the runs noted about their data (each note once), such as a lossy copy.
    notes: Vec<String>,
}

/// The test errors the paper reports at the end of training (learn2mix, classical), with
/// the factor from this toolkit's per-value MSE to the paper's unit and that unit's name.
/// The authors' notebooks print these numbers; MNIST reconstruction sums the squared error
/// over an image's 784 pixels.
const PAPER_ERRORS: [(&str, f64, f64, f64, &str); 4] = [
    ("mean-estimation", 1.07, 1.17, 1.0, "test MSE"),
    ("wine-quality", 1.75, 2.03, 1.0, "test MSE"),
    (
        "california-housing",
        0.77,
        0.99,
        1.0,
        "test MSE, target in 100,000 $",
    ),
    (
        "mnist-reconstruction",
        9.31,
        10.1,
        784.0,
        "summed squared error per image (MSE x 784)",
    ),
];

/// The heading of the section [`paper_numbers`] writes; `--paper-numbers` replaces the
/// page's section of that name (up to the next heading of its level) and nothing else.
const PAPER_HEADING: &str = "## The paper's reported numbers";

/// Where the reading of each row is kept (written by a person from the numbers, included
/// verbatim below the table).
const PAPER_NOTES: &str = "docs/results/paper-numbers-notes.md";

/// Writes the page; returns what to tell the user.
///
/// `cargo xtask results`: `docs/results.md` from finished `l2m reproduce` run directories.
#[derive(Debug, clap::Parser)]
#[command(name = "results")]
pub struct ResultsArgs {
    /// Finished run directories of `l2m reproduce`.
    dirs: Vec<PathBuf>,
    /// The page to write (default: docs/results.md).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Only (re)write the section "The paper's reported numbers" of an existing page.
    #[arg(long, conflicts_with = "add")]
    paper_numbers: bool,
    /// Put these experiments' rows and sections into the existing page.
    #[arg(long)]
    add: bool,
    /// Write the ablation and gamma-sensitivity sections from the runs in this folder.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["paper_numbers", "add"])]
    evidence: Option<PathBuf>,
}

/// With `--paper-numbers`, only the section "The paper's reported numbers" of an existing
/// page is (re)written, from run directories of both variants (Table 3 and `--variant
/// authors`) of the experiments in [`PAPER_ERRORS`]. Without it, the whole page is written;
/// runs of the authors' variant then go to that section only.
pub fn run(root: &Path, args: ResultsArgs) -> anyhow::Result<String> {
    let ResultsArgs {
        dirs,
        out,
        paper_numbers: only_paper,
        add,
        evidence,
    } = args;
    let out = out.unwrap_or_else(|| root.join("docs/results.md"));
    if let Some(dir) = evidence {
        return crate::evidence::write(root, &out, &dir);
    }
    if dirs.is_empty() {
        bail!(
            "usage: cargo xtask results [--out FILE] [--paper-numbers | --add] RUN_DIR... | --evidence DIR"
        );
    }
    let notes = std::fs::read_to_string(root.join(PAPER_NOTES)).unwrap_or_default();
    if only_paper {
        let runs = dirs
            .iter()
            .map(|d| read_run(d))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let section = paper_numbers(&runs, &notes)?;
        let page = std::fs::read_to_string(&out)
            .with_context(|| format!("reading {} (write the page first)", out.display()))?;
        let page = replace_section(&page, &section);
        write_page(&out, &page)?;
        return Ok(format!(
            "wrote the section \"{}\" of {} ({} run directories)",
            &PAPER_HEADING[3..],
            out.display(),
            runs.len()
        ));
    }
    let plots_root = out
        .parent()
        .map(|p| p.join("results"))
        .unwrap_or_else(|| PathBuf::from("results"));
    let mut runs = Vec::new();
    let mut authors = Vec::new();
    for dir in &dirs {
        let run = read_run(dir)?;
        if run.variant != "table3" {
            authors.push(run);
            continue;
        }
        let dest = plots_root.join(&run.summary.experiment);
        std::fs::create_dir_all(&dest).with_context(|| format!("creating {}", dest.display()))?;
        for plot in PLOTS {
            copy_file(&dir.join(plot), &dest.join(plot))?;
        }
        runs.push(run);
    }
    if add {
        if !authors.is_empty() {
            bail!("--add takes runs of Table 3's settings; use --paper-numbers for the authors'");
        }
        let mut page = std::fs::read_to_string(&out)
            .with_context(|| format!("reading {} (write the page first)", out.display()))?;
        for r in &runs {
            page = add_run(&page, r);
        }
        write_page(&out, &page)?;
        return Ok(format!(
            "added or replaced {} experiment(s) in {}",
            runs.len(),
            out.display()
        ));
    }
    let mut page = page(&runs);
    if !authors.is_empty() {
        authors.extend(runs.drain(..).filter(|r| {
            PAPER_ERRORS
                .iter()
                .any(|(e, ..)| *e == r.summary.experiment)
        }));
        page.push_str(&paper_numbers(&authors, &notes)?);
    }
    write_page(&out, &page)?;
    Ok(format!(
        "wrote {} ({} experiments)",
        out.display(),
        runs.len()
    ))
}

fn read_run(dir: &Path) -> anyhow::Result<Run> {
    let layout = l2m_run::Layout::new(dir);
    let path = layout.summary();
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let summary: Summary =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    l2m_run::check_schema(&summary).with_context(|| path.display().to_string())?;
    let report_path = layout.report();
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
            let records = layout.run(*seed, &s.strategy).records_jsonl();
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
    let mut notes: Vec<String> = Vec::new();
    for seed in &summary.seeds {
        for s in &summary.strategies {
            let path = layout.run(*seed, &s.strategy).info();
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let info: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("parsing {}", path.display()))?;
            for n in info
                .get("notes")
                .and_then(|n| n.as_array())
                .into_iter()
                .flatten()
                .filter_map(|n| n.as_str())
            {
                // Where the data was read from depends on the machine; what it was does not.
                if !n.starts_with("read from ") && !notes.iter().any(|x| x == n) {
                    notes.push(n.to_string());
                }
            }
        }
    }
    let config_path = layout.config();
    let config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&config_path)
            .with_context(|| format!("reading {}", config_path.display()))?,
    )
    .with_context(|| format!("parsing {}", config_path.display()))?;
    let variant = config
        .get("variant")
        .and_then(|v| v.as_str())
        .unwrap_or("table3")
        .to_string();
    Ok(Run {
        summary,
        report,
        compute_seconds,
        variant,
        notes,
    })
}

/// Copies `from` to `to` under a temporary name, then renames: a reader never sees half a
/// file.
pub(crate) fn copy_file(from: &Path, to: &Path) -> anyhow::Result<()> {
    let name = to
        .file_name()
        .map_or_else(Default::default, |n| n.to_string_lossy());
    let tmp = to.with_file_name(format!(".{name}.tmp"));
    std::fs::copy(from, &tmp)
        .with_context(|| format!("copying {} to {}", from.display(), tmp.display()))?;
    std::fs::rename(&tmp, to)
        .with_context(|| format!("renaming {} to {}", tmp.display(), to.display()))?;
    Ok(())
}

pub(crate) fn write_page(out: &Path, page: &str) -> anyhow::Result<()> {
    let tmp = out.with_extension("md.tmp");
    std::fs::write(&tmp, page).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, out).with_context(|| format!("renaming to {}", out.display()))
}

/// `page` with its section [`PAPER_HEADING`] replaced by `section` (appended when absent).
fn replace_section(page: &str, section: &str) -> String {
    crate::evidence::replace_section(page, PAPER_HEADING, section)
}

/// The final test error of a strategy as (mean, 95% CI half-width) in the paper's unit.
fn final_error(run: &Run, names: &[&str], scale: f64) -> Option<(String, f64, f64)> {
    let s = run
        .summary
        .strategies
        .iter()
        .find(|s| names.contains(&s.strategy.as_str()))?;
    Some((
        s.strategy.clone(),
        s.final_test.mean * scale,
        s.final_test.ci95 * scale,
    ))
}

/// The section comparing the paper's reported test errors with ours under both variants.
fn paper_numbers(runs: &[Run], notes: &str) -> anyhow::Result<String> {
    let mut p = String::new();
    let _ = writeln!(
        p,
        "{PAPER_HEADING}\n\n\
         The paper reports test errors at the end of training for four experiments. Beside them: \
         ours with the authors' settings (`--variant authors`, the settings listed by \
         `l2m reproduce --list --variant authors`) and with Table 3's, mean ± 95% CI over the \
         seeds, in the paper's units. Under the authors' settings their \"classical\" baseline \
         draws stratified batches (our strategy `stratified`). Each of our seeds has its own \
         initialisation, perturbation and shuffles; the authors' iterations share one \
         unseeded process. \"Inside\" says whether the paper's value lies in our 95% CI; \
         \"order\" whether learn2mix ends below classical in both.\n"
    );
    let _ = writeln!(
        p,
        "| experiment | unit | paper: learn2mix / classical | authors' settings: learn2mix / classical | inside | order | Table 3: learn2mix / classical | inside | order |\n|---|---|---|---|---|---|---|---|---|"
    );
    let mut commands = Vec::new();
    for (exp, l2m, classical, scale, unit) in PAPER_ERRORS {
        let find = |variant: &str| {
            runs.iter()
                .find(|r| r.summary.experiment == exp && r.variant == variant)
        };
        let cell = |run: Option<&Run>| -> (String, String, String) {
            let Some(run) = run else {
                return ("not run".into(), "-".into(), "-".into());
            };
            let a = final_error(run, &["learn2mix"], scale);
            let b = final_error(run, &["classical", "stratified"], scale);
            match (a, b) {
                (Some((_, ma, ca)), Some((_, mb, cb))) => {
                    let inside = |v: f64, m: f64, c: f64| (v - m).abs() <= c;
                    (
                        format!(
                            "{ma:.3} ± {ca:.3} / {mb:.3} ± {cb:.3} ({} seeds)",
                            run.summary.seeds.len()
                        ),
                        format!(
                            "{} / {}",
                            if inside(l2m, ma, ca) { "yes" } else { "no" },
                            if inside(classical, mb, cb) {
                                "yes"
                            } else {
                                "no"
                            }
                        ),
                        if ma < mb { "same" } else { "reversed" }.into(),
                    )
                }
                _ => ("strategies missing".into(), "-".into(), "-".into()),
            }
        };
        for variant in ["authors", "table3"] {
            if let Some(r) = find(variant) {
                commands.push(format!(
                    "`l2m reproduce {exp}{} --seeds {}`",
                    if variant == "authors" {
                        " --variant authors"
                    } else {
                        ""
                    },
                    r.summary.seeds.len()
                ));
            }
        }
        let (a, ai, ao) = cell(find("authors"));
        let (t, ti, to) = cell(find("table3"));
        let _ = writeln!(
            p,
            "| {exp} | {unit} | {l2m} / {classical} | {a} | {ai} | {ao} | {t} | {ti} | {to} |"
        );
    }
    let _ = writeln!(
        p,
        "\nCommands: {}, then `cargo xtask results --paper-numbers RUN_DIR...` with their run \
         directories.\n",
        if commands.is_empty() {
            "none yet".to_string()
        } else {
            commands.join(", ")
        }
    );
    if !notes.trim().is_empty() {
        let _ = writeln!(p, "{}\n", notes.trim());
    }
    Ok(p)
}

fn duration(seconds: f64) -> String {
    if seconds < 120.0 {
        format!("{seconds:.0} s")
    } else {
        format!("{:.1} min", seconds / 60.0)
    }
}

/// A value as the page writes it: four decimals, or scientific below 1e-3 and from 1e4.
pub(crate) fn number(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    if v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e4) {
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
         `cargo xtask results runs/<experiment>-<hash> ...` (experiments run later added with\n\
         `--add`). Every number below is copied from the\n\
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
        p.push_str(&table_row(r));
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
        p.push_str(&section(r));
    }
    p
}

/// `page` with `r`'s row of the table and its section added, or replaced where the page
/// has the experiment already (the sections of the other experiments are kept as they are).
/// A new section goes before the paper's numbers.
fn add_run(page: &str, r: &Run) -> String {
    let exp = &r.summary.experiment;
    let row = table_row(r);
    let mut lines: Vec<String> = page.lines().map(str::to_string).collect();
    let prefix = format!("| {exp} | ");
    if let Some(i) = lines.iter().position(|l| l.starts_with(&prefix)) {
        lines[i] = row.trim_end().to_string();
    } else if let Some(head) = lines
        .iter()
        .position(|l| l.starts_with("| experiment | command |"))
    {
        let end = lines[head..]
            .iter()
            .position(|l| !l.starts_with('|'))
            .map_or(lines.len(), |n| head + n);
        lines.insert(end, row.trim_end().to_string());
    }
    let mut page = lines.join("\n");
    page.push('\n');
    let section = section(r);
    // The section's own heading: the report's title, one level down.
    let heading = section.lines().next().unwrap_or_default().to_string();
    if heading.starts_with("## ") && page.contains(&format!("\n{heading}\n")) {
        return crate::evidence::replace_section(&page, &heading, &section);
    }
    match page.find(&format!("\n{PAPER_HEADING}\n")) {
        Some(at) => format!("{}{}{}", &page[..at + 1], section, &page[at + 1..]),
        None => {
            let mut p = page.trim_end().to_string();
            p.push_str("\n\n");
            p.push_str(&section);
            p
        }
    }
}

/// The row of the page's table for one experiment's run.
fn table_row(r: &Run) -> String {
    let mut p = String::new();
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
    p
}

/// The section of one experiment's run: its report (headings one level down, plots in
/// `results/<experiment>/`), the final metric per strategy, and what the runs noted about
/// their data.
fn section(r: &Run) -> String {
    let mut p = String::new();
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
    if !r.notes.is_empty() {
        let _ = writeln!(p, "Data: {}.\n", r.notes.join("; "));
    }
    p
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A finished two-seed run directory with two strategies, as `l2m reproduce` leaves it.
    fn fake_run(dir: &Path, epochs: usize) {
        fake_run_of(dir, epochs, "wine-quality", None, "classical");
    }

    /// `run` with the flags of a command line.
    fn run_args(root: &Path, args: &[String]) -> anyhow::Result<String> {
        use clap::Parser;
        let argv = std::iter::once("results".to_string()).chain(args.iter().cloned());
        run(root, ResultsArgs::try_parse_from(argv)?)
    }

    /// A summary over two seeds.
    pub(crate) fn stat(mean: f64, ci95: f64) -> Stat {
        Stat {
            n: 2,
            mean,
            std: 0.1,
            ci95,
        }
    }

    /// One strategy of a summary, with the figures the pages read.
    pub(crate) fn test_strategy(
        name: &str,
        final_test: Stat,
        minus: Option<Stat>,
        worst: Option<Stat>,
        epochs_to_target: Option<usize>,
    ) -> l2m_run::StrategySummary {
        l2m_run::StrategySummary {
            strategy: name.to_string(),
            final_test,
            final_minus_reference: minus,
            final_worst_class: worst,
            final_balanced_accuracy: None,
            final_macro_f1: None,
            test_at: Vec::new(),
            final_test_per_class: Vec::new(),
            best_test: final_test,
            epochs_to_target,
            epochs_to_target_per_seed: Vec::new(),
            seconds_to_target: None,
            final_coverage: Vec::new(),
            coverage_alarms: 0,
            seeds: vec![0, 1],
            final_alpha: Vec::new(),
            final_loss_weights: None,
            train_seconds_per_epoch: 0.0,
            mean_test_curve: Vec::new(),
            test_curve_ci95: Vec::new(),
            mean_alpha_curve: Vec::new(),
        }
    }

    /// A two-seed summary of `experiment` (MSE, lower is better, against learn2mix).
    pub(crate) fn test_summary(
        experiment: &str,
        epochs: usize,
        target: Option<f64>,
        strategies: Vec<l2m_run::StrategySummary>,
    ) -> Summary {
        Summary {
            schema: l2m_run::SUMMARY_SCHEMA,
            experiment: experiment.to_string(),
            metric: "MSE".into(),
            direction: l2m_core::convergence::Direction::LowerIsBetter,
            epochs,
            epochs_done: epochs,
            seeds: vec![0, 1],
            class_names: Vec::new(),
            train_class_sizes: Vec::new(),
            reference: "learn2mix".into(),
            target,
            strategies,
        }
    }

    fn fake_run_of(
        dir: &Path,
        epochs: usize,
        experiment: &str,
        variant: Option<&str>,
        other: &str,
    ) {
        let config = match variant {
            Some(v) => serde_json::json!({ "name": experiment, "variant": v }),
            None => serde_json::json!({ "name": experiment }),
        };
        std::fs::write(dir.join("config.json"), config.to_string()).expect("config");
        let summary = test_summary(
            experiment,
            3,
            None,
            vec![
                test_strategy("learn2mix", stat(1.5, 0.9), None, None, Some(2)),
                test_strategy(other, stat(1.75, 0.9), Some(stat(0.25, 0.125)), None, None),
            ],
        );
        std::fs::write(
            dir.join("summary.json"),
            serde_json::to_string(&summary).expect("json"),
        )
        .expect("summary");
        std::fs::write(
            dir.join("report.md"),
            format!("# {experiment}: learn2mix and the alternatives\n\n## Plots\n\n![m](test_metric.png)\n"),
        )
        .expect("report");
        for plot in PLOTS {
            std::fs::write(dir.join(plot), b"png").expect("plot");
        }
        for seed in 0..2 {
            for s in ["learn2mix", other] {
                let files = l2m_run::Layout::new(dir).run(seed, s);
                std::fs::create_dir_all(files.dir()).expect("dir");
                let line = r#"{"train_seconds": 1.5, "eval_seconds": 0.5}"#;
                std::fs::write(files.records_jsonl(), vec![line; epochs].join("\n"))
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
        run_args(
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
    fn add_puts_one_experiment_into_an_existing_page_and_replaces_it_when_run_again() {
        let tmp = tempfile::tempdir().expect("tmp");
        let wine = tmp.path().join("wine");
        let cifar = tmp.path().join("cifar");
        for (d, exp) in [(&wine, "wine-quality"), (&cifar, "cifar10")] {
            std::fs::create_dir_all(d).expect("dir");
            fake_run_of(d, 3, exp, None, "classical");
        }
        for strategy in ["learn2mix", "classical"] {
            std::fs::write(
                cifar.join(format!("seed-1/{strategy}/run.json")),
                r#"{"notes": ["read from data/x.tar.gz", "CIFAR-10 read from a lossy JPEG copy"]}"#,
            )
            .expect("run.json");
        }
        let out = tmp.path().join("docs/results.md");
        std::fs::create_dir_all(out.parent().expect("parent")).expect("docs");
        let o = out.display().to_string();
        run_args(
            tmp.path(),
            &["--out".into(), o.clone(), wine.display().to_string()],
        )
        .expect("page");
        let mut page = std::fs::read_to_string(&out).expect("page");
        page.push_str("\n## The paper's reported numbers\n\nkept\n");
        std::fs::write(&out, &page).expect("page");
        let add = || {
            run_args(
                tmp.path(),
                &[
                    "--out".into(),
                    o.clone(),
                    "--add".into(),
                    cifar.display().to_string(),
                ],
            )
            .expect("add")
        };
        add();
        let once = std::fs::read_to_string(&out).expect("page");
        add();
        let twice = std::fs::read_to_string(&out).expect("page");
        assert_eq!(once, twice, "adding the same run again changes nothing");
        let row = once
            .find("| cifar10 | `l2m reproduce cifar10")
            .expect("row");
        let wine_row = once
            .find("| wine-quality | `l2m reproduce")
            .expect("wine row");
        assert!(wine_row < row && row < once.find("\nCompute time").expect("after the table"));
        let section = once.find("\n## cifar10: learn2mix").expect("section");
        let paper = once
            .find("\n## The paper's reported numbers")
            .expect("paper");
        assert!(once.find("\n## wine-quality: learn2mix").expect("wine") < section);
        assert!(section < paper, "{once}");
        assert!(
            once.contains("Data: CIFAR-10 read from a lossy JPEG copy.\n"),
            "{once}"
        );
        assert!(!once.contains("read from data/"), "{once}");
        assert_eq!(once.matches("## cifar10: learn2mix").count(), 1);
        assert!(once.ends_with("kept\n"), "{once}");
    }

    #[test]
    fn unfinished_runs_are_refused() {
        let tmp = tempfile::tempdir().expect("tmp");
        fake_run(tmp.path(), 2);
        let e = read_run(tmp.path()).err().expect("unfinished");
        assert!(format!("{e:#}").contains("holds 2 of 3 epochs"), "{e:#}");
    }

    #[test]
    fn the_paper_s_numbers_section_uses_both_variants_and_only_replaces_itself() {
        let tmp = tempfile::tempdir().expect("tmp");
        let mk = |name: &str, exp: &str, variant: Option<&str>, other: &str| {
            let d = tmp.path().join(name);
            std::fs::create_dir_all(&d).expect("dir");
            fake_run_of(&d, 3, exp, variant, other);
            d.display().to_string()
        };
        let t3 = mk("t3", "wine-quality", None, "classical");
        let au = mk("au", "wine-quality", Some("authors"), "stratified");
        let rec = mk("rec", "mnist-reconstruction", Some("authors"), "stratified");
        let out = tmp.path().join("results.md");
        std::fs::write(
            &out,
            "# Results\n\nintro\n\n## The paper's reported numbers\n\nold\n\n## later\n\nkept\n",
        )
        .expect("page");
        let args = |dirs: &[&String]| {
            let mut a = vec![
                "--out".to_string(),
                out.display().to_string(),
                "--paper-numbers".to_string(),
            ];
            a.extend(dirs.iter().map(|d| d.to_string()));
            a
        };
        run_args(tmp.path(), &args(&[&t3, &au, &rec])).expect("section");
        let page = std::fs::read_to_string(&out).expect("page");
        assert!(page.starts_with("# Results\n\nintro\n\n## The paper's reported numbers\n"));
        assert!(!page.contains("\nold\n"), "{page}");
        assert!(page.ends_with("## later\n\nkept\n"), "{page}");
        // Wine: 1.5 ± 0.9 vs 1.75 ± 0.9; the paper's 1.75 lies inside, 2.03 too.
        assert!(page.contains("| wine-quality | test MSE | 1.75 / 2.03 | 1.500 ± 0.900 / 1.750 ± 0.900 (2 seeds) | yes / yes | same | 1.500 ± 0.900 / 1.750 ± 0.900 (2 seeds) | yes / yes | same |"), "{page}");
        // MNIST reconstruction in summed squared error per image: x 784.
        assert!(
            page.contains(
                "| 1176.000 ± 705.600 / 1372.000 ± 705.600 (2 seeds) | no / no | same | not run |"
            ),
            "{page}"
        );
        assert!(
            page.contains("`l2m reproduce wine-quality --variant authors --seeds 2`"),
            "{page}"
        );
        assert!(
            page.contains("| mean-estimation | test MSE | 1.07 / 1.17 | not run |"),
            "{page}"
        );
        // Run again: the same page.
        run_args(tmp.path(), &args(&[&t3, &au, &rec])).expect("again");
        assert_eq!(std::fs::read_to_string(&out).expect("page"), page);
    }
}
