//! Imbalance-aware classification metrics from a confusion matrix.
//!
//! `confusion[t][p]` counts the test samples of true class `t` predicted as `p`. Classes
//! without test samples are left out of the averages.

/// Per-class recall `C[c][c] / sum_p C[c][p]` (`None` for a class without samples).
pub fn recalls(confusion: &[Vec<u64>]) -> Vec<Option<f64>> {
    confusion
        .iter()
        .enumerate()
        .map(|(c, row)| {
            let n: u64 = row.iter().sum();
            (n > 0).then(|| row.get(c).copied().unwrap_or(0) as f64 / n as f64)
        })
        .collect()
}

/// Balanced accuracy: the mean recall over the classes that have samples.
pub fn balanced_accuracy(confusion: &[Vec<u64>]) -> Option<f64> {
    mean(recalls(confusion).into_iter().flatten())
}

/// The lowest recall of a class that has samples (worst-class accuracy).
pub fn worst_class_accuracy(confusion: &[Vec<u64>]) -> Option<f64> {
    recalls(confusion).into_iter().flatten().reduce(f64::min)
}

/// Macro-F1: the mean over classes with samples of `2 P R / (P + R)` (0 where both are 0).
pub fn macro_f1(confusion: &[Vec<u64>]) -> Option<f64> {
    let k = confusion.len();
    let predicted: Vec<u64> = (0..k)
        .map(|p| {
            confusion
                .iter()
                .map(|row| row.get(p).copied().unwrap_or(0))
                .sum()
        })
        .collect();
    let f1 = confusion.iter().enumerate().filter_map(|(c, row)| {
        let support: u64 = row.iter().sum();
        if support == 0 {
            return None;
        }
        let tp = row.get(c).copied().unwrap_or(0) as f64;
        let recall = tp / support as f64;
        let precision = if predicted[c] == 0 {
            0.0
        } else {
            tp / predicted[c] as f64
        };
        Some(if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        })
    });
    mean(f1)
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_hand() {
        // Class 0: 8 of 10 right, 2 called class 1; class 1: 1 of 2 right.
        let c = vec![vec![8, 2], vec![1, 1]];
        assert_eq!(recalls(&c), vec![Some(0.8), Some(0.5)]);
        assert!((balanced_accuracy(&c).expect("some") - 0.65).abs() < 1e-12);
        assert_eq!(worst_class_accuracy(&c), Some(0.5));
        // P0 = 8/9, R0 = 0.8 -> F1 = 0.8421..; P1 = 1/3, R1 = 0.5 -> F1 = 0.4.
        let f0 = 2.0 * (8.0 / 9.0) * 0.8 / (8.0 / 9.0 + 0.8);
        assert!((macro_f1(&c).expect("some") - (f0 + 0.4) / 2.0).abs() < 1e-12);
        // A class without test samples is left out; a class never predicted has F1 0.
        let c = vec![vec![5, 0, 0], vec![3, 0, 0], vec![0, 0, 0]];
        assert_eq!(balanced_accuracy(&c), Some(0.5));
        assert_eq!(worst_class_accuracy(&c), Some(0.0));
        assert!(macro_f1(&c).expect("some") < 0.5);
        assert_eq!(balanced_accuracy(&[]), None);
    }
}
