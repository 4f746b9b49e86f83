//! Convergence checks: epochs to a target, the alpha fixed point, statistics over seeds.

use serde::{Deserialize, Serialize};

use crate::{Mixture, Result};

/// Whether smaller or larger values of a metric are better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Losses, errors.
    LowerIsBetter,
    /// Accuracies.
    HigherIsBetter,
}

impl Direction {
    /// Whether `value` reaches `target`.
    pub fn reaches(self, value: f64, target: f64) -> bool {
        match self {
            Direction::LowerIsBetter => value <= target,
            Direction::HigherIsBetter => value >= target,
        }
    }

    /// The better of two values (NaN loses).
    pub fn better(self, a: f64, b: f64) -> f64 {
        match (a.is_nan(), b.is_nan()) {
            (true, _) => b,
            (_, true) => a,
            _ => match self {
                Direction::LowerIsBetter => a.min(b),
                Direction::HigherIsBetter => a.max(b),
            },
        }
    }

    /// The worse of two values (NaN is ignored).
    pub fn worse(self, a: f64, b: f64) -> f64 {
        match (a.is_nan(), b.is_nan()) {
            (true, _) => b,
            (_, true) => a,
            _ => match self {
                Direction::LowerIsBetter => a.max(b),
                Direction::HigherIsBetter => a.min(b),
            },
        }
    }
}

/// The first epoch (1-based: `curve[0]` is epoch 1) at which `curve` reaches `target`.
pub fn epochs_to_target(curve: &[f64], target: f64, direction: Direction) -> Option<usize> {
    curve
        .iter()
        .position(|&v| !v.is_nan() && direction.reaches(v, target))
        .map(|i| i + 1)
}

/// The best value of a curve, ignoring NaN; `None` if it has no number.
pub fn best(curve: &[f64], direction: Direction) -> Option<f64> {
    let b = curve
        .iter()
        .copied()
        .fold(f64::NAN, |acc, v| direction.better(acc, v));
    (!b.is_nan()).then_some(b)
}

/// The common target of a comparison: the best value that *every* curve reaches (for a
/// loss, the largest of the curves' minima). By construction each curve reaches it, so
/// [`epochs_to_target`] is defined for all of them and says which got there first.
pub fn common_target(curves: &[&[f64]], direction: Direction) -> Option<f64> {
    let mut target: Option<f64> = None;
    for curve in curves {
        let b = best(curve, direction)?;
        target = Some(match target {
            None => b,
            Some(t) => direction.worse(t, b),
        });
    }
    target
}

/// The fixed point of the learn2mix rule for losses held at `losses`: `L / 1^T L`
/// (Proposition 2.3: `alpha_t -> L(theta*) / 1^T L(theta*)`).
pub fn alpha_fixed_point(losses: &[f64]) -> Result<Mixture> {
    Mixture::normalised(losses)
}

/// Mean, spread and a 95% confidence interval of a few values (for example one final
/// metric per seed).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of values.
    pub n: usize,
    /// Arithmetic mean.
    pub mean: f64,
    /// Sample standard deviation (n - 1 in the denominator; 0 for a single value).
    pub std: f64,
    /// Half-width of the two-sided 95% Student-t confidence interval of the mean
    /// (0 for a single value).
    pub ci95: f64,
}

/// Summary statistics of `values`; `None` when empty.
pub fn summarize(values: &[f64]) -> Option<Summary> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return Some(Summary {
            n,
            mean,
            std: 0.0,
            ci95: 0.0,
        });
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let std = var.sqrt();
    let ci95 = student_t_975(n - 1) * std / (n as f64).sqrt();
    Some(Summary { n, mean, std, ci95 })
}

/// The 0.975 quantile of Student's t with `df` degrees of freedom.
fn student_t_975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::NAN,
        1..=30 => TABLE[df - 1],
        31..=60 => 2.000,
        61..=120 => 1.980,
        _ => 1.960,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_to_target_both_directions() {
        let loss = [5.0, 3.0, 2.0, 2.5, 1.0];
        assert_eq!(
            epochs_to_target(&loss, 2.0, Direction::LowerIsBetter),
            Some(3)
        );
        assert_eq!(epochs_to_target(&loss, 0.5, Direction::LowerIsBetter), None);
        let acc = [0.1, f64::NAN, 0.8, 0.95];
        assert_eq!(
            epochs_to_target(&acc, 0.8, Direction::HigherIsBetter),
            Some(3)
        );
        assert_eq!(
            epochs_to_target(&acc, 0.99, Direction::HigherIsBetter),
            None
        );
    }

    #[test]
    fn common_target_is_reached_by_every_curve() {
        let a = [3.0, 2.0, 1.0];
        let b = [3.0, 1.5, 1.2];
        let t = common_target(&[&a, &b], Direction::LowerIsBetter).expect("numbers");
        assert_eq!(t, 1.2);
        assert_eq!(epochs_to_target(&a, t, Direction::LowerIsBetter), Some(3));
        assert_eq!(epochs_to_target(&b, t, Direction::LowerIsBetter), Some(3));
        let acc_a = [0.5, 0.9];
        let acc_b = [0.7, 0.8];
        let t = common_target(&[&acc_a, &acc_b], Direction::HigherIsBetter).expect("numbers");
        assert_eq!(t, 0.8);
        assert_eq!(
            common_target(&[&[f64::NAN][..]], Direction::LowerIsBetter),
            None
        );
    }

    #[test]
    fn summary_statistics() {
        let s = summarize(&[1.0, 2.0, 3.0, 4.0, 5.0]).expect("values");
        assert_eq!(s.mean, 3.0);
        assert!((s.std - 2.5f64.sqrt()).abs() < 1e-12);
        assert!((s.ci95 - 2.776 * 2.5f64.sqrt() / 5f64.sqrt()).abs() < 1e-12);
        assert_eq!(summarize(&[]), None);
        assert_eq!(summarize(&[2.0]).expect("one").ci95, 0.0);
    }

    #[test]
    fn fixed_point_is_normalised_losses() {
        let a = alpha_fixed_point(&[1.0, 1.0, 2.0]).expect("valid");
        assert_eq!(a.as_slice(), &[0.25, 0.25, 0.5]);
    }
}
