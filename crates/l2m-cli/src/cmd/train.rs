//! The run flow every training command shares (`compare`, `reproduce`, `run`), for one
//! process or one rank of a data-parallel group: the run directory (new, empty or l2m's;
//! `--fresh`; the lock), the device, training, then the table, report and directory.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use l2m_engine::collective::Collective;
use l2m_engine::{EngineError, ExperimentConfig, RunDir};

use crate::args::Overrides;
use crate::output::shown;
use crate::{group, progress, table};

/// Trains every strategy and seed of `cfg` in its run directory (resuming what is there),
/// then prints the table (and writes the report when `with_report`). With several ranks
/// in `comm`, rank 0 alone holds and writes the directory; every rank trains its part of
/// each batch.
pub fn train_and_summarise(
    cfg: ExperimentConfig,
    args: &Overrides,
    with_report: bool,
    comm: &dyn Collective,
) -> anyhow::Result<()> {
    // Refuse an unusable device before anything is written.
    l2m_engine::select_device(cfg.device).context("--device")?;
    let dir = match &args.out {
        Some(p) => p.clone(),
        None => default_run_dir(Path::new("runs"), &cfg)?,
    };
    let lead = comm.rank() == 0;
    let layout = l2m_engine::layout::Layout::new(&dir);
    let (run_dir, resuming) = if lead {
        if args.fresh && dir.exists() {
            // Only a directory l2m recognises as its own, and not while a run uses it.
            fresh(&dir)?;
        }
        let resuming = layout.config().is_file();
        let run_dir = RunDir::create(&dir)
            .with_context(|| format!("cannot use the run directory {}", shown(&dir)))?;
        if resuming {
            tracing::warn!(
                "resuming {} (finished runs are read back; --fresh starts over)",
                shown(&dir)
            );
        }
        (Some(run_dir), resuming)
    } else {
        (None, layout.config().is_file())
    };
    if comm.ranks() > 1 {
        // Nobody reads the directory before rank 0 has set it up.
        comm.sum_f64(&mut [0.0])?;
    }
    let mut cfg = cfg;
    cfg.device = group::place(cfg.device, comm.ranks(), group::local_rank());
    #[cfg(feature = "nccl")]
    let gpus;
    #[cfg(feature = "nccl")]
    let comm: &dyn Collective =
        if comm.ranks() > 1 && matches!(cfg.device, l2m_engine::DeviceKind::Cuda(_)) {
            let device = l2m_engine::select_device(cfg.device).with_context(|| {
                format!(
                    "rank {} (local rank {}) has no {}: start at most as many processes \
                     per machine as it has GPUs",
                    comm.rank(),
                    group::local_rank(),
                    cfg.device
                )
            })?;
            gpus = l2m_engine::collective::nccl::Nccl::join(comm, &device)
                .context("joining the GPUs' NCCL group")?;
            &gpus
        } else {
            comm
        };
    if let Some(d) = cfg.dataset.needs() {
        d.locate(&cfg.data_dir)
            .with_context(|| format!("experiment {} needs data", cfg.name))?;
    }
    let mut observer = progress::Bars::new(&cfg, args.quiet || !lead, progress::stop_flag());
    let read_only;
    let target = match &run_dir {
        Some(d) => d,
        None => {
            read_only = RunDir::read_only(&dir);
            &read_only
        }
    };
    let outcome = l2m_engine::run_experiment(
        &cfg,
        target,
        &mut l2m_engine::RunOptions::new()
            .observer(&mut observer)
            .comm(comm),
    );
    observer.finish();
    let comparison = match outcome {
        Ok(c) => c,
        Err(e @ EngineError::Interrupted { .. }) => return Err(e.into()),
        Err(e) if comm.ranks() > 1 => {
            return Err(anyhow::Error::new(e).context(format!(
                "experiment {} failed on rank {} of {} (records so far are in {})",
                cfg.name,
                comm.rank(),
                comm.ranks(),
                shown(&dir)
            )));
        }
        Err(e) => {
            // A run directory this command created and that holds no trained epoch (the
            // data was refused, say) is removed: nothing half-written is left behind.
            if !resuming && !holds_records(&layout, &cfg) {
                drop(run_dir);
                if RunDir::remove(&dir).is_ok() {
                    return Err(anyhow::Error::new(e)
                        .context(format!("experiment {} failed before training", cfg.name)));
                }
            }
            return Err(anyhow::Error::new(e).context(format!(
                "experiment {} failed (records so far are in {})",
                cfg.name,
                shown(&dir)
            )));
        }
    };
    if !lead {
        return Ok(());
    }
    let how = if comm.ranks() > 1 {
        format!(" ({} processes, data-parallel)", comm.ranks())
    } else {
        String::new()
    };
    summarise(&cfg, comparison, &dir, args, with_report, &how)
}

