//! End-to-end tests of the training loop on a small Mean Estimation set.

use std::path::Path;

use l2m_data::synthetic::MeanEstimation;

use crate::*;

fn small(epochs: usize) -> ExperimentConfig {
    let mut cfg = preset("mean-estimation").expect("preset");
    cfg.dataset = DatasetSpec::MeanEstimation(MeanEstimation {
        train_counts: [100, 100, 80, 20],
        test_per_class: 50,
        draws: 10,
    });
    cfg.batch_size = 50;
    cfg.epochs = epochs;
    cfg.seeds = vec![7];
    cfg.optimizer.lr = 1e-3;
    cfg.set_gamma(0.5).expect("gamma");
    cfg
}

fn load(cfg: &ExperimentConfig, seed: u64) -> LoadedData {
    cfg.dataset
        .load(&cfg.data_dir, seed, cfg.limit)
        .expect("data")
}

fn run(cfg: &ExperimentConfig, strategy: &str, seed: u64) -> TrainOutcome {
    let data = load(cfg, seed);
    let spec = StrategySpec::parse(strategy)
        .and_then(|s| s.with_option_if_any("gamma", serde_json::json!(cfg.gamma().expect("gamma"))))
        .expect("strategy");
    train(cfg, &spec, &data, seed, None, &mut RunOptions::new()).expect("train")
}

fn without_time(mut records: Vec<EpochRecord>) -> Vec<EpochRecord> {
    for r in &mut records {
        r.train_seconds = 0.0;
        r.eval_seconds = 0.0;
    }
    records
}

#[test]
fn every_strategy_starts_from_the_same_weights_and_takes_the_same_steps() {
    let cfg = small(2);
    let l2m = run(&cfg, "learn2mix", 7);
    let cl = run(&cfg, "classical", 7);
    let st = run(&cfg, "stratified", 7);
    assert_eq!(l2m.info.init_checksum, cl.info.init_checksum);
    assert_eq!(l2m.info.init_checksum, st.info.init_checksum);
    assert_ne!(
        run(&cfg, "learn2mix", 8).info.init_checksum,
        l2m.info.init_checksum
    );
    // floor(300 / 50) = 6 steps of 50 samples, whatever the strategy.
    for o in [&l2m, &cl, &st] {
        assert_eq!(o.info.steps_per_epoch, 6);
        for r in &o.records {
            assert_eq!(r.train_samples_per_class.iter().sum::<u64>(), 300);
        }
    }
}

#[test]
fn same_seed_gives_the_same_numbers() {
    let cfg = small(3);
    let a = without_time(run(&cfg, "learn2mix", 7).records);
    let b = without_time(run(&cfg, "learn2mix", 7).records);
    assert_eq!(a, b);
    let c = without_time(run(&cfg, "learn2mix", 9).records);
    assert_ne!(a[2].test_loss, c[2].test_loss);
}

#[test]
fn learn2mix_moves_alpha_toward_the_hard_class_and_classical_does_not() {
    let cfg = small(3);
    let l2m = run(&cfg, "learn2mix", 7);
    let cl = run(&cfg, "classical", 7);
    let alpha_star = [100.0 / 300.0, 100.0 / 300.0, 80.0 / 300.0, 20.0 / 300.0];
    for (a, b) in l2m.records[0].alpha.iter().zip(alpha_star) {
        assert!((a - b).abs() < 1e-12, "learn2mix starts from alpha*");
    }
    // The uniform class (targets around 35) has by far the largest loss: its share grows,
    // exactly as the rule says given the recorded class-wise losses.
    let first = &l2m.records[0];
    let second = &l2m.records[1];
    assert!(second.alpha[3] > first.alpha[3] + 0.2, "{:?}", second.alpha);
    let total: f64 = first.train_loss_per_class.iter().sum();
    for i in 0..4 {
        let want = first.alpha[i] + 0.5 * (first.train_loss_per_class[i] / total - first.alpha[i]);
        assert!((second.alpha[i] - want).abs() < 1e-9, "class {i}");
    }
    // More uniform-class samples in the batches once alpha moved.
    assert!(second.train_samples_per_class[3] > first.train_samples_per_class[3]);
    for r in &cl.records {
        for (a, b) in r.alpha.iter().zip(alpha_star) {
            assert!((a - b).abs() < 1e-12);
        }
    }
}

#[test]
fn last_batch_estimator_is_an_option() {
    let cfg = small(2);
    let data = load(&cfg, 7);
    let spec = StrategySpec::learn2mix(Learn2MixOptions {
        estimator: l2m_core::Estimator::LastBatch,
        ..Learn2MixOptions::paper(0.5)
    })
    .expect("spec");
    let last = train(&cfg, &spec, &data, 7, None, &mut RunOptions::new()).expect("train");
    let mean = run(&cfg, "learn2mix", 7);
    // Same first epoch (same weights, same batches), different alpha after it.
    assert_eq!(last.records[0].train_loss, mean.records[0].train_loss);
    assert_ne!(last.records[1].alpha, mean.records[1].alpha);
}

#[test]
fn run_directory_holds_config_records_and_summary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = small(2);
    cfg.seeds = vec![1, 2];
    let run_dir = RunDir::create(dir.path().join("run")).expect("dir");
    let cmp = run_experiment(&cfg, &run_dir, &mut RunOptions::new()).expect("run");
    let root = run_dir.path();
    let config: ExperimentConfig =
        serde_json::from_slice(&std::fs::read(root.join("config.json")).expect("config"))
            .expect("parse");
    assert_eq!(config, cfg);
    for seed in [1, 2] {
        for s in ["learn2mix", "classical"] {
            let d = l2m_run::Layout::new(root).run(seed, s).dir().to_path_buf();
            let jsonl = std::fs::read_to_string(d.join("records.jsonl")).expect("jsonl");
            assert_eq!(jsonl.lines().count(), 2);
            let csv = std::fs::read_to_string(d.join("records.csv")).expect("csv");
            assert_eq!(csv.lines().count(), 3);
            let info: RunInfo =
                serde_json::from_slice(&std::fs::read(d.join("run.json")).expect("run.json"))
                    .expect("parse");
            assert_eq!(info.epochs_done, 2);
            assert_eq!(info.seed, seed);
        }
    }
    let summary: Comparison =
        serde_json::from_slice(&std::fs::read(root.join("summary.json")).expect("summary"))
            .expect("parse");
    assert_eq!(summary, cmp);
    assert_eq!(cmp.strategies.len(), 2);
    assert_eq!(cmp.strategies[0].final_test.n, 2);
    // Every strategy reaches the common target, by construction.
    assert!(cmp.strategies.iter().all(|s| s.epochs_to_target.is_some()));
}

#[test]
fn divergence_names_epoch_and_strategy_and_keeps_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = small(5);
    cfg.optimizer.lr = 1e30;
    let data = load(&cfg, 7);
    let spec = StrategySpec::parse("classical").expect("strategy");
    let e = train(
        &cfg,
        &spec,
        &data,
        7,
        Some(dir.path()),
        &mut RunOptions::new(),
    )
    .expect_err("diverges");
    let EngineError::Diverged {
        strategy, epoch, ..
    } = &e
    else {
        panic!("expected divergence, got {e}");
    };
    assert_eq!(strategy, "classical");
    assert!(
        e.to_string()
            .contains(&format!("at epoch {epoch} of strategy classical"))
    );
    if *epoch > 1 {
        let jsonl = std::fs::read_to_string(dir.path().join("records.jsonl")).expect("kept");
        assert_eq!(jsonl.lines().count(), epoch - 1);
    }
}

