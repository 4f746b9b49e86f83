//! Checks of every model: shapes, parameter counts equal to PyTorch's for the same
//! architecture, one optimiser step that lowers the loss, and layer behaviours.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_nn::{Optimizer, VarMap};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::*;

fn build(cfg: &ModelConfig, dtype: DType) -> (VarMap, BoxedModel) {
    let vm = VarMap::new();
    let vb = seeded_var_builder(&vm, ChaCha8Rng::seed_from_u64(0), dtype, &Device::Cpu);
    let model = cfg.build(vb, 0).expect("builds");
    (vm, model)
}

fn randn(shape: &[usize], seed: u64) -> Tensor {
    use rand::Rng;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).expect("tensor")
}

fn cross_entropy_step_lowers_loss(cfg: &ModelConfig, x: &Tensor, classes: usize) {
    let (vm, model) = build(cfg, DType::F32);
    let b = x.dim(0).expect("batch");
    let y = Tensor::from_vec(
        (0..b as u32)
            .map(|i| i % classes as u32)
            .collect::<Vec<_>>(),
        b,
        &Device::Cpu,
    )
    .expect("labels");
    // Evaluation-mode loss before and after, so dropout noise does not decide the test.
    let loss = |train: bool| {
        let logits = model.forward_t(x, train).expect("forward");
        candle_nn::loss::cross_entropy(&logits, &y).expect("loss")
    };
    let mut opt = candle_nn::AdamW::new(
        vm.all_vars(),
        candle_nn::ParamsAdamW {
            lr: 1e-3,
            weight_decay: 0.0,
            ..Default::default()
        },
    )
    .expect("optimiser");
    let before = loss(false).to_scalar::<f32>().expect("scalar");
    opt.backward_step(&loss(true)).expect("step");
    let after = loss(false).to_scalar::<f32>().expect("scalar");
    assert!(after < before, "{}: {after} >= {before}", cfg.name());
}

#[test]
fn lenet5_shapes_count_and_step() {
    let cfg = ModelConfig::LeNet5(LeNet5Config { classes: 10 });
    let (vm, model) = build(&cfg, DType::F32);
    // conv1 6*1*5*5+6 + conv2 16*6*5*5+16 + fc1 256*120+120 + fc2 120*84+84 + fc3 84*10+10
    assert_eq!(parameter_count(&vm), 44_426);
    let x = randn(&[4, 1, 28, 28], 1);
    assert_eq!(
        model.forward_t(&x, false).expect("forward").dims(),
        &[4, 10]
    );
    cross_entropy_step_lowers_loss(&cfg, &x, 10);
}

#[test]
fn lenet_cifar_shapes_count_dropout_and_step() {
    for (classes, count) in [(10, 541_094), (100, 586_184)] {
        // 3*16*9+16 + 16*32*9+32 + 32*64*9+64 + 1024*500+500 + 500*K+K
        let cfg = ModelConfig::LeNetCifar(LeNetCifarConfig {
            classes,
            dropout: 0.5,
        });
        let (vm, model) = build(&cfg, DType::F32);
        assert_eq!(parameter_count(&vm), count);
        let x = randn(&[3, 3, 32, 32], 2);
        let eval_a = model.forward_t(&x, false).expect("forward");
        let eval_b = model.forward_t(&x, false).expect("forward");
        let train = model.forward_t(&x, true).expect("forward");
        assert_eq!(eval_a.dims(), &[3, classes]);
        let diff = |a: &Tensor, b: &Tensor| {
            a.sub(b)
                .and_then(|d| d.abs())
                .and_then(|d| d.sum_all())
                .and_then(|d| d.to_scalar::<f32>())
                .expect("diff")
        };
        assert_eq!(diff(&eval_a, &eval_b), 0.0, "evaluation is deterministic");
        assert!(diff(&eval_a, &train) > 0.0, "dropout acts in training");
    }
    let cfg = ModelConfig::LeNetCifar(LeNetCifarConfig {
        classes: 10,
        dropout: 0.5,
    });
    cross_entropy_step_lowers_loss(&cfg, &randn(&[8, 3, 32, 32], 3), 10);
}

