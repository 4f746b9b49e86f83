//! `l2m-bench <workload>`: builds a workload's data and model, times one run of it and
//! prints one JSON line (`{"workload", "seconds", "peak_rss_mib", "detail"}`).
//!
//! `cargo xtask bench` runs this binary once per run (a fresh process each time, so the
//! peak resident memory is the workload's own) and alternates it with the PyTorch
//! reference `bench/reference.py`, which implements the same workloads with the same
//! shapes, models, batch sizes, optimiser and thread count. Data is synthetic with the
//! real datasets' shapes (the same on both sides, since only shapes matter for speed),
//! except for `mnist-load`, which reads the real MNIST files.

// The doc comments of the flag structs are the terminal help text (clap), not rustdoc:
// `cuda[:N]` and `runs/<experiment>` are meant literally there.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]

#[path = "../../l2m-cli/src/runtime.rs"]
mod runtime;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use l2m_data::{ClassDataset, Features, Targets};
use l2m_engine::{ExperimentConfig, LoadedData, StrategySpec, Task};
use l2m_models::{DeviceKind, ModelConfig};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The workloads, in the order of the report.
const WORKLOADS: &[&str] = &[
    "lenet5-train",
    "lenet5-eval",
    "autoencoder-train",
    "lenet-cifar-train",
    "transformer-train",
    "transformer-train-500",
    "learn2mix-epoch",
    "classical-epoch",
    "mnist-load",
    "csv-load",
    "smote-cifar100",
    "sgemm-peak",
];

/// Time one run of a workload.
#[derive(Debug, Parser)]
#[command(name = "l2m-bench")]
struct Args {
    /// The workload (`list` prints them).
    workload: String,
    /// Fraction of the full sample count to use (1.0: the sizes of the report).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Folder holding the datasets (for mnist-load).
    #[arg(long, default_value = "data")]
    data_dir: PathBuf,
    /// Device: cpu or cuda[:N].
    #[arg(long, default_value = "cpu")]
    device: DeviceKind,
}

#[derive(serde::Serialize)]
struct Outcome {
    workload: String,
    seconds: f64,
    peak_rss_mib: Option<f64>,
    detail: serde_json::Value,
}

fn main() -> anyhow::Result<()> {
    runtime::configure();
    let args = Args::parse();
    if args.workload == "list" {
        for w in WORKLOADS {
            println_out(w)?;
        }
        return Ok(());
    }
    let (seconds, detail) = run(&args)?;
    let out = Outcome {
        workload: args.workload.clone(),
        seconds,
        peak_rss_mib: peak_rss_mib(),
        detail,
    };
    println_out(&serde_json::to_string(&out)?)
}

fn println_out(s: &str) -> anyhow::Result<()> {
    use std::io::Write;
    writeln!(std::io::stdout().lock(), "{s}")?;
    Ok(())
}

fn scaled(n: usize, scale: f64) -> usize {
    ((n as f64 * scale).round() as usize).max(1)
}

/// `n` samples of `shape` random pixels, spread evenly over `classes` classes.
fn pixels(name: &str, n: usize, shape: &[usize], classes: usize, seed: u64) -> ClassDataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let dim: usize = shape.iter().product();
    let data: Vec<u8> = (0..n * dim).map(|_| rng.random()).collect();
    let labels: Vec<u32> = (0..n).map(|i| (i % classes) as u32).collect();
    let channels = shape[0];
    ClassDataset::new(
        name,
        Features::Pixels {
            data,
            mean: vec![0.5; channels],
            std: vec![0.25; channels],
        },
        shape.to_vec(),
        Targets::Classes,
        labels,
        (0..classes).map(|c| c.to_string()).collect(),
    )
    .unwrap_or_else(|e| unreachable_data(&e))
}

/// Synthetic data is built from consistent sizes; an error here is a bug in this file.
fn unreachable_data(e: &dyn std::fmt::Display) -> ! {
    let _ = println_out(&format!("internal error building synthetic data: {e}"));
    std::process::exit(2)
}

/// IMDB-shaped token sequences: lengths 100..=`len`, padded with 0, ids in 2..vocab.
fn tokens(n: usize, len: usize, vocab: u32, seed: u64) -> ClassDataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut data = vec![0u32; n * len];
    for row in data.chunks_mut(len) {
        let l = rng.random_range(len / 5..=len);
        for t in &mut row[..l] {
            *t = rng.random_range(2..vocab);
        }
    }
    let labels: Vec<u32> = (0..n).map(|i| (i % 2) as u32).collect();
    ClassDataset::new(
        "imdb-shaped",
        Features::Tokens(data),
        vec![len],
        Targets::Classes,
        labels,
        vec!["neg".into(), "pos".into()],
    )
    .unwrap_or_else(|e| unreachable_data(&e))
}

