//! The registry of mixing rules: every rule a caller can name (`rule = "eg"` in a TOML
//! file, `--rule eg` on the command line) with its parameters.
//!
//! A new rule is one file with its [`MixingRule`] and a `RuleEntry` constant, plus one line
//! in [`RULES`]; the engine's option validation, the command line's list of values and the
//! docs' table read it from here.
//!
//! ```
//! use l2m_core::rules::{rule, rule_names};
//!
//! assert_eq!(rule_names(), ["learn2mix", "eg", "tempered"]);
//! let eg = rule("eg")?;
//! assert_eq!(eg.params[0].name, "eta");
//! let r = eg.build(&|p| (p == "eta").then_some(0.05))?;
//! let next = r.step(&l2m_core::Mixture::uniform(2)?, &[1.0, 0.0])?;
//! assert!(next.as_slice()[0] > 0.5);
//! # Ok::<(), l2m_core::CoreError>(())
//! ```

use crate::{CoreError, MixingRule, Result};

/// One parameter of a rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RuleParam {
    /// Its name (the option's name in configurations).
    pub name: &'static str,
    /// Its value when none is given (`None`: required).
    pub default: Option<f64>,
    /// What it means, for listings.
    pub summary: &'static str,
}

/// Builds a rule from its parameters' values, by name.
pub type MakeRule = fn(&dyn Fn(&str) -> f64) -> Result<Box<dyn MixingRule>>;

/// A registered rule: its name, what it does, its parameters and how it is built.
#[derive(Clone, Copy)]
pub struct RuleEntry {
    /// The name callers use.
    pub name: &'static str,
    /// One line for listings.
    pub summary: &'static str,
    /// The parameters it reads.
    pub params: &'static [RuleParam],
    make: MakeRule,
}

impl std::fmt::Debug for RuleEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleEntry")
            .field("name", &self.name)
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl RuleEntry {
    /// An entry; `make` builds the rule from its parameters' values (each already
    /// defaulted by [`RuleEntry::build`]).
    pub const fn new(
        name: &'static str,
        summary: &'static str,
        params: &'static [RuleParam],
        make: MakeRule,
    ) -> Self {
        Self {
            name,
            summary,
            params,
            make,
        }
    }

    /// The rule with the parameters `value` gives (by name; `None` takes the parameter's
    /// default). A required parameter that is missing is an error naming it; each value
    /// is checked by the rule itself.
    pub fn build(&self, value: &dyn Fn(&str) -> Option<f64>) -> Result<Box<dyn MixingRule>> {
        let mut values = Vec::with_capacity(self.params.len());
        for p in self.params {
            match value(p.name).or(p.default) {
                Some(v) => values.push((p.name, v)),
                None => {
                    return Err(CoreError::MissingParameter {
                        rule: self.name,
                        name: p.name,
                    });
                }
            }
        }
        (self.make)(&|name| {
            values
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(f64::NAN, |(_, v)| *v)
        })
    }

    /// Whether the rule reads the parameter `name`.
    pub fn takes(&self, name: &str) -> bool {
        self.params.iter().any(|p| p.name == name)
    }
}

/// Every rule, in the order listings show them: one line per rule.
pub const RULES: &[RuleEntry] = &[
    crate::rule::LEARN2MIX,
    crate::eg::ENTRY,
    crate::tempered::ENTRY,
];

/// The names of the registered rules.
pub fn rule_names() -> Vec<&'static str> {
    RULES.iter().map(|r| r.name).collect()
}

/// The rule registered as `name`; an unknown name is an error listing the known ones.
pub fn rule(name: &str) -> Result<&'static RuleEntry> {
    RULES
        .iter()
        .find(|r| r.name == name)
        .ok_or_else(|| CoreError::UnknownRule {
            name: name.to_string(),
            known: rule_names().join(", "),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Mixture;

    /// Every registered rule builds from its defaults (or, for a required parameter, a
    /// valid value), moves a mixture to a mixture, and refuses a missing required
    /// parameter by name.
    #[test]
    fn every_registered_rule_builds_and_updates() {
        let names = rule_names();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "a name registered twice");
        for entry in RULES {
            let r = entry
                .build(&|_| Some(0.1))
                .unwrap_or_else(|e| panic!("{}: {e}", entry.name));
            let next = r
                .step(&Mixture::uniform(3).expect("uniform"), &[3.0, 1.0, 0.5])
                .expect("update");
            let sum: f64 = next.as_slice().iter().sum();
            assert!((sum - 1.0).abs() < 1e-12, "{}: {sum}", entry.name);
            for p in entry.params.iter().filter(|p| p.default.is_none()) {
                let e = entry
                    .build(&|n| (n != p.name).then_some(0.1))
                    .expect_err("missing parameter");
                assert!(e.to_string().contains(p.name), "{e}");
            }
        }
        let e = rule("softmax").expect_err("unknown");
        assert!(e.to_string().contains("learn2mix, eg, tempered"), "{e}");
    }

    /// The registry's rules are the rules themselves: the same arithmetic, to the bit.
    #[test]
    fn registry_rules_equal_the_rules_built_directly() {
        let alpha = Mixture::normalised(&[0.2, 0.3, 0.5]).expect("alpha");
        let losses = [2.0, 1.0, 0.25];
        let by_name = |name: &str, v: &dyn Fn(&str) -> Option<f64>| {
            rule(name)
                .and_then(|e| e.build(v))
                .and_then(|r| r.step(&alpha, &losses))
                .expect("rule")
        };
        let direct = crate::Learn2Mix::new(0.3)
            .and_then(|r| r.step(&alpha, &losses))
            .expect("direct");
        assert_eq!(by_name("learn2mix", &|_| Some(0.3)), direct);
        let direct = crate::ExponentiatedGradient::new(0.05)
            .and_then(|r| r.step(&alpha, &losses))
            .expect("direct");
        assert_eq!(by_name("eg", &|_| Some(0.05)), direct);
        let direct = crate::Tempered::new(0.3, 2.0)
            .and_then(|r| r.step(&alpha, &losses))
            .expect("direct");
        let t = |n: &str| Some(if n == "temperature" { 2.0 } else { 0.3 });
        assert_eq!(by_name("tempered", &t), direct);
    }
}