#[test]
fn autoencoder_shapes_count_and_step() {
    for (d, count) in [(784, 209_968), (3072, 797_984)] {
        // d*128+128 + 128*32+32 + 32*128+128 + 128*d+d
        let cfg = ModelConfig::Autoencoder(AutoencoderConfig::paper(d));
        let (vm, model) = build(&cfg, DType::F32);
        assert_eq!(parameter_count(&vm), count);
        let x = randn(&[2, d], 4).affine(0.5, 0.5).expect("to [0,1]");
        let y = model.forward_t(&x, false).expect("forward");
        assert_eq!(y.dims(), &[2, d]);
        let (lo, hi) = (
            y.min_all().and_then(|v| v.to_scalar::<f32>()).expect("min"),
            y.max_all().and_then(|v| v.to_scalar::<f32>()).expect("max"),
        );
        assert!(lo > 0.0 && hi < 1.0, "sigmoid output");
    }
    // Image-shaped input is flattened.
    let cfg = ModelConfig::Autoencoder(AutoencoderConfig::paper(784));
    let (vm, model) = build(&cfg, DType::F32);
    let x = randn(&[4, 1, 28, 28], 5)
        .affine(0.5, 0.5)
        .expect("to [0,1]");
    let mse = |m: &BoxedModel| {
        m.forward_t(&x, true)
            .and_then(|y| candle_nn::loss::mse(&y, &x.flatten_from(1)?))
            .expect("loss")
    };
    let mut opt = candle_nn::AdamW::new(
        vm.all_vars(),
        candle_nn::ParamsAdamW {
            lr: 1e-3,
            weight_decay: 0.0,
            ..Default::default()
        },
    )
    .expect("opt");
    let before = mse(&model).to_scalar::<f32>().expect("scalar");
    opt.backward_step(&mse(&model)).expect("step");
    assert!(mse(&model).to_scalar::<f32>().expect("scalar") < before);
}

fn tokens(rows: &[&[u32]]) -> Tensor {
    let l = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let mut v = Vec::new();
    for r in rows {
        v.extend_from_slice(r);
        v.extend(std::iter::repeat_n(0, l - r.len()));
    }
    Tensor::from_vec(v, (rows.len(), l), &Device::Cpu).expect("tokens")
}

#[test]
fn transformer_count_padding_and_step() {
    let vocab = 50;
    let cfg = ModelConfig::Transformer(TransformerConfig {
        max_len: 16,
        ..TransformerConfig::paper(vocab)
    });
    let (vm, model) = build(&cfg, DType::F32);
    // embedding V*64; in_proj 3*64*64+3*64; out_proj 64*64+64; linear1 64*128+128;
    // linear2 128*64+64; two LayerNorms 2*(64+64); fc1 64*32+32; fc2 32*2+2
    assert_eq!(parameter_count(&vm), vocab * 64 + 35_618);
    let short = tokens(&[&[5, 6, 7, 8]]);
    let padded = tokens(&[&[5, 6, 7, 8, 0, 0, 0, 0, 0, 0]]);
    let a = model
        .forward_t(&short, false)
        .expect("forward")
        .to_vec2::<f32>()
        .expect("vec");
    let b = model
        .forward_t(&padded, false)
        .expect("forward")
        .to_vec2::<f32>()
        .expect("vec");
    for (x, y) in a[0].iter().zip(&b[0]) {
        assert!(
            (x - y).abs() < 1e-5,
            "padding must not change the output: {a:?} vs {b:?}"
        );
    }
    let other = model
        .forward_t(&tokens(&[&[5, 6, 7, 9]]), false)
        .expect("forward")
        .to_vec2::<f32>()
        .expect("vec");
    assert_ne!(a, other, "real tokens do change it");
    let batch = tokens(&[&[2, 3, 4], &[9, 9, 9, 9, 9], &[11, 12], &[3, 30, 40, 41]]);
    cross_entropy_step_lowers_loss(&cfg, &batch, 2);
}

