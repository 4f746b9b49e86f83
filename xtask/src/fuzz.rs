//! `cargo xtask fuzz [TARGET...|all] [--minutes M] [--memory-mb MB] [--no-doc] [--report]`: coverage-guided
//! fuzzing of l2m's parsers with AFL++ through cargo-afl, then the figures in
//! `docs/reliability.md`.
//!
//! cargo-afl works on the stable toolchain (cargo-fuzz's libFuzzer needs nightly's
//! sanitizer flags): `cargo install cargo-afl --locked` once, and this command builds
//! `fuzz/` with its instrumentation (`cargo afl build --features afl`), writes the seed
//! corpus of each target (`l2m-fuzz seeds`), runs `afl-fuzz` on it for `--minutes` (10 by
//! default) under a memory limit (`-m`, 2048 MiB by default) and a 10 s per-input time
//! limit, and reads back `fuzzer_stats`. Inputs that crashed are copied into
//! `fuzz/regressions/<target>/` (which `cargo test -p l2m-fuzz` replays) and make the
//! command fail; hangs are kept under `target/fuzz/` and fail it too. `--report` only
//! rewrites the table from the last campaign's `target/fuzz/out/<target>/default/fuzzer_stats`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The targets of `l2m-fuzz`, in the table's order.
const TARGETS: [&str; 8] = [
    "idx",
    "cifar",
    "image-folder",
    "imdb",
    "csv",
    "parquet",
    "config",
    "checkpoint",
];

struct Options {
    targets: Vec<String>,
    minutes: f64,
    memory_mb: u64,
    doc: bool,
    report_only: bool,
}

/// `cargo xtask fuzz`: AFL++ (cargo-afl) on the parsers' fuzz targets in `fuzz/`, the
/// figures written to `docs/reliability.md`.
#[derive(Debug, clap::Parser)]
#[command(name = "fuzz")]
pub struct FuzzArgs {
    /// Targets to fuzz, or `all` (default: all).
    #[arg(value_parser = target)]
    targets: Vec<String>,
    /// Minutes per target.
    #[arg(long, default_value_t = 10.0, value_parser = minutes)]
    minutes: f64,
    /// The fuzzed process's memory limit (AFL++'s -m), at least 64.
    #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u64).range(64..))]
    memory_mb: u64,
    /// Leave docs/reliability.md as it is.
    #[arg(long)]
    no_doc: bool,
    /// Only rewrite the table from the last campaign's figures.
    #[arg(long)]
    report: bool,
}

fn target(v: &str) -> std::result::Result<String, String> {
    if v == "all" || TARGETS.contains(&v) {
        Ok(v.to_string())
    } else {
        Err(format!(
            "unknown target {v:?}; expected {} or all",
            TARGETS.join(", ")
        ))
    }
}

fn minutes(v: &str) -> std::result::Result<f64, String> {
    match v.parse::<f64>() {
        Ok(m) if m > 0.0 => Ok(m),
        _ => Err(format!("expected a positive number, got {v:?}")),
    }
}

fn options(a: FuzzArgs) -> Options {
    let mut targets: Vec<String> = Vec::new();
    for t in a.targets {
        if t == "all" {
            targets.extend(TARGETS.iter().map(|t| t.to_string()));
        } else {
            targets.push(t);
        }
    }
    if targets.is_empty() {
        targets = TARGETS.iter().map(|t| t.to_string()).collect();
    }
    Options {
        targets,
        minutes: a.minutes,
        memory_mb: a.memory_mb,
        doc: !a.no_doc,
        report_only: a.report,
    }
}

#[cfg(test)]
fn parse(args: &[&str]) -> Result<Options> {
    use clap::Parser;
    Ok(options(FuzzArgs::try_parse_from(
        std::iter::once("fuzz").chain(args.iter().copied()),
    )?))
}

/// What one target's fuzzing run measured, from AFL++'s `fuzzer_stats`.
#[derive(Debug, Clone, PartialEq)]
struct Figures {
    execs: u64,
    seconds: u64,
    paths: u64,
    crashes: u64,
    hangs: u64,
    coverage: String,
}

fn stats(path: &Path) -> Result<Figures> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    let map: BTreeMap<&str, &str> = text
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    let num = |k: &str| -> Result<u64> {
        map.get(k)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("{}: no number {k}", path.display()))
    };
    Ok(Figures {
        execs: num("execs_done")?,
        seconds: num("run_time")?,
        paths: num("corpus_count")?,
        crashes: num("saved_crashes")?,
        hangs: num("saved_hangs")?,
        coverage: map.get("bitmap_cvg").unwrap_or(&"?").to_string(),
    })
}

fn say(s: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{s}");
}

