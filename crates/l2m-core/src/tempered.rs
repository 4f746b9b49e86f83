//! learn2mix with a temperature on the normalised losses.

use serde::{Deserialize, Serialize};

use crate::mixture::check_step;
use crate::{CoreError, Learn2Mix, MixingRule, Mixture, Result};

/// The registry's entry of [`Tempered`] ([`crate::rules`]).
pub(crate) const ENTRY: crate::rules::RuleEntry = crate::rules::RuleEntry::new(
    "tempered",
    "learn2mix toward L^(1/T), normalised",
    &[
        crate::rules::RuleParam {
            name: "gamma",
            default: None,
            summary: "mixing rate in (0, 1]",
        },
        crate::rules::RuleParam {
            name: "temperature",
            default: Some(1.0),
            summary: "temperature T > 0 (1: learn2mix)",
        },
    ],
    |v| Ok(Box::new(Tempered::new(v("gamma"), v("temperature"))?)),
);

/// learn2mix toward a tempered target: `alpha <- alpha + gamma (t - alpha)` with
/// `t_i = L_i^(1/T) / sum_j L_j^(1/T)`.
///
/// `T = 1` is learn2mix itself; `T > 1` flattens the target toward uniform (a safeguard
/// against collapsing onto one class), `T < 1` sharpens it toward the hardest class.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Tempered {
    gamma: f64,
    temperature: f64,
}

impl Tempered {
    /// The rule with mixing rate `gamma` in (0, 1] and temperature `temperature` > 0.
    pub fn new(gamma: f64, temperature: f64) -> Result<Self> {
        Learn2Mix::new(gamma)?;
        if !(temperature.is_finite() && temperature > 0.0) {
            return Err(CoreError::InvalidParameter {
                name: "temperature",
                value: temperature,
                expected: "a finite positive temperature",
            });
        }
        Ok(Self { gamma, temperature })
    }
}

impl MixingRule for Tempered {
    fn name(&self) -> &'static str {
        "tempered"
    }

    fn step(&self, alpha: &Mixture, losses: &[f64]) -> Result<Mixture> {
        check_step(alpha, losses)?;
        let top = losses.iter().copied().fold(0.0, f64::max);
        if top == 0.0 {
            return Ok(alpha.clone());
        }
        // Scaled by the largest loss first: (L / max)^(1/T) cannot overflow.
        let powered: Vec<f64> = losses
            .iter()
            .map(|l| (l / top).powf(1.0 / self.temperature))
            .collect();
        alpha.lerp(&Mixture::normalised(&powered)?, self.gamma)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temperature_one_is_learn2mix_and_two_takes_square_roots() {
        let alpha = Mixture::new(vec![0.7, 0.2, 0.1]).expect("valid");
        let l = [1.0, 4.0, 9.0];
        let a = Tempered::new(0.3, 1.0)
            .expect("valid")
            .step(&alpha, &l)
            .expect("t");
        let b = Learn2Mix::new(0.3)
            .expect("valid")
            .step(&alpha, &l)
            .expect("l");
        assert!(a.max_abs_diff(&b) < 1e-12);
        // T = 2, gamma = 1: target (1, 2, 3) / 6.
        let c = Tempered::new(1.0, 2.0)
            .expect("valid")
            .step(&alpha, &l)
            .expect("t");
        for (got, want) in c.as_slice().iter().zip([1.0 / 6.0, 2.0 / 6.0, 3.0 / 6.0]) {
            assert!((got - want).abs() < 1e-12, "{c:?}");
        }
    }

    #[test]
    fn bad_parameters_are_typed_errors() {
        assert!(matches!(
            Tempered::new(0.1, 0.0),
            Err(CoreError::InvalidParameter {
                name: "temperature",
                ..
            })
        ));
        assert_eq!(Tempered::new(2.0, 1.0), Err(CoreError::InvalidGamma(2.0)));
    }
}
