//! Seeded parameter initialisation behind Candle's `VarBuilder`.

use std::sync::Mutex;

use candle_core::{DType, Device, Shape, Tensor, Var};
use candle_nn::init::{FanInOut, Init, NormalOrUniform};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{VarBuilder, VarMap};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// A `VarMap` backend that creates missing parameters from a seeded ChaCha stream instead
/// of Candle's global (unseedable on CPU) generator. Existing parameters are returned as
/// they are, so the same map can be reused to rebuild a model.
struct SeededInit {
    varmap: VarMap,
    rng: Mutex<ChaCha8Rng>,
}

/// A `VarBuilder` over `varmap` whose new parameters are drawn from `rng` on the host, in
/// the order the model asks for them: the same model, seed and stream give the same
/// parameters on every device.
pub fn seeded_var_builder(
    varmap: &VarMap,
    rng: ChaCha8Rng,
    dtype: DType,
    device: &Device,
) -> VarBuilder<'static> {
    VarBuilder::from_backend(
        Box::new(SeededInit {
            varmap: varmap.clone(),
            rng: Mutex::new(rng),
        }),
        dtype,
        device.clone(),
    )
}

fn sample(init: Init, shape: &Shape, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let n = shape.elem_count();
    let uniform = |lo: f64, up: f64, rng: &mut ChaCha8Rng| -> Vec<f32> {
        (0..n).map(|_| rng.random_range(lo..up) as f32).collect()
    };
    let normal = |mean: f64, std: f64, rng: &mut ChaCha8Rng| gaussian(n, mean, std, rng);
    match init {
        Init::Const(v) => vec![v as f32; n],
        Init::Uniform { lo, up } if lo < up => uniform(lo, up, rng),
        Init::Uniform { lo, .. } => vec![lo as f32; n],
        Init::Randn { mean, stdev } => normal(mean, stdev, rng),
        Init::Kaiming {
            dist,
            fan,
            non_linearity,
        } => {
            let fan = match fan {
                FanInOut::FanIn | FanInOut::FanOut => fan.for_shape(shape),
            };
            let std = non_linearity.gain() / (fan.max(1) as f64).sqrt();
            match dist {
                NormalOrUniform::Uniform => {
                    let bound = 3f64.sqrt() * std;
                    uniform(-bound, bound, rng)
                }
                NormalOrUniform::Normal => normal(0.0, std, rng),
            }
        }
    }
}

/// `n` draws from N(`mean`, `std`^2): Box-Muller on two open-interval uniforms (no extra
/// dependency, exact in law).
fn gaussian(n: usize, mean: f64, std: f64, rng: &mut ChaCha8Rng) -> Vec<f32> {
    (0..n)
        .map(|_| {
            let u1: f64 = 1.0 - rng.random::<f64>();
            let u2: f64 = rng.random::<f64>();
            (mean + std * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
        })
        .collect()
}

/// Adds Gaussian noise N(0, `std`^2) to every trainable parameter of `varmap` (buffers
/// such as batch-norm statistics are left alone), drawn from `rng` in name order: the same
/// parameters, `std` and generator give the same result on every device.
///
/// The authors' reconstruction runs start from one initialisation perturbed this way.
pub fn perturb_parameters(
    varmap: &VarMap,
    std: f64,
    rng: &mut ChaCha8Rng,
) -> candle_core::Result<()> {
    let vars = varmap
        .data()
        .lock()
        .map_err(|_| candle_core::Error::Msg("parameter map lock poisoned".into()))?;
    let mut names: Vec<&String> = vars
        .keys()
        .filter(|n| crate::layers::is_parameter(n))
        .collect();
    names.sort();
    for name in names {
        let var = &vars[name];
        if !var.dtype().is_float() {
            continue;
        }
        let noise = gaussian(var.elem_count(), 0.0, std, rng);
        let noise = Tensor::from_vec(noise, var.shape(), var.device())?.to_dtype(var.dtype())?;
        var.set(&(var.as_tensor() + noise)?)?;
    }
    Ok(())
}

impl SimpleBackend for SeededInit {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        init: Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let mut vars = self
            .varmap
            .data()
            .lock()
            .map_err(|_| candle_core::Error::Msg("parameter map lock poisoned".into()))?;
        if let Some(var) = vars.get(name) {
            if var.shape() != &shape {
                candle_core::bail!("shape mismatch on {name}: {shape:?} <> {:?}", var.shape());
            }
            return Ok(var.as_tensor().clone());
        }
        let values = {
            let mut rng = self
                .rng
                .lock()
                .map_err(|_| candle_core::Error::Msg("rng lock poisoned".into()))?;
            sample(init, &shape, &mut rng)
        };
        let tensor = Tensor::from_vec(values, shape, dev)?.to_dtype(dtype)?;
        let var = Var::from_tensor(&tensor)?;
        let out = var.as_tensor().clone();
        vars.insert(name.to_string(), var);
        Ok(out)
    }

    fn get_unchecked(
        &self,
        name: &str,
        _dtype: DType,
        _dev: &Device,
    ) -> candle_core::Result<Tensor> {
        candle_core::bail!("parameter {name} must be created with a shape")
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.varmap
            .data()
            .lock()
            .map(|v| v.contains_key(name))
            .unwrap_or(false)
    }
}

