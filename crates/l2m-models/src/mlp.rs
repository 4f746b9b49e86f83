//! A multilayer perceptron for tabular data: `d -> h1 -> ReLU -> ... -> out`.

use candle_core::Tensor;
use candle_nn::{Module, VarBuilder};
use serde::{Deserialize, Serialize};

use crate::{Linear, ModelError, Result, layers};

/// Sizes of the MLP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MlpConfig {
    /// Input features (0 in a configuration file: taken from the data).
    pub input_dim: usize,
    /// Hidden layer widths, in order (for example `[128, 64]`).
    pub hidden: Vec<usize>,
    /// Outputs: the number of classes, or 1 for regression (0: from the data).
    pub output_dim: usize,
}

/// `Linear -> ReLU` per hidden layer, then a linear output layer; parameters are
/// `layer{i}.{weight,bias}`. Deterministic, so [`candle_nn::ModuleT`] comes from
/// [`Module`].
#[derive(Debug, Clone)]
pub struct Mlp {
    hidden: Vec<Linear>,
    out: Linear,
}

impl Mlp {
    /// Builds the network.
    pub fn new(cfg: &MlpConfig, vb: VarBuilder) -> Result<Self> {
        if cfg.input_dim == 0 || cfg.output_dim == 0 || cfg.hidden.contains(&0) {
            return Err(ModelError::InvalidConfig(format!(
                "MLP sizes must be positive, got input {}, hidden {:?}, output {}",
                cfg.input_dim, cfg.hidden, cfg.output_dim
            )));
        }
        let mut hidden = Vec::with_capacity(cfg.hidden.len());
        let mut from = cfg.input_dim;
        for (i, &h) in cfg.hidden.iter().enumerate() {
            hidden.push(layers::linear(from, h, vb.pp(format!("layer{i}")))?);
            from = h;
        }
        let out = layers::linear(
            from,
            cfg.output_dim,
            vb.pp(format!("layer{}", cfg.hidden.len())),
        )?;
        Ok(Self { hidden, out })
    }
}

impl Module for Mlp {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        // Images or other shaped inputs are flattened per sample.
        let mut x = if xs.rank() > 2 {
            xs.flatten_from(1)?
        } else {
            xs.clone()
        };
        for layer in &self.hidden {
            x = layer.forward_relu(&x)?;
        }
        self.out.forward(&x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seeded_var_builder;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;
    use rand::SeedableRng;

    #[test]
    fn shapes_parameters_and_refusals() {
        let vm = VarMap::new();
        let vb = seeded_var_builder(
            &vm,
            rand_chacha::ChaCha8Rng::seed_from_u64(0),
            DType::F32,
            &Device::Cpu,
        );
        let cfg = MlpConfig {
            input_dim: 5,
            hidden: vec![8, 4],
            output_dim: 3,
        };
        let mlp = Mlp::new(&cfg, vb).expect("valid");
        let x = Tensor::zeros((2, 5), DType::F32, &Device::Cpu).expect("tensor");
        assert_eq!(mlp.forward(&x).expect("forward").dims(), &[2, 3]);
        // torch: 5*8+8 + 8*4+4 + 4*3+3 = 99
        let count: usize = vm.all_vars().iter().map(|v| v.elem_count()).sum();
        assert_eq!(count, 99);
        let vb = seeded_var_builder(
            &VarMap::new(),
            rand_chacha::ChaCha8Rng::seed_from_u64(0),
            DType::F32,
            &Device::Cpu,
        );
        let e = Mlp::new(
            &MlpConfig {
                hidden: vec![0],
                ..cfg
            },
            vb,
        )
        .expect_err("zero width");
        assert!(e.to_string().contains("MLP sizes must be positive"), "{e}");
    }
}
