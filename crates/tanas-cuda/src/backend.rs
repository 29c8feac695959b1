//! The backend type and its non-op trait items: burn-cuda's CubeBackend, whose every op
//! [`crate::forward`] forwards but the convolutions ([`crate::conv`]).

use burn_backend::{Backend, BackendTypes, DType, DTypeUsageSet, ExecutionError, TensorData};
use burn_cubecl::CubeBackend;
use burn_cubecl::tensor::CubeTensor;
use cubecl::cuda::{CudaDevice, CudaRuntime};

/// The backend wrapped: burn-cuda's `Cuda` without fusion (`burn::backend::Cuda`).
pub type Inner = CubeBackend<CudaRuntime, f32, i32, u8>;

/// tanas's CUDA backend: burn-cuda with cuDNN's convolutions (forward, data and weight
/// gradients; every stride, padding, dilation and group count).
#[derive(Clone, Copy, Debug, Default)]
pub struct CudnnCuda;

impl BackendTypes for CudnnCuda {
    type Device = CudaDevice;
    type FloatTensorPrimitive = CubeTensor<CudaRuntime>;
    type FloatElem = f32;
    type IntTensorPrimitive = CubeTensor<CudaRuntime>;
    type IntElem = i32;
    type BoolTensorPrimitive = CubeTensor<CudaRuntime>;
    type BoolElem = u8;
    type QuantizedTensorPrimitive = CubeTensor<CudaRuntime>;
}

impl Backend for CudnnCuda {
    fn name(device: &Self::Device) -> String {
        format!(
            "tanas-cuda ({} with cuDNN convolutions)",
            Inner::name(device)
        )
    }

    fn seed(device: &Self::Device, seed: u64) {
        Inner::seed(device, seed)
    }

    fn ad_enabled(device: &Self::Device) -> bool {
        Inner::ad_enabled(device)
    }

    fn sync(device: &Self::Device) -> Result<(), ExecutionError> {
        Inner::sync(device)
    }

    fn memory_persistent_allocations<
        Output: Send,
        Input: Send,
        Func: Fn(Input) -> Output + Send,
    >(
        device: &Self::Device,
        input: Input,
        func: Func,
    ) -> Output {
        Inner::memory_persistent_allocations(device, input, func)
    }

    fn memory_cleanup(device: &Self::Device) {
        Inner::memory_cleanup(device)
    }

    fn staging<'a, Iter>(data: Iter, device: &Self::Device)
    where
        Iter: Iterator<Item = &'a mut TensorData>,
    {
        Inner::staging(data, device)
    }

    fn supports_dtype(device: &Self::Device, dtype: DType) -> bool {
        Inner::supports_dtype(device, dtype)
    }

    fn dtype_usage(device: &Self::Device, dtype: DType) -> DTypeUsageSet {
        Inner::dtype_usage(device, dtype)
    }

    fn device_count(type_id: u16) -> usize {
        Inner::device_count(type_id)
    }
}
