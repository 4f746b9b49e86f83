//! A dataset's sample store on the training device, uploaded once.

use candle_core::{DType, Device, Storage, Tensor};
use rayon::prelude::*;

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
    /// The same per-channel `(mean, std)` on the host, for the CPU batch path.
    normalise_host: Option<(Vec<f32>, Vec<f32>)>,
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
        let normalise_host = match s.features() {
            Features::Pixels { mean, std, .. } => Some((mean.clone(), std.clone())),
            _ => None,
        };
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
            normalise_host,
            targets,
            classes,
            classes_host: s.classes().to_vec(),
            device: device.clone(),
        })
    }

    /// Number of stored samples.
    pub fn len(&self) -> usize {
        self.classes_host.len()
    }

    /// The class of stored sample `i`.
    pub fn class_of(&self, i: u32) -> usize {
        self.classes_host[i as usize] as usize
    }

    pub fn batch(&self, indices: &[u32]) -> Result<Batch> {
        let idx = Tensor::from_slice(indices, indices.len(), &self.device)?;
        let x = match self.host_pixels(indices)? {
            Some(x) => x,
            None => {
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
                x
            }
        };
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

    /// On the CPU, pixel batches are gathered and normalised in one pass on the host, with
    /// the same arithmetic as the tensor path (`x * (1/255) + 0`, minus the mean, over the
    /// standard deviation, each rounded to f32), so both give the same bits. `None` on other
    /// devices and for other storage.
    fn host_pixels(&self, indices: &[u32]) -> Result<Option<Tensor>> {
        let Some((mean, std)) = &self.normalise_host else {
            return Ok(None);
        };
        let (storage, layout) = self.features.storage_and_layout();
        let (Storage::Cpu(cpu), Some((start, end))) = (&*storage, layout.contiguous_offsets())
        else {
            return Ok(None);
        };
        let data = &cpu.as_slice::<u8>()?[start..end];
        let dims = self.features.dims();
        let dim: usize = dims[1..].iter().product();
        let plane = dim / mean.len().max(1);
        let scale = (1.0f64 / 255.0) as f32;
        let mut out = vec![0f32; indices.len() * dim];
        out.par_chunks_mut(dim.max(1))
            .zip(indices.par_iter())
            .for_each(|(row, &i)| {
                let src = &data[i as usize * dim..(i as usize + 1) * dim];
                for (c, (row, src)) in row.chunks_mut(plane).zip(src.chunks(plane)).enumerate() {
                    let (m, s) = (mean[c], std[c]);
                    for (o, &v) in row.iter_mut().zip(src) {
                        *o = (f32::from(v) * scale + 0.0 - m) / s;
                    }
                }
            });
        let mut shape = vec![indices.len()];
        shape.extend_from_slice(&dims[1..]);
        Ok(Some(Tensor::from_vec(out, shape, &self.device)?))
    }

    /// Per-class sums of `per_sample` (shape `[batch]`), as a `[classes]` f32 tensor.
    pub fn class_sums(per_sample: &Tensor, classes: &Tensor, k: usize) -> Result<Tensor> {
        let zeros = Tensor::zeros(k, DType::F32, per_sample.device())?;
        Ok(zeros.index_add(classes, &per_sample.detach().to_dtype(DType::F32)?, 0)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CPU batch path gives the tensor path's bits: 3-channel pixels, with the indices
    /// out of order and repeated.
    #[test]
    fn host_pixel_batches_equal_the_tensor_path() {
        let (n, shape) = (6usize, vec![3usize, 2, 5]);
        let dim: usize = shape.iter().product();
        let data: Vec<u8> = (0..n * dim).map(|i| (i * 37 % 256) as u8).collect();
        let ds = ClassDataset::new(
            "pixels",
            Features::Pixels {
                data,
                mean: vec![0.4914, 0.4822, 0.4465],
                std: vec![0.247, 0.2435, 0.2616],
            },
            shape,
            Targets::Classes,
            vec![0, 1, 0, 1, 0, 1],
            vec!["a".into(), "b".into()],
        )
        .expect("dataset");
        let dd = DeviceData::upload(&ds, Task::Classification, &Device::Cpu).expect("upload");
        let indices = [4u32, 0, 5, 4, 2];
        let host = dd.batch(&indices).expect("batch").x;
        let (mean, std) = dd.normalise.as_ref().expect("pixels");
        let idx = Tensor::from_slice(&indices, indices.len(), &Device::Cpu).expect("idx");
        let reference = dd
            .features
            .index_select(&idx, 0)
            .and_then(|x| x.to_dtype(DType::F32))
            .and_then(|x| x.affine(1.0 / 255.0, 0.0))
            .and_then(|x| x.broadcast_sub(mean))
            .and_then(|x| x.broadcast_div(std))
            .expect("reference");
        assert_eq!(host.dims(), reference.dims());
        let bits = |t: &Tensor| -> Vec<u32> {
            t.flatten_all()
                .and_then(|t| t.to_vec1::<f32>())
                .expect("values")
                .into_iter()
                .map(f32::to_bits)
                .collect()
        };
        assert_eq!(bits(&host), bits(&reference));
    }
}
