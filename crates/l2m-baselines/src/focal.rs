//! Class-balanced focal loss: `FL = - w_y (1 - p_y)^g log p_y`.

use candle_core::{D, DType, Device, Tensor};

use crate::{BaselineError, Result};

/// Class weights proportional to `1 / alpha*_i` (inverse class frequency), normalised to
/// sum to the number of classes `K` (so balanced data gives weight 1 everywhere).
pub fn inverse_frequency_weights(class_sizes: &[usize]) -> Result<Vec<f64>> {
    if class_sizes.is_empty() {
        return Err(BaselineError::InvalidParameter {
            what: "class sizes",
            reason: "at least one class is needed".into(),
        });
    }
    if let Some(i) = class_sizes.iter().position(|&n| n == 0) {
        return Err(BaselineError::InvalidParameter {
            what: "class sizes",
            reason: format!("class {i} is empty; inverse-frequency weights need every class"),
        });
    }
    let inv: Vec<f64> = class_sizes.iter().map(|&n| 1.0 / n as f64).collect();
    let total: f64 = inv.iter().sum();
    let k = class_sizes.len() as f64;
    Ok(inv.iter().map(|w| w * k / total).collect())
}

/// The focal loss of the paper's focal-training baseline, per sample.
#[derive(Debug, Clone)]
pub struct FocalLoss {
    gamma: f64,
    weights: Tensor,
}

impl FocalLoss {
    /// Focusing parameter `gamma >= 0` (2 in the paper) and one weight per class.
    pub fn new(gamma: f64, class_weights: &[f64], device: &Device) -> Result<Self> {
        if !(gamma.is_finite() && gamma >= 0.0) {
            return Err(BaselineError::InvalidParameter {
                what: "focal gamma",
                reason: format!("expected a finite number >= 0, got {gamma}"),
            });
        }
        if let Some(w) = class_weights
            .iter()
            .find(|w| !(w.is_finite() && **w >= 0.0))
        {
            return Err(BaselineError::InvalidParameter {
                what: "focal class weight",
                reason: format!("expected finite weights >= 0, got {w}"),
            });
        }
        Ok(Self {
            gamma,
            weights: Tensor::from_slice(class_weights, class_weights.len(), device)?,
        })
    }

    /// The paper's setting: `gamma = 2`, inverse-frequency weights from `class_sizes`.
    pub fn paper(class_sizes: &[usize], device: &Device) -> Result<Self> {
        Self::new(2.0, &inverse_frequency_weights(class_sizes)?, device)
    }

