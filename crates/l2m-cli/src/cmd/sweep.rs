//! `l2m sweep EXPERIMENT --gamma ...`: a strategy's options over a grid, against a
//! reference, with a recommendation.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::args::SweepArgs;
use crate::output::shown;
use crate::progress;

pub fn run(args: &SweepArgs) -> anyhow::Result<()> {
    let sweep = args.sweep()?;
    l2m_engine::select_device(sweep.base.device).context("--device")?;
    if let Some(d) = sweep.base.dataset.needs() {
        d.locate(&sweep.base.data_dir)
            .with_context(|| format!("experiment {} needs data", sweep.base.name))?;
    }
    let out = match &args.out {
        Some(p) => p.clone(),
        None => {
            let dir = super::train::default_run_dir(Path::new("runs"), &sweep.base)?;
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            let axes: Vec<String> = sweep.axes.iter().map(|a| a.option.clone()).collect();
            Path::new("runs").join(format!("sweep-{}-{name}", axes.join("-")))
        }
    };
    let points = sweep.points()?;
    // The overall bar counts the epochs of the reference and of every point.
    let mut cfg = sweep.base.clone();
    cfg.strategies = std::iter::once(sweep.reference.clone())
        .chain(points.iter().map(|p| p.spec.clone()))
        .collect();
    let points = points.len();
    tracing::info!(
        "sweep of {} on {}: {points} points and the reference {}, {} seeds each, in {}",
        sweep.strategy.name(),
        sweep.base.name,
        sweep.reference.name(),
        sweep.base.seeds.len(),
        shown(&out)
    );
    let mut observer = progress::Bars::new(&cfg, args.quiet, progress::stop_flag());
    let summary = l2m_engine::sweep::run_sweep(&sweep, &out, &mut observer)
        .with_context(|| format!("sweep in {}", shown(&out)))?;
    observer.finish();
    let mut o = std::io::stdout().lock();
    write!(o, "{}", summary.recommendation())?;
    writeln!(o, "\nsweep: {}", shown(&out.join("sweep.md")))?;
    Ok(())
}
