//! Data-parallel runs: after every epoch each rank checks its proportions and a parameter
//! checksum against rank 0's bits, and a rank that drifted stops the run naming itself.

use l2m_models::parameter_checksum;

use super::{RunCtx, RunHook};
use crate::{EpochRecord, Result};

/// The ranks' agreement, checked every epoch (nothing with one process).
pub(crate) struct RankCheck;

impl RunHook for RankCheck {
    fn inspect(&mut self, run: &mut RunCtx<'_>, record: &mut EpochRecord) -> Result<()> {
        if run.comm.ranks() > 1 {
            let (a, b) = parameter_checksum(&run.t.varmap)?;
            let mut state = run.strategy.alpha().as_slice().to_vec();
            state.extend([a, b]);
            crate::collective::check_in_step(run.comm, &state, record.epoch)?;
        }
        Ok(())
    }
}
