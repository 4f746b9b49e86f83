//! A dataset's sample store on the training device, uploaded once.

use candle_core::{DType, Device, Tensor};

use l2m_data::{ClassDataset, Targets};

use crate::{EngineError, Result};

/// Features, targets and classes of a whole sample store as device tensors; batches are
/// gathered with `index_select`, so nothing per class is copied.
pub(crate) struct DeviceData {
    features: Tensor,
    targets: Tensor,
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
    pub fn upload(dataset: &ClassDataset, device: &Device) -> Result<Self> {
        let s = dataset.samples();
        let mut shape = vec![s.len()];
        shape.extend_from_slice(s.sample_shape());
        let features = Tensor::from_slice(s.features(), shape, device)?;
        let targets = match s.targets() {
            Targets::Regression(t) => Tensor::from_slice(t, s.len(), device)?,
            other => {
                return Err(EngineError::Config(format!(
                    "targets of kind {:?} are not supported by this engine yet",
                    other.kind()
                )));
            }
        };
        Ok(Self {
            features,
            targets,
            classes: Tensor::from_slice(s.classes(), s.len(), device)?,
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
        Ok(Batch {
            x: self.features.index_select(&idx, 0)?,
            y: self.targets.index_select(&idx, 0)?,
            classes: self.classes.index_select(&idx, 0)?,
        })
    }

    /// Per-class sums of `per_sample` (shape `[batch]`), as a `[classes]` f32 tensor.
    pub fn class_sums(per_sample: &Tensor, classes: &Tensor, k: usize) -> Result<Tensor> {
        let zeros = Tensor::zeros(k, DType::F32, per_sample.device())?;
        Ok(zeros.index_add(classes, &per_sample.detach().to_dtype(DType::F32)?, 0)?)
    }
}
