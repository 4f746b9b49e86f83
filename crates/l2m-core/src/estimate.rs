//! Class-wise loss estimates from the per-sample losses of training batches.

use serde::{Deserialize, Serialize};

use crate::{CoreError, Result};

/// Which per-sample losses make up the class-wise estimate of an epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Estimator {
    /// Eq. 10 of the paper: the mean per-sample loss of each class over everything it
    /// contributed during the epoch (the default). Costs no extra forward pass.
    #[default]
    EpochMean,
    /// The authors' code: the class-wise means over the last batch of the epoch only
    /// (computed from that batch's own forward pass, before its update).
    LastBatch,
}

/// Running sums of per-sample losses per class.
#[derive(Debug, Clone)]
pub struct ClassLossAccumulator {
    estimator: Estimator,
    sums: Vec<f64>,
    counts: Vec<u64>,
}

/// The class-wise losses of one period, with how many samples each is averaged over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassLossEstimate {
    /// Mean loss per class; 0 for a class that contributed no sample (the paper's
    /// behaviour: such a class looks solved and its proportion decays).
    pub losses: Vec<f64>,
    /// Samples that each mean is taken over.
    pub counts: Vec<u64>,
}

impl ClassLossEstimate {
    /// The mean over all samples (weighted by each class's count).
    pub fn overall(&self) -> f64 {
        let n: u64 = self.counts.iter().sum();
        if n == 0 {
            return 0.0;
        }
        let total: f64 = self
            .losses
            .iter()
            .zip(&self.counts)
            .map(|(l, &c)| l * c as f64)
            .sum();
        total / n as f64
    }
}

impl ClassLossAccumulator {
    /// An empty accumulator for `classes` classes.
    pub fn new(classes: usize, estimator: Estimator) -> Result<Self> {
        if classes == 0 {
            return Err(CoreError::NoClasses);
        }
        Ok(Self {
            estimator,
            sums: vec![0.0; classes],
            counts: vec![0; classes],
        })
    }

    /// The estimator in use.
    pub fn estimator(&self) -> Estimator {
        self.estimator
    }

    /// Clears everything (start of an epoch).
    pub fn reset(&mut self) {
        self.sums.iter_mut().for_each(|s| *s = 0.0);
        self.counts.iter_mut().for_each(|c| *c = 0);
    }

    /// Marks the start of a batch: the last-batch estimator forgets earlier batches.
    pub fn begin_batch(&mut self) {
        if self.estimator == Estimator::LastBatch {
            self.reset();
        }
    }

    /// Adds one sample's loss to its class.
    pub fn add(&mut self, class: usize, loss: f64) -> Result<()> {
        let classes = self.sums.len();
        if class >= classes {
            return Err(CoreError::ClassOutOfRange { class, classes });
        }
        if !loss.is_finite() || loss < 0.0 {
            return Err(CoreError::InvalidLoss { class, value: loss });
        }
        self.sums[class] += loss;
        self.counts[class] += 1;
        Ok(())
    }

    /// Adds pre-summed losses: `sums[i]` over `counts[i]` samples of class `i` (for
    /// example per-class sums computed on an accelerator).
    pub fn add_sums(&mut self, sums: &[f64], counts: &[u64]) -> Result<()> {
        let classes = self.sums.len();
        for got in [sums.len(), counts.len()] {
            if got != classes {
                return Err(CoreError::ClassCountMismatch {
                    expected: classes,
                    got,
                });
            }
        }
        for (class, (&s, &c)) in sums.iter().zip(counts).enumerate() {
            if !s.is_finite() || s < 0.0 {
                return Err(CoreError::InvalidLoss { class, value: s });
            }
            self.sums[class] += s;
            self.counts[class] += c;
        }
        Ok(())
    }

    /// The running per-class sums and counts.
    pub fn parts(&self) -> (&[f64], &[u64]) {
        (&self.sums, &self.counts)
    }

    /// The current class-wise means.
    pub fn estimate(&self) -> ClassLossEstimate {
        let losses = self
            .sums
            .iter()
            .zip(&self.counts)
            .map(|(&s, &c)| if c == 0 { 0.0 } else { s / c as f64 })
            .collect();
        ClassLossEstimate {
            losses,
            counts: self.counts.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_mean_averages_over_all_batches() {
        let mut acc = ClassLossAccumulator::new(2, Estimator::EpochMean).expect("valid");
        acc.begin_batch();
        acc.add(0, 1.0).expect("valid");
        acc.add(1, 4.0).expect("valid");
        acc.begin_batch();
        acc.add(0, 3.0).expect("valid");
        let est = acc.estimate();
        assert_eq!(est.losses, vec![2.0, 4.0]);
        assert_eq!(est.counts, vec![2, 1]);
        assert!((est.overall() - 8.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn last_batch_keeps_only_the_last_batch() {
        let mut acc = ClassLossAccumulator::new(2, Estimator::LastBatch).expect("valid");
        acc.begin_batch();
        acc.add(0, 1.0).expect("valid");
        acc.add(1, 4.0).expect("valid");
        acc.begin_batch();
        acc.add(0, 3.0).expect("valid");
        let est = acc.estimate();
        assert_eq!(
            est.losses,
            vec![3.0, 0.0],
            "class 1 was not in the last batch"
        );
        assert_eq!(est.counts, vec![1, 0]);
    }

    #[test]
    fn pre_summed_losses_match_sample_by_sample() {
        let mut a = ClassLossAccumulator::new(3, Estimator::EpochMean).expect("valid");
        let mut b = a.clone();
        for (c, l) in [(0, 1.0), (2, 2.0), (0, 5.0)] {
            a.add(c, l).expect("valid");
        }
        b.add_sums(&[6.0, 0.0, 2.0], &[2, 0, 1]).expect("valid");
        assert_eq!(a.estimate(), b.estimate());
    }

    #[test]
    fn typed_errors() {
        assert!(matches!(
            ClassLossAccumulator::new(0, Estimator::EpochMean),
            Err(CoreError::NoClasses)
        ));
        let mut acc = ClassLossAccumulator::new(2, Estimator::EpochMean).expect("valid");
        assert_eq!(
            acc.add(2, 1.0),
            Err(CoreError::ClassOutOfRange {
                class: 2,
                classes: 2
            })
        );
        assert!(matches!(
            acc.add(0, f64::NAN),
            Err(CoreError::InvalidLoss { class: 0, .. })
        ));
        assert_eq!(
            acc.add_sums(&[1.0], &[1]),
            Err(CoreError::ClassCountMismatch {
                expected: 2,
                got: 1
            })
        );
        assert!(matches!(
            acc.add_sums(&[1.0, f64::INFINITY], &[1, 1]),
            Err(CoreError::InvalidLoss { class: 1, .. })
        ));
    }
}
