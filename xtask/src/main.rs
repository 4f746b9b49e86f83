//! Project automation, run as `cargo xtask <command>` (see `.cargo/config.toml`).
//!
//! - `cargo xtask tidy`: the repository's mechanical rules (every Rust file opens with a
//!   `//!` doc comment; `l2m-core` depends on no tensor library and performs no I/O).
//!   The same checks run as tests, so `cargo test --workspace` enforces them.
//! - `cargo xtask fetch-data [NAMES...|--all] [--mirror DIR] [--data-dir DIR]`: datasets
//!   into `data/`, verified against `data/manifest.toml`.
//! - `cargo xtask bench [--runs N] [--scale F] [--only a,b] ...`: our training and data
//!   workloads against the PyTorch reference, written to `docs/performance.md`.
//! - `cargo xtask results RUN_DIR...`: `docs/results.md` from finished `l2m reproduce`
//!   run directories; `--evidence runs/evidence` writes its ablation and gamma-sensitivity
//!   sections from the runs there.
//! - `cargo xtask fuzz [TARGET...|all] [--minutes M]`: AFL++ (cargo-afl) on the parsers'
//!   fuzz targets in `fuzz/`, figures written to `docs/reliability.md`.

mod bench;
mod evidence;
mod fetch;
mod fuzz;
mod results;
mod tidy;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let result = match args.next().as_deref() {
        Some("tidy") => tidy::run(&project_root()),
        Some("bench") => {
            let rest: Vec<String> = args.collect();
            bench::run(&project_root(), &rest)
        }
        Some("results") => {
            let rest: Vec<String> = args.collect();
            results::run(&project_root(), &rest).map(|done| {
                use std::io::Write;
                let _ = writeln!(std::io::stdout(), "{done}");
            })
        }
        Some("fuzz") => {
            let rest: Vec<String> = args.collect();
            fuzz::run(&project_root(), &rest)
        }
        Some("fetch-data") => {
            let rest: Vec<String> = args.collect();
            fetch::run(&project_root(), &rest).map(|report| {
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                for line in report {
                    let _ = writeln!(out, "{line}");
                }
            })
        }
        Some(other) => Err(anyhow::anyhow!(
            "unknown command {other:?}; expected: tidy, fetch-data, bench, results, fuzz"
        )),
        None => Err(anyhow::anyhow!(
            "usage: cargo xtask <command>; commands: tidy, fetch-data, bench, results, fuzz"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: the parent of this crate's manifest directory.
fn project_root() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    dir.parent().map(PathBuf::from).unwrap_or(dir)
}
