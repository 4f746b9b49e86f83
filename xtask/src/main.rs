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
//!
//! Every command parses its flags with clap and answers `--help`.

mod bench;
mod evidence;
mod fetch;
mod fuzz;
mod results;
mod tidy;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Project automation: `cargo xtask <command>` (`--help` on each).
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// The repository's mechanical rules (doc comments, l2m-core free of tensors and I/O).
    Tidy,
    /// Datasets into data/, verified against data/manifest.toml.
    FetchData(fetch::FetchArgs),
    /// Our workloads against the PyTorch reference, into docs/performance.md.
    Bench(bench::BenchArgs),
    /// docs/results.md from finished `l2m reproduce` run directories.
    Results(results::ResultsArgs),
    /// AFL++ on the parsers' fuzz targets, figures into docs/reliability.md.
    Fuzz(fuzz::FuzzArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let root = project_root();
    let result = match cli.command {
        Command::Tidy => tidy::run(&root),
        Command::Bench(args) => bench::run(&root, args),
        Command::Results(args) => results::run(&root, args).map(|done| {
            let _ = writeln!(std::io::stdout(), "{done}");
        }),
        Command::Fuzz(args) => fuzz::run(&root, args),
        Command::FetchData(args) => fetch::run(&root, args).map(|report| {
            let mut out = std::io::stdout().lock();
            for line in report {
                let _ = writeln!(out, "{line}");
            }
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
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
