//! `l2m list` (and `l2m reproduce --list`): the presets, and how a variant differs from
//! the paper's Table 3.

use std::io::Write;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

pub fn run() -> anyhow::Result<()> {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header([
        "experiment",
        "task",
        "model",
        "lr",
        "gamma",
        "B",
        "epochs",
        "strategies",
        "data needed",
    ]);
    for name in l2m_engine::PRESETS {
        let cfg = l2m_engine::preset(name)?;
        table.add_row([
            name.to_string(),
            format!("{:?}", cfg.task).to_lowercase(),
            cfg.model.name(),
            cfg.optimizer.lr.to_string(),
            cfg.gamma().map_or("-".into(), |g| g.to_string()),
            cfg.batch_size.to_string(),
            cfg.epochs.to_string(),
            cfg.strategies
                .iter()
                .map(|s| s.name())
                .collect::<Vec<_>>()
                .join(","),
            cfg.dataset.needs().map_or("none (synthetic)".into(), |d| {
                format!("{} (cargo xtask fetch-data {})", d.name(), d.name())
            }),
        ]);
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{table}")?;
    // The open families, from their registries: a strategy or rule added there is here.
    let mut strategies = Table::new();
    strategies.load_preset(UTF8_FULL_CONDENSED);
    strategies.set_header(["strategy", "what it does"]);
    for e in l2m_engine::strategy::REGISTRY {
        strategies.add_row([e.name, e.summary]);
    }
    writeln!(out, "\n{strategies}")?;
    let mut rules = Table::new();
    rules.load_preset(UTF8_FULL_CONDENSED);
    rules.set_header(["learn2mix rule (--rule)", "update", "parameters"]);
    for r in l2m_engine::rules::RULES {
        let params: Vec<String> = r
            .params
            .iter()
            .map(|p| match p.default {
                Some(d) => format!("{} (default {d}): {}", p.name, p.summary),
                None => format!("{}: {}", p.name, p.summary),
            })
            .collect();
        rules.add_row([r.name.to_string(), r.summary.to_string(), params.join("; ")]);
    }
    writeln!(out, "\n{rules}")?;
    let mut sources = Table::new();
    sources.load_preset(UTF8_FULL_CONDENSED);
    sources.set_header(["data source (--data, kind = ...)", "reads"]);
    for s in l2m_engine::own::SOURCES {
        sources.add_row([s.name(), s.about()]);
    }
    writeln!(out, "\n{sources}")?;
    Ok(())
}

/// Every setting in which `variant` differs from Table 3, per experiment, then what the
/// variant does not copy.
pub fn differences(variant: l2m_engine::Variant) -> anyhow::Result<()> {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(["experiment", "setting", "Table 3", variant.name()]);
    for name in l2m_engine::PRESETS {
        for d in l2m_engine::variant::differences(name)? {
            table.add_row([name.to_string(), d.setting, d.table3, d.authors]);
        }
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{table}")?;
    writeln!(out, "\nNot copied from the authors' code:")?;
    for c in l2m_engine::variant::AUTHORS_CAVEATS {
        writeln!(out, "- {c}")?;
    }
    Ok(())
}
