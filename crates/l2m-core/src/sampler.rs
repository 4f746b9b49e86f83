//! Which samples make up each batch.
//!
//! [`CyclicSampler`] is the per-class sampler of the paper (Eqs. 12-13): each class keeps
//! its own permutation and cursor, and a batch takes the next `n_i` indices of class `i`,
//! wrapping around, so a class smaller than its demand is revisited within an epoch and a
//! large class is partly unvisited. [`ShuffledSampler`] is classical training's sampler:
//! one permutation of the whole training set, cut into consecutive batches.

use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::{CoreError, Result, RngStream, seeded_rng};

/// The cyclic per-class sampler of the paper.
///
/// It serialises (permutations, cursors and random generator) so that a checkpointed run
/// resumes with exactly the batches it would have drawn; a deserialised state is checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "CyclicState")]
pub struct CyclicSampler {
    perms: Vec<Vec<u32>>,
    cursors: Vec<usize>,
    #[serde(with = "crate::rng::chacha_serde")]
    rng: ChaCha8Rng,
}

impl CyclicSampler {
    /// A sampler over `members[i]`, the sample indices of class `i`, seeded with `seed`.
    ///
    /// Empty classes are allowed (they can never be drawn from); no classes at all is an
    /// error.
    pub fn new(members: Vec<Vec<u32>>, seed: u64) -> Result<Self> {
        if members.is_empty() {
            return Err(CoreError::NoClasses);
        }
        let k = members.len();
        let mut sampler = Self {
            perms: members,
            cursors: vec![0; k],
            rng: seeded_rng(seed, RngStream::Sampler),
        };
        sampler.begin_epoch();
        Ok(sampler)
    }

    /// Reshuffles every class independently and resets every cursor to 0 (step 1 of the
    /// batched algorithm). Called once at the start of each epoch.
    pub fn begin_epoch(&mut self) {
        for perm in &mut self.perms {
            perm.shuffle(&mut self.rng);
        }
        self.cursors.iter_mut().for_each(|c| *c = 0);
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.perms.len()
    }

    /// Samples in each class.
    pub fn class_sizes(&self) -> Vec<usize> {
        self.perms.iter().map(Vec::len).collect()
    }

    /// Appends the next `n` indices of class `class` to `out`:
    /// `perm[(p + j) mod N]` for `j = 0..n`, then `p += n` (modulo `N`).
    pub fn draw(&mut self, class: usize, n: usize, out: &mut Vec<u32>) -> Result<()> {
        let k = self.perms.len();
        let perm = self
            .perms
            .get(class)
            .ok_or(CoreError::ClassOutOfRange { class, classes: k })?;
        if n == 0 {
            return Ok(());
        }
        if perm.is_empty() {
            return Err(CoreError::EmptyClass { class });
        }
        let size = perm.len();
        let mut p = self.cursors[class];
        let mut left = n;
        while left > 0 {
            let take = left.min(size - p);
            out.extend_from_slice(&perm[p..p + take]);
            left -= take;
            p = (p + take) % size;
        }
        self.cursors[class] = p;
        Ok(())
    }

    /// Appends one batch with `counts[i]` samples of class `i`, class by class.
    pub fn fill_batch(&mut self, counts: &[usize], out: &mut Vec<u32>) -> Result<()> {
        if counts.len() != self.perms.len() {
            return Err(CoreError::ClassCountMismatch {
                expected: self.perms.len(),
                got: counts.len(),
            });
        }
        out.reserve(counts.iter().sum());
        for (class, &n) in counts.iter().enumerate() {
            self.draw(class, n, out)?;
        }
        Ok(())
    }
}

/// The serialised form of a [`CyclicSampler`], checked on the way in.
#[derive(Deserialize)]
struct CyclicState {
    perms: Vec<Vec<u32>>,
    cursors: Vec<usize>,
    #[serde(with = "crate::rng::chacha_serde")]
    rng: ChaCha8Rng,
}

