//! The training loop: one strategy, one seed.

use std::path::Path;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use rand_chacha::ChaCha8Rng;

use l2m_baselines::FocalLoss;
use l2m_core::{
    ClassLossAccumulator, ClassLossEstimate, Estimator, RngState, RngStream, seeded_rng,
};
use l2m_data::ClassDataset;
use l2m_models::{
    BoxedModel, ModelConfig, parameter_checksum, parameter_count, perturb_parameters,
    seeded_var_builder, select_device,
};

use crate::checkpoint::{self, CheckpointState};
use crate::compare::Observer;
use crate::config::LoadedData;
use crate::data::DeviceData;
use crate::optim::{Adam, AdamConfig};
use crate::record::{read_json, read_records, write_json_with, write_records};
use crate::strategy::{BatchPolicy, CurriculumBatches};
use crate::{EngineError, EpochRecord, ExperimentConfig, Result, RunInfo, StrategySpec, Task};

/// What one strategy-seed run produced.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// One record per epoch.
    pub records: Vec<EpochRecord>,
    /// Facts about the run.
    pub info: RunInfo,
}

/// What a step trains on.
enum Objective {
    Task(Task),
    Focal(FocalLoss),
}

impl Objective {
    fn per_sample(&self, task: Task, output: &Tensor, target: &Tensor) -> Result<Tensor> {
        match self {
            Objective::Task(t) => t.per_sample_loss(output, target),
            Objective::Focal(f) => {
                debug_assert_eq!(task, Task::Classification);
                f.per_sample(output, target)
                    .map_err(|e| EngineError::Config(e.to_string()))
            }
        }
    }
}

struct Trainable {
    varmap: VarMap,
    model: BoxedModel,
    opt: Adam,
}

fn fresh(
    cfg: &ExperimentConfig,
    model: &ModelConfig,
    seed: u64,
    device: &Device,
) -> Result<Trainable> {
    let varmap = VarMap::new();
    let vb = seeded_var_builder(
        &varmap,
        seeded_rng(seed, RngStream::Init),
        DType::F32,
        device,
    );
    let model = model.build(vb, seed)?;
    if let Some(std) = cfg.init_noise {
        perturb_parameters(&varmap, std, &mut seeded_rng(seed, RngStream::Perturbation))?;
    }
    let params: Vec<_> = {
        let vars = varmap
            .data()
            .lock()
            .map_err(|_| EngineError::Config("parameter map lock poisoned".into()))?;
        let mut named: Vec<_> = vars
            .iter()
            .filter(|(n, _)| l2m_models::layers::is_parameter(n))
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        named
    };
    let opt = Adam::new(
        params,
        AdamConfig::with_lr(cfg.optimizer.lr).with_weight_decay(cfg.optimizer.weight_decay),
    )?;
    Ok(Trainable { varmap, model, opt })
}

/// Per-class loss sums and counts of each batch of one epoch.
struct EpochSums {
    sums: Vec<Vec<f64>>,
    counts: Vec<Vec<u64>>,
}

#[allow(
    clippy::too_many_arguments,
    reason = "the loop's state, passed explicitly"
)]
fn train_epoch(
    t: &mut Trainable,
    policy: &mut dyn BatchPolicy,
    data: &DeviceData,
    objective: &Objective,
    task: Task,
    steps: usize,
    k: usize,
    mut importance: Option<&mut ChaCha8Rng>,
) -> Result<EpochSums> {
    policy.begin_epoch()?;
    let mut indices = Vec::new();
    let mut device_sums = Vec::with_capacity(steps);
    let mut counts = Vec::with_capacity(steps);
    for _ in 0..steps {
        indices.clear();
        policy.next_batch(&mut indices)?;
        if let Some(rng) = importance.as_deref_mut() {
            // Score the whole batch without gradient, keep half in proportion to the loss.
            let batch = data.batch(&indices)?;
            let out = t.model.forward_t(&batch.x, true)?.detach();
            let scores: Vec<f32> = objective
                .per_sample(task, &out, &batch.y)?
                .to_dtype(DType::F32)?
                .to_vec1()?;
            let keep = l2m_baselines::sampling::weighted_without_replacement(
                &scores,
                indices.len() / 2,
                rng,
            );
            indices = keep.into_iter().map(|i| indices[i]).collect();
        }
        let batch = data.batch(&indices)?;
        let output = t.model.forward_t(&batch.x, true)?;
        let per_sample = objective.per_sample(task, &output, &batch.y)?;
        t.opt.backward_step(&per_sample.mean(0)?)?;
        device_sums.push(DeviceData::class_sums(&per_sample, &batch.classes, k)?);
        let mut c = vec![0u64; k];
        for &i in &indices {
            c[data.class_of(i)] += 1;
        }
        counts.push(c);
    }
    // One device read per epoch for all class-wise sums.
    let sums: Vec<Vec<f32>> = Tensor::stack(&device_sums, 0)?.to_vec2()?;
    Ok(EpochSums {
        sums: sums
            .into_iter()
            .map(|r| r.into_iter().map(f64::from).collect())
            .collect(),
        counts,
    })
}

