//! `l2m`: train neural networks with learn2mix and compare it with classical training.
//!
//! `l2m compare` with no arguments runs the paper's Mean Estimation experiment (Adam,
//! lr 5e-5, gamma 0.01, B 500, 500 epochs, 5 seeds) for learn2mix and classical training,
//! prints a table and writes a run directory. Flags override each setting; see
//! `l2m compare --help`.
//!
//! One module per command (`cmd/`); `cmd::train` is the run flow the training commands
//! share; `output` escapes and prints what does not go in a table.

// The doc comments of the flag structs are the terminal help text (clap), not rustdoc:
// `cuda[:N]` and `runs/<experiment>` are meant literally there.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]

mod args;
mod cmd;
mod group;
mod output;
mod progress;
mod runtime;
mod table;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};
use output::render;

/// mimalloc instead of the system allocator: Candle allocates a fresh buffer for every
/// intermediate tensor, and glibc's allocator returns large ones to the kernel each time,
/// so the next step page-faults them back in (see docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    runtime::configure();
    let cli = Cli::parse();
    output::init_logging(cli.debug);
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

/// Runs the command; only the training commands run under several ranks.
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
        Command::Compare(args) => cmd::compare::run(args, comm),
        Command::Reproduce(args) => cmd::reproduce::run(args, comm),
        Command::Run(args) => cmd::run::run(args, comm),
        Command::Predict(args) => cmd::predict::run(args),
        Command::Sweep(args) => cmd::sweep::run(&args),
        Command::Report {
            dir,
            metric,
            tensorboard,
        } => cmd::report::run(&dir, metric, tensorboard.as_deref()),
        Command::List => cmd::list::run(),
        Command::Data(args) => cmd::data::run(args),
    }
}