#[test]
fn batch_larger_than_the_training_set_is_a_clear_error() {
    let mut cfg = small(1);
    cfg.batch_size = 10_000;
    let data = load(&cfg, 7);
    let spec = StrategySpec::parse("classical").expect("strategy");
    let e = train(&cfg, &spec, &data, 7, None, &mut RunOptions::new()).expect_err("too big");
    assert!(
        e.to_string()
            .contains("batch_size 10000 exceeds the 300 training samples")
    );
}

/// The real MNIST files of `../shared/data` (CI has them); `None` elsewhere.
fn shared_data() -> Option<std::path::PathBuf> {
    let p = std::env::var_os("L2M_SHARED_DATA")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    p.join("mnist").is_dir().then_some(p)
}

/// LeNet-5 on 60 real MNIST images per class, 2 epochs of batch 100 (when the shared
/// datasets are there).
fn small_mnist() -> Option<ExperimentConfig> {
    let mut cfg = preset("mnist").expect("preset");
    cfg.data_dir = shared_data()?;
    cfg.limit = Some(60);
    cfg.batch_size = 100;
    cfg.epochs = 2;
    cfg.seeds = vec![0];
    cfg.optimizer.lr = 1e-3;
    Some(cfg)
}

#[test]
fn every_classification_strategy_trains_lenet5_on_real_mnist_from_the_same_weights() {
    let Some(cfg) = small_mnist() else {
        return;
    };
    let data = load(&cfg, 0);
    assert_eq!(data.train.class_sizes(), vec![60; 10]);
    let mut checksums = Vec::new();
    for name in strategy_names().into_iter().filter(|n| *n != "stratified") {
        let spec = StrategySpec::parse(name).expect("strategy");
        let o = train(&cfg, &spec, &data, 0, None, &mut RunOptions::new()).expect(name);
        checksums.push(o.info.init_checksum);
        assert_eq!(o.records.len(), 2, "{name}");
        let last = &o.records[1];
        assert!(
            (0.0..=1.0).contains(&last.test_metric),
            "{name}: accuracy {}",
            last.test_metric
        );
        // Curriculum trains on the easiest half as judged by a barely warmed-up model
        // (mostly a few classes), so two tiny epochs prove nothing about its accuracy; its
        // pacing is tested in strategy.rs.
        assert!(
            name == "curriculum" || last.test_metric > 0.15,
            "{name} learns something: {} (drawn {:?}, test per class {:?})",
            last.test_metric,
            last.train_samples_per_class,
            last.test_metric_per_class
        );
        let confusion = o.info.confusion.as_ref().expect("confusion matrix");
        assert_eq!(confusion.iter().flatten().sum::<u64>(), 600);
        let correct: u64 = (0..10).map(|i| confusion[i][i]).sum();
        assert!(
            (correct as f64 / 600.0 - last.test_metric).abs() < 1e-9,
            "{name}"
        );
        // Same number of optimiser steps for everyone; importance trains on half of each batch.
        let drawn: u64 = last.train_samples_per_class.iter().sum();
        assert_eq!(
            drawn,
            if name == "importance" { 300 } else { 600 },
            "{name}"
        );
    }
    assert!(
        checksums.windows(2).all(|w| w[0] == w[1]),
        "same initial weights"
    );
}

#[test]
fn smote_balances_and_focal_changes_the_objective() {
    let Some(data_dir) = shared_data() else {
        return;
    };
    let mut cfg = preset("mnist").expect("preset");
    cfg.data_dir = data_dir;
    cfg.limit = Some(40);
    cfg.dataset = DatasetSpec::Paper {
        dataset: l2m_data::paper::PaperDataset::Mnist,
        pixels: l2m_data::paper::PixelUse::Classification,
        imbalance: Imbalance::Factors {
            keep: (0..10).map(|c| if c < 5 { 1.0 } else { 0.25 }).collect(),
        },
    };
    cfg.batch_size = 50;
    cfg.epochs = 1;
    let data = load(&cfg, 0);
    let smote = train(
        &cfg,
        &StrategySpec::parse("smote").expect("smote"),
        &data,
        0,
        None,
        &mut RunOptions::new(),
    )
    .expect("smote");
    assert!(
        smote
            .info
            .notes
            .iter()
            .any(|n| n.contains("SMOTE (Interpolation, k = 5)")),
        "{:?}",
        smote.info.notes
    );
    // Batches come from the balanced set: the small classes are drawn far more than 1/4.
    let drawn = &smote.records[0].train_samples_per_class;
    let small: u64 = drawn[5..].iter().sum();
    assert!(
        small as f64 / drawn.iter().sum::<u64>() as f64 > 0.35,
        "{drawn:?}"
    );
    let cl = train(
        &cfg,
        &StrategySpec::parse("classical").expect("classical"),
        &data,
        0,
        None,
        &mut RunOptions::new(),
    )
    .expect("classical");
    let focal = train(
        &cfg,
        &StrategySpec::parse("focal").expect("focal"),
        &data,
        0,
        None,
        &mut RunOptions::new(),
    )
    .expect("focal");
    assert_ne!(
        cl.records[0].train_loss, focal.records[0].train_loss,
        "focal trains on another loss"
    );
}

#[test]
fn reconstruction_runs_and_reports_mse() {
    let Some(data_dir) = shared_data() else {
        return;
    };
    let mut cfg = preset("mnist-reconstruction").expect("preset");
    cfg.data_dir = data_dir;
    cfg.limit = Some(30);
    cfg.batch_size = 60;
    cfg.epochs = 2;
    let l2m = run(&cfg, "learn2mix", 0);
    let r = &l2m.records[1];
    assert_eq!(r.test_metric, r.test_loss, "the metric is the MSE");
    assert!(r.test_loss > 0.0 && r.test_loss < 0.3, "{}", r.test_loss);
    assert!(l2m.info.confusion.is_none());
}