/// Runs the command; its output goes to the terminal.
fn check(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed ({status})");
    }
    Ok(())
}

pub fn run(root: &Path, args: FuzzArgs) -> Result<()> {
    let o = options(args);
    if o.report_only {
        let out = root.join("target/fuzz/out");
        let results = o
            .targets
            .iter()
            .map(|t| Ok((t.clone(), stats(&out.join(t).join("default/fuzzer_stats"))?)))
            .collect::<Result<Vec<_>>>()?;
        let doc = root.join("docs/reliability.md");
        write_table(&doc, &results, &o)?;
        say(&format!("updated {} from {}", doc.display(), out.display()));
        return Ok(());
    }
    let afl = Command::new("cargo").args(["afl", "--version"]).output();
    if !afl.is_ok_and(|out| out.status.success()) {
        bail!(
            "cargo-afl is not installed: run `cargo install cargo-afl --locked` (then `cargo afl config --build`)"
        );
    }
    say(
        "building the instrumented fuzz targets (cargo afl build --release -p l2m-fuzz --features afl)",
    );
    // A target folder of its own: the instrumented build must not replace the normal one.
    let afl_target = root.join("target/afl");
    check(
        Command::new("cargo")
            .current_dir(root)
            .env("CARGO_TARGET_DIR", &afl_target)
            .args([
                "afl",
                "build",
                "--release",
                "--locked",
                "-p",
                "l2m-fuzz",
                "--features",
                "afl",
            ]),
    )?;
    let bin = afl_target.join("release/l2m-fuzz");
    let work = root.join("target/fuzz");
    let mut failures = Vec::new();
    let mut results = Vec::new();
    for t in &o.targets {
        let corpus = work.join("corpus");
        let out = work.join("out").join(t);
        let scratch = work.join("scratch").join(t);
        // Only this command's own folders under target/fuzz are replaced.
        for d in [&out, &scratch] {
            if d.exists() {
                std::fs::remove_dir_all(d).with_context(|| d.display().to_string())?;
            }
        }
        std::fs::create_dir_all(work.join("out")).with_context(|| work.display().to_string())?;
        check(Command::new(&bin).args(["seeds", t]).arg(&corpus))?;
        let seconds = (o.minutes * 60.0).round() as u64;
        say(&format!(
            "fuzzing {t} for {seconds} s under {} MiB",
            o.memory_mb
        ));
        // The parsers of user-written tables get a dictionary of terminal escapes, Unicode
        // controls and numbers spelled several ways (fuzz/dict/terminal.dict).
        let dict: Vec<std::ffi::OsString> = if matches!(t.as_str(), "csv" | "parquet") {
            vec!["-x".into(), root.join("fuzz/dict/terminal.dict").into()]
        } else {
            Vec::new()
        };
        check(
            Command::new("cargo")
                .current_dir(root)
                .args(["afl", "fuzz", "-i"])
                .arg(corpus.join(t))
                .arg("-o")
                .arg(&out)
                .args(&dict)
                .args([
                    "-m",
                    &o.memory_mb.to_string(),
                    "-t",
                    "10000",
                    "-V",
                    &seconds.to_string(),
                ])
                .arg("--")
                .arg(&bin)
                .args(["fuzz", t])
                .env("L2M_FUZZ_SCRATCH", &scratch)
                .env("AFL_NO_UI", "1")
                .env("AFL_SKIP_CPUFREQ", "1")
                .env("AFL_NO_AFFINITY", "1")
                .env("AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES", "1"),
        )?;
        let f = stats(&out.join("default/fuzzer_stats"))?;
        say(&format!(
            "{t}: {} executions in {} s, {} paths, {} crashes, {} hangs",
            f.execs, f.seconds, f.paths, f.crashes, f.hangs
        ));
        if f.crashes > 0 {
            let kept = keep_crashes(root, t, &out.join("default/crashes"))?;
            failures.push(format!(
                "{t}: {} crashes, copied to {} (replayed by cargo test -p l2m-fuzz)",
                f.crashes,
                kept.display()
            ));
        }
        if f.hangs > 0 {
            failures.push(format!(
                "{t}: {} hangs in {}",
                f.hangs,
                out.join("default/hangs").display()
            ));
        }
        results.push((t.clone(), f));
    }
    if o.doc {
        let doc = root.join("docs/reliability.md");
        write_table(&doc, &results, &o)?;
        say(&format!("updated {}", doc.display()));
    }
    if !failures.is_empty() {
        bail!("fuzzing found defects:\n{}", failures.join("\n"));
    }
    Ok(())
}

