//! Importance sampling (the authors' code): from a batch of `B`, keep `B / 2` samples drawn
//! without replacement with probability proportional to their loss.

use rand::Rng;

/// Indices (into `losses`) of `keep` samples drawn without replacement with probability
/// proportional to `losses` (Efraimidis-Spirakis keys `u^(1/w)`); samples with zero or
/// non-finite loss are drawn last, uniformly. Sorted ascending.
pub fn weighted_without_replacement(losses: &[f32], keep: usize, rng: &mut impl Rng) -> Vec<usize> {
    let mut keyed: Vec<(f64, usize)> = losses
        .iter()
        .enumerate()
        .map(|(i, &w)| {
            let u: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
            let key = if w.is_finite() && w > 0.0 {
                u.ln() / f64::from(w)
            } else {
                f64::NEG_INFINITY
            };
            (key, i)
        })
        .collect();
    // Largest keys win; ln(u)/w is the log of u^(1/w), so the order is the same.
    keyed.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut chosen: Vec<usize> = keyed
        .into_iter()
        .take(keep.min(losses.len()))
        .map(|(_, i)| i)
        .collect();
    chosen.sort_unstable();
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use l2m_core::{RngStream, seeded_rng};

    #[test]
    fn draws_distinct_indices_favouring_large_losses() {
        let mut rng = seeded_rng(0, RngStream::Training);
        let losses = [10.0f32, 0.1, 0.1, 0.1, 10.0, 0.1];
        let mut hits = [0usize; 6];
        for _ in 0..2000 {
            let c = weighted_without_replacement(&losses, 3, &mut rng);
            assert_eq!(c.len(), 3);
            assert!(c.windows(2).all(|w| w[0] < w[1]), "distinct and sorted");
            c.iter().for_each(|&i| hits[i] += 1);
        }
        assert!(hits[0] > 1900 && hits[4] > 1900, "{hits:?}");
        assert!(hits[1] < 700, "{hits:?}");
        let all = weighted_without_replacement(&losses, 10, &mut rng);
        assert_eq!(all, vec![0, 1, 2, 3, 4, 5]);
    }
}
