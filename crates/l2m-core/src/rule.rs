//! Rules that move the class proportions between epochs.

use serde::{Deserialize, Serialize};

use crate::mixture::check_step;
use crate::{CoreError, Mixture, Result};

/// How the class proportions move given the class-wise losses of the last period.
///
/// A rule maps a point of the simplex and a vector of non-negative losses to a new point
/// of the simplex. Implementations must reject invalid losses with
/// [`CoreError::InvalidLoss`] rather than produce weights off the simplex.
pub trait MixingRule: std::fmt::Debug + Send + Sync {
    /// A short name for records and reports.
    fn name(&self) -> &'static str;

    /// The proportions for the next period.
    fn step(&self, alpha: &Mixture, losses: &[f64]) -> Result<Mixture>;
}

/// The registry's entry of [`Learn2Mix`] ([`crate::rules`]).
pub(crate) const LEARN2MIX: crate::rules::RuleEntry = crate::rules::RuleEntry::new(
    "learn2mix",
    "alpha <- alpha + gamma (L / 1^T L - alpha) (the paper)",
    &[crate::rules::RuleParam {
        name: "gamma",
        default: None,
        summary: "mixing rate in (0, 1]",
    }],
    |v| Ok(Box::new(Learn2Mix::new(v("gamma"))?)),
);

/// The learn2mix rule (Algorithm 2 of the paper):
/// `alpha <- alpha + gamma * (L / 1^T L - alpha)`.
///
/// When every class-wise loss is exactly zero the normalised losses are undefined; the
/// proportions are then left unchanged (there is nothing to move toward).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Learn2Mix {
    gamma: f64,
}

impl Learn2Mix {
    /// A learn2mix rule with mixing rate `gamma` in (0, 1].
    pub fn new(gamma: f64) -> Result<Self> {
        if !(gamma > 0.0 && gamma <= 1.0) {
            return Err(CoreError::InvalidGamma(gamma));
        }
        Ok(Self { gamma })
    }

    /// The mixing rate.
    pub fn gamma(&self) -> f64 {
        self.gamma
    }
}

impl MixingRule for Learn2Mix {
    fn name(&self) -> &'static str {
        "learn2mix"
    }

    fn step(&self, alpha: &Mixture, losses: &[f64]) -> Result<Mixture> {
        check_step(alpha, losses)?;
        if losses.iter().all(|&l| l == 0.0) {
            return Ok(alpha.clone());
        }
        let target = Mixture::normalised(losses)?;
        alpha.lerp(&target, self.gamma)
    }
}

/// Fixed proportions: the implicit rule of classical training (`alpha_t = alpha*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Static;

