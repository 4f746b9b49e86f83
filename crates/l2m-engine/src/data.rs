//! A dataset's sample store on the training device, uploaded once.

use candle_core::{DType, Device, Tensor};

use l2m_data::{ClassDataset, Features, Targets};

use crate::{EngineError, Result, Task};

/// Features, targets and classes of a whole sample store as device tensors; batches are
/// gathered with `index_select`, so nothing per class is copied.
pub(crate) struct DeviceData {
    features: Tensor,
    /// `None` for reconstruction: the target is the input.
    targets: Option<Tensor>,
    /// For pixel storage: per-channel `(mean, std)` shaped to broadcast over a batch.
    normalise: Option<(Tensor, Tensor)>,
    classes: Tensor,
    classes_host: Vec<u32>,
    device: Device,
}

/// One batch on the device.
pub(crate) struct Batch {
    pub x: Tensor,
    pub y: Tensor,
    pub classes: Tensor,
}

impl DeviceData {
    /// Uploads the store; the task decides the targets (labels, real values, or the input).
    pub fn upload(dataset: &ClassDataset, task: Task, device: &Device) -> Result<Self> {
        let s = dataset.samples();
        let mut shape = vec![s.len()];
        shape.extend_from_slice(s.sample_shape());
        let (features, normalise) = match s.features() {
            Features::F32(v) => (Tensor::from_slice(v, shape, device)?, None),
            Features::Tokens(v) => (Tensor::from_slice(v, shape, device)?, None),
            Features::Pixels { data, mean, std } => {
                // [1, C, 1, 1, ...] so that it broadcasts over [B, C, H, W].
                let mut bshape = vec![1, mean.len()];
                bshape.extend(std::iter::repeat_n(
                    1,
                    s.sample_shape().len().saturating_sub(1),
                ));
                let m = Tensor::from_slice(mean, bshape.clone(), device)?;
                let sd = Tensor::from_slice(std, bshape, device)?;
                (Tensor::from_slice(data, shape, device)?, Some((m, sd)))
            }
        };
        let classes = Tensor::from_slice(s.classes(), s.len(), device)?;
        // Classification targets are the labels; reconstruction targets are the inputs
        // themselves (taken from the batch).
        let targets = match (task, s.targets()) {
            (Task::Reconstruction, _) => None,
            (Task::Regression, Targets::Regression(t)) => {
                Some(Tensor::from_slice(t, s.len(), device)?)
            }
            (Task::Classification, _) => Some(classes.clone()),
            (Task::Regression, other) => {
                return Err(EngineError::Config(format!(
                    "regression needs real-valued targets; {} has {:?} targets",
                    dataset.name(),
                    other.kind()
                )));
            }
        };
        Ok(Self {
            features,
            normalise,
            targets,
            classes,
            classes_host: s.classes().to_vec(),
            device: device.clone(),
        })
    }

    /// The class of stored sample `i`.
    pub fn class_of(&self, i: u32) -> usize {
        self.classes_host[i as usize] as usize
    }

    pub fn batch(&self, indices: &[u32]) -> Result<Batch> {
        let idx = Tensor::from_slice(indices, indices.len(), &self.device)?;
        let mut x = self.features.index_select(&idx, 0)?;
        if self.normalise.is_none() && x.dtype() == DType::U8 {
            x = x.to_dtype(DType::F32)?;
        }
        if let Some((mean, std)) = &self.normalise {
            x = x
                .to_dtype(DType::F32)?
                .affine(1.0 / 255.0, 0.0)?
                .broadcast_sub(mean)?
                .broadcast_div(std)?;
        }
        let y = match &self.targets {
            Some(t) => t.index_select(&idx, 0)?,
            None => x.clone(),
        };
        Ok(Batch {
            x,
            y,
            classes: self.classes.index_select(&idx, 0)?,
        })
    }

    /// Per-class sums of `per_sample` (shape `[batch]`), as a `[classes]` f32 tensor.
    pub fn class_sums(per_sample: &Tensor, classes: &Tensor, k: usize) -> Result<Tensor> {
        let zeros = Tensor::zeros(k, DType::F32, per_sample.device())?;
        Ok(zeros.index_add(classes, &per_sample.detach().to_dtype(DType::F32)?, 0)?)
    }
}
