//! `l2m`: train neural networks with learn2mix and compare it with classical training.
//!
//! `l2m compare` with no arguments runs the paper's Mean Estimation experiment (Adam,
//! lr 5e-5, gamma 0.01, B 500, 500 epochs, 5 seeds) for learn2mix and classical training,
//! prints a table and writes a run directory. Flags override each setting; see
//! `l2m compare --help`.

// The doc comments of the flag structs are the terminal help text (clap), not rustdoc:
// `cuda[:N]` and `runs/<experiment>` are meant literally there.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]

mod args;
mod group;
mod progress;
mod runtime;
mod table;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use args::{Cli, Command};

/// mimalloc instead of the system allocator: Candle allocates a fresh buffer for every
/// intermediate tensor, and glibc's allocator returns large ones to the kernel each time,
/// so the next step page-faults them back in (see docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    runtime::configure();
    let cli = Cli::parse();
    init_logging(cli.debug);
    let group = match group::Group::join() {
        Ok(g) => g,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "l2m: {}", render(&e));
            return ExitCode::from(1);
        }
    };
    let outcome = run(cli, group.comm());
    if outcome.is_err() && group.comm().ranks() > 1 {
        if let Err(err) = &outcome {
            let _ = writeln!(
                std::io::stderr(),
                "l2m (rank {} of {}): {}; stopping every rank",
                group.comm().rank(),
                group.comm().ranks(),
                render(err)
            );
        }
        group.abort(1);
    }
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // A closed pipe (`l2m compare | head`) is not an error worth reporting.
            if err
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            if let Some(e @ l2m_engine::EngineError::Interrupted { .. }) =
                err.downcast_ref::<l2m_engine::EngineError>()
            {
                let _ = writeln!(std::io::stderr(), "l2m: {e}");
                return ExitCode::from(130);
            }
            let _ = writeln!(std::io::stderr(), "l2m: {}", render(&err));
            ExitCode::from(1)
        }
    }
}

