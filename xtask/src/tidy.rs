//! Mechanical repository rules, checked by `cargo xtask tidy` and by `cargo test`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// Runs every rule; the error lists every violation.
pub fn run(root: &Path) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    problems.extend(missing_module_docs(root)?);
    problems.extend(core_invariants(root)?);
    problems.extend(unregistered(root)?);
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

/// The names `impl TRAIT for NAME` gives in `text`.
fn implementors<'a>(text: &'a str, trait_name: &str) -> Vec<&'a str> {
    let needle = format!("impl {trait_name} for ");
    text.match_indices(&needle)
        .filter_map(|(i, _)| {
            let rest = &text[i + needle.len()..];
            let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_'))?;
            Some(&rest[..end])
        })
        .collect()
}

/// Every strategy and every mixing rule is registered: a strategy's options type (`impl
/// StrategyOptions`) has its line in `REGISTRY` (crates/l2m-engine/src/strategy/mod.rs),
/// and a mixing rule (`impl MixingRule`, but for the wrappers `Static` and `Floored`) has a
/// `RuleEntry` named in `RULES` (crates/l2m-core/src/rules.rs), and a data source (`impl
/// Source` in crates/l2m-data/src/own/sources/) is listed in `SOURCES`. Otherwise the code
/// exists and no name reaches it.
fn unregistered(root: &Path) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    let strategies = root.join("crates/l2m-engine/src/strategy");
    if strategies.is_dir() {
        let registry = fs::read_to_string(strategies.join("mod.rs"))?;
        let mut files = Vec::new();
        rust_files(&strategies, &mut files)?;
        for f in files {
            let text = fs::read_to_string(&f)?;
            for name in implementors(&text, "StrategyOptions") {
                let listed = registry
                    .match_indices("StrategyEntry::of::<")
                    .any(|(i, _)| {
                        let rest = &registry[i..];
                        rest.find('>')
                            .is_some_and(|end| rest[..end].ends_with(name))
                    });
                if !listed {
                    problems.push(format!(
                        "{}: strategy options {name} are not in REGISTRY (strategy/mod.rs)",
                        f.display()
                    ));
                }
            }
        }
    }
    let core = root.join("crates/l2m-core/src");
    if core.join("rules.rs").is_file() {
        let rules = fs::read_to_string(core.join("rules.rs"))?;
        let listed = rules
            .split_once("pub const RULES")
            .and_then(|(_, rest)| rest.split_once("];"))
            .map_or("", |(list, _)| list);
        let mut files = Vec::new();
        rust_files(&core, &mut files)?;
        for f in files {
            let text = fs::read_to_string(&f)?;
            let rule_types: Vec<&str> = implementors(&text, "MixingRule")
                .into_iter()
                .filter(|n| !["Static", "Floored"].contains(n))
                .collect();
            if rule_types.is_empty() {
                continue;
            }
            let module = f.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            let entries: Vec<&str> = text
                .match_indices("const ")
                .filter_map(|(i, _)| {
                    let rest = &text[i + "const ".len()..];
                    let (name, ty) = rest.split_once(':')?;
                    ty.trim_start()
                        .starts_with("crate::rules::RuleEntry")
                        .then_some(name.trim())
                })
                .collect();
            if entries.len() < rule_types.len()
                || !entries
                    .iter()
                    .all(|e| listed.contains(&format!("crate::{module}::{e}")))
            {
                problems.push(format!(
                    "{}: mixing rule(s) {} without a RuleEntry listed in RULES (l2m-core/src/rules.rs)",
                    f.display(),
                    rule_types.join(", ")
                ));
            }
        }
    }
    let sources = root.join("crates/l2m-data/src/own/sources");
    if sources.join("mod.rs").is_file() {
        let registry = fs::read_to_string(sources.join("mod.rs"))?;
        let listed = registry
            .split_once("pub const SOURCES")
            .and_then(|(_, rest)| rest.split_once("];"))
            .map_or("", |(list, _)| list);
        let mut files = Vec::new();
        rust_files(&sources, &mut files)?;
        for f in files {
            let text = fs::read_to_string(&f)?;
            let module = f.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            for name in implementors(&text, "Source") {
                if !listed.contains(&format!("&{module}::{name}")) {
                    problems.push(format!(
                        "{}: data source {name} is not in SOURCES (l2m-data/src/own/sources/mod.rs)",
                        f.display()
                    ));
                }
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

    /// A strategy, rule or data source written but not registered is caught.
    #[test]
    fn an_unregistered_strategy_rule_or_source_is_caught() {
        let dir = std::env::temp_dir().join(format!("xtask-tidy-registry-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let strategy = dir.join("crates/l2m-engine/src/strategy");
        let core = dir.join("crates/l2m-core/src");
        fs::create_dir_all(&strategy).expect("mkdir");
        fs::create_dir_all(&core).expect("mkdir");
        fs::write(
            strategy.join("mod.rs"),
            "pub const REGISTRY: &[StrategyEntry] = &[StrategyEntry::of::<a::AOptions>(\"a\", \"\")];",
        )
        .expect("write");
        fs::write(
            strategy.join("a.rs"),
            "impl StrategyOptions for AOptions {}",
        )
        .expect("write");
        fs::write(
            core.join("rules.rs"),
            "pub const RULES: &[RuleEntry] = &[crate::x::ENTRY];",
        )
        .expect("write");
        fs::write(
            core.join("x.rs"),
            "pub(crate) const ENTRY: crate::rules::RuleEntry = x;\nimpl MixingRule for X {}",
        )
        .expect("write");
        assert!(unregistered(&dir).expect("scan").is_empty());
        fs::write(
            strategy.join("b.rs"),
            "impl StrategyOptions for BOptions {}",
        )
        .expect("write");
        fs::write(core.join("y.rs"), "impl MixingRule for Y {}").expect("write");
        let sources = dir.join("crates/l2m-data/src/own/sources");
        fs::create_dir_all(&sources).expect("mkdir");
        fs::write(
            sources.join("mod.rs"),
            "pub const SOURCES: &[&dyn Source] = &[&csv::Csv];",
        )
        .expect("write");
        fs::write(sources.join("csv.rs"), "impl Source for Csv {}").expect("write");
        fs::write(sources.join("xlsx.rs"), "impl Source for Xlsx {}").expect("write");
        let problems = unregistered(&dir).expect("scan").join("\n");
        assert!(
            problems.contains("strategy options BOptions are not in REGISTRY"),
            "{problems}"
        );
        assert!(
            problems.contains("mixing rule(s) Y without a RuleEntry"),
            "{problems}"
        );
        assert!(
            problems.contains("data source Xlsx is not in SOURCES")
                && !problems.contains("data source Csv"),
            "{problems}"
        );
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("xtask-tidy-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }
}
