//! One epoch of a strategy's batches: the same calls, in the same order, for every
//! strategy (and the warm-up some strategies run through it).

use candle_core::{DType, Device, Tensor};

use l2m_core::ClassLossEstimate;
use l2m_data::ClassDataset;
use l2m_models::BoxedModel;

use crate::collective::{Collective, Solo, local_part};
use crate::data::DeviceData;
use crate::eval::{evaluate, score_difficulty};
use crate::model::{BuildModel, Trainable, fresh};
use crate::strategy::{Evaluate, Setup, Strategy, WarmUp};
use crate::{EngineError, ExperimentConfig, Result, StrategySpec, Task};

/// Per-class training loss sums and sample counts of every step of one epoch.
pub(crate) struct EpochSums {
    pub(crate) sums: Vec<Vec<f64>>,
    pub(crate) counts: Vec<Vec<u64>>,
    /// Distinct samples of each class trained on during the epoch.
    pub(crate) distinct: Vec<u64>,
}

/// What one epoch needs besides the model and the strategy.
#[derive(Clone, Copy)]
pub(crate) struct EpochInput<'a> {
    pub(crate) cfg: &'a ExperimentConfig,
    pub(crate) data: &'a DeviceData,
    pub(crate) task: Task,
    pub(crate) steps: usize,
    pub(crate) k: usize,
    /// The process group; [`Solo`] for one process.
    pub(crate) comm: &'a dyn Collective,
}

/// Reads the per-class sums of the steps in `pending` (one device read), refuses
/// non-finite ones as divergence, hands them to the strategy and keeps them for the record.
fn hand_over(
    pending: &mut Vec<Tensor>,
    pending_counts: &mut Vec<Vec<u64>>,
    strategy: &mut dyn Strategy,
    eval: &mut Evaluate<'_>,
    out: &mut EpochSums,
    comm: &dyn Collective,
) -> Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let rows: Vec<Vec<f32>> = Tensor::stack(pending, 0)?.to_vec2()?;
    pending.clear();
    let mut rows: Vec<Vec<f64>> = rows
        .into_iter()
        .map(|r| r.into_iter().map(f64::from).collect())
        .collect();
    if comm.ranks() > 1 {
        // Each rank summed its part of each batch: the batch's sums are their sum.
        let width = rows.first().map_or(0, Vec::len);
        let mut flat: Vec<f64> = rows.concat();
        comm.sum_f64(&mut flat)?;
        rows = flat.chunks(width.max(1)).map(<[f64]>::to_vec).collect();
    }
    if let Some(&bad) = rows.iter().flatten().find(|v| !v.is_finite()) {
        return Err(EngineError::Diverged {
            strategy: String::new(),
            seed: 0,
            epoch: 0,
            what: "the training loss".into(),
            value: bad,
        });
    }
    let counts = std::mem::take(pending_counts);
    strategy.record_losses(&rows, &counts, eval)?;
    out.sums.extend(rows);
    out.counts.extend(counts);
    Ok(())
}