    /// Per-sample losses `[batch]` from `logits` `[batch, K]` (any float dtype) and
    /// `targets` `[batch]` (u32 class indices). The mean over the batch is the training
    /// loss.
    pub fn per_sample(&self, logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
        let dtype = logits.dtype();
        let log_p = candle_nn::ops::log_softmax(logits, D::Minus1)?;
        let idx = targets.to_dtype(DType::U32)?.unsqueeze(1)?;
        let log_pt = log_p.gather(&idx, 1)?.squeeze(1)?;
        let pt = log_pt.exp()?;
        let modulator = if self.gamma == 0.0 {
            pt.ones_like()?
        } else {
            // (1 - p)^g, clamped at 0 so that rounding (p slightly above 1) gives no NaN.
            pt.affine(-1.0, 1.0)?.clamp(0.0, 1.0)?.powf(self.gamma)?
        };
        let w = self
            .weights
            .to_dtype(dtype)?
            .index_select(&targets.to_dtype(DType::U32)?, 0)?;
        Ok(w.mul(&modulator)?.mul(&log_pt)?.neg()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev() -> Device {
        Device::Cpu
    }

    #[test]
    fn weights_are_inverse_frequency_summing_to_k() {
        let w = inverse_frequency_weights(&[100, 300]).expect("valid");
        // 1/100 : 1/300 = 3 : 1, scaled to sum 2 -> 1.5, 0.5
        assert!((w[0] - 1.5).abs() < 1e-12 && (w[1] - 0.5).abs() < 1e-12);
        let balanced = inverse_frequency_weights(&[7, 7, 7]).expect("valid");
        assert!(balanced.iter().all(|w| (w - 1.0).abs() < 1e-12));
        assert!(inverse_frequency_weights(&[1, 0]).is_err());
        assert!(inverse_frequency_weights(&[]).is_err());
    }

    #[test]
    fn value_computed_by_hand() {
        // logits (0, ln 3) -> p = (0.25, 0.75). Target 1, g = 2, w = 1:
        // FL = -(1 - 0.75)^2 ln 0.75 = 0.0625 * 0.2876820724517809 = 0.017980129528236306
        // Target 0, weight 2: FL = -2 (0.75)^2 ln 0.25 = 2 * 0.5625 * 1.3862943611198906
        let logits = Tensor::new(&[[0.0f64, 3f64.ln()], [0.0, 3f64.ln()]], &dev()).expect("t");
        let targets = Tensor::new(&[1u32, 0], &dev()).expect("t");
        let fl = FocalLoss::new(2.0, &[2.0, 1.0], &dev()).expect("valid");
        let v = fl
            .per_sample(&logits, &targets)
            .expect("loss")
            .to_vec1::<f64>()
            .expect("vec");
        assert!((v[0] - 0.017980129528236306).abs() < 1e-12, "{}", v[0]);
        assert!(
            (v[1] - 2.0 * 0.5625 * 1.3862943611198906).abs() < 1e-12,
            "{}",
            v[1]
        );
    }

    #[test]
    fn equals_cross_entropy_without_focusing_or_weights() {
        let logits = Tensor::new(
            &[[1.0f32, -2.0, 0.5], [0.1, 0.2, 0.3], [3.0, 0.0, -1.0]],
            &dev(),
        )
        .expect("t");
        let targets = Tensor::new(&[2u32, 0, 0], &dev()).expect("t");
        let fl = FocalLoss::new(0.0, &[1.0, 1.0, 1.0], &dev()).expect("valid");
        let mean = fl
            .per_sample(&logits, &targets)
            .and_then(|l| Ok(l.mean_all()?))
            .and_then(|m| Ok(m.to_scalar::<f32>()?))
            .expect("focal");
        let ce = candle_nn::loss::cross_entropy(&logits, &targets)
            .and_then(|c| c.to_scalar::<f32>())
            .expect("ce");
        assert!((mean - ce).abs() < 1e-6, "{mean} vs {ce}");
    }

    #[test]
    fn gradient_agrees_with_finite_differences() {
        let base = [[0.3f64, -1.2, 0.7], [2.0, 0.1, -0.4]];
        let targets = Tensor::new(&[1u32, 0], &dev()).expect("t");
        let fl = FocalLoss::new(2.0, &[0.5, 2.0, 0.5], &dev()).expect("valid");
        let loss_at = |x: &[[f64; 3]; 2]| -> f64 {
            let t = Tensor::new(x, &dev()).expect("t");
            fl.per_sample(&t, &targets)
                .and_then(|l| Ok(l.sum_all()?.to_scalar::<f64>()?))
                .expect("loss")
        };
        let var = candle_core::Var::new(&base, &dev()).expect("var");
        let loss = fl
            .per_sample(var.as_tensor(), &targets)
            .and_then(|l| Ok(l.sum_all()?))
            .expect("loss");
        let grads = loss.backward().expect("backward");
        let g = grads
            .get(var.as_tensor())
            .expect("gradient")
            .to_vec2::<f64>()
            .expect("vec");
        let h = 1e-6;
        for r in 0..2 {
            for c in 0..3 {
                let mut plus = base;
                let mut minus = base;
                plus[r][c] += h;
                minus[r][c] -= h;
                let numeric = (loss_at(&plus) - loss_at(&minus)) / (2.0 * h);
                assert!(
                    (numeric - g[r][c]).abs() < 1e-6,
                    "[{r}][{c}]: {numeric} vs {}",
                    g[r][c]
                );
            }
        }
    }

    #[test]
    fn invalid_parameters_are_named() {
        let e = FocalLoss::new(-1.0, &[1.0], &dev()).expect_err("gamma");
        assert!(e.to_string().contains("focal gamma"));
        let e = FocalLoss::new(2.0, &[f64::NAN], &dev()).expect_err("weight");
        assert!(e.to_string().contains("focal class weight"));
    }
}
