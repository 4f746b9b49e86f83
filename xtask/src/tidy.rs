//! Mechanical repository rules, checked by `cargo xtask tidy` and by `cargo test`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// Runs every rule; the error lists every violation.
pub fn run(root: &Path) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    problems.extend(missing_module_docs(root)?);
    problems.extend(core_invariants(root)?);
    if problems.is_empty() {
        Ok(())
    } else {
        bail!(
            "{} problem(s):\n  {}",
            problems.len(),
            problems.join("\n  ")
        )
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            rust_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// Every Rust file opens with a `//!` paragraph saying what it is for.
fn missing_module_docs(root: &Path) -> anyhow::Result<Vec<String>> {
    let mut files = Vec::new();
    for dir in ["crates", "xtask", "tests", "examples"] {
        let d = root.join(dir);
        if d.is_dir() {
            rust_files(&d, &mut files)?;
        }
    }
    let mut problems = Vec::new();
    for f in files {
        let text = fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?;
        if !text.trim_start().starts_with("//!") {
            problems.push(format!(
                "{}: does not start with a //! doc comment",
                f.display()
            ));
        }
    }
    Ok(problems)
}

/// `l2m-core` stays free of Candle (any framework can use it) and of I/O.
fn core_invariants(root: &Path) -> anyhow::Result<Vec<String>> {
    let core = root.join("crates/l2m-core");
    let manifest =
        fs::read_to_string(core.join("Cargo.toml")).context("reading l2m-core's Cargo.toml")?;
    let mut problems = Vec::new();
    for banned in ["candle", "tch", "burn", "ndarray"] {
        if manifest.lines().any(|l| l.trim_start().starts_with(banned)) {
            problems.push(format!(
                "crates/l2m-core/Cargo.toml: depends on {banned}; l2m-core must stay tensor-free"
            ));
        }
    }
    let mut files = Vec::new();
    rust_files(&core.join("src"), &mut files)?;
    for f in files {
        let text = fs::read_to_string(&f)?;
        for banned in [
            "std::fs",
            "std::net",
            "File::",
            "std::env",
            "SystemTime",
            "Instant::",
        ] {
            if text.contains(banned) {
                problems.push(format!(
                    "{}: uses {banned}; l2m-core performs no I/O and reads no clock",
                    f.display()
                ));
            }
        }
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_is_tidy() {
        if let Err(e) = run(&crate::project_root()) {
            panic!("{e:#}");
        }
    }

    #[test]
    fn rules_catch_violations() {
        let dir = tempfile_dir();
        let core = dir.join("crates/l2m-core/src");
        fs::create_dir_all(&core).expect("mkdir");
        fs::write(
            dir.join("crates/l2m-core/Cargo.toml"),
            "[dependencies]\ncandle-core = \"0.11\"\n",
        )
        .expect("write");
        fs::write(core.join("lib.rs"), "use std::fs::File;\n").expect("write");
        let err = run(&dir).expect_err("violations").to_string();
        assert!(err.contains("3 problem(s)"), "{err}");
        assert!(err.contains("does not start with a //! doc comment"));
        assert!(err.contains("depends on candle"));
        assert!(err.contains("uses std::fs"));
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("xtask-tidy-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }
}
