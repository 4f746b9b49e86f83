//! The fully connected regression network of the paper: `d -> 64 -> ReLU -> 1`.

use candle_core::Tensor;
use candle_nn::{Module, VarBuilder};
use serde::{Deserialize, Serialize};

use crate::{Linear, ModelError, Result, layers};

/// Sizes of the FC network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FcConfig {
    /// Input features `d`.
    pub input_dim: usize,
    /// Hidden units (64 in the paper).
    pub hidden: usize,
    /// Outputs (1 for regression).
    pub output_dim: usize,
}

impl FcConfig {
    /// The paper's regression network for `input_dim` features: `d -> 64 -> 1`.
    pub fn paper(input_dim: usize) -> Self {
        Self {
            input_dim,
            hidden: 64,
            output_dim: 1,
        }
    }
}

/// `fc1 -> ReLU -> fc2` (no stochastic layer, so [`candle_nn::ModuleT`] comes from
/// Candle's blanket implementation over [`Module`]); input `[batch, input_dim]`, output `[batch, output_dim]`.
#[derive(Debug, Clone)]
pub struct Fc {
    fc1: Linear,
    fc2: Linear,
}

impl Fc {
    /// Builds the network; parameters are `fc1.{weight,bias}` and `fc2.{weight,bias}`.
    pub fn new(cfg: &FcConfig, vb: VarBuilder) -> Result<Self> {
        if cfg.input_dim == 0 || cfg.hidden == 0 || cfg.output_dim == 0 {
            return Err(ModelError::InvalidConfig(format!(
                "FC sizes must be positive, got {}-{}-{}",
                cfg.input_dim, cfg.hidden, cfg.output_dim
            )));
        }
        Ok(Self {
            fc1: layers::linear(cfg.input_dim, cfg.hidden, vb.pp("fc1"))?,
            fc2: layers::linear(cfg.hidden, cfg.output_dim, vb.pp("fc2"))?,
        })
    }
}

impl Module for Fc {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        self.fc2.forward(&self.fc1.forward_relu(xs)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seeded_var_builder;
    use candle_core::{DType, Device};
    use candle_nn::{Optimizer, VarMap};
    use l2m_test_rng::rng;

    mod l2m_test_rng {
        use rand::SeedableRng;
        pub fn rng(seed: u64) -> rand_chacha::ChaCha8Rng {
            rand_chacha::ChaCha8Rng::seed_from_u64(seed)
        }
    }

    #[test]
    fn shapes_and_parameter_count() {
        let vm = VarMap::new();
        let vb = seeded_var_builder(&vm, rng(0), DType::F32, &Device::Cpu);
        let fc = Fc::new(&FcConfig::paper(10), vb).expect("valid");
        let x = Tensor::zeros((7, 10), DType::F32, &Device::Cpu).expect("tensor");
        assert_eq!(fc.forward(&x).expect("forward").dims(), &[7, 1]);
        // torch: sum(p.numel() for p in nn.Sequential(nn.Linear(10,64), nn.ReLU(), nn.Linear(64,1)).parameters())
        // = 10*64 + 64 + 64*1 + 1 = 769
        let count: usize = vm.all_vars().iter().map(|v| v.elem_count()).sum();
        assert_eq!(count, 769);
        // PyTorch's default bound 1/sqrt(fan_in).
        let w = vm.data().lock().expect("lock")["fc1.weight"]
            .as_tensor()
            .clone();
        let max = w
            .abs()
            .and_then(|a| a.max_all())
            .and_then(|m| m.to_scalar::<f32>())
            .expect("max");
        assert!(max <= 1.0 / 10f32.sqrt() && max > 0.25);
    }

    #[test]
    fn one_adam_step_lowers_the_loss() {
        let dev = Device::Cpu;
        let vm = VarMap::new();
        let fc = Fc::new(
            &FcConfig::paper(3),
            seeded_var_builder(&vm, rng(1), DType::F32, &dev),
        )
        .expect("valid");
        let x = Tensor::new(&[[1f32, 2., 3.], [0., -1., 0.5], [2., 2., 2.]], &dev).expect("tensor");
        let y = Tensor::new(&[[1f32], [-1.], [0.5]], &dev).expect("tensor");
        let mse = |fc: &Fc| {
            fc.forward(&x)
                .and_then(|p| candle_nn::loss::mse(&p, &y))
                .expect("loss")
        };
        let mut opt = candle_nn::AdamW::new(
            vm.all_vars(),
            candle_nn::ParamsAdamW {
                lr: 1e-2,
                weight_decay: 0.0,
                ..Default::default()
            },
        )
        .expect("optimiser");
        let before = mse(&fc).to_scalar::<f32>().expect("scalar");
        opt.backward_step(&mse(&fc)).expect("step");
        let after = mse(&fc).to_scalar::<f32>().expect("scalar");
        assert!(after < before, "{after} >= {before}");
    }

    #[test]
    fn zero_sizes_are_rejected() {
        let vm = VarMap::new();
        let vb = seeded_var_builder(&vm, rng(0), DType::F32, &Device::Cpu);
        let cfg = FcConfig {
            input_dim: 0,
            hidden: 64,
            output_dim: 1,
        };
        assert!(matches!(
            Fc::new(&cfg, vb),
            Err(ModelError::InvalidConfig(_))
        ));
    }
}
