//! [`conv2d_weight_grad_sq_sum`]: the sum over samples of squared per-sample convolution
//! weight gradients, the exact Fisher diagonal's hot op, for callers generic over any burn
//! backend (recognised by type, as [`crate::batch_norm`] is).

use std::any::TypeId;

use burn_backend::ops::ConvOptions;
use burn_backend::{DType, Shape, TensorMetadata};
use burn_tensor::backend::Backend;
use burn_tensor::{Tensor, TensorPrimitive};

use crate::Cpu;
use crate::batch_norm::cast;
use crate::conv::{self, ConvGeom};
use crate::copy::{dense, f32s, tensor};

/// `sum_i (dL_i/dW)^2` for a convolution with weight shape `weight: [cout, cin/groups, kh,
/// kw]`, from its per-sample inputs `x: [n, cin, h, w]` and output gradients `dy: [n, cout,
/// ho, wo]` (`dL_i/dW` is the weight gradient of sample `i` alone). Each sample's gradient
/// is squared as it is made, so the `n` of them are never held at once. `None` unless `B`
/// is [`Cpu`] and the tensors are f32: the caller then computes it from tensor ops.
pub fn conv2d_weight_grad_sq_sum<B: Backend>(
    x: &Tensor<B, 4>,
    dy: &Tensor<B, 4>,
    weight: [usize; 4],
    options: &ConvOptions<2>,
) -> Option<Tensor<B, 4>> {
    if TypeId::of::<B>() != TypeId::of::<Cpu>() {
        return None;
    }
    let prim = |t: &Tensor<B, 4>| -> Option<_> {
        let t = cast::<_, Tensor<Cpu, 4>>(t.clone())?
            .into_primitive()
            .tensor();
        (t.dtype() == DType::F32).then(|| dense(t))
    };
    let (x, dy) = (prim(x)?, prim(dy)?);
    let g = ConvGeom::new(
        x.shape().dims::<4>(),
        weight,
        options.stride,
        options.padding,
        options.dilation,
        options.groups,
    );
    if dy.shape().dims::<4>() != [g.n, g.cout, g.ho, g.wo] {
        return None;
    }
    let sums = conv::weight_grad_sq_sum(&g, f32s(&x), f32s(&dy));
    let out =
        Tensor::<Cpu, 4>::from_primitive(TensorPrimitive::Float(tensor(Shape::new(weight), sums)));
    cast(out)
}
