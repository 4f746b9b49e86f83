//! The flat sample store and the class-partitioned view over it.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use l2m_core::Mixture;

use crate::{DataError, Result};

/// What the model is trained to predict.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// One real value per sample; the class is a group (a value of a categorical variable).
    Regression(Vec<f32>),
    /// The class label itself is the target.
    Classes,
    /// The input itself is the target; the class is a group.
    Reconstruction,
}

/// The kind of task a dataset's targets define.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskKind {
    /// Real-valued targets, mean squared error.
    Regression,
    /// Class labels, cross-entropy.
    Classification,
    /// Inputs as targets, mean squared error.
    Reconstruction,
}

impl From<Vec<f32>> for Features {
    fn from(v: Vec<f32>) -> Self {
        Features::F32(v)
    }
}

impl Targets {
    /// The task these targets define.
    pub fn kind(&self) -> TaskKind {
        match self {
            Targets::Regression(_) => TaskKind::Regression,
            Targets::Classes => TaskKind::Classification,
            Targets::Reconstruction => TaskKind::Reconstruction,
        }
    }
}

/// Feature storage: real values, 8-bit pixels, or token ids, kept in their raw width.
#[derive(Debug, Clone, PartialEq)]
pub enum Features {
    /// Real values, used as they are.
    F32(Vec<f32>),
    /// 8-bit pixels, channel-first (`[C, H, W]` per sample). The model sees
    /// `(p / 255 - mean[c]) / std[c]`; reconstruction targets are `p / 255`.
    Pixels {
        /// The raw bytes.
        data: Vec<u8>,
        /// Per-channel mean of `p / 255` to subtract.
        mean: Vec<f32>,
        /// Per-channel standard deviation to divide by.
        std: Vec<f32>,
    },
    /// Token ids, for embedding layers.
    Tokens(Vec<u32>),
}

impl Features {
    /// Number of stored values.
    pub fn len(&self) -> usize {
        match self {
            Features::F32(v) => v.len(),
            Features::Pixels { data, .. } => data.len(),
            Features::Tokens(v) => v.len(),
        }
    }

    /// Whether no value is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held by the values.
    pub fn bytes(&self) -> usize {
        match self {
            Features::F32(v) => v.len() * 4,
            Features::Pixels { data, .. } => data.len(),
            Features::Tokens(v) => v.len() * 4,
        }
    }

    /// Sample `i` as f32 values, as the model sees them (pixels normalised).
    pub fn sample_f32(&self, i: usize, dim: usize) -> Vec<f32> {
        let range = i * dim..(i + 1) * dim;
        match self {
            Features::F32(v) => v[range].to_vec(),
            Features::Tokens(v) => v[range].iter().map(|&t| t as f32).collect(),
            Features::Pixels { data, mean, std } => {
                let per_channel = dim / mean.len().max(1);
                data[range]
                    .iter()
                    .enumerate()
                    .map(|(j, &p)| {
                        let c = (j / per_channel.max(1)).min(mean.len().saturating_sub(1));
                        (p as f32 / 255.0 - mean[c]) / std[c]
                    })
                    .collect()
            }
        }
    }
}

/// Samples stored once, contiguously: features row-major, one class per sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Samples {
    features: Features,
    sample_shape: Vec<usize>,
    targets: Targets,
    classes: Vec<u32>,
}

impl Samples {
    /// All features, `len() * feature_dim()` values, row-major.
    pub fn features(&self) -> &Features {
        &self.features
    }

    /// The shape of one sample (for example `[10]` or `[1, 28, 28]`).
    pub fn sample_shape(&self) -> &[usize] {
        &self.sample_shape
    }

    /// Values per sample.
    pub fn feature_dim(&self) -> usize {
        self.sample_shape.iter().product()
    }

    /// The targets.
    pub fn targets(&self) -> &Targets {
        &self.targets
    }

    /// The class (or group) of every stored sample.
    pub fn classes(&self) -> &[u32] {
        &self.classes
    }

    /// Number of stored samples.
    pub fn len(&self) -> usize {
        self.classes.len()
    }

    /// Whether no sample is stored.
    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }

    /// The stored samples `indices` as dense rows, for a training loop of one's own:
    /// features as f32 (pixels normalised), the target of each (the regression value, or the
    /// class label as a number) and the class of each.
    pub fn dense(&self, indices: &[u32]) -> Result<DenseRows> {
        let dim = self.feature_dim();
        let mut rows = DenseRows {
            features: Vec::with_capacity(indices.len() * dim),
            dim,
            targets: Vec::with_capacity(indices.len()),
            classes: Vec::with_capacity(indices.len()),
        };
        for &i in indices {
            let i = i as usize;
            if i >= self.len() {
                return Err(DataError::InvalidParameter {
                    what: "sample index",
                    reason: format!("{i} is past the {} stored samples", self.len()),
                });
            }
            rows.features.extend(self.features.sample_f32(i, dim));
            rows.targets.push(match &self.targets {
                Targets::Regression(t) => t[i],
                Targets::Classes | Targets::Reconstruction => self.classes[i] as f32,
            });
            rows.classes.push(self.classes[i] as usize);
        }
        Ok(rows)
    }
}

