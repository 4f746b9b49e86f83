//! `l2m predict DIR --data FILE --out FILE`: a trained model applied to new data.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use crate::args::PredictArgs;
use crate::output::shown;

pub fn run(args: PredictArgs) -> anyhow::Result<()> {
    if args.out.exists() {
        anyhow::bail!(
            "--out: {} exists; l2m writes only new files (choose another name, or remove it)",
            shown(&args.out)
        );
    }
    let choose = l2m_engine::predict::Choose {
        strategy: args.strategy.clone(),
        seed: args.seed,
        device: args.device,
    };
    let p = l2m_engine::predict::predict(&args.dir, &args.data, &choose)
        .with_context(|| format!("cannot predict with {}", shown(&args.dir)))?;
    // A new file, written whole or not at all, that never replaces one that appeared
    // meanwhile.
    let dir = match args.out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".l2m-predict-")
        .suffix(".tmp")
        .tempfile_in(&dir)
        .with_context(|| format!("--out: cannot write in {}", shown(&dir)))?;
    tmp.write_all(p.csv.as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("writing {}", shown(&args.out)))?;
    tmp.persist_noclobber(&args.out)
        .map_err(|e| anyhow::anyhow!("--out: cannot create {}: {}", shown(&args.out), e.error))?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{} predictions by {} (seed {}, {}) written to {}",
        p.rows,
        p.strategy,
        p.seed,
        shown(&p.model_file),
        shown(&args.out)
    )?;
    if p.skipped > 0 {
        writeln!(
            out,
            "{} rows have a missing value the model cannot fill (it was trained without --missing mean): their prediction is empty",
            p.skipped
        )?;
    }
    Ok(())
}
