//! Per-class sample counts of one batch, from class proportions.

use serde::{Deserialize, Serialize};

use crate::{CoreError, Mixture, Result};

/// Slack added before flooring `alpha_i * B`, so that `0.29 * 100` gives 29 and not 28.
const FLOOR_SLACK: f64 = 1e-9;

/// How a batch of `B` samples is split among the classes given proportions `alpha`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Allocation {
    /// The paper's `n_i = floor(alpha_i * B)`: the batch can be up to `K - 1` samples short,
    /// and a class with `alpha_i * B < 1` gets no samples at all, so its loss is never
    /// observed and (under learn2mix) its proportion decays toward zero.
    Floor,
    /// Counts that sum to exactly `B`, with at least `min_per_class` samples for every class
    /// that has data (the default, `min_per_class = 1`).
    ///
    /// Classes whose share `alpha_i * B` falls below the minimum are pinned to it; the rest
    /// of the batch is shared among the others in proportion to `alpha` by the largest
    /// remainder method (Hamilton's), ties to the lower class index. This is a deliberate
    /// improvement on the paper: no sample of the batch budget is lost to flooring, and no
    /// class with data goes unobserved, which removes learn2mix's starvation failure mode.
    LargestRemainder {
        /// Minimum samples per non-empty class in every batch.
        min_per_class: usize,
    },
}

impl Default for Allocation {
    fn default() -> Self {
        Allocation::LargestRemainder { min_per_class: 1 }
    }
}

impl Allocation {
    /// Per-class counts for one batch of `batch_size` samples.
    ///
    /// `class_sizes[i]` is the number of samples of class `i`; a class with none gets a
    /// count of zero whatever its weight, and its weight is shared among the others.
    pub fn counts(
        &self,
        alpha: &Mixture,
        batch_size: usize,
        class_sizes: &[usize],
    ) -> Result<Vec<usize>> {
        if batch_size == 0 {
            return Err(CoreError::ZeroBatchSize);
        }
        if class_sizes.len() != alpha.len() {
            return Err(CoreError::ClassCountMismatch {
                expected: alpha.len(),
                got: class_sizes.len(),
            });
        }
        let nonempty: Vec<usize> = (0..alpha.len()).filter(|&i| class_sizes[i] > 0).collect();
        if nonempty.is_empty() {
            return Err(CoreError::EmptyClass { class: 0 });
        }
        match *self {
            Allocation::Floor => Ok(alpha
                .as_slice()
                .iter()
                .zip(class_sizes)
                .map(|(&a, &n)| {
                    if n == 0 {
                        0
                    } else {
                        (a * batch_size as f64 + FLOOR_SLACK).floor() as usize
                    }
                })
                .collect()),
            Allocation::LargestRemainder { min_per_class } => {
                largest_remainder(alpha.as_slice(), batch_size, &nonempty, min_per_class)
            }
        }
    }
}