/// One training epoch of `cfg` on `train` with `strategy`, through the engine's own loop;
/// returns the training seconds the engine recorded (the evaluation is excluded).
fn engine_epoch(
    mut cfg: ExperimentConfig,
    strategy: &str,
    train: ClassDataset,
    test: ClassDataset,
) -> anyhow::Result<(f64, serde_json::Value)> {
    cfg.epochs = 1;
    cfg.seeds = vec![0];
    let spec = StrategySpec::parse(strategy)?
        .with_option_if_any("gamma", serde_json::json!(cfg.gamma().unwrap_or(0.1)))?;
    let n = train.len();
    let data = LoadedData {
        train,
        test,
        notes: Vec::new(),
        vocab: None,
        own: None,
    };
    let model = cfg.model_for(&data)?;
    // A transformer's sequence length is the token data's width.
    let seq_len = match data.train.samples().features() {
        Features::Tokens(_) => data.train.samples().sample_shape().first().copied(),
        _ => None,
    };
    let per_sample = model.flops_per_sample(seq_len);
    let o = l2m_engine::train(
        &cfg,
        &spec,
        &data,
        0,
        None,
        &mut l2m_engine::RunOptions::new(),
    )?;
    let r = o.records.first().context("one epoch recorded")?;
    // The samples the epoch trained on: floor(N / B) full batches.
    let trained = (o.info.steps_per_epoch * cfg.batch_size) as f64;
    Ok((
        r.train_seconds,
        serde_json::json!({
            "samples": n,
            "batch_size": cfg.batch_size,
            "steps": o.info.steps_per_epoch,
            "model": cfg.model.name(),
            "strategy": strategy,
            "flops": per_sample.map(|f| f.training() * trained),
        }),
    ))
}

fn preset(name: &str, device: DeviceKind) -> anyhow::Result<ExperimentConfig> {
    let mut cfg = l2m_engine::preset(name)?;
    cfg.device = device;
    // The benchmark's reference uses Adam at 1e-3 for every model; the rate does not
    // change the work done.
    cfg.optimizer.lr = 1e-3;
    Ok(cfg)
}

fn run(args: &Args) -> anyhow::Result<(f64, serde_json::Value)> {
    let s = args.scale;
    let mnist = |n| pixels("mnist-shaped", scaled(n, s), &[1, 28, 28], 10, 1);
    match args.workload.as_str() {
        "lenet5-train" | "learn2mix-epoch" | "classical-epoch" => {
            let strategy = match args.workload.as_str() {
                "learn2mix-epoch" => "learn2mix",
                _ => "classical",
            };
            engine_epoch(
                preset("mnist", args.device)?,
                strategy,
                mnist(60_000),
                pixels("test", 100, &[1, 28, 28], 10, 2),
            )
        }
        "autoencoder-train" => {
            let mut cfg = preset("mnist-reconstruction", args.device)?;
            cfg.task = Task::Reconstruction;
            engine_epoch(
                cfg,
                "classical",
                mnist(60_000),
                pixels("test", 100, &[1, 28, 28], 10, 2),
            )
        }
        "lenet-cifar-train" => engine_epoch(
            preset("cifar10", args.device)?,
            "classical",
            pixels("cifar-shaped", scaled(50_000, s), &[3, 32, 32], 10, 1),
            pixels("test", 100, &[3, 32, 32], 10, 2),
        ),
        "transformer-train" | "transformer-train-500" => {
            // The IMDB preset's length is 500; 200 keeps the reference's memory and time
            // small enough to run every workload in one sitting.
            let (n, len) = match args.workload.as_str() {
                "transformer-train" => (5_000, 200),
                _ => (1_000, 500),
            };
            let mut cfg = preset("imdb", args.device)?;
            cfg.model = ModelConfig::Transformer(l2m_models::TransformerConfig::paper(20_000));
            engine_epoch(
                cfg,
                "classical",
                tokens(scaled(n, s).max(500), len, 20_000, 1),
                tokens(100, len, 20_000, 2),
            )
        }
        "lenet5-eval" => lenet5_eval(scaled(10_000, s), args.device),
        "mnist-load" => {
            let started = Instant::now();
            let loaded = l2m_data::paper::PaperDataset::Mnist.load(
                &args.data_dir,
                l2m_data::paper::PixelUse::Classification,
                0,
            )?;
            let seconds = started.elapsed().as_secs_f64();
            Ok((
                seconds,
                serde_json::json!({
                    "train": loaded.train.class_sizes(),
                    "test": loaded.test.class_sizes(),
                    "source": loaded.source,
                }),
            ))
        }
        "csv-load" => {
            // The file `cargo xtask bench` generates (L2M_BENCH_CSV), loaded as
            // `l2m compare --data FILE --target label` loads it: streamed into one matrix,
            // split by class, standardised, the category one-hot encoded.
            let path = std::env::var("L2M_BENCH_CSV")
                .context("L2M_BENCH_CSV: the generated CSV (cargo xtask bench writes it)")?;
            let started = Instant::now();
            let spec = l2m_data::own::OwnData {
                target: Some("label".into()),
                ..l2m_data::own::OwnData::new(&path)
            };
            let loaded = l2m_data::own::load(l2m_data::own::SourceKind::CSV, &spec, 0)?;
            let seconds = started.elapsed().as_secs_f64();
            let rows = loaded.train.samples().len();
            let dim = loaded.train.samples().feature_dim();
            Ok((
                seconds,
                serde_json::json!({
                    "rows": rows,
                    "dim": dim,
                    "feature_matrix_mib": (rows * dim * 4) as f64 / (1024.0 * 1024.0),
                    "train": loaded.train.class_sizes(),
                    "test": loaded.test.class_sizes(),
                }),
            ))
        }
        "smote-cifar100" => smote_cifar100(s),
        "sgemm-peak" => sgemm_peak(args.device),
        other => anyhow::bail!(
            "unknown workload {other:?}: expected one of {}",
            WORKLOADS.join(", ")
        ),
    }
}

