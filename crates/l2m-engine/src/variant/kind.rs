//! Whose settings a preset follows: the paper's Table 3 or the authors' code.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{EngineError, Result};

/// Whose settings a preset follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Variant {
    /// The paper's Table 3 with the spec's epoch budgets (the default).
    #[default]
    #[serde(rename = "table3")]
    Table3,
    /// The authors' published code, where it differs from Table 3.
    Authors,
}

/// The names [`Variant::from_str`] accepts.
pub const VARIANT_NAMES: &[&str] = &["table3", "authors"];

impl Variant {
    /// Whether this is the default, Table 3 (kept out of serialised configurations, so that
    /// the default presets keep their run directories).
    pub fn is_table3(&self) -> bool {
        *self == Variant::Table3
    }

    /// The name used on the command line and in TOML.
    pub fn name(&self) -> &'static str {
        match self {
            Variant::Table3 => "table3",
            Variant::Authors => "authors",
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Variant {
    type Err = EngineError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "table3" | "table-3" | "paper" => Ok(Variant::Table3),
            "authors" => Ok(Variant::Authors),
            other => Err(EngineError::Config(format!(
                "unknown variant {other:?}: expected one of {}",
                VARIANT_NAMES.join(", ")
            ))),
        }
    }
}
