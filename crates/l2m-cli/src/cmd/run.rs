//! `l2m run FILE.toml`: an experiment from a configuration file.

use anyhow::Context;

use l2m_engine::collective::Collective;

use crate::args::RunArgs;
use crate::output::{shown, with_suggestion};

pub fn run(args: RunArgs, comm: &dyn Collective) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.config)
        .with_context(|| format!("reading {}", shown(&args.config)))?;
    let cfg: l2m_engine::ExperimentConfig = toml::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{}: not a valid experiment: {}",
            shown(&args.config),
            with_suggestion(&e.to_string())
        )
    })?;
    let cfg = args
        .overrides
        .apply(cfg)
        .with_context(|| shown(&args.config))?;
    super::train::train_and_summarise(cfg, &args.overrides, true, comm)
}
