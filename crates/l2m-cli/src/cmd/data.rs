//! `l2m data EXPERIMENT`: loads a preset's data and says what it holds, how long loading
//! took and how much memory it needed.

use std::io::Write;

use anyhow::Context;

use crate::args::DataArgs;
use crate::progress;

pub fn run(args: DataArgs) -> anyhow::Result<()> {
    let cfg = l2m_engine::preset(&args.experiment).map_err(|e| anyhow::anyhow!("{e}"))?;
    let started = std::time::Instant::now();
    let data = cfg
        .dataset
        .load(&args.data_dir, args.seed, None)
        .with_context(|| format!("loading the data of {}", args.experiment))?;
    let seconds = started.elapsed().as_secs_f64();
    let mut out = std::io::stdout().lock();
    progress::print_data(&mut out, &data)?;
    let bytes = data.train.samples().features().bytes();
    writeln!(
        out,
        "loaded in {seconds:.2} s; features held: {:.1} MiB; peak resident memory: {}",
        bytes as f64 / (1024.0 * 1024.0),
        peak_rss_mib().map_or("unknown".into(), |m| format!("{m:.1} MiB"))
    )?;
    Ok(())
}

/// Peak resident memory of this process in MiB (Linux; `None` elsewhere).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
