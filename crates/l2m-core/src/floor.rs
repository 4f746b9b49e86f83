//! A floor on any rule's proportions: mixed with the uniform distribution.

use crate::{CoreError, MixingRule, Mixture, Result};

/// Wraps a rule so that every proportion it returns is mixed with uniform:
/// `alpha <- (1 - eps) rule(alpha, L) + eps / K` (the smoothing of DoReMi and Online Data
/// Mixing). Every class then keeps at least `eps / K`, so none can starve.
#[derive(Debug)]
pub struct Floored {
    inner: Box<dyn MixingRule>,
    eps: f64,
}

impl Floored {
    /// `inner` floored by `eps` in [0, 1).
    pub fn new(inner: Box<dyn MixingRule>, eps: f64) -> Result<Self> {
        if !(0.0..1.0).contains(&eps) {
            return Err(CoreError::InvalidParameter {
                name: "floor",
                value: eps,
                expected: "in [0, 1)",
            });
        }
        Ok(Self { inner, eps })
    }

    /// The floor's weight.
    pub fn eps(&self) -> f64 {
        self.eps
    }
}

impl MixingRule for Floored {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn step(&self, alpha: &Mixture, losses: &[f64]) -> Result<Mixture> {
        let next = self.inner.step(alpha, losses)?;
        let uniform = Mixture::uniform(next.len())?;
        next.lerp(&uniform, self.eps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Learn2Mix;

    #[test]
    fn the_floor_holds_and_bad_eps_is_refused() {
        let rule = Floored::new(Box::new(Learn2Mix::new(1.0).expect("valid")), 0.2).expect("ok");
        let a = rule
            .step(&Mixture::uniform(4).expect("four"), &[0.0, 0.0, 0.0, 5.0])
            .expect("step");
        // (1 - 0.2) * (0, 0, 0, 1) + 0.2 / 4.
        for (got, want) in a.as_slice().iter().zip([0.05, 0.05, 0.05, 0.85]) {
            assert!((got - want).abs() < 1e-12, "{a:?}");
        }
        for eps in [-0.1, 1.0, f64::NAN] {
            assert!(Floored::new(Box::new(Learn2Mix::new(1.0).expect("v")), eps).is_err());
        }
    }

    use crate::{ExponentiatedGradient, Tempered};
    use proptest::prelude::*;

    fn rule(kind: u8, p: f64) -> Box<dyn MixingRule> {
        match kind % 3 {
            0 => Box::new(Learn2Mix::new(p).expect("gamma")),
            1 => Box::new(ExponentiatedGradient::new(p * 10.0).expect("eta")),
            _ => Box::new(Tempered::new(p, 0.25 + 4.0 * p).expect("tempered")),
        }
    }

    proptest! {
        /// Every rule, floored or not, keeps alpha on the simplex for any non-negative
        /// losses, and a floor eps keeps every class at eps / K or more.
        #[test]
        fn every_rule_stays_on_the_simplex_and_the_floor_holds(
            raw in proptest::collection::vec(0.0f64..1.0, 1..10),
            losses in proptest::collection::vec(0.0f64..1e3, 10),
            kind in 0u8..3,
            p in 0.001f64..1.0,
            eps in 0.0f64..0.99,
            steps in 1usize..5,
        ) {
            let k = raw.len();
            let mut alpha = if raw.iter().sum::<f64>() > 0.0 {
                Mixture::normalised(&raw).expect("alpha")
            } else {
                Mixture::uniform(k).expect("alpha")
            };
            let floored = Floored::new(rule(kind, p), eps).expect("floor");
            for _ in 0..steps {
                alpha = floored.step(&alpha, &losses[..k]).expect("step");
                let sum: f64 = alpha.as_slice().iter().sum();
                prop_assert!((sum - 1.0).abs() < 1e-9, "sum {}", sum);
                for &a in alpha.as_slice() {
                    prop_assert!(a.is_finite() && a >= 0.0);
                    prop_assert!(a >= eps / k as f64 - 1e-12, "{} < {}", a, eps / k as f64);
                }
            }
        }
    }
}
