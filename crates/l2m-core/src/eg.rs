//! The exponentiated-gradient rule of Group DRO, applied to batch proportions.

use serde::{Deserialize, Serialize};

use crate::mixture::check_step;
use crate::{CoreError, MixingRule, Mixture, Result};

/// The registry's entry of [`ExponentiatedGradient`] ([`crate::rules`]).
pub(crate) const ENTRY: crate::rules::RuleEntry = crate::rules::RuleEntry::new(
    "eg",
    "alpha_i <- alpha_i exp(eta L_i), normalised (Group DRO's rule on batch proportions)",
    &[crate::rules::RuleParam {
        name: "eta",
        default: Some(DEFAULT_ETA),
        summary: "step size, finite and positive",
    }],
    |v| Ok(Box::new(ExponentiatedGradient::new(v("eta"))?)),
);

/// The step size of the EG rule when none is given (Group DRO's default).
pub const DEFAULT_ETA: f64 = 0.01;

/// Exponentiated gradient (Sagawa et al. 2020, Group DRO's update of its group weights):
/// `alpha_i <- alpha_i exp(eta L_i) / sum_j alpha_j exp(eta L_j)`.
///
/// Multiplicative, so a class whose proportion reaches 0 stays there (pair it with a
/// floor); equal losses leave the proportions unchanged. Computed with the largest
/// exponent subtracted, so large `eta * L` cannot overflow.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ExponentiatedGradient {
    eta: f64,
}

impl ExponentiatedGradient {
    /// The rule with step size `eta` (finite, positive).
    pub fn new(eta: f64) -> Result<Self> {
        if !(eta.is_finite() && eta > 0.0) {
            return Err(CoreError::InvalidParameter {
                name: "eta",
                value: eta,
                expected: "a finite positive step size",
            });
        }
        Ok(Self { eta })
    }

    /// The step size.
    pub fn eta(&self) -> f64 {
        self.eta
    }
}

impl MixingRule for ExponentiatedGradient {
    fn name(&self) -> &'static str {
        "eg"
    }

    fn step(&self, alpha: &Mixture, losses: &[f64]) -> Result<Mixture> {
        check_step(alpha, losses)?;
        let top = losses
            .iter()
            .map(|l| self.eta * l)
            .fold(f64::NEG_INFINITY, f64::max);
        let weights: Vec<f64> = alpha
            .as_slice()
            .iter()
            .zip(losses)
            .map(|(a, l)| a * (self.eta * l - top).exp())
            .collect();
        Mixture::normalised(&weights)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn two_steps_by_hand() {
        // alpha = (0.5, 0.5), eta = 1, L = (0, ln 3): weights (0.5, 1.5) -> (0.25, 0.75);
        // again: (0.25, 2.25) -> (0.1, 0.9).
        let rule = ExponentiatedGradient::new(1.0).expect("valid");
        let l = [0.0, 3f64.ln()];
        let a1 = rule
            .step(&Mixture::uniform(2).expect("two"), &l)
            .expect("step");
        assert!((a1.as_slice()[1] - 0.75).abs() < 1e-12, "{a1:?}");
        let a2 = rule.step(&a1, &l).expect("step");
        assert!((a2.as_slice()[0] - 0.1).abs() < 1e-12, "{a2:?}");
        assert!((a2.as_slice()[1] - 0.9).abs() < 1e-12, "{a2:?}");
    }

    #[test]
    fn bad_eta_is_a_typed_error() {
        for eta in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                ExponentiatedGradient::new(eta),
                Err(CoreError::InvalidParameter { name: "eta", .. })
            ));
        }
    }

    #[test]
    fn huge_losses_do_not_overflow() {
        let rule = ExponentiatedGradient::new(10.0).expect("valid");
        let a = rule
            .step(&Mixture::uniform(3).expect("three"), &[1e6, 1e6 - 1.0, 0.0])
            .expect("step");
        assert!(a.as_slice()[0] > 0.99 && a.as_slice()[2] == 0.0, "{a:?}");
    }

    proptest! {
        #[test]
        fn equal_losses_leave_alpha_unchanged(
            raw in proptest::collection::vec(0.01f64..1.0, 1..12),
            loss in 0.0f64..100.0,
            eta in 0.001f64..10.0,
        ) {
            let alpha = Mixture::normalised(&raw).expect("valid");
            let next = ExponentiatedGradient::new(eta)
                .expect("valid")
                .step(&alpha, &vec![loss; raw.len()])
                .expect("step");
            prop_assert!(alpha.max_abs_diff(&next) < 1e-12);
        }
    }
}
