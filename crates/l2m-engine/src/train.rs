//! The training loop: one strategy, one seed.

use std::path::Path;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use l2m_core::{ClassLossAccumulator, ClassLossEstimate, Estimator, RngStream, seeded_rng};
use l2m_data::ClassDataset;
use l2m_models::{
    BoxedModel, ModelConfig, parameter_checksum, parameter_count, perturb_parameters,
    seeded_var_builder, select_device,
};

use l2m_run::RunFiles;

use crate::checkpoint::{self, CheckpointState};
use crate::collective::{Collective, Solo, local_part};
use crate::compare::Observer;
use crate::config::LoadedData;
use crate::data::DeviceData;
use crate::optim::{Adam, AdamConfig};
use crate::record::{read_json, read_records, write_json_with, write_records};
use crate::strategy::{Evaluate, Setup, Strategy, WarmUp};
use crate::{EngineError, EpochRecord, ExperimentConfig, Result, RunInfo, StrategySpec, Task};

/// What one strategy-seed run produced.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// One record per epoch.
    pub records: Vec<EpochRecord>,
    /// Facts about the run.
    pub info: RunInfo,
}

pub(crate) struct Trainable {
    varmap: VarMap,
    pub(crate) model: BoxedModel,
    opt: Adam,
}

/// What the engine trains: one of the paper's models ([`ModelConfig`]) or a model the user
/// wrote. The engine creates the parameters through `vb` from a seeded generator, so every
/// strategy of a seed starts from the same weights whatever the model.
pub trait BuildModel {
    /// What `run.json` records as the model.
    fn config(&self) -> ModelConfig;
    /// A fresh model whose parameters are taken from `vb`; `seed` seeds its stochastic
    /// layers (dropout).
    fn build(&self, vb: VarBuilder, seed: u64) -> l2m_models::Result<BoxedModel>;
}

impl BuildModel for ModelConfig {
    fn config(&self) -> ModelConfig {
        self.clone()
    }

    fn build(&self, vb: VarBuilder, seed: u64) -> l2m_models::Result<BoxedModel> {
        ModelConfig::build(self, vb, seed)
    }
}

/// A model the user wrote, built by a closure from a [`VarBuilder`] (any Candle module
/// producing logits for classification or one value per sample for regression, made a
/// [`l2m_models::Model`]).
pub struct CustomModel<F> {
    /// What records and tables call it.
    pub name: String,
    /// Builds a fresh model.
    pub build: F,
}

impl<F> BuildModel for CustomModel<F>
where
    F: Fn(VarBuilder, u64) -> candle_core::Result<BoxedModel>,
{
    fn config(&self) -> ModelConfig {
        ModelConfig::Custom {
            name: self.name.clone(),
        }
    }

    fn build(&self, vb: VarBuilder, seed: u64) -> l2m_models::Result<BoxedModel> {
        Ok((self.build)(vb, seed)?)
    }
}

