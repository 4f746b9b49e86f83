//! learn2mix in a Burn training loop: the user's Burn MLP on Burn's pure-Rust CPU backend
//! (Flex; Burn 0.22 deprecates ndarray in its favour), Burn's autodiff and Adam, and
//! `l2m_core::Learn2MixSampler` choosing each batch. This crate depends on no Candle at all:
//! the proof that `l2m-core` is framework-free.
//!
//! Data: Wine Quality (white wine kept at 10%, as in the paper) from `data/` or
//! `../shared/data` when present, else the paper's synthetic Mean Estimation set. Trains
//! learn2mix and fixed proportions (stratified batches) from the same initial weights and
//! prints a comparison table.
//!
//! `cargo run --release --manifest-path examples/burn-loop/Cargo.toml -- [--epochs N] [--seed S]`

use std::path::PathBuf;

use anyhow::Context;
use burn::nn::{Linear, LinearConfig, Relu};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::TensorData;
use l2m_core::{Learn2MixSampler, Rule};
use l2m_data::ClassDataset;

/// The user's model.
#[derive(Module, Debug)]
struct Mlp {
    a: Linear,
    relu: Relu,
    b: Linear,
}

impl Mlp {
    fn new(dim: usize, device: &Device) -> Self {
        Self {
            a: LinearConfig::new(dim, 32).init(device),
            relu: Relu::new(),
            b: LinearConfig::new(32, 1).init(device),
        }
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<1> {
        self.b
            .forward(self.relu.forward(self.a.forward(x)))
            .flatten(0, 1)
    }
}

/// Wine Quality if a data folder has it, else Mean Estimation; (train, test, name).
fn data(dir: Option<PathBuf>, seed: u64) -> anyhow::Result<(ClassDataset, ClassDataset, String)> {
    let wine = l2m_data::paper::PaperDataset::WineQuality;
    let found = dir
        .into_iter()
        .chain([PathBuf::from("data"), PathBuf::from("../shared/data")])
        .find(|d| wine.locate(d).is_ok());
    Ok(match found {
        Some(d) => {
            let l = wine.load(&d, l2m_data::paper::PixelUse::Classification, seed)?;
            let keep = l2m_data::Imbalance::Factors {
                keep: vec![1.0, 0.1],
            };
            let name = format!("Wine Quality ({})", d.display());
            (l.train.imbalanced(&keep, seed)?, l.test, name)
        }
        None => {
            let (train, test) = l2m_data::synthetic::MeanEstimation::default().generate(seed)?;
            (train, test, "Mean Estimation (synthetic)".into())
        }
    })
}

/// Rows `indices` of a dataset as Burn tensors (features, targets) and the class of each.
fn tensors(
    set: &ClassDataset,
    indices: &[u32],
    device: &Device,
) -> anyhow::Result<(Tensor<2>, Tensor<1>, Vec<usize>)> {
    let rows = set.samples().dense(indices)?;
    let n = indices.len();
    let x = Tensor::from_data(TensorData::new(rows.features, [n, rows.dim]), device);
    let y = Tensor::from_data(TensorData::new(rows.targets, [n]), device);
    Ok((x, y, rows.classes))
}

/// Test MSE overall and per class, and alpha at the start and at the end.
struct Outcome {
    mse: f64,
    per_class: Vec<f64>,
    start: Vec<f64>,
    end: Vec<f64>,
}

/// A tensor's values as f64.
fn values(t: Tensor<1>) -> anyhow::Result<Vec<f64>> {
    let v: Vec<f32> = t
        .into_data()
        .try_to_vec()
        .map_err(|e| anyhow::anyhow!("reading a tensor: {e:?}"))?;
    Ok(v.into_iter().map(f64::from).collect())
}

fn train(
    rule: Rule,
    train_set: &ClassDataset,
    test_set: &ClassDataset,
    epochs: usize,
    seed: u64,
) -> anyhow::Result<Outcome> {
    let device = Device::flex().autodiff();
    // Burn's generator is seeded, so every strategy starts from the same weights.
    device.seed(seed);
    let mut model = Mlp::new(train_set.samples().feature_dim(), &device);
    let mut optim = AdamConfig::new().init();
    let mut sampler = Learn2MixSampler::builder(train_set.members().to_vec(), 100)
        .rule(rule)
        .seed(seed)
        .build()?;
    let start = sampler.alpha().as_slice().to_vec();
    for _ in 0..epochs {
        sampler.begin_epoch()?;
        for _ in 0..sampler.steps_per_epoch() {
            let batch = sampler.next_batch()?;
            let (x, y, _) = tensors(train_set, &batch.indices, &device)?;
            let diff = model.forward(x) - y;
            let per_sample = diff.clone() * diff;
            let losses = values(per_sample.clone())?;
            let grads = per_sample.mean().backward();
            let grads = GradientsParams::from_grads(grads, &model);
            model = optim.step(1e-3, model, grads);
            sampler.record(&batch.classes, &losses)?;
        }
        sampler.end_epoch()?;
    }
    let model = model.valid();
    let (x, y, classes) = tensors(test_set, &test_set.all_members(), &Device::flex())?;
    let diff = model.forward(x) - y;
    let err = values(diff.clone() * diff)?;
    let mut sums = vec![(0.0, 0usize); test_set.num_classes()];
    for (e, c) in err.iter().zip(&classes) {
        sums[*c].0 += e;
        sums[*c].1 += 1;
    }
    Ok(Outcome {
        mse: err.iter().sum::<f64>() / err.len().max(1) as f64,
        per_class: sums.iter().map(|(s, n)| s / (*n).max(1) as f64).collect(),
        start,
        end: sampler.alpha().as_slice().to_vec(),
    })
}

fn main() -> anyhow::Result<()> {
    let mut epochs = 30;
    let mut seed = 0;
    let mut dir = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--epochs" => epochs = value()?.parse().context("--epochs: expected a number")?,
            "--seed" => seed = value()?.parse().context("--seed: expected a number")?,
            "--data-dir" => dir = Some(PathBuf::from(value()?)),
            other => {
                anyhow::bail!("unknown argument {other:?}; expected --epochs, --seed, --data-dir")
            }
        }
    }
    let (train_set, test_set, name) = data(dir, seed)?;
    let mut out = format!(
        "{name} (Burn, Flex CPU): {} training samples {:?} per class {:?}, {epochs} epochs, seed {seed}\n",
        train_set.len(),
        train_set.class_sizes(),
        train_set.class_names()
    );
    out.push_str(
        "| strategy | test MSE | per-class test MSE | alpha start -> end |\n|---|---|---|---|\n",
    );
    let fmt = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.4}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    for (label, rule) in [
        ("learn2mix", Rule::Learn2Mix { gamma: 0.1 }),
        ("classical (stratified)", Rule::Fixed),
    ] {
        let o = train(rule, &train_set, &test_set, epochs, seed)?;
        out.push_str(&format!(
            "| {label} | {:.4} | {} | {} -> {} |\n",
            o.mse,
            fmt(&o.per_class),
            fmt(&o.start),
            fmt(&o.end)
        ));
    }
    use std::io::Write;
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(())
}
