//! Tasks: the per-sample loss a model is trained on and the metric it is judged by.

use candle_core::{D, DType, Tensor};
use serde::{Deserialize, Serialize};

use l2m_core::convergence::Direction;
use l2m_data::TaskKind;

use crate::Result;

/// The task of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    /// Squared error against a real-valued target; the metric is the test MSE.
    Regression,
    /// Cross-entropy against class labels; the metric is the test accuracy.
    Classification,
    /// Mean squared error between the input (in [0, 1]) and the output; the metric is the
    /// test MSE.
    Reconstruction,
}

impl Task {
    /// The task for a dataset's kind of targets.
    pub fn for_kind(kind: TaskKind) -> Self {
        match kind {
            TaskKind::Regression => Task::Regression,
            TaskKind::Classification => Task::Classification,
            TaskKind::Reconstruction => Task::Reconstruction,
        }
    }

    /// Per-sample losses, shape `[batch]`.
    ///
    /// - Regression: `output` `[batch, 1]` or `[batch]`, `target` `[batch]` f32;
    ///   `(output - target)^2`.
    /// - Classification: `output` logits `[batch, K]`, `target` `[batch]` u32 labels;
    ///   `-log softmax(output)[target]`.
    /// - Reconstruction: `output` `[batch, d]`, `target` `[batch, ...]` with `d` values;
    ///   the mean over `d` of `(output - target)^2`.
    pub fn per_sample_loss(&self, output: &Tensor, target: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Task::Regression => {
                let out = if output.rank() == 2 {
                    output.squeeze(1)?
                } else {
                    output.clone()
                };
                out.sub(target)?.sqr()?
            }
            Task::Classification => {
                let log_p = candle_nn::ops::log_softmax(output, D::Minus1)?;
                let idx = target.to_dtype(DType::U32)?.unsqueeze(1)?;
                log_p.gather(&idx, 1)?.squeeze(1)?.neg()?
            }
            Task::Reconstruction => l2m_models::ops::row_mse(output, target)?,
        })
    }

    /// Per-sample metric values whose mean is the reported metric: squared errors for
    /// regression and reconstruction (the loss itself), 1 for a correct prediction and 0
    /// otherwise for classification.
    pub fn per_sample_metric(
        &self,
        output: &Tensor,
        target: &Tensor,
        loss: &Tensor,
    ) -> Result<Tensor> {
        Ok(match self {
            Task::Classification => output
                .argmax(D::Minus1)?
                .eq(&target.to_dtype(DType::U32)?)?
                .to_dtype(DType::F32)?,
            _ => loss.clone(),
        })
    }

    /// The metric's name in tables.
    pub fn metric_name(&self) -> &'static str {
        match self {
            Task::Regression | Task::Reconstruction => "MSE",
            Task::Classification => "accuracy",
        }
    }

    /// Whether the metric improves downward.
    pub fn direction(&self) -> Direction {
        match self {
            Task::Regression | Task::Reconstruction => Direction::LowerIsBetter,
            Task::Classification => Direction::HigherIsBetter,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn squared_error_per_sample() {
        let out = Tensor::new(&[[1f32], [2.], [4.]], &Device::Cpu).expect("tensor");
        let y = Tensor::new(&[0f32, 2., 1.], &Device::Cpu).expect("tensor");
        let l = Task::Regression.per_sample_loss(&out, &y).expect("loss");
        assert_eq!(l.to_vec1::<f32>().expect("vec"), vec![1.0, 0.0, 9.0]);
    }

    #[test]
    fn cross_entropy_and_accuracy_per_sample() {
        // logits (0, ln 3): p = (0.25, 0.75)
        let out = Tensor::new(&[[0f32, 3f32.ln()], [0., 3f32.ln()]], &Device::Cpu).expect("tensor");
        let y = Tensor::new(&[1u32, 0], &Device::Cpu).expect("tensor");
        let l = Task::Classification
            .per_sample_loss(&out, &y)
            .expect("loss")
            .to_vec1::<f32>()
            .expect("vec");
        assert!((l[0] - (-(0.75f32).ln())).abs() < 1e-6 && (l[1] - (-(0.25f32).ln())).abs() < 1e-6);
        let loss = Tensor::new(&l[..], &Device::Cpu).expect("tensor");
        let m = Task::Classification
            .per_sample_metric(&out, &y, &loss)
            .expect("metric");
        assert_eq!(m.to_vec1::<f32>().expect("vec"), vec![1.0, 0.0]);
        // The mean matches candle's batch cross-entropy.
        let ce = candle_nn::loss::cross_entropy(&out, &y)
            .and_then(|c| c.to_scalar::<f32>())
            .expect("ce");
        assert!(((l[0] + l[1]) / 2.0 - ce).abs() < 1e-6);
    }

    #[test]
    fn reconstruction_is_the_mean_over_pixels() {
        let out = Tensor::new(&[[0.5f32, 0.5, 0.5, 0.5]], &Device::Cpu).expect("tensor");
        let x = Tensor::new(&[[[[0f32, 1.], [0.5, 0.5]]]], &Device::Cpu).expect("tensor");
        let l = Task::Reconstruction
            .per_sample_loss(&out, &x)
            .expect("loss");
        assert_eq!(l.to_vec1::<f32>().expect("vec"), vec![0.125]);
    }
}