impl TryFrom<CyclicState> for CyclicSampler {
    type Error = CoreError;

    fn try_from(s: CyclicState) -> Result<Self> {
        if s.perms.is_empty() {
            return Err(CoreError::NoClasses);
        }
        if s.cursors.len() != s.perms.len() {
            return Err(CoreError::InvalidState(format!(
                "{} cursors for {} classes",
                s.cursors.len(),
                s.perms.len()
            )));
        }
        for (class, (perm, &c)) in s.perms.iter().zip(&s.cursors).enumerate() {
            if c >= perm.len().max(1) {
                return Err(CoreError::InvalidState(format!(
                    "class {class}: cursor {c} past its {} samples",
                    perm.len()
                )));
            }
        }
        Ok(Self {
            perms: s.perms,
            cursors: s.cursors,
            rng: s.rng,
        })
    }
}

/// Classical training's sampler: one shuffled permutation of all samples per epoch, cut
/// into consecutive batches; the last partial batch is dropped, so an epoch has
/// `floor(N / B)` batches, the same number of steps as every other strategy.
///
/// Like [`CyclicSampler`] it serialises, and a deserialised state is checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ShuffledState")]
pub struct ShuffledSampler {
    perm: Vec<u32>,
    cursor: usize,
    #[serde(with = "crate::rng::chacha_serde")]
    rng: ChaCha8Rng,
}

/// The serialised form of a [`ShuffledSampler`], checked on the way in.
#[derive(Deserialize)]
struct ShuffledState {
    perm: Vec<u32>,
    cursor: usize,
    #[serde(with = "crate::rng::chacha_serde")]
    rng: ChaCha8Rng,
}

impl TryFrom<ShuffledState> for ShuffledSampler {
    type Error = CoreError;

    fn try_from(s: ShuffledState) -> Result<Self> {
        if s.perm.is_empty() {
            return Err(CoreError::EmptyClass { class: 0 });
        }
        if s.cursor > s.perm.len() {
            return Err(CoreError::InvalidState(format!(
                "cursor {} past the {} samples",
                s.cursor,
                s.perm.len()
            )));
        }
        Ok(Self {
            perm: s.perm,
            cursor: s.cursor,
            rng: s.rng,
        })
    }
}

impl ShuffledSampler {
    /// A sampler over all `indices`, seeded with `seed`.
    pub fn new(indices: Vec<u32>, seed: u64) -> Result<Self> {
        if indices.is_empty() {
            return Err(CoreError::EmptyClass { class: 0 });
        }
        let mut sampler = Self {
            perm: indices,
            cursor: 0,
            rng: seeded_rng(seed, RngStream::Sampler),
        };
        sampler.begin_epoch();
        Ok(sampler)
    }

    /// Reshuffles all samples and restarts at the first batch.
    pub fn begin_epoch(&mut self) {
        self.perm.shuffle(&mut self.rng);
        self.cursor = 0;
    }

    /// Number of samples it draws from.
    pub fn len(&self) -> usize {
        self.perm.len()
    }

    /// Whether it has no samples (never true: construction refuses it).
    pub fn is_empty(&self) -> bool {
        self.perm.is_empty()
    }

    /// Number of full batches of `batch_size` in one epoch.
    pub fn batches_per_epoch(&self, batch_size: usize) -> usize {
        self.perm.len() / batch_size.max(1)
    }