/// The outcome of a run whose directory holds a checkpoint of all `epochs` epochs, read
/// back without training; `None` when the run is not finished there.
pub fn finished_run(dir: &Path, epochs: usize) -> Result<Option<TrainOutcome>> {
    let Some(state) = checkpoint::load_state(dir)? else {
        return Ok(None);
    };
    if state.epoch > epochs {
        return Err(EngineError::Checkpoint(format!(
            "{} holds {} epochs, more than the {epochs} configured",
            dir.display(),
            state.epoch
        )));
    }
    if state.epoch < epochs {
        return Ok(None);
    }
    let records = committed_records(dir, state.epoch)?;
    let info: RunInfo = read_json(&dir.join("run.json"))?;
    Ok(Some(TrainOutcome { records, info }))
}

/// The records of `dir` up to the committed epoch (a crash between writing the records
/// and committing the checkpoint can leave one more).
fn committed_records(dir: &Path, epoch: usize) -> Result<Vec<EpochRecord>> {
    let path = dir.join("records.jsonl");
    let mut records = read_records(&path)?;
    if records.len() < epoch {
        return Err(EngineError::Checkpoint(format!(
            "{} holds {} epochs, the checkpoint {epoch}",
            path.display(),
            records.len()
        )));
    }
    records.truncate(epoch);
    Ok(records)
}