#[test]
fn report_has_the_paper_tables_and_a_verdict() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = small(8);
    cfg.seeds = vec![1, 2, 3];
    let run_dir = RunDir::create(dir.path().join("run")).expect("dir");
    run_experiment(&cfg, &run_dir, &mut RunOptions::new()).expect("run");
    let text = report::write_report(run_dir.path()).expect("report");
    assert_eq!(
        std::fs::read_to_string(run_dir.path().join("report.md")).expect("written"),
        text
    );
    assert!(
        text.contains("| strategy | epoch 2 (25%) | epoch 4 (50%) | epoch 8 (100%) | seeds |"),
        "{text}"
    );
    assert!(
        text.contains("| learn2mix | ") && text.contains("| classical | "),
        "{text}"
    );
    assert!(text.contains("Target: test MSE <="), "{text}");
    assert!(
        text.contains("## Verdict") && text.contains("paired over seeds"),
        "{text}"
    );
    // The table's numbers are the records' numbers.
    let last: Vec<f64> = cfg
        .seeds
        .iter()
        .map(|seed| {
            let p = l2m_run::Layout::new(run_dir.path())
                .run(*seed, "learn2mix")
                .records_jsonl();
            record::read_records(&p).expect("records")[7].test_metric
        })
        .collect();
    let mean = last.iter().sum::<f64>() / 3.0;
    let row = text
        .lines()
        .find(|l| l.starts_with("| learn2mix | "))
        .expect("row");
    assert!(row.contains(&format!("{mean:.4}")), "{row} vs {mean}");

    // Plots, PNG and SVG, referenced by the report (where a font exists, as here and on CI).
    if text.contains("## Plots") {
        for stem in ["test_metric", "alpha", "per_class"] {
            let png = std::fs::read(run_dir.path().join(format!("{stem}.png"))).expect("png");
            assert_eq!(&png[1..4], b"PNG", "{stem}.png is a PNG");
            let svg =
                std::fs::read_to_string(run_dir.path().join(format!("{stem}.svg"))).expect("svg");
            assert!(svg.contains("<svg"), "{stem}.svg");
            // Legends name the strategies (the alpha plot names classes instead).
            assert!(stem == "alpha" || svg.contains("learn2mix"), "{stem}.svg");
        }
        assert!(text.contains("![Test metric per epoch"));
    } else {
        assert!(
            text.contains("No plots: no TrueType font was found"),
            "{text}"
        );
    }

    // An interrupted run: one strategy of one seed lost its last epochs.
    let rec = run_dir.path().join("seed-3/classical/records.jsonl");
    let kept: Vec<String> = std::fs::read_to_string(&rec)
        .expect("read")
        .lines()
        .take(5)
        .map(String::from)
        .collect();
    std::fs::write(&rec, kept.join("\n") + "\n").expect("truncate");
    let text = report::write_report(run_dir.path()).expect("report");
    assert!(text.contains("Only 5 of 8 epochs are complete"), "{text}");
}

/// A small image classification set shaped like CIFAR-10 (3 x 32 x 32 pixels), each
/// class brighter in its own channel, so a LeNet-CIFAR (with dropout) learns something.
fn tiny_images(seed: u64) -> LoadedData {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut make = |name: &str, per_class: &[usize]| {
        let mut data = Vec::new();
        let mut classes = Vec::new();
        for (c, &n) in per_class.iter().enumerate() {
            for _ in 0..n {
                for ch in 0..3 {
                    let base = if ch == c % 3 { 140u8 } else { 60 };
                    data.extend((0..1024).map(|_| base.saturating_add(rng.random_range(0..80))));
                }
                classes.push(c as u32);
            }
        }
        ClassDataset::new(
            name,
            l2m_data::Features::Pixels {
                data,
                mean: vec![0.5; 3],
                std: vec![0.25; 3],
            },
            vec![3, 32, 32],
            l2m_data::Targets::Classes,
            classes,
            (0..per_class.len()).map(|c| format!("c{c}")).collect(),
        )
        .expect("dataset")
    };
    LoadedData {
        train: make("tiny-train", &[40, 30, 20, 10]),
        test: make("tiny-test", &[10, 10, 10, 10]),
        notes: Vec::new(),
        vocab: None,
        own: None,
    }
}

/// Stops the run after `after` epochs, as Ctrl-C does.
struct StopAfter {
    after: usize,
    seen: usize,
}

impl Observer for StopAfter {
    fn epoch_done(&mut self, _record: &EpochRecord) {
        self.seen += 1;
    }
    fn should_stop(&self) -> bool {
        self.seen >= self.after
    }
}

#[test]
fn an_interrupted_run_resumes_to_exactly_the_uninterrupted_records() {
    let mut cfg = preset("cifar10").expect("preset");
    cfg.batch_size = 20;
    cfg.eval_batch_size = 40;
    cfg.epochs = 4;
    cfg.optimizer.lr = 1e-3;
    cfg.set_gamma(0.5).expect("gamma");
    let data = tiny_images(3);
    for name in [
        "learn2mix",
        "classical",
        "importance",
        "curriculum",
        "focal",
        "balanced",
        "group-dro",
        // A period of 3 steps straddles the epochs of 5 steps: the checkpoint holds the
        // pending losses and the EMA.
        "learn2mix:update_every=3:ema=0.5:rule=eg:eta=0.5:floor=0.05",
        "learn2mix:loss_source=held-out:0.2:update_every=2",
    ] {
        let spec = StrategySpec::parse_item(name)
            .and_then(|s| s.with_option_if_any("gamma", serde_json::json!(0.5)))
            .expect("strategy");
        let straight_dir = tempfile::tempdir().expect("tempdir");
        let straight = train(
            &cfg,
            &spec,
            &data,
            3,
            Some(straight_dir.path()),
            &mut RunOptions::new(),
        )
        .expect(name);

        let dir = tempfile::tempdir().expect("tempdir");
        let mut stop = StopAfter { after: 2, seen: 0 };
        let e = train(
            &cfg,
            &spec,
            &data,
            3,
            Some(dir.path()),
            &mut RunOptions::new().observer(&mut stop),
        )
        .expect_err("interrupted");
        assert!(
            matches!(e, EngineError::Interrupted { epoch: 2, .. }),
            "{name}: {e}"
        );
        // A crash after the records of epoch 3 were written but before its checkpoint was
        // committed leaves one record too many: resuming must ignore it.
        let jsonl = dir.path().join("records.jsonl");
        let mut text = std::fs::read_to_string(&jsonl).expect("records");
        let last = text.lines().last().expect("a record").to_string();
        text.push_str(&last.replace("\"epoch\":2", "\"epoch\":3"));
        text.push('\n');
        std::fs::write(&jsonl, text).expect("write");

        let resumed = train(
            &cfg,
            &spec,
            &data,
            3,
            Some(dir.path()),
            &mut RunOptions::new(),
        )
        .expect(name);
        assert_eq!(
            without_time(resumed.records.clone()),
            without_time(straight.records.clone()),
            "{name}: the resumed curve equals the uninterrupted one"
        );
        assert_eq!(
            resumed.info.final_alpha, straight.info.final_alpha,
            "{name}"
        );
        assert_eq!(resumed.info.confusion, straight.info.confusion, "{name}");
        // Only the last two checkpoints' tensors are kept (the previous is the fallback),
        // besides the trained model.
        let mut tensors: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".safetensors"))
            .collect();
        tensors.sort();
        assert_eq!(
            tensors,
            [
                "checkpoint-e3.safetensors",
                "checkpoint-e4.safetensors",
                "model.safetensors"
            ],
            "{name}"
        );
        // A finished run is read back, not trained again.
        let again = train(
            &cfg,
            &spec,
            &data,
            3,
            Some(dir.path()),
            &mut RunOptions::new(),
        )
        .expect(name);
        assert_eq!(again.records, resumed.records, "{name}");
    }
}

#[test]
fn learn2mix_moves_alpha_in_this_tiny_set_so_resuming_it_means_something() {
    let mut cfg = preset("cifar10").expect("preset");
    cfg.batch_size = 20;
    cfg.epochs = 2;
    cfg.set_gamma(0.5).expect("gamma");
    let data = tiny_images(3);
    let spec = StrategySpec::parse("learn2mix")
        .and_then(|s| s.with_option_if_any("gamma", serde_json::json!(0.5)))
        .expect("strategy");
    let o = train(&cfg, &spec, &data, 3, None, &mut RunOptions::new()).expect("train");
    assert_ne!(o.records[0].alpha, o.records[1].alpha);
}