/// The table, the report (when asked) and where the run directory is; `how` follows the
/// directory on the last line.
fn summarise(
    cfg: &ExperimentConfig,
    comparison: l2m_engine::Comparison,
    dir: &Path,
    args: &Overrides,
    with_report: bool,
    how: &str,
) -> anyhow::Result<()> {
    let comparison = match args.metric {
        l2m_engine::Metric::Task => comparison,
        metric => {
            l2m_engine::report::load_run_by(dir, metric)
                .context("--metric")?
                .1
        }
    };
    let mut out = std::io::stdout().lock();
    table::print(&mut out, cfg, &comparison)?;
    if with_report {
        l2m_engine::report::write_report_by(dir, args.metric).context("writing the report")?;
        let report = l2m_engine::layout::Layout::new(dir).report();
        writeln!(out, "report: {}", shown(&report))?;
    }
    writeln!(out, "\nrun directory: {}{how}", shown(dir))?;
    if let Some(tb) = &args.tensorboard {
        export_tensorboard(dir, tb)?;
    }
    Ok(())
}

/// `--fresh`: removes what l2m wrote in the run directory `dir`, and says what it left.
fn fresh(dir: &Path) -> anyhow::Result<()> {
    let kept = RunDir::remove(dir).context("--fresh")?;
    if !kept.is_empty() {
        let names: Vec<String> = kept.iter().take(3).map(|p| shown(p)).collect();
        tracing::warn!(
            "--fresh removed what l2m wrote in {} and left {} entries it did not write: {}{}",
            shown(dir),
            kept.len(),
            names.join(", "),
            if kept.len() > 3 { ", ..." } else { "" }
        );
    }
    Ok(())
}

/// Whether the run directory holds the records of any trained epoch.
fn holds_records(layout: &l2m_engine::layout::Layout, cfg: &ExperimentConfig) -> bool {
    cfg.seeds.iter().any(|&seed| {
        cfg.strategies
            .iter()
            .any(|s| layout.run(seed, s.name()).records_jsonl().is_file())
    })
}

/// Writes the TensorBoard event files of a run directory and says where.
pub fn export_tensorboard(dir: &Path, tb: &Path) -> anyhow::Result<()> {
    let files = l2m_engine::tensorboard::export_run(dir, tb)
        .with_context(|| format!("--tensorboard {}", shown(tb)))?;
    writeln!(
        std::io::stdout().lock(),
        "tensorboard: {} event files in {} (tensorboard --logdir {})",
        files.len(),
        shown(tb),
        shown(tb)
    )?;
    Ok(())
}

/// `runs/<experiment>-<first 10 hex digits of the configuration's SHA-256>`: the same
/// command (same settings) always names the same directory, so running it again resumes
/// it, and different settings never mix in one directory.
pub fn default_run_dir(root: &Path, cfg: &ExperimentConfig) -> anyhow::Result<PathBuf> {
    use sha2::Digest;
    let json = serde_json::to_vec(cfg).context("serialising the configuration")?;
    let digest = sha2::Sha256::digest(&json);
    let tag: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
    Ok(root.join(format!("{}-{tag}", cfg.name)))
}
