//! CPU kernels behind the models' layers: Candle custom ops with their own backward
//! passes, parallel over the batch with rayon.
//!
//! Candle's CPU path builds every layer from generic tensor operations, each allocating a
//! fresh output, and its backward pass adds one more buffer per node. For the small
//! networks of the paper the time went to memory traffic rather than arithmetic
//! (docs/performance.md). These kernels compute a whole layer per sample while its data
//! is in cache and keep only what the backward pass needs:
//!
//! - [`conv`]: convolution with bias, optionally ReLU and a 2x2 max pool, as one op
//!   (on AVX-512 CPUs at stride 1, a direct convolution with the output channels across
//!   the vector lanes, [`avx512`]; elsewhere im2col and a matrix product per sample; the
//!   pool keeps one byte per output);
//! - [`linear`]: `act(x W^T + b)`; [`attention`]: scaled dot-product attention with the
//!   key mask and seeded dropout; [`layer_norm`]; [`loss`]: the per-row MSE.
//!
//! Every op has a reference composed of Candle's own operations, which the tests compare
//! against (forward and gradients) and which runs on other devices and dtypes.

pub(crate) mod attention;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512;
pub(crate) mod conv;
mod gemm;
pub(crate) mod layer_norm;
pub(crate) mod linear;
pub(crate) mod loss;
#[cfg(target_arch = "x86_64")]
mod sgemm;

use candle_core::{CpuStorage, Error, Layout, Result, Storage, Tensor};

/// The contiguous `f32` elements of a CPU storage under `layout`.
pub(crate) fn slice<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    let (start, end) = l
        .contiguous_offsets()
        .ok_or_else(|| Error::Msg("CPU kernels need contiguous operands".into()))?;
    Ok(&data[start..end])
}

/// Calls `f` with the contiguous `f32` elements of a CPU tensor (copied first if the
/// tensor is strided).
pub(crate) fn with_slice<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(s) => f(slice(s, layout)?),
        _ => Err(Error::Msg(
            "CPU kernels were handed a tensor on another device".into(),
        )),
    }
}

/// `exp(x)` for the attention kernel's softmax: exactly `x.exp()`, but without calling into libm for
/// the large negative arguments of masked scores (`-1e9`), whose underflow handling is
/// slow; below -104 the `f32` exponential is 0.
#[inline]
pub(crate) fn exp(x: f32) -> f32 {
    if x < -104.0 { 0.0 } else { x.exp() }
}

/// Below this many elements an element-wise pass runs on the calling thread: handing work
/// to rayon's pool from outside it wakes a worker and puts the caller to sleep, which a
/// small pass does not repay.
const PARALLEL_MIN: usize = 1 << 15;

/// Calls `f(i, chunk)` for each chunk of `chunk` elements of `data` (the `i`-th), in
/// parallel over rayon's pool when `data` is large, on this thread otherwise.
pub(crate) fn for_each_chunk<T: Send>(
    data: &mut [T],
    chunk: usize,
    f: impl Fn(usize, &mut [T]) + Send + Sync,
) {
    use rayon::prelude::*;
    let chunk = chunk.max(1);
    if data.len() < PARALLEL_MIN {
        data.chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, c)| f(i, c));
    } else {
        data.par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, c)| f(i, c));
    }
}

/// `lhs [m, k] x rhs [k, n]`, row-major, over rayon's pool.
pub(crate) fn product(
    lhs: &[f32],
    rhs: &[f32],
    (m, k, n): (usize, usize, usize),
) -> Result<Vec<f32>> {
    let mut out = vec![0f32; m * n];
    gemm::matmul_parallel(
        gemm::rows_mut(&mut out, m, n),
        gemm::rows(lhs, m, k),
        gemm::rows(rhs, k, n),
        false,
    )?;
    Ok(out)
}

/// Whether the CPU kernels apply to `t`: an `f32` tensor on the CPU.
pub(crate) fn applies(t: &Tensor) -> bool {
    t.device().is_cpu() && t.dtype() == candle_core::DType::F32
}

#[cfg(test)]
mod tests {
    /// The shortcut gives the same bits as `f32::exp` around its threshold.
    #[test]
    fn exp_equals_the_library_exponential() {
        for i in 0..20_000 {
            let x = -110.0 + i as f32 * 0.001;
            assert_eq!(super::exp(x).to_bits(), x.exp().to_bits(), "{x}");
        }
        assert_eq!(super::exp(-1e9), 0.0);
    }
}
