//! Picking the burn backend at run time: the library crates are generic over the backend,
//! and the CLI monomorphises each job once per backend.

use anyhow::Result;
use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::AutodiffBackend;
use tanas_cpu::Cpu;

use crate::device::DeviceArg;

/// The CPU backend with autodiff: tanas-cpu (Flex with tanas's convolution and pooling).
pub type CpuAutodiff = Autodiff<Cpu>;

/// A piece of work that runs on any autodiff backend.
pub trait BackendJob {
    /// What the job returns.
    type Output;
    /// Runs the job on backend `B`, device `device`.
    fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<Self::Output>;
}

/// Runs `job` on the backend `device` names.
pub fn dispatch<J: BackendJob>(device: DeviceArg, job: J) -> Result<J::Output> {
    match device {
        DeviceArg::Cpu => job.run::<CpuAutodiff>(Default::default()),
        DeviceArg::Flex => job.run::<Autodiff<Flex>>(Default::default()),
        DeviceArg::Cuda(n) => cuda(n, job),
    }
}

#[cfg(feature = "cuda")]
fn cuda<J: BackendJob>(n: usize, job: J) -> Result<J::Output> {
    use burn::backend::Cuda;
    use burn::backend::cuda::CudaDevice;
    job.run::<Autodiff<Cuda>>(CudaDevice::new(n))
}

#[cfg(not(feature = "cuda"))]
fn cuda<J: BackendJob>(n: usize, _job: J) -> Result<J::Output> {
    anyhow::bail!(
        "--device cuda:{n}: this tanas was built without CUDA support (rebuild with `cargo build --release --features cuda`)"
    )
}