/// A flipped bit in the last checkpoint's tensors, or an edited `checkpoint.json`, is
/// refused by its checksum, and the run resumes from the previous checkpoint to exactly the
/// uninterrupted records; when both are damaged, the error says to start over.
#[test]
fn a_corrupt_or_edited_checkpoint_falls_back_to_the_previous_one() {
    let cfg = small(4);
    let data = load(&cfg, 7);
    let spec = StrategySpec::parse("learn2mix")
        .and_then(|s| s.with_option_if_any("gamma", serde_json::json!(0.5)))
        .expect("strategy");
    let straight = train(&cfg, &spec, &data, 7, None, &mut RunOptions::new()).expect("straight");
    let interrupted = |after: usize| {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut stop = StopAfter { after, seen: 0 };
        train(
            &cfg,
            &spec,
            &data,
            7,
            Some(dir.path()),
            &mut RunOptions::new().observer(&mut stop),
        )
        .expect_err("stopped");
        dir
    };
    let resume = |dir: &Path| train(&cfg, &spec, &data, 7, Some(dir), &mut RunOptions::new());

    // A flipped bit in the tensors of epoch 3.
    let dir = interrupted(3);
    let tensors = dir.path().join("checkpoint-e3.safetensors");
    let mut bytes = std::fs::read(&tensors).expect("read");
    let at = bytes.len() - 5;
    bytes[at] ^= 0x10;
    std::fs::write(&tensors, bytes).expect("write");
    let resumed = resume(dir.path()).expect("resumes from epoch 2");
    assert_eq!(
        without_time(resumed.records),
        without_time(straight.records.clone())
    );

    // A hand-edited state (the epoch), with its tensors intact.
    let dir = interrupted(3);
    let state = dir.path().join("checkpoint.json");
    let text = std::fs::read_to_string(&state).expect("read");
    std::fs::write(&state, text.replace("\"epoch\": 3", "\"epoch\": 4")).expect("write");
    let resumed = resume(dir.path()).expect("resumes from epoch 2");
    assert_eq!(
        without_time(resumed.records),
        without_time(straight.records.clone())
    );

    // Both damaged: a clear error naming the files.
    let dir = interrupted(3);
    std::fs::write(dir.path().join("checkpoint-e2.safetensors"), b"x").expect("write");
    std::fs::write(dir.path().join("checkpoint.json"), b"{}").expect("write");
    let e = resume(dir.path()).expect_err("both damaged").to_string();
    assert!(
        e.contains("checkpoint.json")
            && e.contains("checkpoint-e2.safetensors")
            && e.contains("start this run over"),
        "{e}"
    );
}

#[test]
fn a_damaged_or_foreign_checkpoint_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = small(3);
    let data = load(&cfg, 7);
    let spec = StrategySpec::parse("learn2mix")
        .and_then(|s| s.with_option_if_any("gamma", serde_json::json!(0.5)))
        .expect("strategy");
    let mut stop = StopAfter { after: 1, seen: 0 };
    train(
        &cfg,
        &spec,
        &data,
        7,
        Some(dir.path()),
        &mut RunOptions::new().observer(&mut stop),
    )
    .expect_err("stopped");
    // Another strategy's run cannot continue this checkpoint.
    let classical = StrategySpec::parse("classical").expect("strategy");
    let e = train(
        &cfg,
        &classical,
        &data,
        7,
        Some(dir.path()),
        &mut RunOptions::new(),
    )
    .expect_err("foreign");
    assert!(e.to_string().contains("cannot resume"), "{e}");
    // A truncated tensor file names itself.
    let tensors = dir.path().join("checkpoint-e1.safetensors");
    std::fs::write(&tensors, b"not a safetensors file").expect("write");
    let e = train(
        &cfg,
        &spec,
        &data,
        7,
        Some(dir.path()),
        &mut RunOptions::new(),
    )
    .expect_err("damaged");
    assert!(e.to_string().contains("checkpoint-e1.safetensors"), "{e}");
    // A run directory holding another configuration is refused by name.
    let root = tempfile::tempdir().expect("tempdir");
    let run_dir = RunDir::create(root.path()).expect("dir");
    run_experiment(&small(1), &run_dir, &mut RunOptions::new()).expect("first");
    let mut other = small(1);
    other.batch_size = 60;
    let e = run_experiment(&other, &run_dir, &mut RunOptions::new()).expect_err("other config");
    assert!(
        e.to_string().contains("batch_size is 50 there, 60 now"),
        "{e}"
    );
}

/// The CPU kernels add gradient sums in fixed chunks of samples, so the number of threads
/// never changes a number: LeNet-CIFAR (convolution blocks, linear layers, dropout) with
/// batches of 50 (several chunks) gives the same records on 1 and 3 threads.
#[test]
fn the_thread_count_changes_no_number() {
    let mut cfg = preset("cifar10").expect("preset");
    cfg.batch_size = 50;
    cfg.eval_batch_size = 40;
    cfg.epochs = 2;
    cfg.optimizer.lr = 1e-3;
    let data = tiny_images(5);
    let spec = StrategySpec::parse("learn2mix")
        .and_then(|s| s.with_option_if_any("gamma", serde_json::json!(0.5)))
        .expect("strategy");
    let on = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool")
            .install(|| train(&cfg, &spec, &data, 1, None, &mut RunOptions::new()))
            .expect("run")
    };
    let (one, three) = (on(1), on(3));
    assert_eq!(without_time(one.records), without_time(three.records));
}

#[test]
fn init_noise_and_weight_decay_change_the_run_and_are_shared_by_the_strategies() {
    let plain = small(2);
    let mut noisy = small(2);
    noisy.init_noise = Some(0.05);
    let (a, b) = (run(&plain, "learn2mix", 7), run(&noisy, "learn2mix", 7));
    assert_ne!(a.info.init_checksum, b.info.init_checksum);
    // Every strategy of a seed starts from the same perturbed weights, and the
    // perturbation depends on the seed.
    assert_eq!(
        b.info.init_checksum,
        run(&noisy, "classical", 7).info.init_checksum
    );
    assert_ne!(
        run(&noisy, "learn2mix", 8).info.init_checksum,
        run(&plain, "learn2mix", 8).info.init_checksum
    );
    // The sum of squares grows by about n * 0.05^2 (n = 10*64 + 64 + 64 + 1 parameters).
    let n = (10 * 64 + 64 + 64 + 1) as f64;
    let grew = b.info.init_checksum.1 - a.info.init_checksum.1;
    assert!((grew - n * 0.0025).abs() < 0.4 * n * 0.0025, "{grew}");
    let mut decayed = small(2);
    decayed.optimizer.weight_decay = 0.5;
    let c = run(&decayed, "learn2mix", 7);
    assert_eq!(c.info.init_checksum, a.info.init_checksum);
    assert_ne!(
        without_time(c.records),
        without_time(run(&plain, "learn2mix", 7).records)
    );
}

