//! The backend type and its non-op trait items.

use burn_backend::{Backend, BackendTypes, DType, DTypeUsageSet};
use burn_flex::{Flex, FlexDevice, FlexQTensor, FlexTensor};

/// tanas's CPU backend: Flex with faster convolution, pooling and copies.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cpu;

impl BackendTypes for Cpu {
    type Device = FlexDevice;
    type FloatTensorPrimitive = FlexTensor;
    type FloatElem = f32;
    type IntTensorPrimitive = FlexTensor;
    type IntElem = i32;
    type BoolTensorPrimitive = FlexTensor;
    type BoolElem = bool;
    type QuantizedTensorPrimitive = FlexQTensor;
}

impl Backend for Cpu {
    fn name(_device: &Self::Device) -> String {
        "tanas-cpu".into()
    }

    fn seed(device: &Self::Device, seed: u64) {
        Flex::seed(device, seed)
    }

    fn dtype_usage(device: &Self::Device, dtype: DType) -> DTypeUsageSet {
        Flex::dtype_usage(device, dtype)
    }

    fn device_count(type_id: u16) -> usize {
        Flex::device_count(type_id)
    }
}