/// Samples as dense rows ([`Samples::dense`]).
#[derive(Debug, Clone, PartialEq)]
pub struct DenseRows {
    /// `len * dim` values, row-major.
    pub features: Vec<f32>,
    /// Values per row.
    pub dim: usize,
    /// One target per row.
    pub targets: Vec<f32>,
    /// The class (or group) of each row.
    pub classes: Vec<usize>,
}

/// A dataset partitioned by class: a shared [`Samples`] store and, per class, the indices
/// of the samples that belong to this dataset.
///
/// Cloning is cheap (the store is shared); imbalancing returns a new view over the same
/// store.
#[derive(Debug, Clone)]
pub struct ClassDataset {
    name: String,
    samples: Arc<Samples>,
    class_names: Vec<String>,
    members: Vec<Vec<u32>>,
}

impl ClassDataset {
    /// Builds a dataset from flat buffers, every stored sample a member.
    ///
    /// `features` holds `classes.len() * prod(sample_shape)` values; `classes[i]` is the
    /// class of sample `i`, below `class_names.len()`. Every class must have a sample and
    /// every value must be finite.
    pub fn new(
        name: impl Into<String>,
        features: impl Into<Features>,
        sample_shape: Vec<usize>,
        targets: Targets,
        classes: Vec<u32>,
        class_names: Vec<String>,
    ) -> Result<Self> {
        let features = features.into();
        let n = classes.len();
        let dim: usize = sample_shape.iter().product();
        if features.len() != n * dim {
            return Err(DataError::Shape {
                what: "features",
                expected: n * dim,
                got: features.len(),
            });
        }
        if let Targets::Regression(t) = &targets {
            if t.len() != n {
                return Err(DataError::Shape {
                    what: "regression targets",
                    expected: n,
                    got: t.len(),
                });
            }
            if let Some((index, &value)) = t.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(DataError::NonFinite {
                    what: "target",
                    index,
                    value,
                });
            }
        }
        match &features {
            Features::F32(v) => {
                if let Some((i, &value)) = v.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                    return Err(DataError::NonFinite {
                        what: "a feature",
                        index: i / dim.max(1),
                        value,
                    });
                }
            }
            Features::Pixels { mean, std, .. } => {
                let channels = sample_shape.first().copied().unwrap_or(0);
                if mean.len() != channels || std.len() != channels {
                    return Err(DataError::InvalidParameter {
                        what: "pixel normalisation",
                        reason: format!(
                            "expected one mean and one std per channel ({channels}), got {} and {}",
                            mean.len(),
                            std.len()
                        ),
                    });
                }
                if std.iter().any(|s| !(s.is_finite() && *s > 0.0))
                    || mean.iter().any(|m| !m.is_finite())
                {
                    return Err(DataError::InvalidParameter {
                        what: "pixel normalisation",
                        reason: format!(
                            "means must be finite and stds positive, got {mean:?} and {std:?}"
                        ),
                    });
                }
            }
            Features::Tokens(_) => {}
        }
        let k = class_names.len();
        if k == 0 {
            return Err(l2m_core::CoreError::NoClasses.into());
        }
        let mut members = vec![Vec::new(); k];
        for (index, &c) in classes.iter().enumerate() {
            let list = members
                .get_mut(c as usize)
                .ok_or(DataError::ClassOutOfRange {
                    index,
                    class: c,
                    classes: k,
                })?;
            list.push(index as u32);
        }
        let dataset = Self {
            name: name.into(),
            samples: Arc::new(Samples {
                features,
                sample_shape,
                targets,
                classes,
            }),
            class_names,
            members,
        };
        dataset.check_nonempty("")?;
        Ok(dataset)
    }

    fn check_nonempty(&self, context: &str) -> Result<()> {
        match self.members.iter().position(Vec::is_empty) {
            Some(c) => Err(DataError::EmptyClass {
                class: self.class_names[c].clone(),
                context: context.to_string(),
            }),
            None => Ok(()),
        }
    }

    /// The same store with other member lists (used by imbalancing and subsetting).
    pub(crate) fn with_members(&self, members: Vec<Vec<u32>>, context: &str) -> Result<Self> {
        let dataset = Self {
            name: self.name.clone(),
            samples: Arc::clone(&self.samples),
            class_names: self.class_names.clone(),
            members,
        };
        dataset.check_nonempty(context)?;
        Ok(dataset)
    }

    /// The same store with other member lists; every class must keep a member.
    pub fn with_member_lists(&self, members: Vec<Vec<u32>>) -> Result<Self> {
        if members.len() != self.num_classes() {
            return Err(DataError::Shape {
                what: "member lists",
                expected: self.num_classes(),
                got: members.len(),
            });
        }
        let n = self.samples.len() as u32;
        for (c, list) in members.iter().enumerate() {
            if let Some(&i) = list
                .iter()
                .find(|&&i| i >= n || self.samples.classes[i as usize] != c as u32)
            {
                return Err(DataError::InvalidParameter {
                    what: "member lists",
                    reason: format!("sample {i} is not a stored sample of class {c}"),
                });
            }
        }
        self.with_members(members, "")
    }

    /// The same view under another name.
    pub fn renamed(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The dataset's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The shared sample store (it may hold samples that are not members).
    pub fn samples(&self) -> &Arc<Samples> {
        &self.samples
    }

    /// The task the targets define.
    pub fn task(&self) -> TaskKind {
        self.samples.targets.kind()
    }

    /// Class (or group) names, in label order.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// Store indices of the members of each class.
    pub fn members(&self) -> &[Vec<u32>] {
        &self.members
    }

    /// Store indices of all members, class by class.
    pub fn all_members(&self) -> Vec<u32> {
        self.members.concat()
    }

    /// Members per class.
    pub fn class_sizes(&self) -> Vec<usize> {
        self.members.iter().map(Vec::len).collect()
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.iter().map(Vec::len).sum()
    }

    /// Whether there are no members (never true for a constructed dataset).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The dataset's own class proportions `alpha*`.
    pub fn alpha_star(&self) -> Result<Mixture> {
        Ok(Mixture::from_counts(&self.class_sizes())?)
    }

    /// At most `per_class` members of each class (the first ones), for quick runs.
    pub fn limit_per_class(&self, per_class: usize) -> Result<Self> {
        let members = self
            .members
            .iter()
            .map(|m| m[..m.len().min(per_class)].to_vec())
            .collect();
        self.with_members(
            members,
            &format!(" after limiting to {per_class} per class"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> ClassDataset {
        ClassDataset::new(
            "tiny",
            vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
            vec![2],
            Targets::Regression(vec![0.5, 1.5, 2.5]),
            vec![1, 0, 1],
            vec!["a".into(), "b".into()],
        )
        .expect("valid")
    }

    #[test]
    fn partitions_by_class_without_copying() {
        let d = tiny();
        assert_eq!(d.members(), &[vec![1], vec![0, 2]]);
        assert_eq!(d.class_sizes(), vec![1, 2]);
        assert_eq!(d.len(), 3);
        assert_eq!(d.samples().feature_dim(), 2);
        assert_eq!(d.task(), TaskKind::Regression);
        let limited = d.limit_per_class(1).expect("valid");
        assert!(Arc::ptr_eq(limited.samples(), d.samples()));
        assert_eq!(limited.class_sizes(), vec![1, 1]);
    }

    #[test]
    fn shape_errors_name_the_buffer() {
        let e = ClassDataset::new(
            "x",
            vec![0.0; 5],
            vec![2],
            Targets::Classes,
            vec![0, 0, 0],
            vec!["a".into()],
        )
        .expect_err("wrong length");
        assert_eq!(e.to_string(), "features: expected 6 values, got 5");
        let e = ClassDataset::new(
            "x",
            vec![0.0; 2],
            vec![1],
            Targets::Regression(vec![1.0]),
            vec![0, 0],
            vec!["a".into()],
        )
        .expect_err("wrong length");
        assert!(e.to_string().starts_with("regression targets"));
    }

    #[test]
    fn bad_labels_empty_classes_and_nan_are_errors() {
        let e = ClassDataset::new(
            "x",
            vec![0.0; 2],
            vec![1],
            Targets::Classes,
            vec![0, 3],
            vec!["a".into(), "b".into()],
        )
        .expect_err("label out of range");
        assert!(matches!(
            e,
            DataError::ClassOutOfRange {
                index: 1,
                class: 3,
                classes: 2
            }
        ));
        let e = ClassDataset::new(
            "x",
            vec![0.0; 2],
            vec![1],
            Targets::Classes,
            vec![0, 0],
            vec!["a".into(), "b".into()],
        )
        .expect_err("class b empty");
        assert_eq!(e.to_string(), "class \"b\" has no samples");
        let e = ClassDataset::new(
            "x",
            vec![0.0, f32::NAN],
            vec![1],
            Targets::Classes,
            vec![0, 0],
            vec!["a".into()],
        )
        .expect_err("nan");
        assert!(matches!(e, DataError::NonFinite { index: 1, .. }));
    }
}
