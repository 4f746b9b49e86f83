//! What the engine trains: a model, its parameters and its optimiser, built the same way
//! for every strategy of a seed.

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};

use l2m_core::{RngStream, seeded_rng};
use l2m_models::{BoxedModel, ModelConfig, perturb_parameters, seeded_var_builder};

use crate::optim::{Adam, AdamConfig};
use crate::{EngineError, ExperimentConfig, Result};

/// A model with its parameters and optimiser.
pub(crate) struct Trainable {
    pub(crate) varmap: VarMap,
    pub(crate) model: BoxedModel,
    pub(crate) opt: Adam,
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

/// A fresh model of `model` for `seed` (the same initial weights for every strategy), and
/// its optimiser.
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
        let vars = varmap.data().lock().map_err(|_| EngineError::Poisoned)?;
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
