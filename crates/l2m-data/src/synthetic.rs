//! The synthetic Mean Estimation set of the paper (Section 4, Appendix B).
//!
//! Each sample is `draws` values from one of four distributions; the target is the
//! distribution's mean parameter `m`, and the class (group) is the distribution:
//! - normal: `m ~ U(0, 1)`, draws `N(m, 1)`;
//! - exponential: `m ~ U(0, 1)`, draws with mean (scale) `m`;
//! - chi-squared: `m ~ U(0, 1)`, draws with `m` degrees of freedom;
//! - uniform: `m ~ U(20, 50)`, draws `U(m - 10, m + 10)`.
//!
//! The paper's training set is imbalanced 1000/1000/800/200; the test set holds 1000 of
//! each.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{ChiSquared, Distribution, Exp, Normal, Open01, Uniform};
use serde::{Deserialize, Serialize};

use l2m_core::{RngStream, seeded_rng};

use crate::{ClassDataset, DataError, Result, Targets};

/// The four distributions, in label order.
pub const CLASSES: [&str; 4] = ["normal", "exponential", "chi-squared", "uniform"];

/// The most values (samples x draws, both splits) the generator makes: 2^30 (4 GiB of f32).
pub const MAX_VALUES: usize = 1 << 30;

/// Parameters of the Mean Estimation generator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeanEstimation {
    /// Training samples per distribution.
    pub train_counts: [usize; 4],
    /// Test samples per distribution.
    pub test_per_class: usize,
    /// Draws per sample (the input dimension).
    pub draws: usize,
}

impl Default for MeanEstimation {
    /// The paper's settings: 1000/1000/800/200 training samples, 1000 test samples per
    /// distribution, 10 draws per sample.
    fn default() -> Self {
        Self {
            train_counts: [1000, 1000, 800, 200],
            test_per_class: 1000,
            draws: 10,
        }
    }
}

impl MeanEstimation {
    /// Generates `(train, test)` from `seed`.
    pub fn generate(&self, seed: u64) -> Result<(ClassDataset, ClassDataset)> {
        if self.draws == 0 {
            return Err(DataError::InvalidParameter {
                what: "draws",
                reason: "at least one draw per sample is needed".into(),
            });
        }
        // Sizes from a configuration file: checked before anything is allocated.
        let values = self
            .train_counts
            .iter()
            .chain(&[self.test_per_class; 4])
            .try_fold(0usize, |a, &c| a.checked_add(c))
            .and_then(|n| n.checked_mul(self.draws))
            .filter(|&v| v <= MAX_VALUES);
        if values.is_none() {
            return Err(DataError::InvalidParameter {
                what: "train_counts, test_per_class and draws",
                reason: format!(
                    "{:?} training and {} test samples per distribution of {} draws each make more than the {MAX_VALUES} values Mean Estimation may generate",
                    self.train_counts, self.test_per_class, self.draws
                ),
            });
        }
        let mut rng = seeded_rng(seed, RngStream::Data);
        let train = self.split("mean-estimation/train", &self.train_counts, &mut rng)?;
        let test = self.split("mean-estimation/test", &[self.test_per_class; 4], &mut rng)?;
        Ok((train, test))
    }

    fn split(&self, name: &str, counts: &[usize; 4], rng: &mut ChaCha8Rng) -> Result<ClassDataset> {
        let n: usize = counts.iter().sum(); // bounded by `generate`
        let mut features = Vec::with_capacity(n * self.draws);
        let mut targets = Vec::with_capacity(n);
        let mut classes = Vec::with_capacity(n);
        for (class, &count) in counts.iter().enumerate() {
            for _ in 0..count {
                let m = draw_sample(class, self.draws, rng, &mut features)?;
                targets.push(m as f32);
                classes.push(class as u32);
            }
        }
        ClassDataset::new(
            name,
            features,
            vec![self.draws],
            Targets::Regression(targets),
            classes,
            CLASSES.iter().map(|s| s.to_string()).collect(),
        )
    }
}