pub(crate) fn fresh(
    cfg: &ExperimentConfig,
    model: &dyn BuildModel,
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

/// Per-class training loss sums and sample counts of every step of one epoch.
struct EpochSums {
    sums: Vec<Vec<f64>>,
    counts: Vec<Vec<u64>>,
    /// Distinct samples of each class trained on during the epoch.
    distinct: Vec<u64>,
}

/// What one epoch needs besides the model and the strategy.
#[derive(Clone, Copy)]
struct EpochInput<'a> {
    cfg: &'a ExperimentConfig,
    data: &'a DeviceData,
    task: Task,
    steps: usize,
    k: usize,
    /// The process group; [`Solo`] for one process.
    comm: &'a dyn Collective,
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
fn train_epoch(
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
struct WarmUpContext<'a> {
    cfg: &'a ExperimentConfig,
    model_cfg: &'a dyn BuildModel,
    seed: u64,
    device: &'a Device,
    t: &'a mut Trainable,
    train: &'a ClassDataset,
    input: EpochInput<'a>,
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
        let mut classical = StrategySpec::parse("classical", 1.0)?.build(&setup)?;
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
    let info: RunInfo = read_json(&RunFiles::new(dir).info())?;
    Ok(Some(TrainOutcome { records, info }))
}

/// The records of `dir` up to the committed epoch (a crash between writing the records
/// and committing the checkpoint can leave one more).
fn committed_records(dir: &Path, epoch: usize) -> Result<Vec<EpochRecord>> {
    let path = RunFiles::new(dir).records_jsonl();
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
    spec: &StrategySpec,
    data: &LoadedData,
    seed: u64,
    out: Option<&Path>,
    observer: &mut dyn Observer,
) -> Result<TrainOutcome> {
    let model = cfg.model_for(data)?;
    train_with(cfg, &model, spec, data, seed, out, observer)
}

/// [`train_one`] with a model of the caller's (see [`CustomModel`]); `cfg.model` is not
/// used.
pub fn train_with(
    cfg: &ExperimentConfig,
    model: &dyn BuildModel,
    spec: &StrategySpec,
    data: &LoadedData,
    seed: u64,
    out: Option<&Path>,
    observer: &mut dyn Observer,
) -> Result<TrainOutcome> {
    train_data_parallel(cfg, model, spec, data, seed, out, observer, &Solo)
}

/// [`train_with`] as one rank of the process group `comm` (see [`crate::collective`]):
/// every rank calls it with the same arguments; each trains on its part of every batch,
/// gradients and class-wise loss sums are summed across ranks, and only rank 0 writes to
/// `out` (every rank resumes from it). With [`Solo`] it is [`train_with`], to the bit.
///
/// Strategies that weigh a batch by its composition (Group DRO) or choose samples by the
/// model's losses (importance sampling) are refused for more than one rank, as is a batch
/// smaller than the number of ranks.
#[allow(clippy::too_many_arguments)]
pub fn train_data_parallel(
    cfg: &ExperimentConfig,
    model: &dyn BuildModel,
    spec: &StrategySpec,
    data: &LoadedData,
    seed: u64,
    out: Option<&Path>,
    observer: &mut dyn Observer,
    comm: &dyn Collective,
) -> Result<TrainOutcome> {
    cfg.check_data(data)?;
    if comm.ranks() > 1 && cfg.batch_size < comm.ranks() {
        return Err(EngineError::Config(format!(
            "batch_size {} is smaller than the {} ranks: every rank needs a sample",
            cfg.batch_size,
            comm.ranks()
        )));
    }
    // Only rank 0 writes; every rank reads.
    let write_to = out.filter(|_| comm.rank() == 0);
    let name = spec.name();
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
        // "NAME/train" names the split, not a folder: said as a split.
        return Err(EngineError::Config(format!(
            "batch_size {} exceeds the {} training samples of {} (its training split); choose a batch of at most {} (-b)",
            cfg.batch_size,
            train.len(),
            train.name().trim_end_matches("/train"),
            train.len()
        )));
    }
    let model_cfg = model;
    let setup = Setup {
        train,
        task: cfg.task,
        batch_size: cfg.batch_size,
        steps_per_epoch: steps,
        seed,
        device: &device,
    };
    let mut strategy = spec.build(&setup)?;
    if comm.ranks() > 1 && !strategy.data_parallel() {
        return Err(EngineError::Config(format!(
            "strategy {name} cannot run data-parallel yet (it weighs or selects samples by \
             the whole batch); run it in one process"
        )));
    }
    let train_set = strategy.train_set().unwrap_or(train).clone();
    let train_data = DeviceData::upload(&train_set, cfg.task, &device)?;
    let test_data = DeviceData::upload(&data.test, cfg.task, &device)?;
    let input = EpochInput {
        cfg,
        data: &train_data,
        task: cfg.task,
        steps,
        k,
        comm,
    };

    let mut t = fresh(cfg, model_cfg, seed, &device)?;
    let init_checksum = parameter_checksum(&t.varmap)?;
    if resume.is_none() {
        strategy.warm_up(&mut WarmUpContext {
            cfg,
            model_cfg,
            seed,
            device: &device,
            t: &mut t,
            train: &train_set,
            input,
        })?;
    }
    let mut for_record = ClassLossAccumulator::new(k, Estimator::EpochMean)?;

    let mut info = RunInfo {
        strategy: name.to_string(),
        seed,
        model: model_cfg.config(),
        parameters: parameter_count(&t.varmap),
        train_class_sizes: train.class_sizes(),
        trained_class_sizes: if train_set.class_sizes() == train.class_sizes() {
            Vec::new()
        } else {
            train_set.class_sizes()
        },
        test_class_sizes: data.test.class_sizes(),
        class_names: train.class_names().to_vec(),
        init_checksum,
        steps_per_epoch: steps,
        epochs_done: 0,
        final_alpha: strategy.alpha().as_slice().to_vec(),
        final_loss_weights: strategy.loss_weights(),
        notes: data.notes.iter().cloned().chain(strategy.notes()).collect(),
        confusion: None,
        model_sha256: None,
    };
    let diverged = |epoch: usize, what: &str, value: f64| EngineError::Diverged {
        strategy: name.to_string(),
        seed,
        epoch,
        what: what.to_string(),
        value,
    };

    // Not `with_capacity(epochs)`: an absurd epoch count must not allocate up front.
    let mut records = Vec::new();
    if let (Some(dir), Some(state)) = (out, resume) {
        checkpoint::restore_tensors(dir, &state, &t.varmap, &mut t.opt, &device)?;
        strategy.restore(state.strategy)?;
        t.model.set_rng_counters(&state.model_rng)?;
        records = committed_records(dir, state.epoch)?;
        info.epochs_done = state.epoch;
        info.final_alpha = strategy.alpha().as_slice().to_vec();
        info.final_loss_weights = strategy.loss_weights();
        tracing::info!(strategy = name, seed, epoch = state.epoch, "resuming");
    }
    let first = records.len() + 1;
    let mut last_sync = Instant::now();
    // Coverage alarms: the first epoch's are warnings, later ones are counted and
    // summarised at the run's end (every one is in the records).
    let (mut alarm_epochs, mut alarm_total) = (0usize, 0usize);
    observer.run_started(name, seed, cfg.epochs, records.len());
    for epoch in first..=cfg.epochs {
        let started = Instant::now();
        let alpha = strategy.alpha().as_slice().to_vec();
        let loss_weights = strategy.loss_weights();
        let sums = train_epoch(&mut t, strategy.as_mut(), &input).map_err(|e| match e {
            EngineError::Diverged { what, value, .. } => diverged(epoch, &what, value),
            other => other,
        })?;
        for_record.reset();
        for (row, counts) in sums.sums.iter().zip(&sums.counts) {
            for_record.begin_batch();
            for_record.add_sums(row, counts)?;
        }
        let train_estimate = for_record.estimate();
        let train_seconds = started.elapsed().as_secs_f64();
        let coverage_alarms = if strategy.data_proportions() {
            Vec::new()
        } else {
            coverage_alarms(&train_set, &train_estimate.counts, &alpha, cfg.batch_size)
        };
        if !coverage_alarms.is_empty() {
            alarm_epochs += 1;
            alarm_total += coverage_alarms.len();
            for a in &coverage_alarms {
                tracing::debug!(strategy = name, seed, epoch, "coverage: {a}");
            }
        }

        let eval_started = Instant::now();
        let last = epoch == cfg.epochs;
        let eval = evaluate(&t.model, &test_data, &data.test, cfg, true, comm)?;
        let eval_seconds = eval_started.elapsed().as_secs_f64();
        let test_loss = eval.loss.overall();
        if !test_loss.is_finite() {
            return Err(diverged(epoch, "the test loss", test_loss));
        }
        let confusion = eval.confusion.as_deref();
        let test_worst_class = match cfg.task.direction() {
            l2m_core::convergence::Direction::HigherIsBetter => {
                eval.metric.losses.iter().copied().reduce(f64::min)
            }
            l2m_core::convergence::Direction::LowerIsBetter => {
                eval.metric.losses.iter().copied().reduce(f64::max)
            }
        };
        if comm.ranks() > 1 {
            let (a, b) = parameter_checksum(&t.varmap)?;
            let mut state = strategy.alpha().as_slice().to_vec();
            state.extend([a, b]);
            crate::collective::check_in_step(comm, &state, epoch)?;
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
            test_worst_class,
            test_balanced_accuracy: confusion.and_then(l2m_core::metrics::balanced_accuracy),
            test_macro_f1: confusion.and_then(l2m_core::metrics::macro_f1),
            test_metric_per_class: eval.metric.losses,
            alpha,
            loss_weights,
            train_distinct_per_class: sums.distinct,
            coverage_alarms,
            train_seconds,
            eval_seconds,
        };
        observer.epoch_done(&record);
        records.push(record);
        info.epochs_done = epoch;
        info.final_alpha = strategy.alpha().as_slice().to_vec();
        info.final_loss_weights = strategy.loss_weights();
        if last {
            info.confusion = eval.confusion.clone();
        }
        if let (true, Some(dir)) = (last, write_to) {
            // Before the checkpoint that marks the run finished: a finished run always
            // has its model (and, for the user's data, its predictions).
            info.model_sha256 = Some(crate::predict::save_model(&t.varmap, dir)?);
            if let Some(own) = &data.own {
                let csv = crate::predict::final_predictions(
                    &t.model,
                    &test_data,
                    &data.test,
                    &own.preprocessing,
                    &own.test_ids,
                    cfg.eval_batch_size,
                    cfg.task,
                )?;
                crate::write_atomic(&dir.join(crate::predict::PREDICTIONS_FILE), csv.as_bytes())?;
            }
        }
        if let Some(dir) = write_to {
            let state = CheckpointState {
                format: 0,
                epoch,
                tensors: String::new(),
                optimizer_steps: t.opt.steps(),
                strategy: strategy.save()?,
                policy: None,
                importance_rng: None,
                model_rng: t.model.rng_counters(),
                tensors_sha256: None,
                state_sha256: None,
            };
            let sync = last || last_sync.elapsed().as_secs() >= 30 || observer.should_stop();
            checkpoint::save(dir, &t.varmap, &t.opt, state, sync, |sync| {
                write_records(dir, &records, train.class_names(), sync)?;
                write_json_with(&RunFiles::new(dir).info(), &info, sync)
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
    if alarm_epochs > 0 {
        // One line per run; every alarm is in the records and the report.
        tracing::warn!(
            "coverage: {name}, seed {seed}: {alarm_total} alarm(s) in {alarm_epochs} of {} epochs (a class with no sample, or a proportion below one sample per batch; see records.jsonl and report.md)",
            cfg.epochs
        );
    }
    Ok(TrainOutcome { records, info })
}

/// What went unobserved in an epoch: a class with training data that got no sample, and a
/// class whose proportion was below one sample per batch.
/// (Not asked of strategies that draw the training set's own proportions.)
fn coverage_alarms(
    train: &ClassDataset,
    drawn: &[u64],
    alpha: &[f64],
    batch_size: usize,
) -> Vec<String> {
    let mut alarms = Vec::new();
    for (c, &size) in train.class_sizes().iter().enumerate() {
        if size == 0 {
            continue;
        }
        let name = train.class_names().get(c).map_or("?", String::as_str);
        if drawn.get(c) == Some(&0) {
            alarms.push(format!("class {name} got no sample this epoch"));
        }
        if let Some(&a) = alpha.get(c)
            && a * (batch_size as f64) < 1.0
        {
            alarms.push(format!(
                "class {name} had proportion {a:.5}, below one sample per batch of {batch_size}"
            ));
        }
    }
    alarms
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
