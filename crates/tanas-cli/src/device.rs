//! The `--device` option: `cpu`, `flex`, `cuda[:N]` or `cudnn[:N]`.

use std::fmt;
use std::str::FromStr;

/// A device named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceArg {
    /// The CPU backend (tanas-cpu).
    Cpu,
    /// burn's plain Flex CPU backend, for comparison with `Cpu`.
    Flex,
    /// CUDA device N (burn-cuda; needs the `cuda` feature).
    Cuda(usize),
    /// CUDA device N with cuDNN's convolutions (tanas-cuda; needs the `cuda` feature and
    /// cuDNN at run time).
    Cudnn(usize),
}

impl DeviceArg {
    /// Whether the device is a GPU.
    pub fn is_gpu(self) -> bool {
        matches!(self, Self::Cuda(_) | Self::Cudnn(_))
    }
}

impl FromStr for DeviceArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "flex" => Ok(Self::Flex),
            "cuda" => Ok(Self::Cuda(0)),
            "cudnn" => Ok(Self::Cudnn(0)),
            _ => {
                let index = |prefix: &str| s.strip_prefix(prefix).and_then(|n| n.parse().ok());
                index("cuda:")
                    .map(Self::Cuda)
                    .or_else(|| index("cudnn:").map(Self::Cudnn))
                    .ok_or_else(|| {
                        format!("unknown device `{s}` (cpu, flex, cuda, cuda:N, cudnn, cudnn:N)")
                    })
            }
        }
    }
}

impl fmt::Display for DeviceArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu => f.write_str("cpu"),
            Self::Flex => f.write_str("flex"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
            Self::Cudnn(n) => write!(f, "cudnn:{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_round_trip_and_unknown_ones_are_named() {
        for (text, device) in [
            ("cpu", DeviceArg::Cpu),
            ("flex", DeviceArg::Flex),
            ("cuda:1", DeviceArg::Cuda(1)),
            ("cudnn:0", DeviceArg::Cudnn(0)),
        ] {
            assert_eq!(text.parse::<DeviceArg>(), Ok(device));
            assert_eq!(device.to_string(), text);
        }
        assert_eq!("cudnn".parse::<DeviceArg>(), Ok(DeviceArg::Cudnn(0)));
        assert!(DeviceArg::Cudnn(2).is_gpu() && !DeviceArg::Flex.is_gpu());
        let e = "cudnn:x".parse::<DeviceArg>().unwrap_err();
        assert!(e.contains("cudnn:N"), "{e}");
    }
}
