//! The training loop: one strategy, one seed.

use std::path::Path;
use std::time::Instant;

use candle_core::{DType, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarMap};

use l2m_core::{ClassLossAccumulator, ClassLossEstimate, Estimator, RngStream, seeded_rng};
use l2m_data::ClassDataset;
use l2m_models::{BoxedModel, parameter_checksum, seeded_var_builder, select_device};

use crate::compare::Observer;
use crate::data::DeviceData;
use crate::record::{write_json, write_records};
use crate::{EngineError, EpochRecord, ExperimentConfig, Result, RunInfo, StrategySpec};

/// What one strategy-seed run produced.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// One record per epoch.
    pub records: Vec<EpochRecord>,
    /// Facts about the run.
    pub info: RunInfo,
}

/// Trains `cfg.model` on `train` with `strategy` for `cfg.epochs` epochs, evaluating on
/// `test` after each epoch.
///
/// The initial parameters depend only on `seed` (and the model), never on the strategy,
/// so every strategy of a seed starts from the same weights. Each epoch has
/// `floor(N / B)` optimiser steps whatever the strategy. When `out` is given, records and
/// run facts are rewritten there atomically after every epoch.
pub fn train_one(
    cfg: &ExperimentConfig,
    strategy: &StrategySpec,
    train: &ClassDataset,
    test: &ClassDataset,
    seed: u64,
    out: Option<&Path>,
    observer: &mut dyn Observer,
) -> Result<TrainOutcome> {
    let device = select_device(cfg.device)?;
    let k = train.num_classes();
    let steps = train.len() / cfg.batch_size;
    if steps == 0 {
        return Err(EngineError::Config(format!(
            "batch_size {} exceeds the {} training samples of {}",
            cfg.batch_size,
            train.len(),
            train.name()
        )));
    }
    let train_data = DeviceData::upload(train, &device)?;
    let test_data = DeviceData::upload(test, &device)?;

    let varmap = VarMap::new();
    let vb = seeded_var_builder(
        &varmap,
        seeded_rng(seed, RngStream::Init),
        DType::F32,
        &device,
    );
    let model = cfg.model.build(vb, seed)?;
    let init_checksum = parameter_checksum(&varmap)?;
    let mut opt = AdamW::new(
        varmap.all_vars(),
        ParamsAdamW {
            lr: cfg.optimizer.lr,
            weight_decay: 0.0,
            ..ParamsAdamW::default()
        },
    )?;
    let mut policy = strategy.policy(train, cfg.batch_size, seed)?;
    let mut for_rule = ClassLossAccumulator::new(k, strategy.estimator())?;
    let mut for_record = ClassLossAccumulator::new(k, Estimator::EpochMean)?;

    let name = strategy.name();
    let mut info = RunInfo {
        strategy: name.to_string(),
        seed,
        train_class_sizes: train.class_sizes(),
        test_class_sizes: test.class_sizes(),
        class_names: train.class_names().to_vec(),
        init_checksum,
        steps_per_epoch: steps,
        epochs_done: 0,
        final_alpha: policy.alpha().as_slice().to_vec(),
    };
    let diverged = |epoch: usize, what: &str, value: f64| EngineError::Diverged {
        strategy: name.to_string(),
        seed,
        epoch,
        what: what.to_string(),
        value,
    };

    observer.run_started(name, seed, cfg.epochs);
    let mut records = Vec::with_capacity(cfg.epochs);
    let mut indices = Vec::with_capacity(cfg.batch_size);
    for epoch in 1..=cfg.epochs {
        let started = Instant::now();
        let alpha = policy.alpha().as_slice().to_vec();
        policy.begin_epoch()?;
        let mut batch_sums = Vec::with_capacity(steps);
        let mut batch_counts = Vec::with_capacity(steps);
        for _ in 0..steps {
            indices.clear();
            policy.next_batch(&mut indices)?;
            let batch = train_data.batch(&indices)?;
            let output = model.forward_t(&batch.x, true)?;
            let per_sample = cfg.task.per_sample_loss(&output, &batch.y)?;
            let loss = per_sample.mean(0)?;
            opt.backward_step(&loss)?;
            batch_sums.push(DeviceData::class_sums(&per_sample, &batch.classes, k)?);
            let mut counts = vec![0u64; k];
            for &i in &indices {
                counts[train_data.class_of(i)] += 1;
            }
            batch_counts.push(counts);
        }
        // One device read per epoch for all class-wise sums.
        let sums: Vec<Vec<f32>> = Tensor::stack(&batch_sums, 0)?.to_vec2()?;
        for_rule.reset();
        for_record.reset();
        for (row, counts) in sums.iter().zip(&batch_counts) {
            let row: Vec<f64> = row.iter().map(|&v| v as f64).collect();
            if let Some(&bad) = row.iter().find(|v| !v.is_finite()) {
                return Err(diverged(epoch, "the training loss", bad));
            }
            for acc in [&mut for_rule, &mut for_record] {
                acc.begin_batch();
                acc.add_sums(&row, counts)?;
            }
        }
        let train_estimate = for_record.estimate();
        policy.end_epoch(&for_rule.estimate())?;
        let train_seconds = started.elapsed().as_secs_f64();

        let eval_started = Instant::now();
        let test_estimate = evaluate(&model, &test_data, test, cfg)?;
        let eval_seconds = eval_started.elapsed().as_secs_f64();
        let test_loss = test_estimate.overall();
        if !test_loss.is_finite() {
            return Err(diverged(epoch, "the test loss", test_loss));
        }
        let record = EpochRecord {
            epoch,
            strategy: name.to_string(),
            seed,
            train_loss: train_estimate.overall(),
            train_loss_per_class: train_estimate.losses,
            train_samples_per_class: train_estimate.counts,
            test_loss,
            test_loss_per_class: test_estimate.losses,
            alpha,
            train_seconds,
            eval_seconds,
        };
        observer.epoch_done(&record);
        records.push(record);
        info.epochs_done = epoch;
        info.final_alpha = policy.alpha().as_slice().to_vec();
        if let Some(dir) = out {
            write_records(dir, &records, train.class_names())?;
            write_json(&dir.join("run.json"), &info)?;
        }
    }
    observer.run_finished(name, seed);
    Ok(TrainOutcome { records, info })
}