/// Trains `cfg.model` on `data.train` with `strategy` for `cfg.epochs` epochs, evaluating
/// on `data.test` after each epoch.
///
/// The initial parameters depend only on `seed` (and the model), never on the strategy,
/// so every strategy of a seed starts from the same weights. Each epoch has
/// `floor(N / B)` optimiser steps whatever the strategy.
///
/// When `out` is given, records, run facts and a checkpoint are written there atomically
/// after every epoch, and a run that finds a checkpoint in `out` continues from it: on the
/// CPU its records are then exactly those of an uninterrupted run.
pub fn train_one(
    cfg: &ExperimentConfig,
    strategy: &StrategySpec,
    data: &LoadedData,
    seed: u64,
    out: Option<&Path>,
    observer: &mut dyn Observer,
) -> Result<TrainOutcome> {
    cfg.check_data(data)?;
    let name = strategy.name();
    if let Some(dir) = out
        && let Some(done) = finished_run(dir, cfg.epochs)?
    {
        observer.run_started(name, seed, cfg.epochs, cfg.epochs);
        observer.run_finished(name, seed);
        return Ok(done);
    }
    let resume = match out {
        Some(dir) => checkpoint::load_state(dir)?,
        None => None,
    };
    let device = select_device(cfg.device)?;
    let train = &data.train;
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
    let model_cfg = cfg.model_for(data)?;
    let mut notes = Vec::new();
    let train_set: ClassDataset = match strategy {
        StrategySpec::Smote { k: neighbours } => {
            let (balanced, report) = l2m_baselines::smote::smote(train, *neighbours, seed)
                .map_err(|e| EngineError::Config(format!("SMOTE: {e}")))?;
            notes.push(format!(
                "SMOTE ({:?}, k = {}) added {:?} samples per class",
                report.method, report.k, report.added_per_class
            ));
            balanced
        }
        _ => train.clone(),
    };
    let train_data = DeviceData::upload(&train_set, cfg.task, &device)?;
    let test_data = DeviceData::upload(&data.test, cfg.task, &device)?;
    let objective = match strategy {
        StrategySpec::Focal { gamma_focal } => {
            let w = l2m_baselines::inverse_frequency_weights(&train.class_sizes())
                .map_err(|e| EngineError::Config(e.to_string()))?;
            Objective::Focal(
                FocalLoss::new(*gamma_focal, &w, &device)
                    .map_err(|e| EngineError::Config(e.to_string()))?,
            )
        }
        _ => Objective::Task(cfg.task),
    };
    let mut importance_rng =
        matches!(strategy, StrategySpec::Importance).then(|| seeded_rng(seed, RngStream::Training));

    let mut t = fresh(cfg, &model_cfg, seed, &device)?;
    let init_checksum = parameter_checksum(&t.varmap)?;
    let mut policy: Box<dyn BatchPolicy> = match strategy {
        StrategySpec::Curriculum { .. } if resume.is_some() => {
            // The order comes from the checkpoint: no warm-up again.
            Box::new(CurriculumBatches {
                order: Vec::new(),
                batch_size: cfg.batch_size,
                epoch: 0,
                seed,
                sampler: None,
                alpha: train_set.alpha_star()?,
            })
        }
        StrategySpec::Curriculum { warmup_epochs } => {
            // Classical warm-up from the shared initial weights, then score every training
            // sample by 1 - p(y|x) and restart from the same initial weights.
            let mut warm = StrategySpec::Classical.policy(&train_set, cfg.batch_size, seed)?;
            for _ in 0..*warmup_epochs {
                train_epoch(
                    &mut t,
                    warm.as_mut(),
                    &train_data,
                    &objective,
                    cfg.task,
                    steps,
                    k,
                    None,
                )?;
            }
            let members = train_set.all_members();
            let difficulty =
                score_difficulty(&t.model, &train_data, &members, cfg.eval_batch_size)?;
            let order = l2m_baselines::curriculum::easy_to_hard(&difficulty);
            notes.push(format!(
                "curriculum: {warmup_epochs} classical warm-up epoch(s) before scoring"
            ));
            t = fresh(cfg, &model_cfg, seed, &device)?;
            Box::new(CurriculumBatches {
                order: order.into_iter().map(|i| members[i]).collect(),
                batch_size: cfg.batch_size,
                epoch: 0,
                seed,
                sampler: None,
                alpha: train_set.alpha_star()?,
            })
        }
        _ => strategy.policy(&train_set, cfg.batch_size, seed)?,
    };
    let mut for_rule = ClassLossAccumulator::new(k, strategy.estimator())?;
    let mut for_record = ClassLossAccumulator::new(k, Estimator::EpochMean)?;

    let mut info = RunInfo {
        strategy: name.to_string(),
        seed,
        model: model_cfg.clone(),
        parameters: parameter_count(&t.varmap),
        train_class_sizes: train.class_sizes(),
        test_class_sizes: data.test.class_sizes(),
        class_names: train.class_names().to_vec(),
        init_checksum,
        steps_per_epoch: steps,
        epochs_done: 0,
        final_alpha: policy.alpha().as_slice().to_vec(),
        notes: data.notes.iter().cloned().chain(notes).collect(),
        confusion: None,
    };
    let diverged = |epoch: usize, what: &str, value: f64| EngineError::Diverged {
        strategy: name.to_string(),
        seed,
        epoch,
        what: what.to_string(),
        value,
    };

    let mut records = Vec::with_capacity(cfg.epochs);
    if let (Some(dir), Some(state)) = (out, resume) {
        checkpoint::restore_tensors(dir, &state, &t.varmap, &mut t.opt, &device)?;
        policy.restore(state.policy)?;
        t.model.set_rng_counters(&state.model_rng)?;
        if importance_rng.is_some() {
            let saved = state.importance_rng.ok_or_else(|| {
                EngineError::Checkpoint(format!(
                    "{}: no importance sampler state",
                    dir.join(checkpoint::STATE_FILE).display()
                ))
            })?;
            importance_rng = Some(ChaCha8Rng::try_from(saved)?);
        }
        records = committed_records(dir, state.epoch)?;
        info.epochs_done = state.epoch;
        info.final_alpha = policy.alpha().as_slice().to_vec();
        tracing::info!(strategy = name, seed, epoch = state.epoch, "resuming");
    }
    let first = records.len() + 1;
    let mut last_sync = Instant::now();
    observer.run_started(name, seed, cfg.epochs, records.len());
    for epoch in first..=cfg.epochs {
        let started = Instant::now();
        let alpha = policy.alpha().as_slice().to_vec();
        let sums = train_epoch(
            &mut t,
            policy.as_mut(),
            &train_data,
            &objective,
            cfg.task,
            steps,
            k,
            importance_rng.as_mut(),
        )?;
        for_rule.reset();
        for_record.reset();
        for (row, counts) in sums.sums.iter().zip(&sums.counts) {
            if let Some(&bad) = row.iter().find(|v| !v.is_finite()) {
                return Err(diverged(epoch, "the training loss", bad));
            }
            for acc in [&mut for_rule, &mut for_record] {
                acc.begin_batch();
                acc.add_sums(row, counts)?;
            }
        }
        let train_estimate = for_record.estimate();
        policy.end_epoch(&for_rule.estimate())?;
        let train_seconds = started.elapsed().as_secs_f64();

        let eval_started = Instant::now();
        let last = epoch == cfg.epochs;
        let eval = evaluate(&t.model, &test_data, &data.test, cfg, last)?;
        let eval_seconds = eval_started.elapsed().as_secs_f64();
        let test_loss = eval.loss.overall();
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
            test_loss_per_class: eval.loss.losses,
            test_metric: eval.metric.overall(),
            test_metric_per_class: eval.metric.losses,
            alpha,
            train_seconds,
            eval_seconds,
        };
        observer.epoch_done(&record);
        records.push(record);
        info.epochs_done = epoch;
        info.final_alpha = policy.alpha().as_slice().to_vec();
        if last {
            info.confusion = eval.confusion;
        }
        if let Some(dir) = out {
            let state = CheckpointState {
                format: 0,
                epoch,
                tensors: String::new(),
                optimizer_steps: t.opt.steps(),
                policy: policy.save(),
                importance_rng: importance_rng.as_ref().map(RngState::from),
                model_rng: t.model.rng_counters(),
            };
            let sync = last || last_sync.elapsed().as_secs() >= 30 || observer.should_stop();
            checkpoint::save(dir, &t.varmap, &t.opt, state, sync, |sync| {
                write_records(dir, &records, train.class_names(), sync)?;
                write_json_with(&dir.join("run.json"), &info, sync)
            })?;
            if sync {
                last_sync = Instant::now();
            }
        }
        if observer.should_stop() && epoch < cfg.epochs {
            return Err(EngineError::Interrupted {
                strategy: name.to_string(),
                seed,
                epoch,
            });
        }
    }
    observer.run_finished(name, seed);
    Ok(TrainOutcome { records, info })
}