/// The machine's measured peak for this toolkit: a 2048 x 2048 by 2048 x 2048 f32
/// product, the best of 5 after a warm-up; on the CPU through the product the kernels
/// use (`l2m_models::ops::matmul_f32`), on a GPU through Candle's matmul. `seconds` is
/// that best time, `flops` its 2 n^3.
fn sgemm_peak(device: DeviceKind) -> anyhow::Result<(f64, serde_json::Value)> {
    let dev = l2m_models::select_device(device)?;
    let n = 2048;
    let a = candle_core::Tensor::randn(0f32, 1.0, (n, n), &dev)?;
    let b = candle_core::Tensor::randn(0f32, 1.0, (n, n), &dev)?;
    let (av, bv) = if dev.is_cpu() {
        (
            a.flatten_all()?.to_vec1::<f32>()?,
            b.flatten_all()?.to_vec1::<f32>()?,
        )
    } else {
        (Vec::new(), Vec::new())
    };
    let mut best = f64::INFINITY;
    for i in 0..6 {
        let started = Instant::now();
        if dev.is_cpu() {
            let c = l2m_models::ops::matmul_f32(&av, &bv, (n, n, n))?;
            std::hint::black_box(c);
        } else {
            let c = a.matmul(&b)?;
            // Reading one value waits for the product.
            let _ = c
                .narrow(0, 0, 1)?
                .narrow(1, 0, 1)?
                .flatten_all()?
                .to_vec1::<f32>()?;
        }
        let t = started.elapsed().as_secs_f64();
        if i > 0 {
            best = best.min(t);
        }
    }
    let flops = 2.0 * (n as f64).powi(3);
    Ok((
        best,
        serde_json::json!({"n": n, "flops": flops, "gflops_per_second": flops / best / 1e9}),
    ))
}

fn lenet5_eval(n: usize, device: DeviceKind) -> anyhow::Result<(f64, serde_json::Value)> {
    let dev = l2m_models::select_device(device)?;
    let varmap = candle_nn::VarMap::new();
    let vb = l2m_models::seeded_var_builder(
        &varmap,
        l2m_core::seeded_rng(0, l2m_core::RngStream::Init),
        candle_core::DType::F32,
        &dev,
    );
    let config = ModelConfig::LeNet5(l2m_models::LeNet5Config { classes: 10 });
    let flops = config.flops_per_sample(None).map(|f| f.forward * n as f64);
    let model = config.build(vb, 0)?;
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let x: Vec<f32> = (0..n * 784)
        .map(|_| rng.random::<f32>() * 2.0 - 1.0)
        .collect();
    let x = candle_core::Tensor::from_vec(x, (n, 1, 28, 28), &dev)?;
    let started = Instant::now();
    let mut correct = 0u32;
    for start in (0..n).step_by(1000) {
        let len = 1000.min(n - start);
        let logits = model.forward_t(&x.narrow(0, start, len)?, false)?;
        let pred = logits.argmax(1)?.to_vec1::<u32>()?;
        correct += pred.iter().filter(|&&p| p == 0).count() as u32;
    }
    Ok((
        started.elapsed().as_secs_f64(),
        serde_json::json!({"samples": n, "batch_size": 1000, "predicted_class_0": correct, "flops": flops}),
    ))
}

/// CIFAR-100-shaped: 100 classes of 500 samples x 3072 features, imbalanced by the
/// spec's log profile (class i keeps `40^(-i/99)`), then SMOTE (k = 5) to the largest.
fn smote_cifar100(scale: f64) -> anyhow::Result<(f64, serde_json::Value)> {
    let per_class = scaled(500, scale).max(100);
    let full = pixels("cifar100-shaped", per_class * 100, &[3, 32, 32], 100, 1);
    let imbalanced = full.imbalanced(
        &l2m_data::Imbalance::Log {
            first: 1.0,
            last: 0.025,
        },
        0,
    )?;
    let sizes = imbalanced.class_sizes();
    let started = Instant::now();
    let (balanced, report) = l2m_baselines::smote::smote(&imbalanced, 5, 0)?;
    let seconds = started.elapsed().as_secs_f64();
    Ok((
        seconds,
        serde_json::json!({
            "counts": sizes,
            "after": balanced.len(),
            "added": report.added_per_class.iter().sum::<usize>(),
        }),
    ))
}

/// Peak resident memory of this process in MiB (Linux; `None` elsewhere).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