#[test]
fn transformer_gradients_agree_with_finite_differences() {
    let cfg = ModelConfig::Transformer(TransformerConfig {
        max_len: 8,
        dropout: 0.0,
        ..TransformerConfig::paper(20)
    });
    let (vm, model) = build(&cfg, DType::F64);
    let x = tokens(&[&[2, 3, 4, 5], &[7, 8]]);
    let loss = |m: &BoxedModel| {
        m.forward_t(&x, true)
            .and_then(|y| y.sqr()?.sum_all())
            .expect("loss")
    };
    let grads = loss(&model).backward().expect("backward");
    let vars = vm.data().lock().expect("lock").clone();
    for name in [
        "self_attn.in_proj_weight",
        "linear1.weight",
        "norm1.weight",
        "embedding.weight",
    ] {
        let var = &vars[name];
        let g = grads
            .get(var.as_tensor())
            .expect("gradient")
            .flatten_all()
            .and_then(|t| t.to_vec1::<f64>())
            .expect("vec");
        let base = var
            .as_tensor()
            .flatten_all()
            .and_then(|t| t.to_vec1::<f64>())
            .expect("vec");
        // A few entries with a non-trivial gradient (the embedding rows of tokens in use).
        let picks: Vec<usize> = (0..base.len())
            .filter(|&i| g[i].abs() > 1e-6)
            .step_by(97)
            .take(4)
            .collect();
        assert!(!picks.is_empty(), "{name} has gradients");
        for i in picks {
            let h = 1e-6;
            let at = |delta: f64| {
                let mut v = base.clone();
                v[i] += delta;
                var.set(&Tensor::from_vec(v, var.shape(), &Device::Cpu).expect("tensor"))
                    .expect("set");
                loss(&model).to_scalar::<f64>().expect("scalar")
            };
            let numeric = (at(h) - at(-h)) / (2.0 * h);
            var.set(&Tensor::from_vec(base.clone(), var.shape(), &Device::Cpu).expect("tensor"))
                .expect("reset");
            assert!(
                (numeric - g[i]).abs() < 1e-5 * (1.0 + g[i].abs()),
                "{name}[{i}]: {numeric} vs {}",
                g[i]
            );
        }
    }
}

#[test]
fn layer_norm_matches_the_definition_and_passes_gradients() {
    let vm = VarMap::new();
    let vb = seeded_var_builder(&vm, ChaCha8Rng::seed_from_u64(0), DType::F64, &Device::Cpu);
    let ln = layers::layer_norm(4, vb).expect("layer norm");
    let x = candle_core::Var::new(&[[1.0f64, 2.0, 3.0, 6.0]], &Device::Cpu).expect("var");
    let y = candle_nn::Module::forward(&ln, x.as_tensor()).expect("forward");
    // mean 3, variance 3.5: (x - 3) / sqrt(3.5 + 1e-5)
    let want: Vec<f64> = [1.0, 2.0, 3.0, 6.0]
        .iter()
        .map(|v| (v - 3.0) / (3.5f64 + 1e-5).sqrt())
        .collect();
    for (a, b) in y.to_vec2::<f64>().expect("vec")[0].iter().zip(&want) {
        assert!((a - b).abs() < 1e-12);
    }
    let w = Tensor::new(&[[1.0f64, -2.0, 0.5, 3.0]], &Device::Cpu).expect("weights");
    let grads = y
        .mul(&w)
        .and_then(|t| t.sum_all())
        .and_then(|t| t.backward())
        .expect("backward");
    let g = grads
        .get(x.as_tensor())
        .expect("input gradient")
        .to_vec2::<f64>()
        .expect("vec");
    assert!(
        g[0].iter().any(|v| v.abs() > 1e-3),
        "gradient reaches the input: {g:?}"
    );
}