/// The sum of every parameter value and of their squares, in name order: two runs that
/// start from the same parameters have the same checksum (recorded with each run).
pub fn parameter_checksum(varmap: &VarMap) -> candle_core::Result<(f64, f64)> {
    let vars = varmap
        .data()
        .lock()
        .map_err(|_| candle_core::Error::Msg("parameter map lock poisoned".into()))?;
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    let (mut sum, mut sq) = (0.0, 0.0);
    for name in names {
        let t = vars[name].as_tensor().to_dtype(DType::F64)?.flatten_all()?;
        sum += t.sum_all()?.to_scalar::<f64>()?;
        sq += t.sqr()?.sum_all()?.to_scalar::<f64>()?;
    }
    Ok((sum, sq))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn build(seed: u64) -> (VarMap, Tensor) {
        let vm = VarMap::new();
        let vb = seeded_var_builder(
            &vm,
            ChaCha8Rng::seed_from_u64(seed),
            DType::F32,
            &Device::Cpu,
        );
        let w = vb
            .get_with_hints((64, 10), "w", Init::Uniform { lo: -0.5, up: 0.5 })
            .expect("created");
        (vm, w)
    }

    #[test]
    fn same_seed_same_parameters() {
        let (_, a) = build(1);
        let (_, b) = build(1);
        let (_, c) = build(2);
        let diff = |x: &Tensor, y: &Tensor| {
            x.sub(y)
                .and_then(|d| d.abs())
                .and_then(|d| d.sum_all())
                .and_then(|d| d.to_scalar::<f32>())
                .expect("tensor ops")
        };
        assert_eq!(diff(&a, &b), 0.0);
        assert!(diff(&a, &c) > 0.0);
    }

    #[test]
    fn draws_follow_the_requested_law() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let shape = Shape::from((200, 100));
        let u = sample(Init::Uniform { lo: -0.1, up: 0.1 }, &shape, &mut rng);
        assert!(u.iter().all(|&x| (-0.1..0.1).contains(&x)));
        let mean = u.iter().map(|&x| x as f64).sum::<f64>() / u.len() as f64;
        assert!(mean.abs() < 0.002);
        let n = sample(
            Init::Randn {
                mean: 1.0,
                stdev: 2.0,
            },
            &shape,
            &mut rng,
        );
        let m = n.iter().map(|&x| x as f64).sum::<f64>() / n.len() as f64;
        let v = n.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / n.len() as f64;
        assert!(
            (m - 1.0).abs() < 0.05 && (v.sqrt() - 2.0).abs() < 0.05,
            "mean {m} std {}",
            v.sqrt()
        );
        assert_eq!(sample(Init::Const(3.0), &shape, &mut rng)[7], 3.0);
    }

    #[test]
    fn existing_parameters_are_reused_and_checked() {
        let (vm, w) = build(3);
        let vb = seeded_var_builder(&vm, ChaCha8Rng::seed_from_u64(99), DType::F32, &Device::Cpu);
        let again = vb
            .get_with_hints((64, 10), "w", Init::Const(0.0))
            .expect("exists");
        assert_eq!(
            again
                .sum_all()
                .and_then(|s| s.to_scalar::<f32>())
                .expect("sum"),
            w.sum_all().and_then(|s| s.to_scalar::<f32>()).expect("sum")
        );
        assert!(vb.get_with_hints((3, 3), "w", Init::Const(0.0)).is_err());
        let (s1, q1) = parameter_checksum(&vm).expect("checksum");
        let (s2, q2) = parameter_checksum(&build(3).0).expect("checksum");
        assert_eq!((s1, q1), (s2, q2));
    }
}
