//! Group DRO (Sagawa et al. 2020, the loss-reweighting form of their `loss.py`): classical
//! batches; each step, the per-class mean losses of the batch move the class weights by
//! exponentiated gradient, `q_g <- q_g exp(eta (L_g + C / sqrt(n_g)))`, normalised, and the
//! step minimises `sum_g q_g L_g`.

use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};

use l2m_core::{ExponentiatedGradient, MixingRule, Mixture};

use super::batches::ShuffledBatches;
use super::classical::shuffled;
use super::{Setup, Strategy, StrategyOptions, state};
use crate::{EngineError, Result};

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

/// Options of Group DRO.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupDroOptions {
    /// Step size of the weights' exponentiated-gradient update (0.01, their default).
    pub eta: f64,
    /// Generalisation adjustment `C`: `C / sqrt(n_g)` is added to each group's loss before
    /// the update (`n_g` its training samples); 0 (the default) turns it off.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub adjustment: f64,
}

impl StrategyOptions for GroupDroOptions {
    fn defaults() -> Self {
        Self {
            eta: 0.01,
            adjustment: 0.0,
        }
    }

    fn validate(&self) -> Result<()> {
        ExponentiatedGradient::new(self.eta)?;
        if !(self.adjustment.is_finite() && self.adjustment >= 0.0) {
            return Err(l2m_core::CoreError::InvalidParameter {
                name: "adjustment",
                value: self.adjustment,
                expected: "a finite non-negative constant",
            }
            .into());
        }
        Ok(())
    }

    fn build(&self, setup: &Setup<'_>) -> Result<Box<dyn Strategy>> {
        let sizes = setup.train.class_sizes();
        let k = sizes.len();
        Ok(Box::new(GroupDro {
            batches: shuffled(setup.train, setup)?,
            rule: ExponentiatedGradient::new(self.eta)?,
            adjust: sizes
                .iter()
                .map(|&n| {
                    if n == 0 {
                        0.0
                    } else {
                        self.adjustment / (n as f64).sqrt()
                    }
                })
                .collect(),
            q: Mixture::uniform(k)?,
        }))
    }
}

/// Classical batches with Group DRO's loss weights.
pub(crate) struct GroupDro {
    batches: ShuffledBatches,
    rule: ExponentiatedGradient,
    adjust: Vec<f64>,
    /// The class weights.
    q: Mixture,
}

#[derive(Serialize, Deserialize)]
struct GroupDroState {
    batches: serde_json::Value,
    q: Vec<f64>,
}

impl GroupDro {
    /// The per-class mean losses of a batch (differentiable; 0 for a class absent from it).
    fn class_means(per_sample: &Tensor, classes: &Tensor, k: usize) -> Result<Tensor> {
        let dev = per_sample.device();
        let per_sample = per_sample.to_dtype(DType::F32)?;
        let sums = Tensor::zeros(k, DType::F32, dev)?.index_add(classes, &per_sample, 0)?;
        let ones = Tensor::ones(per_sample.dims1()?, DType::F32, dev)?;
        let counts = Tensor::zeros(k, DType::F32, dev)?
            .index_add(classes, &ones, 0)?
            .maximum(1f64)?;
        Ok(sums.div(&counts)?)
    }
}

impl Strategy for GroupDro {
    fn data_proportions(&self) -> bool {
        true
    }

    fn data_parallel(&self) -> bool {
        false
    }

    fn batch_loss(&mut self, per_sample: &Tensor, classes: &Tensor) -> Result<Tensor> {
        let k = self.q.len();
        let means = Self::class_means(per_sample, classes, k)?;
        let observed: Vec<f64> = means
            .detach()
            .to_vec1::<f32>()?
            .into_iter()
            .zip(&self.adjust)
            .map(|(l, a)| f64::from(l) + a)
            .collect();
        if let Some(bad) = observed.iter().find(|v| !v.is_finite()) {
            return Err(EngineError::Strategy {
                strategy: "group-dro".into(),
                message: format!("a class loss of {bad} cannot move the weights"),
            });
        }
        self.q = self.rule.step(&self.q, &observed)?;
        let q: Vec<f32> = self.q.as_slice().iter().map(|&v| v as f32).collect();
        let q = Tensor::from_vec(q, k, per_sample.device())?;
        Ok(means.mul(&q)?.sum_all()?.to_dtype(per_sample.dtype())?)
    }