    /// Appends the next `batch_size` indices; when the epoch's permutation has fewer
    /// left, starts a new epoch first.
    pub fn next_batch(&mut self, batch_size: usize, out: &mut Vec<u32>) -> Result<()> {
        if batch_size == 0 {
            return Err(CoreError::ZeroBatchSize);
        }
        if batch_size > self.perm.len() {
            return Err(CoreError::MinimumExceedsBatch {
                min_per_class: batch_size,
                classes: 1,
                batch_size: self.perm.len(),
            });
        }
        if self.cursor + batch_size > self.perm.len() {
            self.begin_epoch();
        }
        out.extend_from_slice(&self.perm[self.cursor..self.cursor + batch_size]);
        self.cursor += batch_size;
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Consecutive indices, `sizes[i]` of them for class `i` (also used by `shard.rs`).
    pub(crate) fn members(sizes: &[usize]) -> Vec<Vec<u32>> {
        let mut next = 0u32;
        sizes
            .iter()
            .map(|&n| {
                let v: Vec<u32> = (next..next + n as u32).collect();
                next += n as u32;
                v
            })
            .collect()
    }

    #[test]
    fn draws_wrap_around_a_small_class() {
        let mut s = CyclicSampler::new(members(&[3]), 0).expect("valid");
        let mut out = Vec::new();
        s.draw(0, 7, &mut out).expect("valid");
        // Seven draws from three samples: the permutation, twice, then its first element.
        assert_eq!(&out[0..3], &out[3..6]);
        assert_eq!(out[6], out[0]);
        let mut sorted = out[0..3].to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, vec![0, 1, 2]);
    }

    #[test]
    fn cursor_continues_across_batches_and_resets_each_epoch() {
        let mut s = CyclicSampler::new(members(&[5]), 1).expect("valid");
        let mut a = Vec::new();
        s.draw(0, 2, &mut a).expect("valid");
        s.draw(0, 3, &mut a).expect("valid");
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            vec![0, 1, 2, 3, 4],
            "two batches cover the class once"
        );
        s.begin_epoch();
        let mut b = Vec::new();
        s.draw(0, 5, &mut b).expect("valid");
        b.sort_unstable();
        assert_eq!(b, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn typed_errors() {
        assert!(matches!(
            CyclicSampler::new(vec![], 0),
            Err(CoreError::NoClasses)
        ));
        let mut s = CyclicSampler::new(members(&[2, 0]), 0).expect("valid");
        let mut out = Vec::new();
        assert_eq!(
            s.draw(1, 1, &mut out),
            Err(CoreError::EmptyClass { class: 1 })
        );
        assert_eq!(
            s.draw(2, 1, &mut out),
            Err(CoreError::ClassOutOfRange {
                class: 2,
                classes: 2
            })
        );
        assert!(
            s.draw(1, 0, &mut out).is_ok(),
            "zero draws from an empty class are fine"
        );
        assert_eq!(
            s.fill_batch(&[1], &mut out),
            Err(CoreError::ClassCountMismatch {
                expected: 2,
                got: 1
            })
        );
        let mut sh = ShuffledSampler::new(vec![1, 2, 3], 0).expect("valid");
        assert_eq!(sh.next_batch(0, &mut out), Err(CoreError::ZeroBatchSize));
        assert!(sh.next_batch(4, &mut out).is_err());
    }

    #[test]
    fn a_restored_sampler_continues_with_the_same_batches() {
        let mut a = CyclicSampler::new(members(&[7, 3, 11]), 5).expect("valid");
        let mut b = ShuffledSampler::new((0..23).collect(), 5).expect("valid");
        let mut out = Vec::new();
        a.fill_batch(&[4, 2, 5], &mut out).expect("valid");
        b.next_batch(6, &mut out).expect("valid");
        let a2: CyclicSampler =
            serde_json::from_str(&serde_json::to_string(&a).expect("json")).expect("state");
        let b2: ShuffledSampler =
            serde_json::from_str(&serde_json::to_string(&b).expect("json")).expect("state");
        assert_eq!(a2, a);
        assert_eq!(b2, b);
        let draw = |mut c: CyclicSampler, mut s: ShuffledSampler| {
            let mut out = Vec::new();
            for _ in 0..5 {
                c.fill_batch(&[4, 2, 5], &mut out).expect("valid");
                s.next_batch(6, &mut out).expect("valid");
                c.begin_epoch();
            }
            out
        };
        assert_eq!(draw(a.clone(), b.clone()), draw(a2, b2));
    }

    #[test]
    fn damaged_sampler_states_are_refused() {
        let s = CyclicSampler::new(members(&[3, 2]), 0).expect("valid");
        let mut v = serde_json::to_value(&s).expect("json");
        v["cursors"] = serde_json::json!([0, 5]);
        let e = serde_json::from_value::<CyclicSampler>(v.clone()).expect_err("cursor");
        assert!(
            e.to_string()
                .contains("class 1: cursor 5 past its 2 samples"),
            "{e}"
        );
        v["cursors"] = serde_json::json!([0]);
        let e = serde_json::from_value::<CyclicSampler>(v).expect_err("length");
        assert!(e.to_string().contains("1 cursors for 2 classes"), "{e}");
        let s = ShuffledSampler::new(vec![1, 2], 0).expect("valid");
        let mut v = serde_json::to_value(&s).expect("json");
        v["cursor"] = serde_json::json!(3);
        assert!(serde_json::from_value::<ShuffledSampler>(v).is_err());
    }

    #[test]
    fn shuffled_sampler_covers_the_set_once_per_epoch() {
        let mut s = ShuffledSampler::new((0..10).collect(), 3).expect("valid");
        assert_eq!(s.batches_per_epoch(3), 3);
        let mut out = Vec::new();
        for _ in 0..3 {
            s.next_batch(3, &mut out).expect("valid");
        }
        let mut sorted = out.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 9, "no repeats within an epoch");
        // The fourth batch would overrun: a new permutation starts.
        let mut next = Vec::new();
        s.next_batch(3, &mut next).expect("valid");
        assert_eq!(next.len(), 3);
    }

