//! Training one strategy for one seed: [`train`], whose loop is the strategy's epochs,
//! the evaluation and the run hooks ([`crate::hooks`]) that checkpoint, resume, check the
//! ranks, watch coverage and save the final model.

use std::path::Path;
use std::time::Instant;

use l2m_core::{ClassLossAccumulator, Estimator};
use l2m_models::{parameter_checksum, parameter_count, select_device};

use crate::checkpoint::{self, finished_run};
use crate::config::LoadedData;
use crate::data::DeviceData;
use crate::epoch::{EpochInput, WarmUpContext, train_epoch};
use crate::eval::evaluate;
use crate::hooks::{Checkpoints, Coverage, Predictions, RankCheck, RunCtx, RunHook};
use crate::model::fresh;
use crate::observer::SilentObserver;
use crate::options::RunOptions;
use crate::strategy::Setup;
use crate::{
    EngineError, EpochRecord, ExperimentConfig, Result, RunInfo, StrategySpec, TrainOutcome,
};

pub use crate::model::{BuildModel, CustomModel};

/// Trains `cfg.model` (or the model of `opts`) on `data.train` with `spec` for
/// `cfg.epochs` epochs, evaluating on `data.test` after each epoch.
///
/// The initial parameters depend only on `seed` (and the model), never on the strategy,
/// so every strategy of a seed starts from the same weights. Each epoch has
/// `floor(N / B)` optimiser steps whatever the strategy.
///
/// When `out` is given, records, run facts and a checkpoint are written there atomically
/// after every epoch, and a run that finds a checkpoint in `out` continues from it: on the
/// CPU its records are then exactly those of an uninterrupted run.
///
/// With several ranks in `opts` ([`crate::collective`]) every rank calls it with the same
/// arguments; each trains on its part of every batch, gradients and class-wise loss sums
/// are summed across ranks, and only rank 0 writes to `out` (every rank resumes from it).
/// Strategies that weigh a batch by its composition (Group DRO) or choose samples by the
/// model's losses (importance sampling) are refused for more than one rank, as is a batch
/// smaller than the number of ranks.
pub fn train(
    cfg: &ExperimentConfig,
    spec: &StrategySpec,
    data: &LoadedData,
    seed: u64,
    out: Option<&Path>,
    opts: &mut RunOptions<'_>,
) -> Result<TrainOutcome> {
    cfg.check_data(data)?;
    let comm = opts.comm_ref();
    if comm.ranks() > 1 && cfg.batch_size < comm.ranks() {
        return Err(EngineError::Config(format!(
            "batch_size {} is smaller than the {} ranks: every rank needs a sample",
            cfg.batch_size,
            comm.ranks()
        )));
    }
    let own_model;
    let model = match opts.model_ref() {
        Some(m) => m,
        None => {
            own_model = cfg.model_for(data)?;
            &own_model
        }
    };
    let mut silent = SilentObserver;
    let observer = opts.observer_mut(&mut silent);
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
    let mut t = fresh(cfg, model, seed, &device)?;
    let init_checksum = parameter_checksum(&t.varmap)?;
    if resume.is_none() {
        strategy.warm_up(&mut WarmUpContext {
            cfg,
            model_cfg: model,
            seed,
            device: &device,
            t: &mut t,
            train: &train_set,
            input,
        })?;
    }
    let mut info = RunInfo {
        strategy: name.to_string(),
        seed,
        model: model.config(),
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
    // Only rank 0 writes; every rank reads. The hooks run in this order.
    let write_to = out.filter(|_| comm.rank() == 0);
    let mut hooks: Vec<Box<dyn RunHook + '_>> = vec![
        Box::new(Checkpoints::resume(out, resume)),
        Box::new(RankCheck),
        Box::new(Coverage::new(&train_set, cfg.batch_size)),
    ];
    if let Some(dir) = write_to {
        hooks.push(Box::new(Predictions {
            dir,
            data,
            test: &data.test,
            test_data: &test_data,
        }));
        // Last: the checkpoint commits what the hooks before it wrote.
        hooks.push(Box::new(Checkpoints::commit(dir, train.class_names())));
    }
    let mut records = Vec::new();
    let mut run = RunCtx {
        cfg,
        name,
        seed,
        device: &device,
        comm,
        t: &mut t,
        strategy: strategy.as_mut(),
        records: &mut records,
        info: &mut info,
        observer,
        epoch: 0,
    };
    run_epochs(&mut run, &mut hooks, &input, &test_data, data)?;
    Ok(TrainOutcome { records, info })
}

