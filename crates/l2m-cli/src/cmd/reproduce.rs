//! `l2m reproduce EXPERIMENT`: one of the paper's experiments as a preset, with its report.

use anyhow::Context;

use l2m_engine::collective::Collective;

use crate::args::ReproduceArgs;
use crate::output::print;

pub fn run(args: ReproduceArgs, comm: &dyn Collective) -> anyhow::Result<()> {
    if args.list {
        return match args.variant {
            l2m_engine::Variant::Table3 => super::list::run(),
            variant => super::list::differences(variant),
        };
    }
    let name = args.experiment.as_deref().unwrap_or_default();
    let cfg = l2m_engine::preset_variant(name, args.variant).map_err(|e| anyhow::anyhow!("{e}"))?;
    let cfg = args.overrides.apply(cfg)?;
    if args.print_config {
        let text = toml::to_string_pretty(&cfg).context("serialising the configuration")?;
        return print(&text);
    }
    super::train::train_and_summarise(cfg, &args.overrides, true, comm)
}
