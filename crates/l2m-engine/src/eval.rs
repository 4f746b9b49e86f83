//! Evaluation in evaluation mode: the test set's per-class loss, metric and confusion,
//! and the per-sample difficulty the curriculum scores by.

use candle_core::{DType, Tensor};

use l2m_core::{ClassLossAccumulator, ClassLossEstimate, Estimator};
use l2m_data::ClassDataset;
use l2m_models::BoxedModel;

use crate::collective::Collective;
use crate::data::DeviceData;
use crate::{ExperimentConfig, Result, Task};

/// `1 - p(y | x)` of each member, in evaluation mode.
pub(crate) fn score_difficulty(
    model: &BoxedModel,
    data: &DeviceData,
    members: &[u32],
    chunk: usize,
) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(members.len());
    for part in members.chunks(chunk.max(1)) {
        let batch = data.batch(part)?;
        let logits = model.forward_t(&batch.x, false)?;
        let ce = Task::Classification.per_sample_loss(&logits, &batch.y)?;
        // p = exp(-CE)
        let p: Vec<f32> = ce.neg()?.exp()?.to_dtype(DType::F32)?.to_vec1()?;
        out.extend(p.into_iter().map(|p| 1.0 - p));
    }
    Ok(out)
}

/// Test loss and metric per class, and (when asked, for classification) the confusion
/// matrix.
pub(crate) struct Evaluation {
    pub(crate) loss: ClassLossEstimate,
    pub(crate) metric: ClassLossEstimate,
    pub(crate) confusion: Option<Vec<Vec<u64>>>,
}

/// Mean test loss and metric per class, in evaluation mode, in chunks of
/// `eval_batch_size`. With several ranks in `comm`, rank r evaluates chunks r, r + R,
/// r + 2R, ... and the per-class sums (and the confusion matrix) are summed over the ranks,
/// so every rank ends with the same evaluation.
pub(crate) fn evaluate(
    model: &BoxedModel,
    data: &DeviceData,
    test: &ClassDataset,
    cfg: &ExperimentConfig,
    with_confusion: bool,
    comm: &dyn Collective,
) -> Result<Evaluation> {
    let k = test.num_classes();
    let members = test.all_members();
    let mut loss_sums: Option<Tensor> = None;
    let mut metric_sums: Option<Tensor> = None;
    let mut confusion: Option<Tensor> = None;
    let mut counts = vec![0u64; k];
    let add = |acc: Option<Tensor>, t: Tensor| -> Result<Option<Tensor>> {
        Ok(Some(match acc {
            Some(a) => a.add(&t)?,
            None => t,
        }))
    };
    let (rank, ranks) = (comm.rank(), comm.ranks().max(1));
    for (_, chunk) in members
        .chunks(cfg.eval_batch_size)
        .enumerate()
        .filter(|(i, _)| i % ranks == rank)
    {
        let batch = data.batch(chunk)?;
        let output = model.forward_t(&batch.x, false)?;
        let loss = cfg.task.per_sample_loss(&output, &batch.y)?;
        let metric = cfg.task.per_sample_metric(&output, &batch.y, &loss)?;
        loss_sums = add(loss_sums, DeviceData::class_sums(&loss, &batch.classes, k)?)?;
        metric_sums = add(
            metric_sums,
            DeviceData::class_sums(&metric, &batch.classes, k)?,
        )?;
        if with_confusion && cfg.task == Task::Classification {
            let pred = output.argmax(candle_core::D::Minus1)?;
            let cell = (batch.classes.to_dtype(DType::U32)?.affine(k as f64, 0.0)? + pred)?;
            let ones = Tensor::ones(chunk.len(), DType::F32, output.device())?;
            let zeros = Tensor::zeros(k * k, DType::F32, output.device())?;
            confusion = add(confusion, zeros.index_add(&cell, &ones, 0)?)?;
        }
        for &i in chunk {
            counts[data.class_of(i)] += 1;
        }
    }
    let read = |t: Option<Tensor>, len: usize| -> Result<Vec<f64>> {
        Ok(match t {
            Some(t) => t.to_vec1::<f32>()?.into_iter().map(f64::from).collect(),
            None => vec![0.0; len],
        })
    };
    let mut loss_sums = read(loss_sums, k)?;
    let mut metric_sums = read(metric_sums, k)?;
    let with_confusion = with_confusion && cfg.task == Task::Classification;
    let mut confusion = if with_confusion {
        Some(read(confusion, k * k)?)
    } else {
        None
    };
    if ranks > 1 {
        // One message: loss sums, metric sums, counts, the confusion matrix.
        let mut all: Vec<f64> = [&loss_sums[..], &metric_sums[..]].concat();
        all.extend(counts.iter().map(|&c| c as f64));
        all.extend(confusion.iter().flatten());
        comm.sum_f64(&mut all)?;
        let (l, rest) = all.split_at(k);
        let (m, rest) = rest.split_at(k);
        let (c, rest) = rest.split_at(k);
        loss_sums = l.to_vec();
        metric_sums = m.to_vec();
        // Counts of samples: whole numbers far below 2^53, exact in f64.
        counts = c.iter().map(|&v| v as u64).collect();
        if let Some(conf) = &mut confusion {
            conf.copy_from_slice(rest);
        }
    }
    let estimate = |sums: Vec<f64>| -> Result<ClassLossEstimate> {
        if sums.iter().any(|v| !v.is_finite()) {
            return Ok(ClassLossEstimate {
                losses: vec![f64::NAN; k],
                counts: counts.clone(),
            });
        }
        let mut acc = ClassLossAccumulator::new(k, Estimator::EpochMean)?;
        acc.add_sums(&sums, &counts)?;
        Ok(acc.estimate())
    };
    let confusion = confusion.map(|flat| {
        flat.chunks(k.max(1))
            .map(|r| r.iter().map(|&v| v as u64).collect())
            .collect()
    });
    Ok(Evaluation {
        loss: estimate(loss_sums)?,
        metric: estimate(metric_sums)?,
        confusion,
    })
}
