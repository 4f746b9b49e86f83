//! Points of the probability simplex: the class proportions `alpha`.

use serde::{Deserialize, Serialize};

use crate::{CoreError, Result};

/// Tolerance on `sum(alpha) == 1` accepted when validating a mixture.
pub(crate) const SIMPLEX_TOL: f64 = 1e-9;

/// Class proportions: finite, non-negative weights that sum to one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Vec<f64>", into = "Vec<f64>")]
pub struct Mixture {
    alpha: Vec<f64>,
}

impl Mixture {
    /// Validates `alpha` as a point of the simplex (sum within 1e-9 of one), then
    /// renormalises it exactly.
    pub fn new(alpha: Vec<f64>) -> Result<Self> {
        if alpha.is_empty() {
            return Err(CoreError::NoClasses);
        }
        if let Some((i, a)) = alpha
            .iter()
            .enumerate()
            .find(|(_, a)| !a.is_finite() || **a < 0.0)
        {
            return Err(CoreError::NotOnSimplex {
                reason: format!("alpha[{i}] = {a}"),
            });
        }
        let sum: f64 = alpha.iter().sum();
        if (sum - 1.0).abs() > SIMPLEX_TOL {
            return Err(CoreError::NotOnSimplex {
                reason: format!("the weights sum to {sum}"),
            });
        }
        Ok(Self::renormalised(alpha, sum))
    }

    /// Validates `alpha` as [`Mixture::new`] does but keeps its values bit for bit (no
    /// renormalisation): for proportions saved by a checkpoint, so that a resumed run
    /// continues from exactly the numbers it stopped at.
    pub fn restored(alpha: Vec<f64>) -> Result<Self> {
        Self::new(alpha.clone())?;
        Ok(Self { alpha })
    }

    fn renormalised(mut alpha: Vec<f64>, sum: f64) -> Self {
        alpha.iter_mut().for_each(|a| *a /= sum);
        Self { alpha }
    }

    /// Equal weight on each of `k` classes.
    pub fn uniform(k: usize) -> Result<Self> {
        if k == 0 {
            return Err(CoreError::NoClasses);
        }
        Ok(Self {
            alpha: vec![1.0 / k as f64; k],
        })
    }

    /// The dataset's own proportions `alpha* = (N_1/N, ..., N_K/N)`.
    pub fn from_counts(counts: &[usize]) -> Result<Self> {
        if counts.is_empty() {
            return Err(CoreError::NoClasses);
        }
        let total: usize = counts.iter().sum();
        if total == 0 {
            return Err(CoreError::EmptyClass { class: 0 });
        }
        let alpha = counts.iter().map(|&n| n as f64 / total as f64).collect();
        Ok(Self { alpha })
    }

    /// Proportional to non-negative `weights` (for example losses): `w / 1^T w`.
    ///
    /// All-zero weights carry no information and give an error.
    pub fn normalised(weights: &[f64]) -> Result<Self> {
        if weights.is_empty() {
            return Err(CoreError::NoClasses);
        }
        check_losses(weights)?;
        let sum: f64 = weights.iter().sum();
        if sum <= 0.0 {
            return Err(CoreError::NotOnSimplex {
                reason: "all weights are zero".into(),
            });
        }
        Ok(Self::renormalised(weights.to_vec(), sum))
    }

    /// The weights, one per class.
    pub fn as_slice(&self) -> &[f64] {
        &self.alpha
    }

    /// Number of classes.
    pub fn len(&self) -> usize {
        self.alpha.len()
    }

    /// Always false: a mixture has at least one class.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The convex combination `(1 - t) * self + t * other`, for `t` in [0, 1].
    pub fn lerp(&self, other: &Mixture, t: f64) -> Result<Mixture> {
        if other.len() != self.len() {
            return Err(CoreError::ClassCountMismatch {
                expected: self.len(),
                got: other.len(),
            });
        }
        let alpha: Vec<f64> = self
            .alpha
            .iter()
            .zip(&other.alpha)
            .map(|(a, b)| a + t * (b - a))
            .map(|a| a.max(0.0))
            .collect();
        let sum = alpha.iter().sum();
        Ok(Self::renormalised(alpha, sum))
    }

    /// The largest absolute coordinate difference to `other`.
    pub fn max_abs_diff(&self, other: &Mixture) -> f64 {
        self.alpha
            .iter()
            .zip(&other.alpha)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max)
    }
}

impl TryFrom<Vec<f64>> for Mixture {
    type Error = CoreError;
    fn try_from(alpha: Vec<f64>) -> Result<Self> {
        Self::new(alpha)
    }
}

impl From<Mixture> for Vec<f64> {
    fn from(m: Mixture) -> Self {
        m.alpha
    }
}

/// Checks a rule's inputs: one loss per class of `alpha`, each finite and non-negative.
pub(crate) fn check_step(alpha: &Mixture, losses: &[f64]) -> Result<()> {
    if losses.len() != alpha.len() {
        return Err(CoreError::ClassCountMismatch {
            expected: alpha.len(),
            got: losses.len(),
        });
    }
    check_losses(losses)
}

/// Checks that class-wise losses are finite and non-negative.
pub(crate) fn check_losses(losses: &[f64]) -> Result<()> {
    match losses
        .iter()
        .enumerate()
        .find(|(_, l)| !l.is_finite() || **l < 0.0)
    {
        Some((class, &value)) => Err(CoreError::InvalidLoss { class, value }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_points_off_the_simplex() {
        assert!(matches!(
            Mixture::new(vec![0.5, 0.6]),
            Err(CoreError::NotOnSimplex { .. })
        ));
        assert!(matches!(
            Mixture::new(vec![1.5, -0.5]),
            Err(CoreError::NotOnSimplex { .. })
        ));
        assert!(matches!(
            Mixture::new(vec![f64::NAN, 1.0]),
            Err(CoreError::NotOnSimplex { .. })
        ));
        assert_eq!(Mixture::new(vec![]), Err(CoreError::NoClasses));
        assert_eq!(Mixture::uniform(0), Err(CoreError::NoClasses));
    }

    #[test]
    fn from_counts_gives_dataset_proportions() {
        let m = Mixture::from_counts(&[1000, 1000, 800, 200]).expect("valid");
        assert_eq!(
            m.as_slice(),
            &[1.0 / 3.0, 1.0 / 3.0, 800.0 / 3000.0, 200.0 / 3000.0]
        );
    }

    #[test]
    fn normalised_rejects_bad_losses() {
        assert_eq!(
            Mixture::normalised(&[1.0, -2.0]),
            Err(CoreError::InvalidLoss {
                class: 1,
                value: -2.0
            })
        );
        assert!(matches!(
            Mixture::normalised(&[0.0, 0.0]),
            Err(CoreError::NotOnSimplex { .. })
        ));
        let m = Mixture::normalised(&[1.0, 3.0]).expect("valid");
        assert_eq!(m.as_slice(), &[0.25, 0.75]);
    }

    #[test]
    fn serde_round_trip_validates() {
        let m = Mixture::new(vec![0.25, 0.75]).expect("valid");
        let s = serde_json_like(&m);
        assert_eq!(s, vec![0.25, 0.75]);
        assert!(Mixture::try_from(vec![0.2, 0.2]).is_err());
    }

    fn serde_json_like(m: &Mixture) -> Vec<f64> {
        Vec::from(m.clone())
    }
}