/// `1 - p(y | x)` of each member, in evaluation mode.
fn score_difficulty(
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
struct Evaluation {
    loss: ClassLossEstimate,
    metric: ClassLossEstimate,
    confusion: Option<Vec<Vec<u64>>>,
}

/// Mean test loss and metric per class, in evaluation mode, in chunks of
/// `eval_batch_size`.
fn evaluate(
    model: &BoxedModel,
    data: &DeviceData,
    test: &ClassDataset,
    cfg: &ExperimentConfig,
    with_confusion: bool,
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
    for chunk in members.chunks(cfg.eval_batch_size) {
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
    let read = |t: Option<Tensor>| -> Result<Vec<f64>> {
        Ok(match t {
            Some(t) => t.to_vec1::<f32>()?.into_iter().map(f64::from).collect(),
            None => vec![0.0; k],
        })
    };
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
    let confusion = match confusion {
        Some(t) => {
            let flat = t.to_vec1::<f32>()?;
            Some(
                flat.chunks(k)
                    .map(|r| r.iter().map(|&v| v as u64).collect())
                    .collect(),
            )
        }
        None => None,
    };
    Ok(Evaluation {
        loss: estimate(read(loss_sums)?)?,
        metric: estimate(read(metric_sums)?)?,
        confusion,
    })
}
