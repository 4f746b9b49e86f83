//! `l2m report DIR`: `report.md` (and its plots) for a run directory.

use std::path::Path;

use anyhow::Context;

use crate::output::{print, shown};

pub fn run(
    dir: &Path,
    metric: l2m_engine::Metric,
    tensorboard: Option<&Path>,
) -> anyhow::Result<()> {
    let text = l2m_engine::report::write_report_by(dir, metric)
        .with_context(|| format!("cannot write a report for {}", shown(dir)))?;
    // The report quotes class names from the data: escaped on the way out.
    print(&l2m_engine::text::terminal_safe_text(&text))?;
    if let Some(tb) = tensorboard {
        super::train::export_tensorboard(dir, tb)?;
    }
    Ok(())
}
