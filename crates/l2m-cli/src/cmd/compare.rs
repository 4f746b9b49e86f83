//! `l2m compare`: a preset, or the user's own data, with every strategy and seed.

use anyhow::Context;

use l2m_engine::collective::Collective;

use crate::args::CompareArgs;
use crate::output::print;

pub fn run(args: Box<CompareArgs>, comm: &dyn Collective) -> anyhow::Result<()> {
    let cfg = args.resolve()?;
    if args.print_config {
        let text = toml::to_string_pretty(&cfg).context("serialising the configuration")?;
        return print(&text);
    }
    super::train::train_and_summarise(cfg, &args.overrides, false, comm)
}
