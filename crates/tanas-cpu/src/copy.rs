//! Contiguous tensors: the kernels' views of their elements, tensors made from a `Vec`, and
//! contiguous copies of strided f32 tensors (what `swap_dims` + `reshape` leave behind, as
//! in burn-nn's BatchNorm): runs of the innermost dimension copied in parallel. Flex copies
//! such layouts one element at a time on one thread.

use burn_backend::tensor::FloatTensor;
use burn_backend::{Bytes, DType, Shape};
use burn_flex::{Flex, FlexTensor, Layout};
use rayon::prelude::*;

use crate::Cpu;

/// Elements below which a copy stays on the calling thread.
const PARALLEL_MIN: usize = 1 << 15;

/// `t` with a contiguous layout starting at offset 0; copies only when needed.
pub(crate) fn dense(t: FlexTensor) -> FlexTensor {
    if t.is_contiguous() {
        return t;
    }
    strided_copy(&t).unwrap_or_else(|| t.to_contiguous())
}

/// The f32 elements of a contiguous tensor.
pub(crate) fn f32s(t: &FlexTensor) -> &[f32] {
    elems(t)
}

/// The elements of a contiguous tensor of element type `E`.
pub(crate) fn elems<E: bytemuck::Pod + burn_backend::Element>(t: &FlexTensor) -> &[E] {
    let (start, end) = t.layout().contiguous_offsets().expect("contiguous tensor");
    &t.storage::<E>()[start..end]
}

/// A contiguous tensor from its elements.
pub(crate) fn tensor<E: bytemuck::Pod + burn_backend::Element>(
    shape: Shape,
    data: Vec<E>,
) -> FlexTensor {
    FlexTensor::new(
        Bytes::from_elems(data),
        Layout::contiguous(shape),
        E::dtype(),
    )
}

/// Reshape, copying a strided tensor in parallel first where a view is impossible.
pub(crate) fn float_reshape(tensor: FloatTensor<Cpu>, shape: Shape) -> FloatTensor<Cpu> {
    if tensor.is_contiguous() || tensor.layout().reshape(shape.clone()).is_some() {
        return <Flex as burn_backend::ops::FloatTensorOps<Flex>>::float_reshape(tensor, shape);
    }
    dense(tensor).reshape(shape)
}

/// The contiguous copy of an f32 tensor whose innermost stride is 1 and whose strides are
/// all positive; `None` for any other layout (left to Flex).
fn strided_copy(t: &FlexTensor) -> Option<FlexTensor> {
    let layout = t.layout();
    let (shape, strides) = (layout.shape().as_slice(), layout.strides());
    if t.dtype() != DType::F32 || shape.is_empty() || strides.iter().any(|&s| s < 0) {
        return None;
    }
    let d = shape.len();
    if strides[d - 1] != 1 && shape[d - 1] != 1 {
        return None;
    }
    let run = shape[d - 1];
    let n = layout.num_elements();
    let src: &[f32] = t.storage::<f32>();
    let start = layout.start_offset();
    // The source offset of the run with (row-major) index `r` over the outer dimensions.
    let offset = |mut r: usize| {
        let mut off = start;
        for i in (0..d - 1).rev() {
            off += (r % shape[i]) * strides[i] as usize;
            r /= shape[i];
        }
        off
    };
    let mut dst = vec![0.0f32; n];
    if run > 0 {
        let copy = |(r, out): (usize, &mut [f32])| {
            let o = offset(r);
            out.copy_from_slice(&src[o..o + run]);
        };
        if n >= PARALLEL_MIN {
            dst.par_chunks_mut(run).enumerate().for_each(copy);
        } else {
            dst.chunks_mut(run).enumerate().for_each(copy);
        }
    }
    Some(tensor(Shape::from(shape.to_vec()), dst))
}
