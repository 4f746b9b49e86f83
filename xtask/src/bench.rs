//! `cargo xtask bench`: our workloads against the PyTorch reference, run by run.
//!
//! Builds `l2m-bench` in release mode, then for each workload runs a warm-up of each side
//! and `--runs` timed runs, alternating which side goes first, each run in a fresh
//! process (so peak resident memory is the workload's own). Reports medians, the ratio
//! ours / reference, and peak memory; writes the table into `docs/performance.md` between
//! its `<!-- bench:<device> -->` markers. Without a Python that imports torch, our side
//! still runs and the reference is reported as skipped.
//!
//! Flags: `--runs N` (3), `--warmup N` (1), `--scale F` (1.0: full sizes), `--only a,b`,
//! `--threads N` (all cores), `--python PATH` (`L2M_PYTHON`, else `python3`),
//! `--device cpu|cuda` (cuda builds `--features cuda`), `--no-write`, `--ours PATH` (time
//! that `l2m-bench` binary, for example an earlier commit's, instead of building one;
//! implies `--no-write`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

const WORKLOADS: &[(&str, &str)] = &[
    (
        "lenet5-train",
        "LeNet-5 train epoch (60k x 1x28x28, B 1000)",
    ),
    ("lenet5-eval", "LeNet-5 evaluation (10k, chunks of 1000)"),
    (
        "autoencoder-train",
        "Autoencoder 784-128-32 train epoch (60k, B 1000)",
    ),
    (
        "lenet-cifar-train",
        "LeNet-CIFAR train epoch (50k x 3x32x32, B 1000)",
    ),
    (
        "transformer-train",
        "Transformer train epoch (5k IMDB-shaped, len 200, B 500)",
    ),
    (
        "transformer-train-500",
        "Transformer train epoch at the IMDB preset's length (1k, len 500, B 500)",
    ),
    ("learn2mix-epoch", "learn2mix LeNet-5 epoch (vs classical)"),
    ("mnist-load", "MNIST load and partition (real files)"),
    (
        "csv-load",
        "CSV load and partition by class (1M x 30 numeric + a category + a label)",
    ),
    (
        "smote-cifar100",
        "SMOTE, CIFAR-100 shape, log imbalance (k 5)",
    ),
    (
        "sgemm-peak",
        "Peak: a 2048 x 2048 f32 matrix product (best of 5)",
    ),
];

/// The workload whose rate is the machine's measured peak (always run: the roofline
/// columns need it).
const PEAK: &str = "sgemm-peak";

struct Options {
    runs: usize,
    warmup: usize,
    scale: f64,
    only: Option<Vec<String>>,
    threads: usize,
    python: String,
    device: String,
    write: bool,
    /// An `l2m-bench` binary to time instead of building one (`--ours PATH`: the binary of
    /// an earlier commit, for a before/after table; never written to the page).
    ours: Option<PathBuf>,
}

/// `cargo xtask bench`: our training and data workloads against the PyTorch reference,
/// side by side in one run, written to `docs/performance.md`.
#[derive(Debug, clap::Parser)]
#[command(name = "bench")]
pub struct BenchArgs {
    /// Timed runs per workload (the median is reported).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    runs: u64,
    /// Untimed runs before the timed ones.
    #[arg(long, default_value_t = 1)]
    warmup: u64,
    /// A fraction in (0, 1] of every workload's size (for a quick look).
    #[arg(long, default_value_t = 1.0, value_parser = scale)]
    scale: f64,
    /// Only these workloads (comma-separated).
    #[arg(long, value_delimiter = ',', value_parser = workload)]
    only: Option<Vec<String>>,
    /// Threads on both sides (default: every core).
    #[arg(long)]
    threads: Option<usize>,
    /// The Python with torch that runs the reference (default: $L2M_PYTHON, or python3).
    #[arg(long)]
    python: Option<String>,
    /// Where both sides run.
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "cuda"])]
    device: String,
    /// Print the table without writing docs/performance.md.
    #[arg(long)]
    no_write: bool,
    /// An `l2m-bench` binary to time instead of building one (an earlier commit's, for a
    /// before/after table; implies --no-write).
    #[arg(long, value_name = "PATH")]
    ours: Option<PathBuf>,
}