/// The loop: each epoch trains the strategy's batches, evaluates, makes the record, and
/// hands it to the hooks; a stop request ends the run after a committed epoch.
fn run_epochs(
    run: &mut RunCtx<'_>,
    hooks: &mut [Box<dyn RunHook + '_>],
    input: &EpochInput<'_>,
    test_data: &DeviceData,
    data: &LoadedData,
) -> Result<()> {
    for h in hooks.iter_mut() {
        h.start(run)?;
    }
    let (cfg, name, seed) = (run.cfg, run.name, run.seed);
    let diverged = |epoch: usize, what: &str, value: f64| EngineError::Diverged {
        strategy: name.to_string(),
        seed,
        epoch,
        what: what.to_string(),
        value,
    };
    let mut for_record = ClassLossAccumulator::new(input.k, Estimator::EpochMean)?;
    run.observer
        .run_started(name, seed, cfg.epochs, run.records.len());
    for epoch in run.records.len() + 1..=cfg.epochs {
        let started = Instant::now();
        let alpha = run.strategy.alpha().as_slice().to_vec();
        let loss_weights = run.strategy.loss_weights();
        let sums = train_epoch(run.t, run.strategy, input).map_err(|e| match e {
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
        let eval_started = Instant::now();
        let eval = evaluate(&run.t.model, test_data, &data.test, cfg, true, run.comm)?;
        let eval_seconds = eval_started.elapsed().as_secs_f64();
        let test_loss = eval.loss.overall();
        if !test_loss.is_finite() {
            return Err(diverged(epoch, "the test loss", test_loss));
        }
        let confusion = eval.confusion.as_deref();
        let worst = match cfg.task.direction() {
            l2m_core::convergence::Direction::HigherIsBetter => {
                eval.metric.losses.iter().copied().reduce(f64::min)
            }
            l2m_core::convergence::Direction::LowerIsBetter => {
                eval.metric.losses.iter().copied().reduce(f64::max)
            }
        };
        let mut record = EpochRecord {
            epoch,
            strategy: name.to_string(),
            seed,
            train_loss: train_estimate.overall(),
            train_loss_per_class: train_estimate.losses,
            train_samples_per_class: train_estimate.counts,
            test_loss,
            test_loss_per_class: eval.loss.losses,
            test_metric: eval.metric.overall(),
            test_worst_class: worst,
            test_balanced_accuracy: confusion.and_then(l2m_core::metrics::balanced_accuracy),
            test_macro_f1: confusion.and_then(l2m_core::metrics::macro_f1),
            test_metric_per_class: eval.metric.losses,
            alpha,
            loss_weights,
            train_distinct_per_class: sums.distinct,
            coverage_alarms: Vec::new(),
            train_seconds,
            eval_seconds,
        };
        run.epoch = epoch;
        for h in hooks.iter_mut() {
            h.inspect(run, &mut record)?;
        }
        run.observer.epoch_done(&record);
        run.records.push(record);
        run.info.epochs_done = epoch;
        run.info.final_alpha = run.strategy.alpha().as_slice().to_vec();
        run.info.final_loss_weights = run.strategy.loss_weights();
        if run.last() {
            run.info.confusion = eval.confusion;
        }
        for h in hooks.iter_mut() {
            h.commit(run)?;
        }
        if run.observer.should_stop() && epoch < cfg.epochs {
            return Err(EngineError::Interrupted {
                strategy: name.to_string(),
                seed,
                epoch,
            });
        }
    }
    run.observer.run_finished(name, seed);
    for h in hooks.iter_mut() {
        h.finish(run)?;
    }
    Ok(())
}
