//! How many samples each class keeps: the imbalance profiles of the paper.

use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use l2m_core::{RngStream, seeded_rng};

use crate::{ClassDataset, DataError, Result};

/// Slack added before flooring `factor * N_i`, so `0.1 * 4898` keeps 489 and not 488
/// because of rounding.
const FLOOR_SLACK: f64 = 1e-9;

/// The fraction of each class that a training set keeps (the test set is never
/// imbalanced). Class `i` keeps `floor(factor_i * N_i)` samples, chosen at random from a
/// seed; a class left empty is an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Imbalance {
    /// Every sample is kept.
    None,
    /// One factor per class, in (0, 1].
    Factors {
        /// Fraction kept of each class, in label order.
        keep: Vec<f64>,
    },
    /// Factors linearly spaced from `first` (class 0) to `last` (class K-1); Imagenette in
    /// the paper: 1.0 down to 0.1.
    Linear {
        /// Factor of the first class.
        first: f64,
        /// Factor of the last class.
        last: f64,
    },
    /// Factors log-spaced from `first` to `last`: `first * (last/first)^(i/(K-1))`;
    /// CIFAR-100 in the paper: 1 down to 0.025 (`40^(-i/99)`).
    Log {
        /// Factor of the first class.
        first: f64,
        /// Factor of the last class.
        last: f64,
    },
}

impl Imbalance {
    /// The factor of each of `k` classes.
    pub fn factors(&self, k: usize) -> Result<Vec<f64>> {
        let factors = match self {
            Imbalance::None => vec![1.0; k],
            Imbalance::Factors { keep } => {
                if keep.len() != k {
                    return Err(DataError::InvalidParameter {
                        what: "imbalance factors",
                        reason: format!("expected one per class ({k}), got {}", keep.len()),
                    });
                }
                keep.clone()
            }
            Imbalance::Linear { first, last } => spaced(k, |t| first + t * (last - first)),
            Imbalance::Log { first, last } => {
                check(0, *first)?;
                check(k.saturating_sub(1), *last)?;
                spaced(k, |t| first * (last / first).powf(t))
            }
        };
        for (class, &value) in factors.iter().enumerate() {
            check(class, value)?;
        }
        Ok(factors)
    }
}

fn check(class: usize, value: f64) -> Result<()> {
    if value > 0.0 && value <= 1.0 {
        Ok(())
    } else {
        Err(DataError::InvalidFactor { class, value })
    }
}

fn spaced(k: usize, f: impl Fn(f64) -> f64) -> Vec<f64> {
    (0..k)
        .map(|i| {
            let t = if k > 1 {
                i as f64 / (k - 1) as f64
            } else {
                0.0
            };
            f(t)
        })
        .collect()
}

impl ClassDataset {
    /// The dataset with each class cut to `floor(factor_i * N_i)` members, chosen at
    /// random from `seed` (kept in their original order). The sample store is shared.
    pub fn imbalanced(&self, profile: &Imbalance, seed: u64) -> Result<ClassDataset> {
        let factors = profile.factors(self.num_classes())?;
        let mut rng = seeded_rng(seed, RngStream::Imbalance);
        let mut members = Vec::with_capacity(self.num_classes());
        for (class, (list, &f)) in self.members().iter().zip(&factors).enumerate() {
            let keep = (f * list.len() as f64 + FLOOR_SLACK).floor() as usize;
            if keep == 0 {
                return Err(DataError::EmptyClass {
                    class: self.class_names()[class].clone(),
                    context: format!(
                        " after imbalancing (keep {f} of {} samples rounds to 0)",
                        list.len()
                    ),
                });
            }
            let mut kept = list.clone();
            if keep < kept.len() {
                kept.shuffle(&mut rng);
                kept.truncate(keep);
                kept.sort_unstable();
            }
            members.push(kept);
        }
        self.with_members(members, " after imbalancing")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Targets;

    fn dataset(sizes: &[usize]) -> ClassDataset {
        let classes: Vec<u32> = sizes
            .iter()
            .enumerate()
            .flat_map(|(c, &n)| std::iter::repeat_n(c as u32, n))
            .collect();
        let n = classes.len();
        ClassDataset::new(
            "d",
            (0..n).map(|i| i as f32).collect::<Vec<f32>>(),
            vec![1],
            Targets::Classes,
            classes,
            (0..sizes.len()).map(|c| format!("c{c}")).collect(),
        )
        .expect("valid")
    }

    #[test]
    fn paper_profiles() {
        let lin = Imbalance::Linear {
            first: 1.0,
            last: 0.1,
        }
        .factors(10)
        .expect("valid");
        for (i, f) in lin.iter().enumerate() {
            assert!((f - (1.0 - 0.1 * i as f64)).abs() < 1e-12);
        }
        let log = Imbalance::Log {
            first: 1.0,
            last: 0.025,
        }
        .factors(100)
        .expect("valid");
        for (i, f) in log.iter().enumerate() {
            assert!((f - 40f64.powf(-(i as f64) / 99.0)).abs() < 1e-12);
        }
    }

    #[test]
    fn keeps_floor_of_factor_times_size_and_shares_the_store() {
        let d = dataset(&[100, 4898]);
        let imb = d
            .imbalanced(
                &Imbalance::Factors {
                    keep: vec![1.0, 0.1],
                },
                0,
            )
            .expect("valid");
        assert_eq!(imb.class_sizes(), vec![100, 489]);
        assert!(std::sync::Arc::ptr_eq(imb.samples(), d.samples()));
        // Kept members are a subset of the class, sorted, without repeats.
        let kept = &imb.members()[1];
        assert!(kept.windows(2).all(|w| w[0] < w[1]));
        assert!(kept.iter().all(|i| d.members()[1].contains(i)));
    }

    #[test]
    fn seeded_and_seed_dependent() {
        let d = dataset(&[50, 50]);
        let p = Imbalance::Factors {
            keep: vec![0.5, 0.2],
        };
        let a = d.imbalanced(&p, 1).expect("valid");
        let b = d.imbalanced(&p, 1).expect("valid");
        let c = d.imbalanced(&p, 2).expect("valid");
        assert_eq!(a.members(), b.members());
        assert_ne!(a.members(), c.members());
    }

    #[test]
    fn errors_name_the_class_and_value() {
        let d = dataset(&[10, 10]);
        let e = d
            .imbalanced(
                &Imbalance::Factors {
                    keep: vec![1.0, 0.01],
                },
                0,
            )
            .expect_err("empty");
        assert_eq!(
            e.to_string(),
            "class \"c1\" has no samples after imbalancing (keep 0.01 of 10 samples rounds to 0)"
        );
        let e = d
            .imbalanced(
                &Imbalance::Factors {
                    keep: vec![1.0, 1.5],
                },
                0,
            )
            .expect_err("factor");
        assert!(matches!(e, DataError::InvalidFactor { class: 1, value } if value == 1.5));
        let e = d
            .imbalanced(&Imbalance::Factors { keep: vec![1.0] }, 0)
            .expect_err("count");
        assert!(e.to_string().contains("expected one per class (2), got 1"));
        let e = Imbalance::Log {
            first: 1.0,
            last: 0.0,
        }
        .factors(3)
        .expect_err("zero");
        assert!(matches!(e, DataError::InvalidFactor { class: 2, .. }));
    }
}
