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
        DeviceArg::Cuda(n) => cuda(n, false, job),
        DeviceArg::Cudnn(n) => cuda(n, true, job),
    }
}

#[cfg(feature = "cuda")]
fn cuda<J: BackendJob>(n: usize, cudnn: bool, job: J) -> Result<J::Output> {
    use burn::backend::Cuda;
    use burn::backend::cuda::CudaDevice;
    let name = if cudnn { "cudnn" } else { "cuda" };
    // A missing driver or device is one error line here, not a panic in a CubeCL thread.
    tanas_cuda::library::device(n).map_err(|e| anyhow::anyhow!("--device {name}:{n}: {e}"))?;
    if cudnn {
        // cuDNN is looked for now, so a missing library is one error line, not a failure
        // inside a training step.
        tanas_cuda::library::load().map_err(|e| anyhow::anyhow!("--device cudnn:{n}: {e}"))?;
        return job.run::<Autodiff<tanas_cuda::CudnnCuda>>(CudaDevice::new(n));
    }
    job.run::<Autodiff<Cuda>>(CudaDevice::new(n))
}

#[cfg(not(feature = "cuda"))]
fn cuda<J: BackendJob>(n: usize, cudnn: bool, _job: J) -> Result<J::Output> {
    let name = if cudnn { "cudnn" } else { "cuda" };
    anyhow::bail!(
        "--device {name}:{n}: this tanas was built without CUDA support (rebuild with `cargo build --release --features cuda`)"
    )
}
