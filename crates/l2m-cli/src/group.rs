//! The process group of a data-parallel run (docs/distributed.md).
//!
//! Without the `mpi` feature, or when no MPI launcher started this process, the group is
//! this process alone. With `--features mpi` under `mpirun`/`srun`, MPI is initialised
//! once here and finalised when the [`Group`] is dropped at the end of `main`.

use l2m_engine::collective::{Collective, Solo};

/// This process's group.
pub struct Group {
    comm: Box<dyn Collective>,
    #[cfg(feature = "mpi")]
    _universe: Option<mpi::environment::Universe>,
}

impl Group {
    /// Joins the group the launcher started this process in, or none.
    pub fn join() -> anyhow::Result<Self> {
        #[cfg(feature = "mpi")]
        if launched_by_mpi() {
            let universe = mpi::initialize()
                .ok_or_else(|| anyhow::anyhow!("MPI was already initialised in this process"))?;
            let world = universe.world();
            return Ok(Self {
                comm: Box::new(mpi_group::Mpi { world }),
                _universe: Some(universe),
            });
        }
        Ok(Self {
            comm: Box::new(Solo),
            #[cfg(feature = "mpi")]
            _universe: None,
        })
    }

    /// The group as the engine sees it.
    pub fn comm(&self) -> &dyn Collective {
        self.comm.as_ref()
    }

    /// Ends every process of the group after an error in this one (the others may be
    /// waiting in a sum that will never come); one process just returns.
    pub fn abort(&self, code: i32) {
        #[cfg(feature = "mpi")]
        if self.comm.ranks() > 1 {
            use mpi::traits::Communicator;
            if let Some(u) = &self._universe {
                u.world().abort(code);
            }
        }
        let _ = code;
    }
}

/// This process's rank among the group's processes on its machine, from the launcher
/// (Open MPI's `OMPI_COMM_WORLD_LOCAL_RANK`, Slurm's `SLURM_LOCALID`, MPICH's
/// `MPI_LOCALRANKID`), or 0.
pub fn local_rank() -> usize {
    [
        "OMPI_COMM_WORLD_LOCAL_RANK",
        "SLURM_LOCALID",
        "MPI_LOCALRANKID",
    ]
    .iter()
    .find_map(|v| std::env::var(v).ok()?.parse().ok())
    .unwrap_or(0)
}

/// The device of one rank of `ranks`: with several ranks on GPUs, one GPU per process,
/// the process of local rank `l` taking GPU `n + l` for `--device cuda:n` (rank 0 keeps
/// the configured device, so the run directory's settings are the same as one process's).
pub fn place(
    device: l2m_engine::DeviceKind,
    ranks: usize,
    local_rank: usize,
) -> l2m_engine::DeviceKind {
    use l2m_engine::DeviceKind;
    match device {
        DeviceKind::Cuda(n) if ranks > 1 => DeviceKind::Cuda(n + local_rank),
        other => other,
    }
}

/// Whether an MPI launcher (Open MPI's `mpirun`, MPICH's, Slurm's `srun` with PMI)
/// started this process.
#[cfg(feature = "mpi")]
fn launched_by_mpi() -> bool {
    [
        "OMPI_COMM_WORLD_SIZE",
        "PMI_SIZE",
        "PMIX_RANK",
        "MPI_LOCALNRANKS",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some())
}

#[cfg(test)]
mod tests {
    use super::place;
    use l2m_engine::DeviceKind;

    #[test]
    fn one_gpu_per_process_from_the_configured_one() {
        assert_eq!(place(DeviceKind::Cuda(0), 4, 3), DeviceKind::Cuda(3));
        assert_eq!(place(DeviceKind::Cuda(2), 2, 1), DeviceKind::Cuda(3));
        assert_eq!(place(DeviceKind::Cuda(1), 1, 0), DeviceKind::Cuda(1));
        assert_eq!(place(DeviceKind::Cpu, 4, 3), DeviceKind::Cpu);
    }
}

#[cfg(feature = "mpi")]
mod mpi_group {
    use l2m_engine::collective::Collective;
    use mpi::collective::SystemOperation;
    use mpi::datatype::Equivalence;
    use mpi::topology::SimpleCommunicator;
    use mpi::traits::{Communicator, Root};

    /// `MPI_COMM_WORLD`.
    pub struct Mpi {
        pub world: SimpleCommunicator,
    }

    impl Mpi {
        /// The sum at rank 0, then broadcast: every rank gets rank 0's bits (an
        /// all-reduce need not give every rank the same rounding).
        fn sum<T: Equivalence + Copy + Default>(&self, data: &mut [T]) {
            let root = self.world.process_at_rank(0);
            if self.world.rank() == 0 {
                let mut out = vec![T::default(); data.len()];
                root.reduce_into_root(&*data, &mut out[..], SystemOperation::sum());
                data.copy_from_slice(&out);
            } else {
                root.reduce_into(&*data, SystemOperation::sum());
            }
            root.broadcast_into(data);
        }
    }

    impl Collective for Mpi {
        fn rank(&self) -> usize {
            usize::try_from(self.world.rank()).unwrap_or(0)
        }

        fn ranks(&self) -> usize {
            usize::try_from(self.world.size()).unwrap_or(1)
        }

        fn sum_f32(&self, data: &mut [f32]) -> l2m_engine::Result<()> {
            self.sum(data);
            Ok(())
        }

        fn sum_f64(&self, data: &mut [f64]) -> l2m_engine::Result<()> {
            self.sum(data);
            Ok(())
        }

        fn broadcast_f64(&self, data: &mut [f64]) -> l2m_engine::Result<()> {
            self.world.process_at_rank(0).broadcast_into(data);
            Ok(())
        }
    }
}
