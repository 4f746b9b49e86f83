//! Curriculum learning (the authors' code): after a classical warm-up, samples are scored
//! by `1 - p(y | x)` and sorted easy to hard; training restarts from the initial weights on
//! the easiest fraction `0.5 * 1.2^floor(epoch / 10)` of the data, capped at 1.

/// The fraction of the easy-to-hard order used at 0-based `epoch`.
pub fn fraction(epoch: usize) -> f64 {
    (0.5 * 1.2f64.powi((epoch / 10) as i32)).min(1.0)
}

/// Sample positions sorted from easiest (lowest difficulty) to hardest, ties by position.
pub fn easy_to_hard(difficulty: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..difficulty.len()).collect();
    order.sort_by(|&a, &b| difficulty[a].total_cmp(&difficulty[b]).then(a.cmp(&b)));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_and_order() {
        assert_eq!(fraction(0), 0.5);
        assert_eq!(fraction(9), 0.5);
        assert!((fraction(10) - 0.6).abs() < 1e-12);
        assert!((fraction(25) - 0.72).abs() < 1e-12);
        assert_eq!(fraction(100), 1.0);
        assert_eq!(easy_to_hard(&[0.9, 0.1, 0.5, 0.1]), vec![1, 3, 2, 0]);
    }
}