fn scale(v: &str) -> Result<f64, String> {
    match v.parse::<f64>() {
        Ok(x) if x > 0.0 && x <= 1.0 => Ok(x),
        _ => Err(format!("a number in (0, 1], got {v:?}")),
    }
}

fn workload(v: &str) -> Result<String, String> {
    let v = v.trim();
    if WORKLOADS.iter().any(|(w, _)| *w == v) {
        Ok(v.to_string())
    } else {
        Err(format!(
            "unknown workload {v:?}; expected some of {}",
            WORKLOADS
                .iter()
                .map(|(w, _)| *w)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

fn options(a: BenchArgs) -> anyhow::Result<Options> {
    if let Some(path) = &a.ours
        && !path.is_file()
    {
        bail!(
            "--ours: {} is not a file (an l2m-bench binary)",
            path.display()
        );
    }
    Ok(Options {
        runs: a.runs as usize,
        warmup: a.warmup as usize,
        scale: a.scale,
        only: a.only,
        threads: a
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        python: a
            .python
            .unwrap_or_else(|| std::env::var("L2M_PYTHON").unwrap_or_else(|_| "python3".into())),
        device: a.device,
        write: !a.no_write && a.ours.is_none(),
        ours: a.ours,
    })
}

#[cfg(test)]
fn parse(args: &[&str]) -> anyhow::Result<Options> {
    use clap::Parser;
    options(BenchArgs::try_parse_from(
        std::iter::once("bench").chain(args.iter().copied()),
    )?)
}

#[derive(Debug, Clone, serde::Deserialize)]
struct Outcome {
    seconds: f64,
    peak_rss_mib: Option<f64>,
    detail: serde_json::Value,
}

fn run_json(mut cmd: Command, what: &str) -> anyhow::Result<Outcome> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot start {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .with_context(|| format!("{what} printed no JSON line: {text}"))?;
    serde_json::from_str(line).with_context(|| format!("{what}: {line}"))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Whether `python` imports the modules.
fn python_has(python: &str, modules: &str) -> bool {
    Command::new(python)
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn python_version(python: &str) -> String {
    Command::new(python)
        .args([
            "-c",
            "import platform, importlib\nv = []\nfor m in ('torch', 'pandas', 'numpy'):\n    try: v.append(m + ' ' + importlib.import_module(m).__version__)\n    except Exception: pass\nprint(', '.join(v + ['Python ' + platform.python_version()]))",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unavailable".into())
}

pub(crate) fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<f64>().ok())
        })
        .map_or("?".into(), |k| format!("{:.0} GiB", k / 1024.0 / 1024.0));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{cpu}, {cores} cores available, {mem} memory")
}

struct Row {
    name: &'static str,
    label: &'static str,
    /// The workload's floating-point operations (from the model's shapes), if counted.
    flops: Option<f64>,
    ours: f64,
    ours_rss: f64,
    reference: Option<(f64, f64)>,
    note: String,
}

/// Builds `l2m-bench` in release mode (with CUDA for `--device cuda`); its path.
fn build_ours(root: &Path, o: &Options) -> anyhow::Result<PathBuf> {
    let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    build
        .current_dir(root)
        .args(["build", "--release", "-p", "l2m-bench"]);
    if o.device == "cuda" {
        build.args(["--features", "cuda"]);
    }
    let status = build.status().context("cannot run cargo build")?;
    if !status.success() {
        bail!("building l2m-bench failed");
    }
    Ok(root.join("target/release/l2m-bench"))
}

pub fn run(root: &Path, args: BenchArgs) -> anyhow::Result<()> {
    let o = options(args)?;
    // 1. Build our side (unless a binary was given).
    let ours_bin: PathBuf = match &o.ours {
        Some(path) => path.clone(),
        None => build_ours(root, &o)?,
    };
    let script = root.join("xtask/bench/reference.py");
    let has_torch = python_has(&o.python, "torch, numpy");
    let has_imblearn = python_has(&o.python, "imblearn, numpy");
    let has_pandas = python_has(&o.python, "pandas, numpy");
    // The generated CSV both sides read (written once per size, not timed).
    let csv_rows = ((1_000_000.0 * o.scale) as usize).max(1000);
    let csv_path = root.join(format!("target/bench/csv-load-{csv_rows}.csv"));
    if o.only
        .as_ref()
        .is_none_or(|w| w.iter().any(|n| n == "csv-load"))
        && !csv_path.exists()
    {
        write_bench_csv(&csv_path, csv_rows)?;
    }
    let data_dir = root.join("data");
    say(&format!(
        "machine: {}; threads {}; reference: {}",
        machine(),
        o.threads,
        if has_torch || has_pandas {
            python_version(&o.python)
        } else {
            format!(
                "skipped ({} cannot import torch; pip install torch numpy imbalanced-learn)",
                o.python
            )
        }
    ));

    let ours_cmd = |w: &str| {
        let mut c = Command::new(&ours_bin);
        c.current_dir(root)
            .env("RAYON_NUM_THREADS", o.threads.to_string())
            .env("L2M_BENCH_CSV", &csv_path)
            .args([w, "--scale", &o.scale.to_string(), "--device", &o.device])
            .arg("--data-dir")
            .arg(&data_dir);
        c
    };
    let ref_cmd = |w: &str, counts: &str| {
        let mut c = Command::new(&o.python);
        c.current_dir(root)
            .env("L2M_BENCH_CSV", &csv_path)
            .arg(&script)
            .args([w, "--scale", &o.scale.to_string()])
            .args(["--threads", &o.threads.to_string()])
            .arg("--data-dir")
            .arg(&data_dir);
        if !counts.is_empty() {
            c.args(["--counts", counts]);
        }
        if o.device == "cuda" {
            c.args(["--device", "cuda"]);
        }
        c
    };

    let mut rows = Vec::new();
    let mut classical_epoch = None;
    for &(name, label) in WORKLOADS {
        if let Some(only) = &o.only
            && !only.iter().any(|n| n == name)
            && name != PEAK
        {
            continue;
        }
        if name == "mnist-load" && !data_dir.join("mnist").exists() {
            say(&format!(
                "{name}: skipped (no {}; cargo xtask fetch-data mnist)",
                data_dir.join("mnist").display()
            ));
            continue;
        }
        // learn2mix's overhead is against our own classical epoch, not PyTorch.
        let with_ref = match name {
            "learn2mix-epoch" => false,
            "smote-cifar100" => has_imblearn,
            "csv-load" => has_pandas,
            _ => has_torch,
        };
        let ours_name = if name == "learn2mix-epoch" {
            "learn2mix-epoch"
        } else {
            name
        };
        let mut ours = Vec::new();
        let mut ours_rss: f64 = 0.0;
        let mut reference = Vec::new();
        let mut ref_rss: f64 = 0.0;
        let mut classical = Vec::new();
        let mut counts = String::new();
        let mut flops = None;
        for r in 0..o.warmup + o.runs {
            let timed = r >= o.warmup;
            let ours_first = r % 2 == 0;
            for side in 0..2 {
                let ours_turn = (side == 0) == ours_first;
                if ours_turn {
                    let out = run_json(ours_cmd(ours_name), &format!("l2m-bench {ours_name}"))?;
                    flops = out.detail.get("flops").and_then(serde_json::Value::as_f64);
                    if let Some(c) = out.detail.get("counts").and_then(|c| c.as_array()) {
                        counts = c
                            .iter()
                            .map(|v| v.to_string())
                            .collect::<Vec<_>>()
                            .join(",");
                    }
                    if timed {
                        ours.push(out.seconds);
                        ours_rss = ours_rss.max(out.peak_rss_mib.unwrap_or(0.0));
                    }
                    if name == "learn2mix-epoch" {
                        // The classical epoch, alternated with learn2mix's.
                        let c = run_json(ours_cmd("classical-epoch"), "l2m-bench classical")?;
                        if timed {
                            classical.push(c.seconds);
                        }
                    }
                } else if with_ref {
                    if name == "smote-cifar100" && counts.is_empty() {
                        continue;
                    }
                    let out = match run_json(ref_cmd(name, &counts), &format!("reference {name}")) {
                        Ok(o) => o,
                        Err(e) => {
                            say(&format!(
                                "{name}: reference failed, reported as skipped: {e:#}"
                            ));
                            reference.clear();
                            break;
                        }
                    };
                    if timed {
                        reference.push(out.seconds);
                        ref_rss = ref_rss.max(out.peak_rss_mib.unwrap_or(0.0));
                    }
                }
            }
        }
        let ours_median = median(&mut ours);
        let mut note = String::new();
        let reference = if name == "learn2mix-epoch" {
            let c = median(&mut classical);
            classical_epoch = Some(c);
            note = "reference = our classical epoch".into();
            Some((c, f64::NAN))
        } else if reference.is_empty() {
            note = "reference skipped".into();
            None
        } else {
            Some((median(&mut reference), ref_rss))
        };
        say(&format!(
            "{name}: ours {ours_median:.3} s{}",
            reference.map_or(String::new(), |(r, _)| format!(
                ", reference {r:.3} s, ratio {:.2}",
                ours_median / r
            ))
        ));
        rows.push(Row {
            name,
            label,
            flops,
            ours: ours_median,
            ours_rss,
            reference,
            note,
        });
    }
    let _ = classical_epoch;
    let table = markdown(&rows, &o);
    say(&table);
    if o.write {
        let doc = root.join("docs/performance.md");
        // A run of some workloads (`--only`) gets a section of its own, so that it never
        // replaces the full table's other rows.
        let key = match &o.only {
            Some(only) => format!("{}:{}", o.device, only.join("+")),
            None => o.device.clone(),
        };
        // The flags as typed, for the page's "Command:" line.
        let typed: Vec<String> = std::env::args().skip(2).collect();
        write_section(&doc, &key, &table, &o, &typed)?;
        say(&format!("written to {}", doc.display()));
    }
    Ok(())
}

/// The measured peak in FLOP/s: the faster side of the peak workload.
fn peak(rows: &[Row]) -> Option<f64> {
    let r = rows.iter().find(|r| r.name == PEAK)?;
    let f = r.flops?;
    let ours = f / r.ours;
    let reference = r.reference.map_or(0.0, |(s, _)| f / s);
    Some(ours.max(reference))
}

/// `seconds` of `flops` as a percentage of `peak` FLOP/s.
fn of_peak(flops: Option<f64>, seconds: f64, peak: Option<f64>) -> String {
    match (flops, peak) {
        (Some(f), Some(p)) if seconds > 0.0 && p > 0.0 => {
            format!("{:.0}%", 100.0 * f / seconds / p)
        }
        _ => "-".into(),
    }
}

fn markdown(rows: &[Row], o: &Options) -> String {
    let peak = peak(rows);
    let mut t = String::from(
        "| workload | ours (s) | reference (s) | ours / reference | GFLOP | ours, % of peak | reference, % of peak | peak RSS ours (MiB) | peak RSS reference (MiB) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let (rs, ratio, rrss) = match r.reference {
            Some((s, rss)) => (
                format!("{s:.3}"),
                format!("**{:.2}x**", r.ours / s),
                if rss.is_nan() {
                    "-".into()
                } else {
                    format!("{rss:.0}")
                },
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        let label = if r.note.is_empty() {
            format!("{} `{}`", r.label, r.name)
        } else {
            format!("{} `{}` ({})", r.label, r.name, r.note)
        };
        let gflop = r.flops.map_or("-".into(), |f| format!("{:.1}", f / 1e9));
        let ours_peak = of_peak(r.flops, r.ours, peak);
        let ref_peak = match r.reference {
            Some((s, _)) if r.name != "learn2mix-epoch" => of_peak(r.flops, s, peak),
            _ => "-".into(),
        };
        t.push_str(&format!(
            "| {label} | {:.3} | {rs} | {ratio} | {gflop} | {ours_peak} | {ref_peak} | {:.0} | {rrss} |\n",
            r.ours, r.ours_rss
        ));
    }
    if let Some(p) = peak {
        t.push_str(&format!(
            "\nPeak: {:.1} GFLOP/s, the faster side's 2048 x 2048 f32 product in this run. GFLOP counts only the matrix products and convolutions, from the model's shapes (`ModelConfig::flops_per_sample`: a multiply-add is 2, backward is the weight and input gradients but the first layer's input gradient); element-wise work is not counted.\n",
            p / 1e9
        ));
    }
    t.push_str(&format!(
        "\nMedians of {} runs after {} warm-up run(s), sides alternated, each run a fresh process; scale {}; {} threads on both sides.\n",
        o.runs, o.warmup, o.scale, o.threads
    ));
    t
}

/// Replaces the text between `<!-- bench:<device> start -->` and `<!-- bench:<device> end -->`
/// (appending the section when the markers are missing).
fn write_section(
    doc: &Path,
    device: &str,
    table: &str,
    o: &Options,
    args: &[String],
) -> anyhow::Result<()> {
    let start = format!("<!-- bench:{device} start -->");
    let end = format!("<!-- bench:{device} end -->");
    let body = format!(
        "{start}\nMachine: {}. Reference: {}. Command: `cargo xtask bench {}`.\n\n{table}{end}",
        machine(),
        python_version(&o.python),
        args.join(" ")
    );
    let text = std::fs::read_to_string(doc).unwrap_or_default();
    let new = match (text.find(&start), text.find(&end)) {
        (Some(a), Some(b)) if b > a => format!("{}{}{}", &text[..a], body, &text[b + end.len()..]),
        _ => format!("{text}\n{body}\n"),
    };
    let tmp = doc.with_extension("md.tmp");
    std::fs::write(&tmp, new).with_context(|| tmp.display().to_string())?;
    std::fs::rename(&tmp, doc).with_context(|| doc.display().to_string())
}

fn say(s: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{s}");
}

/// The `csv-load` workload's file: `rows` rows of 30 numeric features (six decimals), a
/// categorical column of 8 values and an imbalanced label of 5 classes, from a fixed
/// linear congruential sequence. Written to a temporary name, then renamed.
fn write_bench_csv(path: &Path, rows: usize) -> anyhow::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("csv.partial");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let header: Vec<String> = (0..30).map(|i| format!("f{i}")).collect();
    writeln!(w, "{},segment,label", header.join(","))?;
    for _ in 0..rows {
        for j in 0..30 {
            write!(w, "{:.6},", (next() - 0.5) * 10.0 * (j + 1) as f64)?;
        }
        let segment = (next() * 8.0) as usize;
        // Class c has weight 2^-c: an imbalanced label.
        let u = next() * 1.9375;
        let label = [1.0, 1.5, 1.75, 1.875, 1.9375]
            .iter()
            .position(|&t| u < t)
            .unwrap_or(4);
        writeln!(w, "seg{segment},class{label}")?;
    }
    w.flush()?;
    drop(w);
    std::fs::rename(&tmp, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roofline_columns_use_the_faster_side_of_the_peak_product() {
        let row = |name, flops, ours, reference: Option<f64>| Row {
            name,
            label: "x",
            flops,
            ours,
            ours_rss: 1.0,
            reference: reference.map(|r| (r, 2.0)),
            note: String::new(),
        };
        // Peak: 100 GFLOP in 1 s (ours) or 0.5 s (the reference): 200 GFLOP/s.
        let rows = vec![
            row("lenet5-train", Some(20e9), 1.0, Some(2.0)),
            row("mnist-load", None, 0.5, Some(0.5)),
            row(PEAK, Some(100e9), 1.0, Some(0.5)),
        ];
        assert_eq!(peak(&rows), Some(200e9));
        let o = parse(&[]).expect("options");
        let t = markdown(&rows, &o);
        // 20 GFLOP in 1 s is 10% of 200 GFLOP/s; the reference's 2 s is 5%.
        assert!(t.contains("| 20.0 | 10% | 5% |"), "{t}");
        assert!(t.contains("| 100.0 | 50% | 100% |"), "{t}");
        assert!(t.contains("| - | - | - |"), "{t}");
        assert!(t.contains("Peak: 200.0 GFLOP/s"), "{t}");
    }
}