fn largest_remainder(
    alpha: &[f64],
    batch_size: usize,
    nonempty: &[usize],
    min: usize,
) -> Result<Vec<usize>> {
    if min.saturating_mul(nonempty.len()) > batch_size {
        return Err(CoreError::MinimumExceedsBatch {
            min_per_class: min,
            classes: nonempty.len(),
            batch_size,
        });
    }
    let mut counts = vec![0usize; alpha.len()];
    let mut pinned = vec![false; alpha.len()];
    // Water-filling: pin every class whose proportional share is below the minimum, then
    // re-share the remaining budget among the free classes, until no free share is below.
    let (free, budget, quotas) = loop {
        let free: Vec<usize> = nonempty.iter().copied().filter(|&i| !pinned[i]).collect();
        let budget = batch_size - min * (nonempty.len() - free.len());
        let weight: f64 = free.iter().map(|&i| alpha[i]).sum();
        let quotas: Vec<f64> = free
            .iter()
            .map(|&i| {
                if weight > 0.0 {
                    budget as f64 * alpha[i] / weight
                } else {
                    budget as f64 / free.len() as f64
                }
            })
            .collect();
        let below: Vec<usize> = free
            .iter()
            .zip(&quotas)
            .filter(|&(_, &q)| q < min as f64)
            .map(|(&i, _)| i)
            .collect();
        // The free quotas sum to the budget, which is at least `min` per free class, so
        // some free class always stays above the minimum: the loop ends.
        if below.is_empty() || below.len() == free.len() {
            break (free, budget, quotas);
        }
        below.iter().for_each(|&i| pinned[i] = true);
    };
    for &i in nonempty.iter().filter(|&&i| pinned[i]) {
        counts[i] = min;
    }
    // Hamilton: floors first, then one more sample to the largest remainders.
    let mut assigned = 0;
    let mut remainders = Vec::with_capacity(free.len());
    for (&i, &q) in free.iter().zip(&quotas) {
        let f = (q + FLOOR_SLACK).floor();
        counts[i] = f as usize;
        assigned += counts[i];
        remainders.push((q - f, i));
    }
    // Stable sort on the remainder alone keeps ties in class order.
    remainders.sort_by(|a, b| b.0.total_cmp(&a.0));
    // The fractional parts sum to less than the number of free classes: one pass suffices.
    let mut left = budget.saturating_sub(assigned);
    for &(_, i) in &remainders {
        if left == 0 {
            break;
        }
        counts[i] += 1;
        left -= 1;
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(a: &[f64]) -> Mixture {
        Mixture::new(a.to_vec()).expect("simplex point")
    }

    #[test]
    fn floor_is_the_paper_allocation() {
        let counts = Allocation::Floor
            .counts(&m(&[0.333, 0.333, 0.334]), 100, &[10, 10, 10])
            .expect("valid");
        assert_eq!(counts, vec![33, 33, 33]); // one sample short of B
        let starving = Allocation::Floor
            .counts(&m(&[0.995, 0.005]), 100, &[10, 10])
            .expect("valid");
        assert_eq!(starving, vec![99, 0]); // the second class goes unobserved
        let exact = Allocation::Floor
            .counts(&m(&[0.29, 0.71]), 100, &[10, 10])
            .expect("valid");
        assert_eq!(exact, vec![29, 71]);
    }

    #[test]
    fn largest_remainder_fills_the_batch() {
        let counts = Allocation::default()
            .counts(&m(&[0.333, 0.333, 0.334]), 100, &[10, 10, 10])
            .expect("valid");
        assert_eq!(counts, vec![33, 33, 34]);
        // Mean Estimation's alpha* at B = 500: 166.67, 166.67, 133.33, 33.33.
        let counts = Allocation::default()
            .counts(
                &Mixture::from_counts(&[1000, 1000, 800, 200]).expect("valid"),
                500,
                &[1000, 1000, 800, 200],
            )
            .expect("valid");
        assert_eq!(counts, vec![167, 167, 133, 33]);
    }

    #[test]
    fn minimum_keeps_every_class_observed() {
        let counts = Allocation::default()
            .counts(&m(&[0.995, 0.005]), 100, &[10, 10])
            .expect("valid");
        assert_eq!(counts, vec![99, 1]);
        let counts = Allocation::LargestRemainder { min_per_class: 5 }
            .counts(&m(&[0.9, 0.08, 0.02]), 50, &[1, 1, 1])
            .expect("valid");
        assert_eq!(counts.iter().sum::<usize>(), 50);
        assert_eq!(counts, vec![40, 5, 5]);
    }

    #[test]
    fn empty_classes_get_nothing_and_pass_their_weight_on() {
        let counts = Allocation::default()
            .counts(&m(&[0.5, 0.25, 0.25]), 8, &[3, 0, 3])
            .expect("valid");
        assert_eq!(counts[1], 0);
        assert_eq!(counts.iter().sum::<usize>(), 8);
        let floor = Allocation::Floor
            .counts(&m(&[0.5, 0.5]), 8, &[3, 0])
            .expect("valid");
        assert_eq!(floor, vec![4, 0]);
    }

    #[test]
    fn typed_errors() {
        let a = m(&[0.5, 0.5]);
        assert_eq!(
            Allocation::default().counts(&a, 0, &[1, 1]),
            Err(CoreError::ZeroBatchSize)
        );
        assert_eq!(
            Allocation::default().counts(&a, 10, &[0, 0]),
            Err(CoreError::EmptyClass { class: 0 })
        );
        assert_eq!(
            Allocation::LargestRemainder { min_per_class: 6 }.counts(&a, 10, &[1, 1]),
            Err(CoreError::MinimumExceedsBatch {
                min_per_class: 6,
                classes: 2,
                batch_size: 10
            })
        );
        assert_eq!(
            Allocation::default().counts(&a, 10, &[1]),
            Err(CoreError::ClassCountMismatch {
                expected: 2,
                got: 1
            })
        );
    }

    fn alpha_and_sizes() -> impl Strategy<Value = (Vec<f64>, Vec<usize>)> {
        (1usize..30).prop_flat_map(|k| {
            (
                prop::collection::vec(prop_oneof![Just(0.0), 1e-9f64..1.0], k),
                prop::collection::vec(prop_oneof![3 => 1usize..1000, 1 => Just(0usize)], k),
            )
                .prop_filter_map("a class with data", |(mut w, sizes)| {
                    if sizes.iter().all(|&n| n == 0) {
                        return None;
                    }
                    let s: f64 = w.iter().sum();
                    if s == 0.0 {
                        w[0] = 1.0;
                    } else {
                        w.iter_mut().for_each(|x| *x /= s);
                    }
                    Some((w, sizes))
                })
        })
    }

    proptest! {
        #[test]
        fn largest_remainder_sums_to_b_and_respects_the_minimum(
            (alpha, sizes) in alpha_and_sizes(),
            batch in 1usize..5000,
            min in 0usize..4,
        ) {
            let alpha = Mixture::new(alpha).expect("simplex point");
            let nonempty = sizes.iter().filter(|&&n| n > 0).count();
            let alloc = Allocation::LargestRemainder { min_per_class: min };
            match alloc.counts(&alpha, batch, &sizes) {
                Ok(counts) => {
                    prop_assert_eq!(counts.iter().sum::<usize>(), batch);
                    for (i, &c) in counts.iter().enumerate() {
                        if sizes[i] == 0 {
                            prop_assert_eq!(c, 0);
                        } else {
                            prop_assert!(c >= min, "class {} got {} < {}", i, c, min);
                        }
                    }
                    // Proportionality: a free class is never more than one sample away
                    // from its share of the budget left after the pinned classes.
                    if min == 0 {
                        let w: f64 = (0..sizes.len()).filter(|&i| sizes[i] > 0).map(|i| alpha.as_slice()[i]).sum();
                        for (i, &c) in counts.iter().enumerate() {
                            if sizes[i] > 0 && w > 0.0 {
                                let q = batch as f64 * alpha.as_slice()[i] / w;
                                prop_assert!((c as f64 - q).abs() < 1.0 + 1e-6, "class {} got {} for quota {}", i, c, q);
                            }
                        }
                    }
                }
                Err(CoreError::MinimumExceedsBatch { .. }) => prop_assert!(min * nonempty > batch),
                Err(e) => prop_assert!(false, "unexpected error {e}"),
            }
        }

        #[test]
        fn floor_never_exceeds_b(
            (alpha, sizes) in alpha_and_sizes(),
            batch in 1usize..5000,
        ) {
            let alpha = Mixture::new(alpha).expect("simplex point");
            let counts = Allocation::Floor.counts(&alpha, batch, &sizes).expect("valid");
            let total: usize = counts.iter().sum();
            prop_assert!(total <= batch);
            for (i, &c) in counts.iter().enumerate() {
                let q = alpha.as_slice()[i] * batch as f64;
                if sizes[i] > 0 {
                    prop_assert!(c as f64 <= q + 1e-6 && c as f64 > q - 1.0);
                }
            }
        }
    }
}