impl MixingRule for Static {
    fn name(&self) -> &'static str {
        "static"
    }

    fn step(&self, alpha: &Mixture, losses: &[f64]) -> Result<Mixture> {
        check_step(alpha, losses)?;
        Ok(alpha.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn one_step_matches_the_equation() {
        // alpha = (0.5, 0.5), L = (1, 3) -> L/sum = (0.25, 0.75);
        // gamma = 0.1 -> 0.5 + 0.1 * (0.25 - 0.5) = 0.475 and 0.525.
        let rule = Learn2Mix::new(0.1).expect("valid gamma");
        let alpha = Mixture::uniform(2).expect("two classes");
        let next = rule.step(&alpha, &[1.0, 3.0]).expect("valid losses");
        assert!((next.as_slice()[0] - 0.475).abs() < 1e-15);
        assert!((next.as_slice()[1] - 0.525).abs() < 1e-15);
    }

    #[test]
    fn gamma_one_jumps_to_the_normalised_losses() {
        let rule = Learn2Mix::new(1.0).expect("valid gamma");
        let alpha = Mixture::new(vec![0.9, 0.05, 0.05]).expect("valid");
        let next = rule.step(&alpha, &[2.0, 2.0, 4.0]).expect("valid");
        assert_eq!(next.as_slice(), &[0.25, 0.25, 0.5]);
    }

    #[test]
    fn invalid_inputs_are_typed_errors() {
        assert_eq!(Learn2Mix::new(0.0), Err(CoreError::InvalidGamma(0.0)));
        assert_eq!(Learn2Mix::new(1.5), Err(CoreError::InvalidGamma(1.5)));
        assert!(matches!(
            Learn2Mix::new(f64::NAN),
            Err(CoreError::InvalidGamma(g)) if g.is_nan()
        ));
        let rule = Learn2Mix::new(0.5).expect("valid");
        let alpha = Mixture::uniform(2).expect("valid");
        assert!(matches!(
            rule.step(&alpha, &[1.0, f64::NAN]),
            Err(CoreError::InvalidLoss { class: 1, .. })
        ));
        assert_eq!(
            rule.step(&alpha, &[-1.0, 1.0]),
            Err(CoreError::InvalidLoss {
                class: 0,
                value: -1.0
            })
        );
        assert_eq!(
            rule.step(&alpha, &[1.0]),
            Err(CoreError::ClassCountMismatch {
                expected: 2,
                got: 1
            })
        );
    }

    #[test]
    fn all_zero_losses_leave_alpha_unchanged() {
        let rule = Learn2Mix::new(0.5).expect("valid");
        let alpha = Mixture::new(vec![0.2, 0.8]).expect("valid");
        assert_eq!(rule.step(&alpha, &[0.0, 0.0]).expect("valid"), alpha);
    }

    #[test]
    fn static_rule_never_moves() {
        let alpha = Mixture::new(vec![0.2, 0.8]).expect("valid");
        assert_eq!(Static.step(&alpha, &[10.0, 0.1]).expect("valid"), alpha);
    }

    #[test]
    fn repeated_steps_converge_to_the_normalised_losses() {
        // With fixed losses the rule is a contraction toward L/sum(L) with factor 1-gamma.
        let rule = Learn2Mix::new(0.1).expect("valid");
        let mut alpha = Mixture::uniform(3).expect("valid");
        let losses = [1.0, 2.0, 5.0];
        for _ in 0..400 {
            alpha = rule.step(&alpha, &losses).expect("valid");
        }
        let target = [0.125, 0.25, 0.625];
        for (a, t) in alpha.as_slice().iter().zip(target) {
            assert!((a - t).abs() < 1e-12, "{a} vs {t}");
        }
    }

    fn simplex_point(k: usize) -> impl Strategy<Value = Vec<f64>> {
        prop::collection::vec(0.0f64..1.0, k).prop_map(|mut w| {
            let s: f64 = w.iter().sum();
            if s == 0.0 {
                let n = w.len() as f64;
                w.iter_mut().for_each(|x| *x = 1.0 / n);
            } else {
                w.iter_mut().for_each(|x| *x /= s);
            }
            w
        })
    }

    proptest! {
        #[test]
        fn alpha_stays_on_the_simplex(
            (alpha, losses) in (1usize..20).prop_flat_map(|k| (
                simplex_point(k),
                prop::collection::vec(prop_oneof![Just(0.0), 0.0f64..1e6], k),
            )),
            gamma in prop_oneof![Just(1.0), 1e-6f64..1.0],
        ) {
            let rule = Learn2Mix::new(gamma).expect("gamma in (0,1]");
            let alpha = Mixture::new(alpha).expect("simplex point");
            let next = rule.step(&alpha, &losses).expect("valid losses");
            let sum: f64 = next.as_slice().iter().sum();
            prop_assert!((sum - 1.0).abs() < 1e-12);
            prop_assert!(next.as_slice().iter().all(|a| a.is_finite() && *a >= 0.0));
            // Each coordinate moves by exactly gamma toward the normalised loss.
            let total: f64 = losses.iter().sum();
            if total > 0.0 {
                for ((l, a), n) in losses.iter().zip(alpha.as_slice()).zip(next.as_slice()) {
                    let want = a + gamma * (l / total - a);
                    prop_assert!((n - want).abs() < 1e-12);
                }
            }
        }
    }
}