/// One epoch of the strategy's batches: the same calls, in the same order, for every
/// strategy.
pub(crate) fn train_epoch(
    t: &mut Trainable,
    strategy: &mut dyn Strategy,
    input: &EpochInput<'_>,
) -> Result<EpochSums> {
    let EpochInput {
        cfg,
        data,
        task,
        steps,
        k,
        comm,
    } = *input;
    strategy.begin_epoch()?;
    let mut indices = Vec::new();
    let mut pending = Vec::new();
    let mut pending_counts = Vec::new();
    let mut out = EpochSums {
        sums: Vec::with_capacity(steps),
        counts: Vec::with_capacity(steps),
        distinct: vec![0; k],
    };
    // Which stored samples this epoch has trained on (one bit of work per sample drawn).
    let mut seen = vec![false; data.len()];
    // Strategies with a held-out loss source evaluate the model through this.
    let mut eval = |set: &ClassDataset| held_out_losses(&t.model, data, set, cfg);
    for _ in 0..steps {
        indices.clear();
        strategy.next_batch(&mut indices)?;
        {
            let model = &t.model;
            let mut score = |idx: &[u32]| -> Result<Vec<f32>> {
                let batch = data.batch(idx)?;
                let out = model.forward_t(&batch.x, true)?.detach();
                Ok(task
                    .per_sample_loss(&out, &batch.y)?
                    .to_dtype(DType::F32)?
                    .to_vec1()?)
            };
            strategy.select(&mut indices, &mut score)?;
        }
        // With several ranks, this rank trains on its part of the batch.
        let part = if comm.ranks() > 1 {
            Some(local_part(
                &indices,
                |i| data.class_of(i),
                k,
                comm.rank(),
                comm.ranks(),
            )?)
        } else {
            None
        };
        let batch = data.batch(part.as_deref().unwrap_or(&indices))?;
        let output = t.model.forward_t(&batch.x, true)?;
        let per_sample = strategy.per_sample_loss(task, &output, &batch.y)?;
        if part.is_some() {
            // The batch's mean loss, of which this rank holds a part of the sum.
            let loss = (per_sample.sum_all()? * (1.0 / indices.len() as f64))?;
            t.opt.backward_step_summed(&loss, comm)?;
        } else {
            let loss = strategy.batch_loss(&per_sample, &batch.classes)?;
            t.opt.backward_step(&loss)?;
        }
        pending.push(DeviceData::class_sums(&per_sample, &batch.classes, k)?);
        let mut c = vec![0u64; k];
        for &i in &indices {
            let class = data.class_of(i);
            c[class] += 1;
            if let Some(s) = seen.get_mut(i as usize)
                && !*s
            {
                *s = true;
                out.distinct[class] += 1;
            }
        }
        pending_counts.push(c);
        if strategy.losses_due(pending.len()) {
            hand_over(
                &mut pending,
                &mut pending_counts,
                strategy,
                &mut eval,
                &mut out,
                comm,
            )?;
        }
    }
    // Otherwise one device read per epoch for all class-wise sums.
    hand_over(
        &mut pending,
        &mut pending_counts,
        strategy,
        &mut eval,
        &mut out,
        comm,
    )?;
    strategy.end_epoch(&mut eval)?;
    Ok(out)
}

/// The per-class mean task loss of `set` (a view of the training store) in evaluation mode.
fn held_out_losses(
    model: &BoxedModel,
    data: &DeviceData,
    set: &ClassDataset,
    cfg: &ExperimentConfig,
) -> Result<ClassLossEstimate> {
    Ok(evaluate(model, data, set, cfg, false, &Solo)?.loss)
}

/// The curriculum's warm-up (or any strategy's), run through the same epoch function.
pub(crate) struct WarmUpContext<'a> {
    pub(crate) cfg: &'a ExperimentConfig,
    pub(crate) model_cfg: &'a dyn BuildModel,
    pub(crate) seed: u64,
    pub(crate) device: &'a Device,
    pub(crate) t: &'a mut Trainable,
    pub(crate) train: &'a ClassDataset,
    pub(crate) input: EpochInput<'a>,
}

impl WarmUp for WarmUpContext<'_> {
    fn train_classical(&mut self, epochs: usize) -> Result<()> {
        let setup = Setup {
            train: self.train,
            task: self.input.task,
            batch_size: self.cfg.batch_size,
            steps_per_epoch: self.input.steps,
            seed: self.seed,
            device: self.device,
        };
        let mut classical = StrategySpec::parse("classical")?.build(&setup)?;
        for _ in 0..epochs {
            train_epoch(self.t, classical.as_mut(), &self.input)?;
        }
        Ok(())
    }

    fn difficulty(&mut self) -> Result<Vec<f32>> {
        score_difficulty(
            &self.t.model,
            self.input.data,
            &self.train.all_members(),
            self.cfg.eval_batch_size,
        )
    }

    fn restart(&mut self) -> Result<()> {
        *self.t = fresh(self.cfg, self.model_cfg, self.seed, self.device)?;
        Ok(())
    }
}