    fn begin_epoch(&mut self) -> Result<()> {
        self.batches.begin_epoch()
    }

    fn next_batch(&mut self, out: &mut Vec<u32>) -> Result<()> {
        self.batches.next_batch(out)
    }

    fn alpha(&self) -> &Mixture {
        &self.batches.alpha
    }

    fn loss_weights(&self) -> Option<Vec<f64>> {
        Some(self.q.as_slice().to_vec())
    }

    fn save(&self) -> Result<serde_json::Value> {
        serde_json::to_value(GroupDroState {
            batches: self.batches.save_with(None)?,
            q: self.q.as_slice().to_vec(),
        })
        .map_err(|e| EngineError::Checkpoint(e.to_string()))
    }

    fn restore(&mut self, saved: serde_json::Value) -> Result<()> {
        let s: GroupDroState = state("group-dro", saved)?;
        self.batches.restore_with("group-dro", s.batches)?;
        self.q = Mixture::restored(s.q)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use l2m_core::ShuffledSampler;

    /// Two steps on a batch with class means (1.5, 3.5), eta 1, no adjustment, by hand:
    /// q1 = (1, e^2) / (1 + e^2), q2 = (1, e^4) / (1 + e^4); the loss is sum_g q_g L_g and
    /// its gradient reaches every sample with weight q_g / n_g.
    #[test]
    fn two_steps_by_hand() {
        let dev = Device::Cpu;
        let mut g = GroupDro {
            batches: ShuffledBatches {
                sampler: ShuffledSampler::new(vec![0, 1, 2, 3], 0).expect("sampler"),
                batch_size: 4,
                alpha: Mixture::uniform(2).expect("alpha"),
            },
            rule: ExponentiatedGradient::new(1.0).expect("eta"),
            adjust: vec![0.0, 0.0],
            q: Mixture::uniform(2).expect("q"),
        };
        let x = candle_core::Var::from_vec(vec![1f32, 2.0, 3.0, 4.0], 4, &dev).expect("x");
        let classes = Tensor::from_vec(vec![0u32, 0, 1, 1], 4, &dev).expect("classes");
        let e2 = 2f64.exp();
        let loss = g.batch_loss(x.as_tensor(), &classes).expect("loss");
        let q1 = [1.0 / (1.0 + e2), e2 / (1.0 + e2)];
        for (a, b) in g.q.as_slice().iter().zip(q1) {
            assert!((a - b).abs() < 1e-12, "{:?}", g.q);
        }
        let want = 1.5 * q1[0] + 3.5 * q1[1];
        let got = f64::from(loss.to_scalar::<f32>().expect("scalar"));
        assert!((got - want).abs() < 1e-5, "{got} {want}");
        let grads = loss.backward().expect("backward");
        let dx: Vec<f32> = grads.get(&x).expect("grad").to_vec1().expect("dx");
        for (i, d) in dx.iter().enumerate() {
            let w = q1[i / 2] / 2.0;
            assert!((f64::from(*d) - w).abs() < 1e-6, "{dx:?}");
        }
        g.batch_loss(x.as_tensor(), &classes).expect("second");
        let e4 = 4f64.exp();
        for (a, b) in
            g.q.as_slice()
                .iter()
                .zip([1.0 / (1.0 + e4), e4 / (1.0 + e4)])
        {
            assert!((a - b).abs() < 1e-12, "{:?}", g.q);
        }
        // The adjustment C / sqrt(n_g) favours the small group.
        let opts = GroupDroOptions {
            eta: 1.0,
            adjustment: 2.0,
        };
        opts.validate().expect("valid");
        assert!(
            GroupDroOptions {
                eta: 0.0,
                adjustment: 0.0
            }
            .validate()
            .is_err()
        );
    }
}
