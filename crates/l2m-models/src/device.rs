//! Device selection: the one place that knows about the `cuda` and `metal` features.

use std::fmt;
use std::str::FromStr;

use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::{ModelError, Result};

/// Where tensors live: `cpu`, `cuda[:N]` or `metal[:N]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum DeviceKind {
    /// The CPU (always available).
    #[default]
    Cpu,
    /// NVIDIA GPU number N (feature `cuda`).
    Cuda(usize),
    /// Apple GPU number N (feature `metal`).
    Metal(usize),
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceKind::Cpu => write!(f, "cpu"),
            DeviceKind::Cuda(n) => write!(f, "cuda:{n}"),
            DeviceKind::Metal(n) => write!(f, "metal:{n}"),
        }
    }
}

impl FromStr for DeviceKind {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self> {
        let (name, ordinal) = match s.split_once(':') {
            Some((n, o)) => (
                n,
                o.parse::<usize>()
                    .map_err(|_| ModelError::UnknownDevice(s.to_string()))?,
            ),
            None => (s, 0),
        };
        match name {
            "cpu" if !s.contains(':') => Ok(DeviceKind::Cpu),
            "cuda" => Ok(DeviceKind::Cuda(ordinal)),
            "metal" => Ok(DeviceKind::Metal(ordinal)),
            _ => Err(ModelError::UnknownDevice(s.to_string())),
        }
    }
}

impl From<DeviceKind> for String {
    fn from(d: DeviceKind) -> String {
        d.to_string()
    }
}

impl TryFrom<String> for DeviceKind {
    type Error = ModelError;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

/// Opens the device, or explains which feature this build lacks.
pub fn select_device(kind: DeviceKind) -> Result<Device> {
    match kind {
        DeviceKind::Cpu => Ok(Device::Cpu),
        DeviceKind::Cuda(n) => {
            if cfg!(feature = "cuda") {
                Ok(Device::new_cuda(n)?)
            } else {
                Err(ModelError::FeatureMissing {
                    device: kind.to_string(),
                    feature: "cuda",
                })
            }
        }
        DeviceKind::Metal(n) => {
            if cfg!(feature = "metal") {
                Ok(Device::new_metal(n)?)
            } else {
                Err(ModelError::FeatureMissing {
                    device: kind.to_string(),
                    feature: "metal",
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        assert_eq!("cpu".parse::<DeviceKind>().expect("valid"), DeviceKind::Cpu);
        assert_eq!(
            "cuda".parse::<DeviceKind>().expect("valid"),
            DeviceKind::Cuda(0)
        );
        assert_eq!(
            "cuda:1".parse::<DeviceKind>().expect("valid"),
            DeviceKind::Cuda(1)
        );
        assert_eq!(DeviceKind::Metal(2).to_string(), "metal:2");
        assert!(matches!(
            "tpu".parse::<DeviceKind>(),
            Err(ModelError::UnknownDevice(_))
        ));
        assert!("cuda:x".parse::<DeviceKind>().is_err());
        assert!("cpu:1".parse::<DeviceKind>().is_err());
    }

    #[test]
    fn cpu_always_works() {
        assert!(select_device(DeviceKind::Cpu).expect("cpu").is_cpu());
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn missing_feature_is_named() {
        let e = select_device(DeviceKind::Cuda(0)).expect_err("no cuda in this build");
        assert_eq!(
            e.to_string(),
            "device cuda:0 needs l2m built with `--features cuda`"
        );
    }
}