fn init_logging(debug: bool) {
    let filter = if debug { "debug" } else { "warn" };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("L2M_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_writer(std::io::stderr)
        // Colour only on a terminal, and never where NO_COLOR is set.
        .with_ansi(colour(&std::io::stderr()))
        // Field values (messages quote labels, columns and paths from the user's files)
        // are escaped before they reach the terminal.
        .fmt_fields(tracing_subscriber::fmt::format::debug_fn(
            |w, field, value| {
                let text = format!("{value:?}");
                let text = l2m_engine::text::terminal_safe_text(&text);
                if field.name() == "message" {
                    write!(w, "{text}")
                } else {
                    write!(w, "{}={text}", field.name())
                }
            },
        ))
        .without_time()
        .try_init();
}

/// Whether `stream` gets colour: it is a terminal and `NO_COLOR` is unset or empty
/// (<https://no-color.org>).
fn colour(stream: &impl std::io::IsTerminal) -> bool {
    stream.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn run(cli: Cli, comm: &dyn l2m_engine::collective::Collective) -> anyhow::Result<()> {
    let trains = matches!(
        cli.command,
        Command::Compare(_) | Command::Reproduce(_) | Command::Run(_)
    );
    if comm.ranks() > 1 && !trains {
        anyhow::bail!(
            "only compare, reproduce and run train data-parallel; run this command in one \
             process (without mpirun)"
        );
    }
    match cli.command {
        Command::Compare(args) => {
            let cfg = args.resolve()?;
            if args.print_config {
                let text = toml::to_string_pretty(&cfg).context("serialising the configuration")?;
                write!(std::io::stdout().lock(), "{text}")?;
                return Ok(());
            }
            train_and_summarise(cfg, &args.overrides, false, comm)
        }
        Command::Predict(args) => predict(args),
        Command::Reproduce(args) => reproduce(args, comm),
        Command::Run(args) => {
            let text = std::fs::read_to_string(&args.config)
                .with_context(|| format!("reading {}", args.config.display()))?;
            let cfg: l2m_engine::ExperimentConfig = toml::from_str(&text).map_err(|e| {
                anyhow::anyhow!(
                    "{}: not a valid experiment: {}",
                    args.config.display(),
                    with_suggestion(&e.to_string())
                )
            })?;
            let cfg = args
                .overrides
                .apply(cfg)
                .with_context(|| format!("{}", args.config.display()))?;
            train_and_summarise(cfg, &args.overrides, true, comm)
        }
        Command::Sweep(args) => sweep(&args),
        Command::Report {
            dir,
            metric,
            tensorboard,
        } => {
            let text = l2m_engine::report::write_report_by(&dir, metric)
                .with_context(|| format!("cannot write a report for {}", dir.display()))?;
            // The report quotes class names from the data: escaped on the way out.
            write!(
                std::io::stdout().lock(),
                "{}",
                l2m_engine::text::terminal_safe_text(&text)
            )?;
            if let Some(tb) = tensorboard {
                export_tensorboard(&dir, &tb)?;
            }
            Ok(())
        }
        Command::List => list(),
        Command::Data(args) => data(args),
    }
}

fn predict(args: args::PredictArgs) -> anyhow::Result<()> {
    if args.out.exists() {
        anyhow::bail!(
            "--out: {} exists; l2m writes only new files (choose another name, or remove it)",
            args.out.display()
        );
    }
    let choose = l2m_engine::predict::Choose {
        strategy: args.strategy.clone(),
        seed: args.seed,
        device: args.device,
    };
    let p = l2m_engine::predict::predict(&args.dir, &args.data, &choose)
        .with_context(|| format!("cannot predict with {}", args.dir.display()))?;
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
        .with_context(|| format!("--out: cannot write in {}", dir.display()))?;
    tmp.write_all(p.csv.as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("writing {}", args.out.display()))?;
    tmp.persist_noclobber(&args.out)
        .map_err(|e| anyhow::anyhow!("--out: cannot create {}: {}", args.out.display(), e.error))?;
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

fn reproduce(
    args: args::ReproduceArgs,
    comm: &dyn l2m_engine::collective::Collective,
) -> anyhow::Result<()> {
    if args.list {
        return match args.variant {
            l2m_engine::Variant::Table3 => list(),
            variant => list_differences(variant),
        };
    }
    let name = args.experiment.as_deref().unwrap_or_default();
    let cfg = l2m_engine::preset_variant(name, args.variant).map_err(|e| anyhow::anyhow!("{e}"))?;
    let cfg = args.overrides.apply(cfg)?;
    if args.print_config {
        let text = toml::to_string_pretty(&cfg).context("serialising the configuration")?;
        write!(std::io::stdout().lock(), "{text}")?;
        return Ok(());
    }
    train_and_summarise(cfg, &args.overrides, true, comm)
}

fn train_and_summarise(
    cfg: l2m_engine::ExperimentConfig,
    args: &args::Overrides,
    with_report: bool,
    comm: &dyn l2m_engine::collective::Collective,
) -> anyhow::Result<()> {
    if comm.ranks() > 1 {
        return train_data_parallel(cfg, args, with_report, comm);
    }
    // Refuse an unusable device before anything is written.
    l2m_engine::select_device(cfg.device).context("--device")?;
    let dir = match &args.out {
        Some(p) => p.clone(),
        None => default_run_dir(Path::new("runs"), &cfg)?,
    };
    if args.fresh && dir.exists() {
        // Only a directory l2m recognises as its own, and not while another run uses it.
        fresh(&dir)?;
    }
    let resuming = dir.join("config.json").is_file();
    let run_dir = l2m_engine::RunDir::create(&dir)
        .with_context(|| format!("cannot use the run directory {}", dir.display()))?;
    if resuming {
        tracing::warn!(
            "resuming {} (finished runs are read back; --fresh starts over)",
            dir.display()
        );
    }
    let mut observer = progress::Bars::new(&cfg, args.quiet, progress::stop_flag());
    if let Some(d) = cfg.dataset.needs() {
        d.locate(&cfg.data_dir)
            .with_context(|| format!("experiment {} needs data", cfg.name))?;
    }
    let comparison = match l2m_engine::run_experiment(&cfg, &run_dir, &mut observer) {
        Ok(c) => c,
        Err(e @ l2m_engine::EngineError::Interrupted { .. }) => {
            observer.finish();
            return Err(e.into());
        }
        Err(e) => {
            // A run directory this command created and that holds no trained epoch (the
            // data was refused, say) is removed: nothing half-written is left behind.
            if !resuming && !holds_records(&dir) {
                drop(run_dir);
                if l2m_engine::RunDir::remove(&dir).is_ok() {
                    return Err(anyhow::Error::new(e)
                        .context(format!("experiment {} failed before training", cfg.name)));
                }
            }
            return Err(anyhow::Error::new(e).context(format!(
                "experiment {} failed (records so far are in {})",
                cfg.name,
                dir.display()
            )));
        }
    };
    observer.finish();
    summarise(&cfg, comparison, &dir, args, with_report, "")
}

/// `--fresh`: removes what l2m wrote in the run directory `dir`, and says what it left.
fn fresh(dir: &Path) -> anyhow::Result<()> {
    let kept = l2m_engine::RunDir::remove(dir).context("--fresh")?;
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

/// The table, the report (when asked) and where the run directory is; `how` follows the
/// directory on the last line.
fn summarise(
    cfg: &l2m_engine::ExperimentConfig,
    comparison: l2m_engine::Comparison,
    dir: &Path,
    args: &args::Overrides,
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
        writeln!(out, "report: {}", shown(&dir.join("report.md")))?;
    }
    writeln!(out, "\nrun directory: {}{how}", shown(dir))?;
    if let Some(tb) = &args.tensorboard {
        export_tensorboard(dir, tb)?;
    }
    Ok(())
}

/// [`train_and_summarise`] as one rank of a data-parallel group: rank 0 takes the run
/// directory (lock, `--fresh`, config, summary, report, table), every rank trains its part
/// of every batch, and the others only read the directory to resume.
fn train_data_parallel(
    cfg: l2m_engine::ExperimentConfig,
    args: &args::Overrides,
    with_report: bool,
    comm: &dyn l2m_engine::collective::Collective,
) -> anyhow::Result<()> {
    l2m_engine::select_device(cfg.device).context("--device")?;
    let dir = match &args.out {
        Some(p) => p.clone(),
        None => default_run_dir(Path::new("runs"), &cfg)?,
    };
    let lead = comm.rank() == 0;
    let run_dir = if lead {
        if args.fresh && dir.exists() {
            fresh(&dir)?;
        }
        if dir.join("config.json").is_file() {
            tracing::warn!(
                "resuming {} (finished runs are read back; --fresh starts over)",
                dir.display()
            );
        }
        Some(
            l2m_engine::RunDir::create(&dir)
                .with_context(|| format!("cannot use the run directory {}", dir.display()))?,
        )
    } else {
        None
    };
    // Nobody reads the directory before rank 0 has set it up.
    comm.sum_f64(&mut [0.0])?;
    // One GPU per process; the gradients of a GPU group are summed by NCCL where built.
    let mut cfg = cfg;
    let local = group::local_rank();
    cfg.device = group::place(cfg.device, comm.ranks(), local);
    #[cfg(feature = "nccl")]
    let gpus;
    #[cfg(feature = "nccl")]
    let comm: &dyn l2m_engine::collective::Collective =
        if comm.ranks() > 1 && matches!(cfg.device, l2m_engine::DeviceKind::Cuda(_)) {
            let device = l2m_engine::select_device(cfg.device).with_context(|| {
                format!(
                    "rank {} (local rank {local}) has no {}: start at most as many processes \
                     per machine as it has GPUs",
                    comm.rank(),
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
    let comparison =
        l2m_engine::run_experiment_data_parallel(&cfg, run_dir.as_ref(), &dir, &mut observer, comm)
            .with_context(|| {
                format!(
                    "experiment {} failed on rank {} of {} (records so far are in {})",
                    cfg.name,
                    comm.rank(),
                    comm.ranks(),
                    dir.display()
                )
            })?;
    observer.finish();
    if !lead {
        return Ok(());
    }
    let how = format!(" ({} processes, data-parallel)", comm.ranks());
    summarise(&cfg, comparison, &dir, args, with_report, &how)
}

/// Writes the TensorBoard event files of a run directory and says where.
fn export_tensorboard(dir: &Path, tb: &Path) -> anyhow::Result<()> {
    let files = l2m_engine::tensorboard::export_run(dir, tb)
        .with_context(|| format!("--tensorboard {}", tb.display()))?;
    writeln!(
        std::io::stdout().lock(),
        "tensorboard: {} event files in {} (tensorboard --logdir {})",
        files.len(),
        tb.display(),
        tb.display()
    )?;
    Ok(())
}

fn sweep(args: &args::SweepArgs) -> anyhow::Result<()> {
    let sweep = args.sweep()?;
    l2m_engine::select_device(sweep.base.device).context("--device")?;
    if let Some(d) = sweep.base.dataset.needs() {
        d.locate(&sweep.base.data_dir)
            .with_context(|| format!("experiment {} needs data", sweep.base.name))?;
    }
    let out = match &args.out {
        Some(p) => p.clone(),
        None => {
            let dir = default_run_dir(Path::new("runs"), &sweep.base)?;
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
        out.display()
    );
    let mut observer = progress::Bars::new(&cfg, args.quiet, progress::stop_flag());
    let summary = l2m_engine::sweep::run_sweep(&sweep, &out, &mut observer)
        .with_context(|| format!("sweep in {}", out.display()))?;
    observer.finish();
    let mut o = std::io::stdout().lock();
    write!(o, "{}", summary.recommendation())?;
    writeln!(o, "\nsweep: {}", out.join("sweep.md").display())?;
    Ok(())
}

/// Whether a run directory holds the records of any trained epoch.
fn holds_records(dir: &Path) -> bool {
    let Ok(seeds) = std::fs::read_dir(dir) else {
        return false;
    };
    seeds.flatten().any(|seed| {
        std::fs::read_dir(seed.path())
            .map(|runs| {
                runs.flatten()
                    .any(|r| r.path().join("records.jsonl").is_file())
            })
            .unwrap_or(false)
    })
}

fn list() -> anyhow::Result<()> {
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
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
    writeln!(std::io::stdout().lock(), "{table}")?;
    Ok(())
}

/// Every setting in which `variant` differs from Table 3, per experiment, then what the
/// variant does not copy.
fn list_differences(variant: l2m_engine::Variant) -> anyhow::Result<()> {
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
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

/// The error and its causes, each printed once: a cause whose text already ends its
/// error's message (an I/O error inside "path: cause") is not repeated.
/// A path as it is printed: escaped (a file name can hold control characters).
fn shown(path: &Path) -> String {
    l2m_engine::text::terminal_safe(&path.to_string_lossy()).into_owned()
}

fn render(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if out.ends_with(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    // Messages quote column names, labels and paths from the user's files: none of their
    // characters may drive the terminal.
    l2m_engine::text::terminal_safe_text(&out).into_owned()
}

/// `message` with "did you mean `x`?" appended when it is serde's "unknown field `y`,
/// expected one of ..." and a listed field is close to `y`.
fn with_suggestion(message: &str) -> String {
    let Some(rest) = message.split("unknown field `").nth(1) else {
        return message.to_string();
    };
    let Some((unknown, expected)) = rest.split_once('`') else {
        return message.to_string();
    };
    let distance = |a: &str, b: &str| -> usize {
        let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.iter().enumerate() {
            let mut prev = row[0];
            row[0] = i + 1;
            for (j, cb) in b.iter().enumerate() {
                let cur = row[j + 1];
                row[j + 1] = (prev + usize::from(ca != cb)).min(row[j] + 1).min(cur + 1);
                prev = cur;
            }
        }
        row[b.len()]
    };
    let best = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|f| (distance(unknown, f), f))
        .min();
    match best {
        Some((d, f)) if d <= 3 => format!("{} (did you mean `{f}`?)", message.trim_end()),
        _ => message.to_string(),
    }
}

/// Peak resident memory of this process in MiB (Linux; `None` elsewhere).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn data(args: args::DataArgs) -> anyhow::Result<()> {
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

/// `runs/<experiment>-<first 10 hex digits of the configuration's SHA-256>`: the same
/// command (same settings) always names the same directory, so running it again resumes
/// it, and different settings never mix in one directory.
fn default_run_dir(root: &Path, cfg: &l2m_engine::ExperimentConfig) -> anyhow::Result<PathBuf> {
    use sha2::Digest;
    let json = serde_json::to_vec(cfg).context("serialising the configuration")?;
    let digest = sha2::Sha256::digest(&json);
    let tag: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
    Ok(root.join(format!("{}-{tag}", cfg.name)))
}
