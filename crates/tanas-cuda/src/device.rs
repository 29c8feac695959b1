//! CubeCL tensors as cuDNN takes them: contiguous f32 buffers, their device addresses, fresh
//! outputs, and the synchronisation of CubeCL's stream before cuDNN (on another stream)
//! reads what CubeCL wrote.

use burn_backend::DType;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::cuda::CudaRuntime;

/// A CubeCL tensor on CUDA.
pub(crate) type Cube = CubeTensor<CudaRuntime>;

/// `tensor` as a contiguous f32 tensor, or `None` for another float type.
pub(crate) fn contiguous(tensor: Cube) -> Option<Cube> {
    if tensor.dtype != DType::F32 {
        return None;
    }
    Some(if tensor.is_contiguous() {
        tensor
    } else {
        into_contiguous(tensor)
    })
}

/// The device address of `tensor`'s first element.
pub(crate) fn address(tensor: &Cube) -> Result<u64, String> {
    let resource = tensor
        .client
        .get_resource(tensor.handle.clone())
        .map_err(|e| format!("device memory of a tensor: {e:?}"))?;
    Ok(resource.resource().ptr)
}

/// A fresh contiguous f32 tensor of `shape` on `like`'s device.
pub(crate) fn empty<const D: usize>(like: &Cube, shape: [usize; D]) -> Cube {
    empty_device_contiguous_dtype(
        like.client.clone(),
        like.device.clone(),
        shape.into(),
        DType::F32,
    )
}

/// Waits until everything CubeCL queued on `like`'s device (the inputs, the contiguous
/// copies) is finished: cuDNN runs on another stream than CubeCL's.
pub(crate) fn finished(like: &Cube) -> Result<(), String> {
    futures_lite::future::block_on(like.client.sync()).map_err(|e| format!("CUDA sync: {e:?}"))
}