/// Draws one sample of class `class` into `out`; returns its mean parameter.
fn draw_sample(
    class: usize,
    draws: usize,
    rng: &mut ChaCha8Rng,
    out: &mut Vec<f32>,
) -> Result<f64> {
    let bad = |e: String| DataError::InvalidParameter {
        what: "mean-estimation distribution",
        reason: e,
    };
    // Open01 keeps m > 0, which the exponential scale and chi-squared degrees need.
    let unit: f64 = rng.sample(Open01);
    let m = match class {
        0 => {
            let d = Normal::new(unit, 1.0).map_err(|e| bad(e.to_string()))?;
            out.extend((0..draws).map(|_| d.sample(rng) as f32));
            unit
        }
        1 => {
            let d = Exp::new(1.0 / unit).map_err(|e| bad(e.to_string()))?;
            out.extend((0..draws).map(|_| d.sample(rng) as f32));
            unit
        }
        2 => {
            let d = ChiSquared::new(unit).map_err(|e| bad(e.to_string()))?;
            out.extend((0..draws).map(|_| d.sample(rng) as f32));
            unit
        }
        _ => {
            let m = 20.0 + 30.0 * unit;
            let d = Uniform::new(m - 10.0, m + 10.0).map_err(|e| bad(e.to_string()))?;
            out.extend((0..draws).map(|_| d.sample(rng) as f32));
            m
        }
    };
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class_stats(d: &ClassDataset, class: usize) -> (f64, f64) {
        let s = d.samples();
        let Targets::Regression(t) = s.targets() else {
            unreachable!("regression set")
        };
        let dim = s.feature_dim();
        let members = &d.members()[class];
        let mean_target =
            members.iter().map(|&i| t[i as usize] as f64).sum::<f64>() / members.len() as f64;
        let mean_draw = members
            .iter()
            .flat_map(|&i| s.features().sample_f32(i as usize, dim))
            .map(|x| x as f64)
            .sum::<f64>()
            / (members.len() * dim) as f64;
        (mean_target, mean_draw)
    }

    #[test]
    fn counts_shapes_and_seed() {
        let generator = MeanEstimation::default();
        let (train, test) = generator.generate(0).expect("valid");
        assert_eq!(train.class_sizes(), vec![1000, 1000, 800, 200]);
        assert_eq!(test.class_sizes(), vec![1000; 4]);
        assert_eq!(train.samples().sample_shape(), &[10]);
        let (again, _) = generator.generate(0).expect("valid");
        assert_eq!(train.samples().features(), again.samples().features());
        let (other, _) = generator.generate(1).expect("valid");
        assert_ne!(train.samples().features(), other.samples().features());
    }

    #[test]
    fn each_distribution_has_the_mean_the_spec_says() {
        let generator = MeanEstimation {
            train_counts: [4000; 4],
            test_per_class: 1,
            draws: 10,
        };
        let (train, _) = generator.generate(3).expect("valid");
        // normal, exponential, chi-squared: E[m] = 0.5 and E[draw] = E[m] = 0.5.
        for class in 0..3 {
            let (t, x) = class_stats(&train, class);
            assert!((t - 0.5).abs() < 0.02, "class {class}: mean target {t}");
            assert!((x - 0.5).abs() < 0.05, "class {class}: mean draw {x}");
        }
        // uniform: E[m] = 35, draws centred on m.
        let (t, x) = class_stats(&train, 3);
        assert!((t - 35.0).abs() < 0.5, "uniform mean target {t}");
        assert!((x - 35.0).abs() < 0.5, "uniform mean draw {x}");
        // Every target of the uniform class lies in [20, 50], of the others in (0, 1).
        let Targets::Regression(targets) = train.samples().targets() else {
            unreachable!("regression set")
        };
        for (c, list) in train.members().iter().enumerate() {
            for &i in list {
                let m = targets[i as usize];
                if c == 3 {
                    assert!((20.0..=50.0).contains(&m));
                } else {
                    assert!(m > 0.0 && m < 1.0);
                }
            }
        }
    }

    #[test]
    fn zero_draws_is_an_error() {
        let generator = MeanEstimation {
            draws: 0,
            ..MeanEstimation::default()
        };
        assert!(
            generator
                .generate(0)
                .expect_err("no draws")
                .to_string()
                .contains("draws")
        );
    }
}
