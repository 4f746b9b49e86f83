//! Rank-aware batch plans for data-parallel training.
//!
//! In data-parallel learn2mix every rank holds the same mixture and the same per-class
//! permutations (same seed), so every rank computes the same global per-class counts for
//! a step. [`Shards`] splits each class's count across the `R` ranks deterministically,
//! and each rank takes its own disjoint slice of that class's cyclic draw: the union of
//! the ranks' batches is exactly the batch one process would draw.
//!
//! The rule: class `i`'s count `c_i` gives every rank `floor(c_i / R)` samples, and its
//! `c_i mod R` remaining samples go one each to the next ranks in a rotation that
//! continues from class to class (class 0's start at rank 0, class 1's after the last
//! rank class 0's reached, and so on). The ranks take consecutive slices of the class's
//! draw in rank order. Over a batch, every rank receives either `floor(B / R)` or
//! `ceil(B / R)` samples: local batch sizes differ by at most one.

use crate::{CoreError, CyclicSampler, Result};

/// How the per-class counts of one step are split across `ranks` ranks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shards {
    ranks: usize,
    /// For each class, for each rank: the rank's `(start, len)` within the class's draw.
    slices: Vec<Vec<(usize, usize)>>,
}

impl Shards {
    /// The split of `counts` (samples of each class in the global batch) over `ranks`
    /// ranks; zero ranks is an error.
    pub fn new(counts: &[usize], ranks: usize) -> Result<Self> {
        if ranks == 0 {
            return Err(CoreError::InvalidState(
                "a batch plan needs at least one rank".into(),
            ));
        }
        let mut next = 0;
        let slices = counts
            .iter()
            .map(|&c| {
                let (base, extra) = (c / ranks, c % ranks);
                let mut start = 0;
                let slices = (0..ranks)
                    .map(|r| {
                        // Rank r gets an extra sample when it is among the `extra` ranks
                        // that follow `next` in the rotation.
                        let gets = (r + ranks - next) % ranks < extra;
                        let len = base + usize::from(gets);
                        let slice = (start, len);
                        start += len;
                        slice
                    })
                    .collect();
                next = (next + extra) % ranks;
                slices
            })
            .collect();
        Ok(Self { ranks, slices })
    }

    /// Number of ranks.
    pub fn ranks(&self) -> usize {
        self.ranks
    }

    /// `(start, len)` of `rank`'s slice of class `class`'s draw for this step.
    pub fn slice(&self, class: usize, rank: usize) -> Option<(usize, usize)> {
        self.slices.get(class)?.get(rank).copied()
    }

    /// Samples of each class that `rank` takes this step.
    pub fn local_counts(&self, rank: usize) -> Vec<usize> {
        self.slices
            .iter()
            .map(|s| s.get(rank).map_or(0, |&(_, len)| len))
            .collect()
    }

    /// `rank`'s local batch size this step.
    pub fn local_size(&self, rank: usize) -> usize {
        self.local_counts(rank).iter().sum()
    }
}

