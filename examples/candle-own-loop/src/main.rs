//! learn2mix in a Candle training loop of one's own: the user's candle-nn MLP, the user's
//! loop and optimiser, and `l2m_core::Learn2MixSampler` choosing each batch. Not the
//! `l2m-engine` training loop.
//!
//! Data: Wine Quality (white wine kept at 10%, as in the paper) from `data/` or
//! `../shared/data` when present, else the paper's synthetic Mean Estimation set. Trains
//! learn2mix and fixed proportions (stratified batches) from the same initial weights and
//! prints a comparison table.
//!
//! `cargo run --release -p candle-own-loop -- [--epochs N] [--seed S] [--data-dir DIR]`

use std::path::PathBuf;

use anyhow::Context;
use candle_core::{DType, Device, Tensor};
use candle_nn::{AdamW, Linear, Module, Optimizer, ParamsAdamW, VarBuilder, VarMap, linear};
use l2m_core::{Learn2MixSampler, Rule};
use l2m_data::ClassDataset;

/// The user's model.
struct Mlp {
    a: Linear,
    b: Linear,
}

impl Mlp {
    fn new(dim: usize, vb: VarBuilder) -> candle_core::Result<Self> {
        Ok(Self {
            a: linear(dim, 32, vb.pp("a"))?,
            b: linear(32, 1, vb.pp("b"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.b.forward(&self.a.forward(x)?.relu()?)?.squeeze(1)
    }
}

/// Wine Quality if a data folder has it, else Mean Estimation; (train, test, name).
fn data(dir: Option<PathBuf>, seed: u64) -> anyhow::Result<(ClassDataset, ClassDataset, String)> {
    let candidates = dir
        .into_iter()
        .chain([PathBuf::from("data"), PathBuf::from("../shared/data")]);
    for d in candidates {
        let wine = l2m_data::paper::PaperDataset::WineQuality;
        if wine.locate(&d).is_ok() {
            let l = wine.load(&d, l2m_data::paper::PixelUse::Classification, seed)?;
            let keep = l2m_data::Imbalance::Factors {
                keep: vec![1.0, 0.1],
            };
            return Ok((
                l.train.imbalanced(&keep, seed)?,
                l.test,
                format!("Wine Quality ({})", d.display()),
            ));
        }
    }
    let (train, test) = l2m_data::synthetic::MeanEstimation::default().generate(seed)?;
    Ok((train, test, "Mean Estimation (synthetic)".into()))
}

/// Mean squared error per class on `set`.
fn per_class_mse(model: &Mlp, set: &ClassDataset, dev: &Device) -> anyhow::Result<Vec<f64>> {
    let rows = set.samples().dense(&set.all_members())?;
    let x = Tensor::from_vec(rows.features, (rows.targets.len(), rows.dim), dev)?;
    let pred: Vec<f32> = model.forward(&x)?.to_vec1()?;
    let mut sums = vec![(0.0, 0usize); set.num_classes()];
    for ((p, t), c) in pred.iter().zip(&rows.targets).zip(&rows.classes) {
        sums[*c].0 += f64::from((p - t) * (p - t));
        sums[*c].1 += 1;
    }
    Ok(sums.iter().map(|(s, n)| s / (*n).max(1) as f64).collect())
}

/// Candle's CPU generator cannot be seeded: draw every parameter from a seeded stream
/// instead (uniform, PyTorch's default bound `1 / sqrt(fan_in)`), in name order.
fn seeded_init(varmap: &VarMap, seed: u64) -> anyhow::Result<()> {
    use rand::Rng;
    let mut rng = l2m_core::seeded_rng(seed, l2m_core::RngStream::Init);
    let vars = varmap
        .data()
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?;
    let mut names: Vec<_> = vars.keys().cloned().collect();
    names.sort();
    for name in names {
        let var = &vars[&name];
        let fan_in = *var.dims().last().unwrap_or(&1) as f32;
        let bound = 1.0 / fan_in.sqrt();
        let values: Vec<f32> = (0..var.elem_count())
            .map(|_| rng.random_range(-bound..bound))
            .collect();
        var.set(&Tensor::from_vec(values, var.shape(), var.device())?)?;
    }
    Ok(())
}

/// What one strategy ended with.
struct Outcome {
    mse: f64,
    per_class: Vec<f64>,
    start: Vec<f64>,
    end: Vec<f64>,
}

/// Trains one strategy.
fn train(
    rule: Rule,
    train_set: &ClassDataset,
    test_set: &ClassDataset,
    epochs: usize,
    seed: u64,
) -> anyhow::Result<Outcome> {
    let dev = Device::Cpu;
    // The same initial weights for every strategy: a seeded init, as any user would do.
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
    let model = Mlp::new(train_set.samples().feature_dim(), vb)?;
    seeded_init(&varmap, seed)?;
    let mut opt = AdamW::new(
        varmap.all_vars(),
        ParamsAdamW {
            lr: 1e-3,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;
    let mut sampler = Learn2MixSampler::builder(train_set.members().to_vec(), 100)
        .rule(rule)
        .seed(seed)
        .build()?;
    let start = sampler.alpha().as_slice().to_vec();
    let store = train_set.samples();
    for _ in 0..epochs {
        sampler.begin_epoch()?;
        for _ in 0..sampler.steps_per_epoch() {
            let batch = sampler.next_batch()?;
            let rows = store.dense(&batch.indices)?;
            let x = Tensor::from_vec(rows.features, (batch.indices.len(), rows.dim), &dev)?;
            let y = Tensor::from_vec(rows.targets, batch.indices.len(), &dev)?;
            let per_sample = model.forward(&x)?.sub(&y)?.sqr()?;
            opt.backward_step(&per_sample.mean_all()?)?;
            let losses: Vec<f64> = per_sample
                .to_vec1::<f32>()?
                .into_iter()
                .map(f64::from)
                .collect();
            sampler.record(&batch.classes, &losses)?;
        }
        sampler.end_epoch()?;
    }
    let per_class = per_class_mse(&model, test_set, &dev)?;
    let sizes = test_set.class_sizes();
    let n: usize = sizes.iter().sum();
    let overall = per_class
        .iter()
        .zip(&sizes)
        .map(|(m, &s)| m * s as f64)
        .sum::<f64>()
        / n as f64;
    Ok(Outcome {
        mse: overall,
        per_class,
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
    let mut out = String::new();
    out.push_str(&format!(
        "{name}: {} training samples {:?} per class {:?}, {epochs} epochs, seed {seed}\n",
        train_set.len(),
        train_set.class_sizes(),
        train_set.class_names()
    ));
    out.push_str(
        "| strategy | test MSE | per-class test MSE | alpha start -> end |\n|---|---|---|---|\n",
    );
    for (label, rule) in [
        ("learn2mix", Rule::Learn2Mix { gamma: 0.1 }),
        ("classical (stratified)", Rule::Fixed),
    ] {
        let Outcome {
            mse,
            per_class,
            start,
            end,
        } = train(rule, &train_set, &test_set, epochs, seed)?;
        let fmt = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.4}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        out.push_str(&format!(
            "| {label} | {mse:.4} | {} | {} -> {} |\n",
            fmt(&per_class),
            fmt(&start),
            fmt(&end)
        ));
    }
    use std::io::Write;
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(())
}
