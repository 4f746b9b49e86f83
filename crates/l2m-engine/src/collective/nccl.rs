//! The NCCL transport (`--features nccl`): one process per GPU, the gradients summed in
//! device memory by NCCL, everything else (the per-class loss sums, the check-ins, the
//! connection id) by a host group such as MPI.
//!
//! Rank 0 creates NCCL's unique id and broadcasts it over the host group; every rank then
//! joins the NCCL communicator on its own CUDA device. A sum is a reduction to rank 0
//! followed by a broadcast from it, so every rank receives rank 0's bits, as the host
//! transports give (an all-reduce need not round the same way on every rank).
//!
//! NCCL itself (`libnccl.so.2`) is loaded when the first communicator is created, so a
//! build with this feature runs on machines without NCCL until a group of GPUs is asked for.

use candle_core::cuda_backend::cudarc::driver::CudaSlice;
use candle_core::cuda_backend::cudarc::nccl::safe::{Comm, Id, ReduceOp};
use candle_core::op::BackpropOp;
use candle_core::{CudaDevice, CudaStorage, DType, Device, Storage, Tensor};

use super::Collective;
use crate::{EngineError, Result};

/// A group of GPU processes: device sums over NCCL, host sums over `host`.
pub struct Nccl<'a> {
    host: &'a dyn Collective,
    comm: Comm,
    device: Device,
}

impl std::fmt::Debug for Nccl<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nccl")
            .field("rank", &self.host.rank())
            .field("ranks", &self.host.ranks())
            .field("device", &self.device)
            .finish()
    }
}

fn nccl_error(rank: usize, what: &str, e: impl std::fmt::Debug) -> EngineError {
    EngineError::Transport {
        rank,
        what: format!("NCCL {what}: {e:?}"),
    }
}

impl<'a> Nccl<'a> {
    /// Joins the NCCL communicator of the ranks of `host` on `device` (this rank's CUDA
    /// device; one per rank). Every rank of `host` must call it.
    pub fn join(host: &'a dyn Collective, device: &Device) -> Result<Self> {
        let Device::Cuda(cuda) = device else {
            return Err(EngineError::Config(format!(
                "a GPU group needs a CUDA device on every rank (--device cuda:N); rank {} has \
                 {device:?}",
                host.rank()
            )));
        };
        let mut bytes = [0u8; 128];
        if host.rank() == 0 {
            let id = Id::new().map_err(|e| nccl_error(host.rank(), "creating the unique id", e))?;
            for (b, &c) in bytes.iter_mut().zip(id.internal()) {
                *b = c.to_ne_bytes()[0];
            }
        }
        host.broadcast_bytes(&mut bytes)?;
        let id = Id::uninit(bytes.map(|b| std::ffi::c_char::from_ne_bytes([b])));
        let comm = Comm::from_rank(cuda.cuda_stream(), host.rank(), host.ranks(), id)
            .map_err(|e| nccl_error(host.rank(), "joining the communicator", e))?;
        Ok(Self {
            host,
            comm,
            device: device.clone(),
        })
    }

    /// The sum of `src` over the ranks, at rank 0 then broadcast from it, in memory of
    /// `dev`.
    fn sum_slice(&self, src: &CudaSlice<f32>, dev: &CudaDevice) -> Result<CudaSlice<f32>> {
        let mut dst = dev.alloc_zeros::<f32>(src.len())?;
        if self.host.rank() == 0 {
            self.comm
                .reduce(src, Some(&mut dst), &ReduceOp::Sum, 0)
                .map_err(|e| nccl_error(self.host.rank(), "reduce", e))?;
        } else {
            self.comm
                .reduce(src, None::<&mut CudaSlice<f32>>, &ReduceOp::Sum, 0)
                .map_err(|e| nccl_error(self.host.rank(), "reduce", e))?;
        }
        self.comm
            .broadcast_in_place(&mut dst, 0)
            .map_err(|e| nccl_error(self.host.rank(), "broadcast", e))?;
        Ok(dst)
    }
}

impl Collective for Nccl<'_> {
    fn rank(&self) -> usize {
        self.host.rank()
    }

    fn ranks(&self) -> usize {
        self.host.ranks()
    }

    fn sum_f32(&self, data: &mut [f32]) -> Result<()> {
        self.host.sum_f32(data)
    }

    fn sum_f64(&self, data: &mut [f64]) -> Result<()> {
        self.host.sum_f64(data)
    }

    fn broadcast_f64(&self, data: &mut [f64]) -> Result<()> {
        self.host.broadcast_f64(data)
    }

    fn sum_tensor(&self, t: &Tensor) -> Result<Tensor> {
        // Candle gives every opening of a GPU its own identity: the sum must live on the
        // tensor's, while NCCL only needs the same GPU (and the same per-thread stream).
        let Device::Cuda(dev) = t.device() else {
            return super::sum_on_host(|v| self.host.sum_f32(v), t);
        };
        if t.device().location() != self.device.location() {
            return Err(EngineError::Config(format!(
                "rank {} was asked to sum a tensor on {:?} over NCCL, which runs on {:?}",
                self.rank(),
                t.device().location(),
                self.device.location()
            )));
        }
        let t = t.to_dtype(DType::F32)?.contiguous()?;
        let summed = {
            let (storage, layout) = t.storage_and_layout();
            let Storage::Cuda(cuda) = &*storage else {
                return Err(EngineError::Config(
                    "a CUDA tensor without CUDA storage".into(),
                ));
            };
            let (start, end) = layout
                .contiguous_offsets()
                .ok_or_else(|| EngineError::Config("a contiguous tensor without offsets".into()))?;
            let whole = cuda.as_cuda_slice::<f32>()?;
            if start == 0 && end == whole.len() {
                self.sum_slice(whole, dev)?
            } else {
                let part = whole.slice(start..end);
                let mut own = dev.alloc_zeros::<f32>(end - start)?;
                dev.cuda_stream()
                    .memcpy_dtod(&part, &mut own)
                    .map_err(|e| nccl_error(self.host.rank(), "copying the gradient", e))?;
                self.sum_slice(&own, dev)?
            }
        };
        let storage = Storage::Cuda(CudaStorage::wrap_cuda_slice(summed, dev.clone()));
        Ok(Tensor::from_storage(
            storage,
            t.shape().clone(),
            BackpropOp::none(),
            false,
        ))
    }
}
