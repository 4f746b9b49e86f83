//! Data-parallel training: what the loop needs from a process group, and how a global
//! batch is split across it.
//!
//! Every rank runs the same loop with the same seed, so every rank holds the same mixture,
//! the same per-class permutations and the same global batch of indices. Each rank trains
//! on its part of the batch ([`local_part`]): per class, the class's occurrences in the
//! batch are split by [`l2m_core::Shards`], so the parts are disjoint, their union is the
//! batch one process would train on, and local sizes differ by at most one. The loss of
//! each part is its sum divided by the global batch size, the gradients are summed across
//! ranks ([`Collective::sum_f32`]) and so are the per-class loss sums of each step, so the
//! optimiser step and the mixture update see what one process would have seen (up to the
//! order of the floating-point sums) and are bit-identical on every rank.
//!
//! [`Collective`] is the only thing a transport has to provide. [`Solo`] is the single
//! process; a build with a process-group library implements the trait over it (the sums
//! must give every rank the same bits, for example a reduction to one rank followed by a
//! broadcast).

use l2m_core::Shards;

use crate::{EngineError, Result};

/// A group of processes training one model together.
pub trait Collective {
    /// This process's rank, `0..ranks()`.
    fn rank(&self) -> usize;
    /// The number of processes.
    fn ranks(&self) -> usize;
    /// Replaces `data` by its element-wise sum over all ranks; every rank must call it with
    /// the same length, and every rank receives the same bits.
    fn sum_f32(&self, data: &mut [f32]) -> Result<()>;
    /// [`Collective::sum_f32`] for `f64`.
    fn sum_f64(&self, data: &mut [f64]) -> Result<()>;
    /// Replaces `data` by rank 0's `data` on every rank.
    fn broadcast_f64(&self, data: &mut [f64]) -> Result<()>;
}

/// Checks that this rank's `state` (the mixture, a checksum of the parameters) has rank 0's
/// bits: ranks that drifted apart would train different models without noticing.
pub fn check_in_step(comm: &dyn Collective, state: &[f64], epoch: usize) -> Result<()> {
    if comm.ranks() < 2 {
        return Ok(());
    }
    let mut lead = state.to_vec();
    comm.broadcast_f64(&mut lead)?;
    if lead
        .iter()
        .map(|v| v.to_bits())
        .ne(state.iter().map(|v| v.to_bits()))
    {
        return Err(EngineError::Config(format!(
            "rank {} of {} no longer agrees with rank 0 after epoch {epoch} (mixture and \
             parameter checksum {state:?} against {lead:?})",
            comm.rank(),
            comm.ranks()
        )));
    }
    Ok(())
}

/// One process: the sums are the values themselves.
#[derive(Debug, Clone, Copy, Default)]
pub struct Solo;

impl Collective for Solo {
    fn rank(&self) -> usize {
        0
    }

    fn ranks(&self) -> usize {
        1
    }

    fn sum_f32(&self, _data: &mut [f32]) -> Result<()> {
        Ok(())
    }

    fn sum_f64(&self, _data: &mut [f64]) -> Result<()> {
        Ok(())
    }

    fn broadcast_f64(&self, _data: &mut [f64]) -> Result<()> {
        Ok(())
    }
}

/// `rank`'s part of the global `batch` (of `ranks`): for each class, the rank's slice (by
/// [`Shards`]) of the batch's samples of that class, in batch order; `class_of` gives a
/// sample's class (`0..classes`).
pub fn local_part(
    batch: &[u32],
    class_of: impl Fn(u32) -> usize,
    classes: usize,
    rank: usize,
    ranks: usize,
) -> Result<Vec<u32>> {
    let mut by_class: Vec<Vec<u32>> = vec![Vec::new(); classes];
    for &i in batch {
        let c = class_of(i);
        by_class
            .get_mut(c)
            .ok_or_else(|| EngineError::Config(format!("sample {i} has class {c} of {classes}")))?
            .push(i);
    }
    let counts: Vec<usize> = by_class.iter().map(Vec::len).collect();
    let shards = Shards::new(&counts, ranks)?;
    let mut out = Vec::with_capacity(shards.local_size(rank));
    for (c, members) in by_class.iter().enumerate() {
        if let Some((start, len)) = shards.slice(c, rank) {
            out.extend_from_slice(&members[start..start + len]);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parts_partition_the_batch_by_class() {
        // Classes by index: i % 3; a batch that is not class-grouped.
        let batch: Vec<u32> = (0..17).map(|i| (i * 7) % 23).collect();
        for ranks in 1..5 {
            let parts: Vec<Vec<u32>> = (0..ranks)
                .map(|r| local_part(&batch, |i| i as usize % 3, 3, r, ranks).expect("part"))
                .collect();
            let mut all: Vec<u32> = parts.concat();
            all.sort_unstable();
            let mut want = batch.clone();
            want.sort_unstable();
            assert_eq!(all, want, "{ranks} ranks");
            let sizes: Vec<usize> = parts.iter().map(Vec::len).collect();
            let (lo, hi) = (sizes.iter().min(), sizes.iter().max());
            assert!(hi.zip(lo).is_some_and(|(h, l)| h - l <= 1), "{sizes:?}");
        }
        assert!(local_part(&[5], |_| 3, 3, 0, 1).is_err());
    }
}