    proptest! {
        #[test]
        fn every_index_is_visited_equally_often_within_one(
            size in 1usize..200,
            draws in prop::collection::vec(0usize..300, 1..20),
            seed in any::<u64>(),
        ) {
            let mut s = CyclicSampler::new(members(&[size]), seed).expect("valid");
            let mut out = Vec::new();
            for n in &draws {
                s.draw(0, *n, &mut out).expect("valid");
            }
            let mut visits = vec![0usize; size];
            for &i in &out {
                visits[i as usize] += 1;
            }
            let lo = *visits.iter().min().expect("non-empty");
            let hi = *visits.iter().max().expect("non-empty");
            prop_assert!(hi - lo <= 1, "visits range from {} to {}", lo, hi);
            prop_assert_eq!(visits.iter().sum::<usize>(), draws.iter().sum::<usize>());
        }

        #[test]
        fn same_seed_same_batches(
            sizes in prop::collection::vec(1usize..50, 1..6),
            seed in any::<u64>(),
            epochs in 1usize..4,
        ) {
            let run = |seed: u64| {
                let mut s = CyclicSampler::new(members(&sizes), seed).expect("valid");
                let counts: Vec<usize> = sizes.iter().map(|n| n / 2 + 1).collect();
                let mut out = Vec::new();
                for _ in 0..epochs {
                    s.begin_epoch();
                    for _ in 0..3 {
                        s.fill_batch(&counts, &mut out).expect("valid");
                    }
                }
                out
            };
            prop_assert_eq!(run(seed), run(seed));
            if sizes.iter().sum::<usize>() >= 30 {
                prop_assert_ne!(run(seed), run(seed.wrapping_add(1)));
            }
        }

        #[test]
        fn batches_hold_the_requested_class_counts(
            sizes in prop::collection::vec(1usize..50, 1..6),
            seed in any::<u64>(),
        ) {
            let m = members(&sizes);
            let mut s = CyclicSampler::new(m.clone(), seed).expect("valid");
            let counts: Vec<usize> = sizes.iter().map(|n| (n * 7) % 13).collect();
            let mut out = Vec::new();
            s.fill_batch(&counts, &mut out).expect("valid");
            prop_assert_eq!(out.len(), counts.iter().sum::<usize>());
            let mut off = 0;
            for (c, &n) in counts.iter().enumerate() {
                for &i in &out[off..off + n] {
                    prop_assert!(m[c].contains(&i));
                }
                off += n;
            }
        }
    }
}