#[test]
fn overlapping_max_pool_matches_candle_forward_and_has_gradients() {
    for (h, w) in [(112, 112), (7, 9), (8, 5)] {
        let x = randn(&[2, 3, h, w], 11).relu().expect("non-negative");
        let ours = layers::max_pool2d_overlapping(&x, 3, 2, 1).expect("pool");
        let reference = x
            .pad_with_zeros(2, 1, 1)
            .and_then(|t| t.pad_with_zeros(3, 1, 1))
            .and_then(|t| t.max_pool2d_with_stride(3, 2))
            .expect("candle pool");
        assert_eq!(ours.dims(), reference.dims(), "{h}x{w}");
        let diff = ours
            .sub(&reference)
            .and_then(|d| d.abs())
            .and_then(|d| d.max_all())
            .and_then(|d| d.to_scalar::<f32>())
            .expect("diff");
        assert_eq!(diff, 0.0, "{h}x{w}");
    }
    // Each window's maximum gets the gradient (a unique maximum per window here).
    let var = candle_core::Var::new(
        &[[[
            [0f32, 1., 2., 3.],
            [4., 5., 6., 7.],
            [8., 9., 10., 11.],
            [12., 13., 14., 15.],
        ]]],
        &Device::Cpu,
    )
    .expect("var");
    let y = layers::max_pool2d_overlapping(var.as_tensor(), 3, 2, 1).expect("pool");
    assert_eq!(
        y.flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .expect("vec"),
        vec![5., 7., 13., 15.]
    );
    let g = y.sum_all().and_then(|s| s.backward()).expect("backward");
    let g = g
        .get(var.as_tensor())
        .expect("gradient")
        .flatten_all()
        .and_then(|t| t.to_vec1::<f32>())
        .expect("vec");
    let mut want = vec![0f32; 16];
    for i in [5, 7, 13, 15] {
        want[i] = 1.0;
    }
    assert_eq!(g, want);
}

#[test]
fn resnet18_count_shape_and_batch_norm_modes() {
    let cfg = ModelConfig::ResNet18(ResNet18Config { classes: 10 });
    let (vm, model) = build(&cfg, DType::F32);
    // torchvision resnet18(num_classes=10): 11,689,512 - (512*1000+1000) + (512*10+10)
    assert_eq!(parameter_count(&vm), 11_181_642);
    let x = randn(&[2, 3, 64, 64], 6);
    let running = || {
        vm.data().lock().expect("lock")["bn1.running_mean"]
            .as_tensor()
            .to_vec1::<f32>()
            .expect("vec")
    };
    let start = running();
    assert_eq!(
        model.forward_t(&x, false).expect("forward").dims(),
        &[2, 10]
    );
    assert_eq!(
        running(),
        start,
        "evaluation leaves running statistics alone"
    );
    model.forward_t(&x, true).expect("forward");
    assert_ne!(running(), start, "training updates running statistics");
    cross_entropy_step_lowers_loss(&cfg, &randn(&[4, 3, 64, 64], 8), 10);
}

#[test]
fn checkpoints_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = ModelConfig::LeNet5(LeNet5Config { classes: 10 });
    let (vm, model) = build(&cfg, DType::F32);
    save_checkpoint(&vm, &cfg, dir.path()).expect("save");
    let (cfg2, vm2) = load_checkpoint(dir.path(), &Device::Cpu).expect("load");
    assert_eq!(cfg2, cfg);
    let model2 = cfg2
        .build(VarBuilder::from_varmap(&vm2, DType::F32, &Device::Cpu), 0)
        .expect("build");
    let x = randn(&[2, 1, 28, 28], 7);
    let a = model
        .forward_t(&x, false)
        .and_then(|t| t.to_vec2::<f32>())
        .expect("a");
    let b = model2
        .forward_t(&x, false)
        .and_then(|t| t.to_vec2::<f32>())
        .expect("b");
    assert_eq!(a, b);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names.len(), 2, "no temporary files left: {names:?}");
}

#[test]
fn invalid_configs_are_refused() {
    let vm = VarMap::new();
    let vb = || seeded_var_builder(&vm, ChaCha8Rng::seed_from_u64(0), DType::F32, &Device::Cpu);
    let e = ModelConfig::Transformer(TransformerConfig {
        heads: 3,
        ..TransformerConfig::paper(10)
    })
    .build(vb(), 0);
    assert!(matches!(e, Err(ModelError::InvalidConfig(_))));
    assert!(
        ModelConfig::LeNet5(LeNet5Config { classes: 0 })
            .build(vb(), 0)
            .is_err()
    );
    assert!(
        ModelConfig::LeNetCifar(LeNetCifarConfig {
            classes: 10,
            dropout: 1.5
        })
        .build(vb(), 0)
        .is_err()
    );
}