/// FNV-1a over the bits of every number of the records (times excluded): equal
/// fingerprints mean equal curves, alphas and per-class values, bit for bit.
fn fingerprint(records: &[EpochRecord]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |v: f64| {
        for b in v.to_bits().to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for r in records {
        eat(r.train_loss);
        eat(r.test_loss);
        eat(r.test_metric);
        for v in r
            .train_loss_per_class
            .iter()
            .chain(&r.test_loss_per_class)
            .chain(&r.test_metric_per_class)
            .chain(&r.alpha)
        {
            eat(*v);
        }
        for &c in &r.train_samples_per_class {
            eat(c as f64);
        }
    }
    h
}

/// The curves of every strategy, fixed when the strategies were first written: a
/// refactoring of the loop or of a strategy must leave them bit for bit as they are on
/// this CPU. `L2M_BLESS=1` records missing entries (never changes existing ones).
#[test]
fn every_strategy_s_curves_are_unchanged_bit_for_bit() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/golden_curves.txt");
    let known: std::collections::BTreeMap<String, String> = std::fs::read_to_string(&path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut seen = Vec::new();
    // Regression: the small Mean Estimation set, Table 3's and the authors' settings.
    let cfg = small(3);
    let data = load(&cfg, 7);
    let mut authors = small(3);
    authors.strategies = preset_variant("mean-estimation", Variant::Authors)
        .expect("variant")
        .strategies;
    authors.set_gamma(0.5).expect("gamma");
    authors.init_noise = Some(0.05);
    authors.optimizer.weight_decay = 0.01;
    for (tag, cfg, names) in [
        (
            "mean",
            &cfg,
            &["learn2mix", "classical", "stratified", "importance"][..],
        ),
        ("mean-authors", &authors, &[][..]),
    ] {
        let specs: Vec<StrategySpec> = if names.is_empty() {
            cfg.strategies.clone()
        } else {
            names
                .iter()
                .map(|n| {
                    StrategySpec::parse(n)
                        .and_then(|s| s.with_option_if_any("gamma", serde_json::json!(0.5)))
                        .expect("strategy")
                })
                .collect()
        };
        for spec in specs {
            let o = train(cfg, &spec, &data, 7, None, &mut RunOptions::new()).expect("train");
            seen.push((format!("{tag}/{}", spec.name()), fingerprint(&o.records)));
        }
    }
    // Classification: tiny images on LeNet-CIFAR (dropout), every strategy.
    let mut img = preset("cifar10").expect("preset");
    img.batch_size = 20;
    img.eval_batch_size = 40;
    img.epochs = 3;
    img.optimizer.lr = 1e-3;
    img.set_gamma(0.5).expect("gamma");
    let data = tiny_images(3);
    // The AVX-512 kernels sum in another order: their own entries.
    let images = match (l2m_models::cpu_convolution(), l2m_models::cpu_matmul()) {
        ("im2col", "gemm-crate") => "images".to_string(),
        (conv, matmul) => format!("images@{conv}+{matmul}"),
    };
    for name in strategy_names() {
        let spec = StrategySpec::parse(name)
            .and_then(|s| s.with_option_if_any("gamma", serde_json::json!(0.5)))
            .expect("strategy");
        let o = train(&img, &spec, &data, 3, None, &mut RunOptions::new()).expect("train");
        seen.push((format!("{images}/{name}"), fingerprint(&o.records)));
    }
    let mut missing = Vec::new();
    for (key, fp) in &seen {
        let fp = format!("{fp:016x}");
        match known.get(key) {
            Some(k) => assert_eq!(k, &fp, "{key}: the curves changed"),
            None => missing.push(format!("{key} {fp}")),
        }
    }
    if !missing.is_empty() {
        if std::env::var_os("L2M_BLESS").is_some() {
            let mut text = std::fs::read_to_string(&path).unwrap_or_default();
            for m in &missing {
                text.push_str(m);
                text.push('\n');
            }
            std::fs::write(&path, text).expect("write golden curves");
        } else {
            panic!(
                "no fingerprint for {missing:?} in {}: record them with L2M_BLESS=1",
                path.display()
            );
        }
    }
}

/// The table (`summary.json`, returned by `run_experiment`) and the report come from one
/// statistics model: the same reference, target, epochs and paired differences, also when
/// learn2mix is not the first strategy configured.
#[test]
fn summary_and_report_agree_and_learn2mix_is_the_reference() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = small(4);
    cfg.seeds = vec![1, 2];
    cfg.strategies = ["classical", "learn2mix", "balanced"]
        .iter()
        .map(|n| {
            StrategySpec::parse(n)
                .and_then(|s| s.with_option_if_any("gamma", serde_json::json!(0.5)))
                .expect("strategy")
        })
        .collect();
    let run_dir = RunDir::create(dir.path().join("run")).expect("dir");
    let c = run_experiment(&cfg, &run_dir, &mut RunOptions::new()).expect("run");
    assert_eq!(c.reference, "learn2mix");
    let (_, again) = report::load_run(run_dir.path()).expect("load");
    assert_eq!(again, c, "the report's comparison is the table's");
    let text = report::write_report(run_dir.path()).expect("report");
    assert!(
        text.contains("## Coverage") && text.contains("| alarms |"),
        "{text}"
    );
    assert!(
        text.contains("## The worst class") && text.contains("worst-class MSE"),
        "{text}"
    );
    assert!(text.contains("training seconds to the target"), "{text}");
    let d = c.strategies[0]
        .final_minus_reference
        .expect("classical minus learn2mix");
    assert!(
        text.contains(&format!(
            "classical minus learn2mix, paired over seeds: {:+.4} ± {:.4}",
            d.mean, d.ci95
        )),
        "{text}"
    );
}