impl CyclicSampler {
    /// Appends `rank`'s part of the batch with `counts[i]` samples of class `i`: for each
    /// class, the rank's slice (from [`Shards`]) of the indices [`CyclicSampler::fill_batch`]
    /// would append. The sampler advances by the whole batch, as every rank's does, so
    /// all ranks stay in step; the union over ranks is `fill_batch`'s batch.
    pub fn fill_shard(
        &mut self,
        counts: &[usize],
        shards: &Shards,
        rank: usize,
        out: &mut Vec<u32>,
    ) -> Result<()> {
        if counts.len() != self.num_classes() {
            return Err(CoreError::ClassCountMismatch {
                expected: self.num_classes(),
                got: counts.len(),
            });
        }
        if rank >= shards.ranks() {
            return Err(CoreError::InvalidState(format!(
                "rank {rank} of {} ranks",
                shards.ranks()
            )));
        }
        let mut scratch = Vec::new();
        for (class, &n) in counts.iter().enumerate() {
            scratch.clear();
            self.draw(class, n, &mut scratch)?;
            let (start, len) = shards
                .slice(class, rank)
                .ok_or_else(|| CoreError::InvalidState(format!("the plan has no class {class}")))?;
            let slice = scratch.get(start..start + len).ok_or_else(|| {
                CoreError::InvalidState(format!(
                    "the plan's slice {start}..{} of class {class} is past its {n} samples",
                    start + len
                ))
            })?;
            out.extend_from_slice(slice);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::tests::members;
    use proptest::prelude::*;

    proptest! {
        /// For any number of ranks, class sizes and counts (counts larger than a class
        /// included, so draws wrap): the ranks' slices are disjoint, their union in rank
        /// order is the single-process batch, class by class, every rank's sampler ends in
        /// the single-process sampler's state, and local sizes differ by at most one.
        #[test]
        fn ranks_together_draw_the_single_process_batch(
            sizes in prop::collection::vec(1usize..40, 1..8),
            counts_seed in prop::collection::vec(0usize..60, 8),
            ranks in 1usize..7,
            steps in 1usize..4,
            seed in any::<u64>(),
        ) {
            let k = sizes.len();
            let counts: Vec<usize> = counts_seed[..k].to_vec();
            let mut single = CyclicSampler::new(members(&sizes), seed).expect("sampler");
            let mut per_rank: Vec<CyclicSampler> = (0..ranks)
                .map(|_| CyclicSampler::new(members(&sizes), seed).expect("sampler"))
                .collect();
            let shards = Shards::new(&counts, ranks).expect("plan");
            for _ in 0..steps {
                let mut want = Vec::new();
                single.fill_batch(&counts, &mut want).expect("batch");
                let parts: Vec<Vec<u32>> = per_rank
                    .iter_mut()
                    .enumerate()
                    .map(|(r, s)| {
                        let mut out = Vec::new();
                        s.fill_shard(&counts, &shards, r, &mut out).expect("shard");
                        out
                    })
                    .collect();
                // Class by class, the ranks' slices in rank order are the class's draw.
                let mut union = Vec::new();
                let mut offsets = vec![0usize; ranks];
                for (class, &c) in counts.iter().enumerate() {
                    let mut got = 0;
                    for (r, part) in parts.iter().enumerate() {
                        let (start, len) = shards.slice(class, r).expect("slice");
                        prop_assert_eq!(start, got);
                        union.extend_from_slice(&part[offsets[r]..offsets[r] + len]);
                        offsets[r] += len;
                        got += len;
                    }
                    prop_assert_eq!(got, c);
                }
                prop_assert_eq!(&union, &want);
                let sizes: Vec<usize> = (0..ranks).map(|r| shards.local_size(r)).collect();
                for (r, part) in parts.iter().enumerate() {
                    prop_assert_eq!(part.len(), sizes[r]);
                }
                let (lo, hi) = (
                    sizes.iter().min().copied().unwrap_or(0),
                    sizes.iter().max().copied().unwrap_or(0),
                );
                prop_assert!(hi - lo <= 1, "local sizes {:?}", sizes);
                for s in &per_rank {
                    prop_assert_eq!(s, &single);
                }
            }
        }
    }

    #[test]
    fn bad_plans_are_errors() {
        assert!(Shards::new(&[3, 4], 0).is_err());
        let shards = Shards::new(&[3, 4], 2).expect("plan");
        let mut s = CyclicSampler::new(members(&[5, 5]), 1).expect("sampler");
        let mut out = Vec::new();
        assert!(s.fill_shard(&[3, 4], &shards, 2, &mut out).is_err());
        assert!(s.fill_shard(&[3], &shards, 0, &mut out).is_err());
        // A plan made for other counts: the slice is past the class's draw.
        let small = Shards::new(&[1, 1], 1).expect("plan");
        let mut t = CyclicSampler::new(members(&[5, 5]), 1).expect("sampler");
        assert!(t.fill_shard(&[3, 4], &small, 0, &mut out).is_ok());
        let big = Shards::new(&[9, 9], 1).expect("plan");
        assert!(t.fill_shard(&[3, 4], &big, 0, &mut out).is_err());
    }
}
