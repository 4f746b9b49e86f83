//! Tasks: the per-sample loss a model is trained on and the metric it is judged by.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use l2m_core::convergence::Direction;
use l2m_data::TaskKind;

use crate::{EngineError, Result};

/// The task of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    /// Squared error against a real-valued target; the metric is the test MSE.
    Regression,
}

impl Task {
    /// The task for a dataset's kind of targets.
    pub fn for_kind(kind: TaskKind) -> Result<Self> {
        match kind {
            TaskKind::Regression => Ok(Task::Regression),
            other => Err(EngineError::Config(format!(
                "the {other:?} task is not supported by this engine yet (regression only)"
            ))),
        }
    }

    /// Per-sample losses, shape `[batch]`, from model outputs and targets.
    ///
    /// Regression: `output` is `[batch, 1]` or `[batch]`, `target` `[batch]`;
    /// the loss is `(output - target)^2`.
    pub fn per_sample_loss(&self, output: &Tensor, target: &Tensor) -> Result<Tensor> {
        match self {
            Task::Regression => {
                let out = if output.rank() == 2 {
                    output.squeeze(1)?
                } else {
                    output.clone()
                };
                Ok(out.sub(target)?.sqr()?)
            }
        }
    }

    /// The metric's name in tables.
    pub fn metric_name(&self) -> &'static str {
        match self {
            Task::Regression => "MSE",
        }
    }

    /// Whether the metric improves downward.
    pub fn direction(&self) -> Direction {
        match self {
            Task::Regression => Direction::LowerIsBetter,
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
    fn unsupported_task_is_a_config_error() {
        assert!(matches!(
            Task::for_kind(TaskKind::Classification),
            Err(EngineError::Config(_))
        ));
    }
}