/// Copies AFL++'s crashing inputs into `fuzz/regressions/<target>/`.
fn keep_crashes(root: &Path, target: &str, crashes: &Path) -> Result<PathBuf> {
    let dest = root.join("fuzz/regressions").join(target);
    std::fs::create_dir_all(&dest).with_context(|| dest.display().to_string())?;
    for e in std::fs::read_dir(crashes).with_context(|| crashes.display().to_string())? {
        let e = e?;
        let name = e.file_name().to_string_lossy().to_string();
        if !name.starts_with("id:") {
            continue;
        }
        let bytes = std::fs::read(e.path())?;
        let file = dest.join(format!("crash-{:016x}", fnv(&bytes)));
        std::fs::write(&file, bytes).with_context(|| file.display().to_string())?;
    }
    Ok(dest)
}

/// FNV-1a: a stable name for a crashing input.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

const START: &str = "<!-- fuzz start -->";
const END: &str = "<!-- fuzz end -->";

fn row(t: &str, f: &Figures, o: &Options) -> String {
    let minutes = f.seconds as f64 / 60.0;
    format!(
        "| `{t}` | {} | {minutes:.1} min | {:.0} | {} | {} | {} | {} | {} MiB |",
        f.execs,
        f.execs as f64 / (f.seconds.max(1) as f64),
        f.paths,
        f.coverage,
        f.crashes,
        f.hangs,
        o.memory_mb
    )
}

/// Rewrites the fuzzing table of `doc` (between its markers), replacing the rows of the
/// targets just run and keeping the others.
fn write_table(doc: &Path, results: &[(String, Figures)], o: &Options) -> Result<()> {
    let text = std::fs::read_to_string(doc).with_context(|| doc.display().to_string())?;
    let mut rows: BTreeMap<String, String> = BTreeMap::new();
    if let (Some(a), Some(b)) = (text.find(START), text.find(END))
        && b > a
    {
        for line in text[a..b].lines() {
            if let Some(rest) = line.strip_prefix("| `")
                && let Some((name, _)) = rest.split_once('`')
                && TARGETS.contains(&name)
            {
                rows.insert(name.to_string(), line.to_string());
            }
        }
    }
    for (t, f) in results {
        rows.insert(t.clone(), row(t, f, o));
    }
    let mut table = String::from(
        "| target | executions | time | exec/s | corpus | map coverage | crashes | hangs | memory limit |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for t in TARGETS {
        if let Some(r) = rows.get(t) {
            table.push_str(r);
            table.push('\n');
        }
    }
    let body = format!("{START}\n{table}{END}");
    let new = match (text.find(START), text.find(END)) {
        (Some(a), Some(b)) if b > a => format!("{}{}{}", &text[..a], body, &text[b + END.len()..]),
        _ => format!("{text}\n{body}\n"),
    };
    crate::results::write_page(doc, &new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn afl_stats_are_read_and_the_table_keeps_other_rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let stats_file = dir.path().join("fuzzer_stats");
        std::fs::write(
            &stats_file,
            "start_time        : 1\nrun_time          : 600\nexecs_done        : 123456\ncorpus_count      : 77\nsaved_crashes     : 0\nsaved_hangs       : 1\npeak_rss_mb       : 45\nbitmap_cvg        : 3.21%\n",
        )
        .expect("write");
        let f = stats(&stats_file).expect("stats");
        assert_eq!((f.execs, f.seconds, f.paths, f.hangs), (123456, 600, 77, 1));
        let doc = dir.path().join("r.md");
        std::fs::write(
            &doc,
            format!("# R\n\n{START}\n| target |\n|---|\n| `idx` | old |\n{END}\n\nafter\n"),
        )
        .expect("write");
        let o = parse(&["csv"]).expect("options");
        write_table(&doc, &[("csv".into(), f)], &o).expect("table");
        let text = std::fs::read_to_string(&doc).expect("read");
        assert!(text.contains("| `idx` | old |"), "{text}");
        assert!(
            text.contains("| `csv` | 123456 | 10.0 min | 206 | 77 | 3.21% | 0 | 1 | 2048 MiB |"),
            "{text}"
        );
        assert!(text.find("`idx`") < text.find("`csv`"), "target order");
        assert!(text.ends_with("\n\nafter\n"), "{text}");
    }

    #[test]
    fn bad_options_are_named() {
        let e = parse(&["--minutes", "0"]).err().expect("error");
        assert!(e.to_string().contains("--minutes"), "{e}");
        let e = parse(&["jpeg"]).err().expect("error");
        assert!(e.to_string().contains("unknown target \"jpeg\""), "{e}");
        let e = parse(&["--help"]).err().expect("help");
        assert!(e.to_string().contains("--memory-mb"), "{e}");
    }
}