/// Updating every `steps per epoch` steps is the per-epoch rule, bit for bit, through the
/// whole loop (per-step device reads included).
#[test]
fn updating_every_epoch_s_steps_is_the_epoch_rule() {
    let cfg = small(4);
    let data = load(&cfg, 7);
    let steps = data.train.len() / cfg.batch_size;
    let per_epoch = run(&cfg, "learn2mix", 7);
    let spec = StrategySpec::parse_item(&format!("learn2mix:update_every={steps}"))
        .and_then(|s| s.with_option_if_any("gamma", serde_json::json!(0.5)))
        .expect("spec");
    let per_steps = train(&cfg, &spec, &data, 7, None, &mut RunOptions::new()).expect("train");
    let strip = |o: TrainOutcome| {
        without_time(o.records)
            .into_iter()
            .map(|mut r| {
                r.strategy.clear();
                r
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(per_epoch), strip(per_steps));
    // A shorter period moves alpha differently.
    let every2 = StrategySpec::parse_item("learn2mix:update_every=2")
        .and_then(|s| s.with_option_if_any("gamma", serde_json::json!(0.5)))
        .expect("spec");
    let o = train(&cfg, &every2, &data, 7, None, &mut RunOptions::new()).expect("train");
    assert_ne!(
        o.records[1].alpha,
        run(&cfg, "learn2mix", 7).records[1].alpha
    );
}

/// A held-out loss source trains on the rest only, and its proportions follow the held-out
/// losses.
#[test]
fn a_held_out_loss_source_is_not_trained_on() {
    let cfg = small(3);
    let data = load(&cfg, 7);
    let spec = StrategySpec::parse_item("learn2mix:loss_source=held-out:0.25")
        .and_then(|s| s.with_option_if_any("gamma", serde_json::json!(0.5)))
        .expect("spec");
    let o = train(&cfg, &spec, &data, 7, None, &mut RunOptions::new()).expect("train");
    let note = o
        .info
        .notes
        .iter()
        .find(|n| n.contains("held out"))
        .expect("a note says what was held out");
    // 25% of 100, 100, 80, 20.
    assert!(note.contains("[25, 25, 20, 5]"), "{note}");
    assert_ne!(o.records[2].alpha, o.records[0].alpha, "alpha moved");
    assert_ne!(
        without_time(o.records.clone()),
        without_time(run(&cfg, "learn2mix", 7).records)
    );
}

/// Every epoch records the worst class's metric, and for classification the balanced
/// accuracy and macro-F1 from that epoch's confusion matrix.
#[test]
fn records_carry_imbalance_aware_metrics() {
    let cfg = small(2);
    let o = run(&cfg, "learn2mix", 7);
    for r in &o.records {
        let worst = r
            .test_metric_per_class
            .iter()
            .copied()
            .fold(f64::MIN, f64::max);
        assert_eq!(
            r.test_worst_class,
            Some(worst),
            "regression: the highest MSE"
        );
        assert!(r.test_balanced_accuracy.is_none() && r.test_macro_f1.is_none());
    }
    let mut img = preset("cifar10").expect("preset");
    img.batch_size = 20;
    img.eval_batch_size = 40;
    img.epochs = 2;
    img.optimizer.lr = 1e-3;
    let data = tiny_images(3);
    let spec = StrategySpec::parse("classical").expect("strategy");
    let o = train(&img, &spec, &data, 3, None, &mut RunOptions::new()).expect("train");
    let last = o.records.last().expect("records");
    let confusion = o.info.confusion.expect("confusion");
    assert_eq!(
        last.test_balanced_accuracy,
        l2m_core::metrics::balanced_accuracy(&confusion)
    );
    assert_eq!(last.test_macro_f1, l2m_core::metrics::macro_f1(&confusion));
    // The test set is balanced (10 per class): balanced accuracy is the accuracy.
    let b = last.test_balanced_accuracy.expect("balanced");
    assert!(
        (b - last.test_metric).abs() < 1e-9,
        "{b} {}",
        last.test_metric
    );
    let worst = last
        .test_metric_per_class
        .iter()
        .copied()
        .fold(f64::MAX, f64::min);
    assert_eq!(last.test_worst_class, Some(worst));
}

/// Seconds to the target are the recorded training seconds up to each seed's epoch.
#[test]
fn seconds_to_target_add_up_the_recorded_training_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = small(6);
    cfg.seeds = vec![1, 2];
    let run_dir = RunDir::create(dir.path().join("run")).expect("dir");
    let c = run_experiment(&cfg, &run_dir, &mut RunOptions::new()).expect("run");
    for s in &c.strategies {
        let mut want = Vec::new();
        for (seed, e) in s.seeds.iter().zip(&s.epochs_to_target_per_seed) {
            if let Some(e) = e {
                let p = l2m_run::Layout::new(dir.path().join("run"))
                    .run(*seed, &s.strategy)
                    .records_jsonl();
                let recs = record::read_records(&p).expect("records");
                want.push(recs[..*e].iter().map(|r| r.train_seconds).sum::<f64>());
            }
        }
        let got = s.seconds_to_target.expect("some seed reaches the target");
        assert_eq!(got.n, want.len());
        let mean = want.iter().sum::<f64>() / want.len() as f64;
        assert!((got.mean - mean).abs() < 1e-12, "{} {mean}", got.mean);
    }
}

/// Balanced batches by hand: 100/100/80/20 samples, B = 50, uniform proportions with the
/// largest remainder give 13, 13, 12, 12 samples per class per batch (the remainder 2 goes
/// to the lowest indices), so each epoch of 6 steps draws 78, 78, 72, 72.
#[test]
fn balanced_batches_are_uniform_by_hand() {
    let cfg = small(2);
    let o = run(&cfg, "balanced", 7);
    for r in &o.records {
        assert_eq!(r.alpha, vec![0.25; 4]);
        assert_eq!(r.train_samples_per_class, vec![78, 78, 72, 72]);
    }
}

/// Coverage: distinct samples per class and epoch, and an alarm where a class with data
/// got no sample (the paper's floor allocation with `alpha_i * B < 1`).
#[test]
fn coverage_counts_distinct_samples_and_raises_alarms() {
    let mut cfg = small(2);
    cfg.batch_size = 10; // uniform: 20 / 300 * 10 = 0.67 samples per batch
    let data = load(&cfg, 7);
    let spec = StrategySpec::learn2mix(Learn2MixOptions {
        allocation: l2m_core::Allocation::Floor,
        ..Learn2MixOptions::paper(0.5)
    })
    .expect("spec");
    let o = train(&cfg, &spec, &data, 7, None, &mut RunOptions::new()).expect("train");
    let r = &o.records[0];
    assert_eq!(r.train_samples_per_class[3], 0);
    assert_eq!(r.train_distinct_per_class[3], 0);
    let alarms = r.coverage_alarms.join("; ");
    assert!(
        alarms.contains("class uniform got no sample this epoch"),
        "{alarms}"
    );
    assert!(
        alarms.contains("below one sample per batch of 10"),
        "{alarms}"
    );
    // The default allocation keeps one sample per class per batch: no class goes unseen.
    let o = run(&cfg, "learn2mix", 7);
    assert!(o.records[0].train_samples_per_class.iter().all(|&n| n > 0));
    for r in &o.records {
        for (d, n) in r
            .train_distinct_per_class
            .iter()
            .zip(&r.train_samples_per_class)
        {
            assert!(d <= n && *d > 0);
        }
    }
    // Classical draws each sample at most once per epoch.
    let o = run(&cfg, "classical", 7);
    for r in &o.records {
        assert_eq!(r.train_distinct_per_class, r.train_samples_per_class);
    }
}

/// Counts the epochs trained.
#[derive(Default)]
struct EpochCount(usize);

impl Observer for EpochCount {
    fn epoch_done(&mut self, _record: &EpochRecord) {
        self.0 += 1;
    }
}

#[test]
fn a_sweep_pairs_every_point_with_the_reference_resumes_and_grows() {
    use crate::sweep::{Axis, Sweep, run_sweep};
    let mut base = small(4);
    base.seeds = vec![1, 2];
    let sweep = |values: Vec<f64>| Sweep {
        base: base.clone(),
        strategy: StrategySpec::parse("learn2mix")
            .and_then(|s| s.with_option_if_any("gamma", serde_json::json!(0.5)))
            .expect("learn2mix"),
        reference: StrategySpec::parse("classical").expect("classical"),
        axes: vec![Axis {
            option: "gamma".into(),
            values,
        }],
        metric: Metric::Task,
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("sweep");
    let mut count = EpochCount::default();
    let s = run_sweep(&sweep(vec![0.1, 0.9]), &out, &mut count).expect("sweep");
    // The reference and two points, two seeds, four epochs each.
    assert_eq!(count.0, 3 * 2 * 4);
    let labels: Vec<&str> = s.points.iter().map(|p| p.label.as_str()).collect();
    assert_eq!(labels, ["gamma=0.1", "gamma=0.9"]);

    // Each point is the plain learn2mix run with that gamma, and the paired difference
    // is the mean over seeds of the point's final metric minus the reference's.
    let last = |dir: &Path, name: &str, seed: u64| {
        let p = l2m_run::Layout::new(dir).run(seed, name).records_jsonl();
        record::read_records(&p).expect("records")[3].test_metric
    };
    let mut plain = base.clone();
    plain.set_gamma(0.9).expect("gamma");
    let data = load(&plain, 2);
    let spec = StrategySpec::parse("learn2mix")
        .and_then(|s| s.with_option_if_any("gamma", serde_json::json!(0.9)))
        .expect("spec");
    let direct = train(&plain, &spec, &data, 2, None, &mut RunOptions::new()).expect("train");
    let point = out.join("points/gamma=0.9");
    assert_eq!(direct.records[3].test_metric, last(&point, "gamma=0.9", 2));
    let diffs: Vec<f64> = [1, 2]
        .iter()
        .map(|&seed| {
            last(&point, "gamma=0.9", seed) - last(&out.join("reference"), "classical", seed)
        })
        .collect();
    let d = s.points[1].minus_reference.expect("paired difference");
    assert!(
        (d.mean - (diffs[0] + diffs[1]) / 2.0).abs() < 1e-12,
        "{d:?} vs {diffs:?}"
    );

    let md = std::fs::read_to_string(out.join("sweep.md")).expect("sweep.md");
    assert!(
        md.contains("(best)") && md.contains("## Recommendation"),
        "{md}"
    );
    assert!(md.contains("| classical (reference) |"), "{md}");
    assert!(out.join("sweep.json").is_file());

    // Run again with a value added: only the new point trains.
    let mut count = EpochCount::default();
    let s = run_sweep(&sweep(vec![0.1, 0.9, 0.5]), &out, &mut count).expect("grown sweep");
    assert_eq!(count.0, 2 * 4, "only gamma=0.5 is trained");
    assert_eq!(s.points.len(), 3);

    // Someone else's folder is never written into; unknown options and repeated values
    // are refused by name.
    let foreign = dir.path().join("mine");
    std::fs::create_dir_all(&foreign).expect("mkdir");
    std::fs::write(foreign.join("notes.txt"), "mine").expect("write");
    let e = run_sweep(&sweep(vec![0.1]), &foreign, &mut SilentObserver).expect_err("foreign");
    assert!(e.to_string().contains("not a sweep directory"), "{e}");
    assert_eq!(std::fs::read_dir(&foreign).expect("read").count(), 1);
    let mut bad = sweep(vec![0.1]);
    bad.axes[0].option = "gama".into();
    let e = bad.points().expect_err("unknown option");
    assert!(
        e.to_string().contains("no option \"gama\"") && e.to_string().contains("gamma"),
        "{e}"
    );
    let e = sweep(vec![0.1, 0.1]).points().expect_err("twice");
    assert!(e.to_string().contains("given twice"), "{e}");
    let e = sweep(vec![0.0]).points().expect_err("gamma 0");
    assert!(e.to_string().contains("gamma=0"), "{e}");
}

/// Data-parallel training on a group of threads standing in for processes: the same
/// records as one process, within floating-point tolerance, and the same mixture on every
/// rank to the bit.
mod data_parallel {
    use std::sync::{Arc, Barrier, Mutex};

    use super::*;
    use crate::collective::Collective;

    /// Every rank adds all ranks' values in rank order, so all get the same bits.
    struct Shared {
        barrier: Barrier,
        f32s: Mutex<Vec<Vec<f32>>>,
        f64s: Mutex<Vec<Vec<f64>>>,
    }

    struct Threads {
        rank: usize,
        ranks: usize,
        shared: Arc<Shared>,
    }

    fn group(ranks: usize) -> Vec<Threads> {
        let shared = Arc::new(Shared {
            barrier: Barrier::new(ranks),
            f32s: Mutex::new(vec![Vec::new(); ranks]),
            f64s: Mutex::new(vec![Vec::new(); ranks]),
        });
        (0..ranks)
            .map(|rank| Threads {
                rank,
                ranks,
                shared: Arc::clone(&shared),
            })
            .collect()
    }

    fn sum<T: Copy + std::ops::Add<Output = T>>(
        slots: &Mutex<Vec<Vec<T>>>,
        barrier: &Barrier,
        rank: usize,
        data: &mut [T],
    ) {
        slots.lock().expect("slots")[rank] = data.to_vec();
        barrier.wait();
        {
            let s = slots.lock().expect("slots");
            for (j, d) in data.iter_mut().enumerate() {
                let mut acc = s[0][j];
                for part in &s[1..] {
                    acc = acc + part[j];
                }
                *d = acc;
            }
        }
        barrier.wait();
    }

    impl Collective for Threads {
        fn rank(&self) -> usize {
            self.rank
        }

        fn ranks(&self) -> usize {
            self.ranks
        }

        fn sum_f32(&self, data: &mut [f32]) -> Result<()> {
            sum(&self.shared.f32s, &self.shared.barrier, self.rank, data);
            Ok(())
        }

        fn sum_f64(&self, data: &mut [f64]) -> Result<()> {
            sum(&self.shared.f64s, &self.shared.barrier, self.rank, data);
            Ok(())
        }

        fn broadcast_f64(&self, data: &mut [f64]) -> Result<()> {
            // Rank 0's values, by summing them with zeros from every other rank.
            if self.rank != 0 {
                data.iter_mut().for_each(|v| *v = 0.0);
            }
            self.sum_f64(data)
        }
    }

    fn on_ranks(
        cfg: &ExperimentConfig,
        data: &LoadedData,
        strategy: &str,
        ranks: usize,
        out: Option<&Path>,
    ) -> Vec<Result<TrainOutcome>> {
        let spec = StrategySpec::parse_item(strategy)
            .and_then(|s| {
                s.with_option_if_any("gamma", serde_json::json!(cfg.gamma().expect("gamma")))
            })
            .expect("strategy");
        let model = cfg.model_for(data).expect("model");
        std::thread::scope(|s| {
            let handles: Vec<_> = group(ranks)
                .into_iter()
                .map(|comm| {
                    let (spec, model) = (&spec, &model);
                    s.spawn(move || {
                        train(
                            cfg,
                            spec,
                            data,
                            cfg.seeds[0],
                            out,
                            &mut RunOptions::new().model(model).comm(&comm),
                        )
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("rank thread"))
                .collect()
        })
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
    }

    /// Records of each rank against one process's: the same samples drawn per class, the
    /// losses, metric and mixture within `tol`; the mixture bit-identical across ranks.
    fn check(cfg: &ExperimentConfig, data: &LoadedData, strategy: &str, ranks: usize, tol: f64) {
        let spec = StrategySpec::parse_item(strategy)
            .and_then(|s| {
                s.with_option_if_any("gamma", serde_json::json!(cfg.gamma().expect("gamma")))
            })
            .expect("strategy");
        let single =
            train(cfg, &spec, data, cfg.seeds[0], None, &mut RunOptions::new()).expect("one");
        let outcomes: Vec<TrainOutcome> = on_ranks(cfg, data, strategy, ranks, None)
            .into_iter()
            .map(|o| o.expect("rank"))
            .collect();
        for (r, o) in outcomes.iter().enumerate() {
            assert_eq!(o.records.len(), single.records.len());
            for (a, b) in o.records.iter().zip(&single.records) {
                let at = format!("{strategy}, {ranks} ranks, rank {r}, epoch {}", a.epoch);
                assert_eq!(a.train_samples_per_class, b.train_samples_per_class, "{at}");
                assert!(
                    close(a.train_loss, b.train_loss, tol),
                    "{at}: train loss {} vs {}",
                    a.train_loss,
                    b.train_loss
                );
                assert!(
                    close(a.test_loss, b.test_loss, tol),
                    "{at}: test loss {} vs {}",
                    a.test_loss,
                    b.test_loss
                );
                assert!(
                    close(a.test_metric, b.test_metric, tol),
                    "{at}: metric {} vs {}",
                    a.test_metric,
                    b.test_metric
                );
                for (x, y) in a.alpha.iter().zip(&b.alpha) {
                    assert!(
                        close(*x, *y, tol),
                        "{at}: alpha {:?} vs {:?}",
                        a.alpha,
                        b.alpha
                    );
                }
            }
            let (a, b) = (&o.records, &outcomes[0].records);
            for (x, y) in a.iter().zip(b) {
                let bits = |v: &[f64]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&x.alpha),
                    bits(&y.alpha),
                    "{strategy}: rank {r}'s alpha"
                );
                assert_eq!(
                    x.test_loss.to_bits(),
                    y.test_loss.to_bits(),
                    "{strategy}: rank {r}'s model"
                );
            }
        }
    }

    /// The test set is split across the ranks by evaluation chunk: each rank sums a part
    /// of the samples (counted in the one message it sends), and every rank ends with what
    /// one process computes, the counts and the confusion matrix exactly.
    #[test]
    fn evaluation_is_split_across_ranks_and_summed() {
        let Some(mut cfg) = small_mnist() else {
            return;
        };
        cfg.eval_batch_size = 45;
        let data = load(&cfg, 0);
        let device = candle_core::Device::Cpu;
        let model = cfg.model_for(&data).expect("model");
        let t = model::fresh(&cfg, &model, 0, &device).expect("model");
        let test = data::DeviceData::upload(&data.test, cfg.task, &device).expect("upload");
        let one = eval::evaluate(&t.model, &test, &data.test, &cfg, true, &collective::Solo)
            .expect("one process");
        let k = data.test.num_classes();
        let total = data.test.len() as f64;
        for ranks in [2, 3] {
            let parts: Vec<(eval::Evaluation, f64)> = std::thread::scope(|s| {
                let handles: Vec<_> = group(ranks)
                    .into_iter()
                    .map(|comm| {
                        let (cfg, data, t, test) = (&cfg, &data, &t, &test);
                        s.spawn(move || {
                            let counting = Counting {
                                inner: comm,
                                seen: Mutex::new(0.0),
                            };
                            let e =
                                eval::evaluate(&t.model, test, &data.test, cfg, true, &counting)
                                    .expect("rank");
                            let seen = *counting.seen.lock().expect("seen");
                            (e, seen)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("rank"))
                    .collect()
            });
            let seen: Vec<f64> = parts.iter().map(|p| p.1).collect();
            assert!(
                seen.iter().all(|&n| n > 0.0 && n < total),
                "{ranks} ranks: {seen:?} of {total}"
            );
            assert_eq!(seen.iter().sum::<f64>(), total, "{ranks} ranks");
            for (e, _) in &parts {
                assert_eq!(e.confusion, one.confusion, "{ranks} ranks");
                assert_eq!(e.loss.counts, one.loss.counts);
                for (a, b) in e.loss.losses.iter().zip(&one.loss.losses) {
                    assert!(close(*a, *b, 1e-6), "{ranks} ranks: {a} vs {b}");
                }
                for (a, b) in e.metric.losses.iter().zip(&one.metric.losses) {
                    assert!(close(*a, *b, 1e-9), "{ranks} ranks: {a} vs {b}");
                }
                assert_eq!(e.loss.losses.len(), k);
            }
        }
    }

    /// A group that notes how many test samples this rank counted before the sum (the
    /// counts sit after the two per-class sums in the evaluation's message).
    struct Counting {
        inner: Threads,
        seen: Mutex<f64>,
    }

    impl Collective for Counting {
        fn rank(&self) -> usize {
            self.inner.rank
        }

        fn ranks(&self) -> usize {
            self.inner.ranks
        }

        fn sum_f32(&self, data: &mut [f32]) -> Result<()> {
            self.inner.sum_f32(data)
        }

        fn sum_f64(&self, data: &mut [f64]) -> Result<()> {
            let k = 10;
            *self.seen.lock().expect("seen") += data[2 * k..3 * k].iter().sum::<f64>();
            self.inner.sum_f64(data)
        }

        fn broadcast_f64(&self, data: &mut [f64]) -> Result<()> {
            self.inner.broadcast_f64(data)
        }
    }

    #[test]
    fn ranks_train_like_one_process_on_mean_estimation() {
        let cfg = small(6);
        let data = load(&cfg, 7);
        for strategy in [
            "learn2mix",
            "classical",
            "balanced",
            "learn2mix:update_every=1",
        ] {
            // 50 per batch: 25 + 25, and 17 + 17 + 16 (a batch that does not divide).
            for ranks in [2, 3] {
                check(&cfg, &data, strategy, ranks, 1e-4);
            }
        }
    }

    #[test]
    fn ranks_train_like_one_process_on_real_mnist() {
        let Some(cfg) = small_mnist() else {
            return;
        };
        let data = load(&cfg, 0);
        for ranks in [2, 3] {
            check(&cfg, &data, "learn2mix", ranks, 1e-3);
        }
    }

    #[test]
    fn only_rank_zero_writes_and_every_rank_resumes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = small(2);
        let data = load(&cfg, 7);
        for o in on_ranks(&cfg, &data, "learn2mix", 2, Some(dir.path())) {
            o.expect("rank");
        }
        assert!(dir.path().join("records.jsonl").is_file());
        // Four epochs in total: both ranks resume from rank 0's checkpoint and end where
        // an uninterrupted two-rank run ends.
        cfg.epochs = 4;
        let resumed: Vec<TrainOutcome> = on_ranks(&cfg, &data, "learn2mix", 2, Some(dir.path()))
            .into_iter()
            .map(|o| o.expect("rank"))
            .collect();
        let straight: Vec<TrainOutcome> = on_ranks(&cfg, &data, "learn2mix", 2, None)
            .into_iter()
            .map(|o| o.expect("rank"))
            .collect();
        for (a, b) in resumed.iter().zip(&straight) {
            assert_eq!(
                without_time(a.records.clone()),
                without_time(b.records.clone())
            );
        }
    }

    /// Each epoch every rank checks its mixture and parameter checksum against rank 0's
    /// bits; a rank that drifted stops with an error naming it.
    #[test]
    fn a_rank_that_drifts_from_rank_zero_is_an_error() {
        let outcomes: Vec<Result<()>> = std::thread::scope(|s| {
            let handles: Vec<_> = group(3)
                .into_iter()
                .map(|comm| {
                    s.spawn(move || {
                        let drift = if comm.rank() == 2 { 1e-12 } else { 0.0 };
                        collective::check_in_step(&comm, &[0.25, 0.75 + drift], 4)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("rank"))
                .collect()
        });
        assert!(outcomes[0].is_ok() && outcomes[1].is_ok());
        let e = outcomes[2].as_ref().expect_err("rank 2 drifted");
        assert!(
            e.to_string()
                .contains("rank 2 of 3 no longer agrees with rank 0 after epoch 4"),
            "{e}"
        );
    }

    #[test]
    fn strategies_that_weigh_the_whole_batch_are_refused() {
        let cfg = small(1);
        let data = load(&cfg, 7);
        for o in on_ranks(&cfg, &data, "group-dro", 2, None) {
            let e = o.expect_err("group-dro needs the whole batch");
            assert!(e.to_string().contains("data-parallel"), "{e}");
        }
        let mut tiny = small(1);
        tiny.batch_size = 2;
        for o in on_ranks(&tiny, &data, "learn2mix", 3, None) {
            let e = o.expect_err("a batch of 2 on 3 ranks");
            assert!(e.to_string().contains("smaller than the 3 ranks"), "{e}");
        }
    }
}
