//! `l2m-fuzz`: the fuzz targets as one binary.
//!
//! ```text
//! l2m-fuzz seeds <target|all> <dir>        write the seed corpus into <dir>/<target>/
//! l2m-fuzz replay <target> <file|dir>...   run every file (CI, crash regressions)
//! l2m-fuzz fuzz <target>                   AFL++ persistent mode (built with --features afl)
//! ```
//!
//! The scratch folder the targets write into is `$L2M_FUZZ_SCRATCH` when set (what
//! `cargo xtask fuzz` gives each AFL++ instance), else a temporary folder.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use l2m_fuzz::{Scratch, Target};

fn scratch() -> Result<Scratch> {
    Scratch::new(std::env::var_os("L2M_FUZZ_SCRATCH").map(PathBuf::from))
}

fn files(paths: &[String]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        let p = Path::new(p);
        if p.is_dir() {
            let mut inner: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("reading {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.is_file())
                .collect();
            inner.sort();
            out.extend(inner);
        } else {
            out.push(p.to_path_buf());
        }
    }
    Ok(out)
}

fn main() -> ExitCode {
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage =
        "usage: l2m-fuzz seeds <target|all> <dir> | replay <target> <file|dir>... | fuzz <target>";
    let (cmd, rest) = args.split_first().context(usage)?;
    match (cmd.as_str(), rest) {
        ("seeds", [target, dir]) => {
            let targets = if target == "all" {
                Target::ALL.to_vec()
            } else {
                vec![Target::parse(target)?]
            };
            for t in targets {
                let d = Path::new(dir).join(t.name());
                std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
                let seeds = l2m_fuzz::seeds(t);
                if seeds.is_empty() {
                    bail!("no seeds for {}", t.name());
                }
                for (name, bytes) in &seeds {
                    let f = d.join(name);
                    std::fs::write(&f, bytes)
                        .with_context(|| format!("writing {}", f.display()))?;
                }
                writeln!(
                    std::io::stdout(),
                    "{}: {} seeds in {}",
                    t.name(),
                    seeds.len(),
                    d.display()
                )?;
            }
            Ok(())
        }
        ("replay", [target, paths @ ..]) if !paths.is_empty() => {
            let t = Target::parse(target)?;
            let scratch = scratch()?;
            let files = files(paths)?;
            for f in &files {
                let data = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
                writeln!(std::io::stderr(), "{}: {}", t.name(), f.display())?;
                if let Err(e) = l2m_fuzz::run(t, &data, &scratch) {
                    writeln!(std::io::stderr(), "  refused: {}", clip(&e))?;
                }
            }
            writeln!(
                std::io::stdout(),
                "{}: {} inputs replayed, no crash",
                t.name(),
                files.len()
            )?;
            Ok(())
        }
        ("fuzz", [target]) => fuzz(Target::parse(target)?),
        _ => bail!("{usage}"),
    }
}

#[cfg(feature = "afl")]
fn fuzz(target: Target) -> Result<()> {
    let scratch = scratch()?;
    // Without afl's abort hook: a panic the toolkit catches (and turns into an error) is
    // handled, not a crash; an uncaught one still aborts.
    afl::fuzz_nohook!(|data: &[u8]| {
        let _ = l2m_fuzz::run(target, data, &scratch);
    });
    Ok(())
}

#[cfg(not(feature = "afl"))]
fn fuzz(target: Target) -> Result<()> {
    bail!(
        "this l2m-fuzz was built without the `afl` feature; run `cargo xtask fuzz {}`",
        target.name()
    )
}

/// The first 300 characters of a message.
fn clip(s: &str) -> String {
    match s.char_indices().nth(300) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}
