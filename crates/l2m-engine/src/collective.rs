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
//! broadcast). The gradients go through [`Collective::sum_tensor`], whose default copies
//! them to the host and back; a transport that sums device memory in place (NCCL, behind
//! the `nccl` feature: `nccl::Nccl`) overrides it.

use candle_core::Tensor;
use l2m_core::Shards;

#[cfg(feature = "nccl")]
pub mod nccl;

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

    /// Replaces `data` by rank 0's bytes on every rank (each byte travels as an `f64`
    /// through [`Collective::broadcast_f64`]: for short messages, such as a transport's
    /// connection id).
    fn broadcast_bytes(&self, data: &mut [u8]) -> Result<()> {
        let mut wide: Vec<f64> = data.iter().map(|&b| f64::from(b)).collect();
        self.broadcast_f64(&mut wide)?;
        for (b, w) in data.iter_mut().zip(wide) {
            if !(0.0..=255.0).contains(&w) || w.fract() != 0.0 {
                return Err(EngineError::Transport {
                    rank: self.rank(),
                    what: format!("a byte broadcast delivered {w}"),
                });
            }
            // In range and whole: the cast is exact.
            *b = w as u8;
        }
        Ok(())
    }

    /// The element-wise sum of `t` over all ranks (every rank calls it with the same
    /// shape, every rank receives the same bits), as an `f32` tensor on `t`'s device.
    /// The default goes through the host and [`Collective::sum_f32`].
    fn sum_tensor(&self, t: &Tensor) -> Result<Tensor> {
        sum_on_host(|v| self.sum_f32(v), t)
    }
}

/// [`Collective::sum_tensor`] through the host: `sum` sums the values in place.
fn sum_on_host(sum: impl FnOnce(&mut [f32]) -> Result<()>, t: &Tensor) -> Result<Tensor> {
    let mut host = t
        .to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    sum(&mut host)?;
    Ok(Tensor::from_vec(host, t.shape(), t.device())?)
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
        return Err(EngineError::RanksDisagree {
            rank: comm.rank(),
            ranks: comm.ranks(),
            epoch,
            state: state.to_vec(),
            lead,
        });
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

    fn sum_tensor(&self, t: &Tensor) -> Result<Tensor> {
        Ok(t.to_dtype(candle_core::DType::F32)?)
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