/// Mean test loss per class, in evaluation mode, in chunks of `eval_batch_size`.
fn evaluate(
    model: &BoxedModel,
    data: &DeviceData,
    test: &ClassDataset,
    cfg: &ExperimentConfig,
) -> Result<ClassLossEstimate> {
    let k = test.num_classes();
    let members = test.all_members();
    let mut sums: Option<Tensor> = None;
    let mut counts = vec![0u64; k];
    for chunk in members.chunks(cfg.eval_batch_size) {
        let batch = data.batch(chunk)?;
        let output = model.forward_t(&batch.x, false)?;
        let per_sample = cfg.task.per_sample_loss(&output, &batch.y)?;
        let s = DeviceData::class_sums(&per_sample, &batch.classes, k)?;
        sums = Some(match sums {
            Some(acc) => acc.add(&s)?,
            None => s,
        });
        for &i in chunk {
            counts[data.class_of(i)] += 1;
        }
    }
    let sums: Vec<f64> = match sums {
        Some(t) => t.to_vec1::<f32>()?.into_iter().map(f64::from).collect(),
        None => vec![0.0; k],
    };
    let mut acc = ClassLossAccumulator::new(k, Estimator::EpochMean)?;
    if sums.iter().any(|v| !v.is_finite()) {
        return Ok(ClassLossEstimate {
            losses: vec![f64::NAN; k],
            counts,
        });
    }
    acc.add_sums(&sums, &counts)?;
    Ok(acc.estimate())
}
