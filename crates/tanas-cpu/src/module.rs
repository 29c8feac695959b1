//! The module ops tanas-cpu implements itself, on Flex's tensors: argument checks, layout,
//! and the hand-off to Flex for the cases the kernels do not cover.

use burn_backend::ops::{
    ConvOptions, MaxPool2dBackward, MaxPool2dWithIndices, ModuleOps, UnfoldOptions,
};
use burn_backend::tensor::{FloatTensor, IntTensor};
use burn_backend::{DType, Shape, TensorMetadata};
use burn_flex::{Flex, FlexTensor};

use crate::Cpu;
use crate::conv::{self, ConvGeom};
use crate::copy::elems;
use crate::copy::{dense, f32s, tensor};
use crate::pool::{self, PoolGeom};

fn dims4(t: &FlexTensor) -> [usize; 4] {
    t.shape().dims::<4>()
}

fn all_f32(ts: &[&FlexTensor]) -> bool {
    ts.iter().all(|t| t.dtype() == DType::F32)
}

fn geom(x: [usize; 4], w: [usize; 4], o: &ConvOptions<2>) -> ConvGeom {
    ConvGeom::new(x, w, o.stride, o.padding, o.dilation, o.groups)
}

pub(crate) fn conv2d(
    x: FloatTensor<Cpu>,
    weight: FloatTensor<Cpu>,
    bias: Option<FloatTensor<Cpu>>,
    options: ConvOptions<2>,
) -> FloatTensor<Cpu> {
    if !all_f32(&[&x, &weight]) || bias.as_ref().is_some_and(|b| b.dtype() != DType::F32) {
        return Flex::conv2d(x, weight, bias, options);
    }
    let (x, weight, bias) = (dense(x), dense(weight), bias.map(dense));
    let g = geom(dims4(&x), dims4(&weight), &options);
    let y = conv::forward(&g, f32s(&x), f32s(&weight), bias.as_ref().map(f32s));
    tensor(Shape::new([g.n, g.cout, g.ho, g.wo]), y)
}

/// `conv_grad!(NAME, |geometry, x, weight, dy| BODY)`: the convolution gradient NAME of
/// `ModuleOps`, Flex's where a tensor is not f32, else BODY (`dy` dense).
macro_rules! conv_grad {
    ($name:ident, |$g:ident, $x:pat, $w:pat, $dy:ident| $body:expr) => {
        pub(crate) fn $name(
            x: FloatTensor<Cpu>,
            weight: FloatTensor<Cpu>,
            output_grad: FloatTensor<Cpu>,
            options: ConvOptions<2>,
        ) -> FloatTensor<Cpu> {
            if !all_f32(&[&x, &weight, &output_grad]) {
                return Flex::$name(x, weight, output_grad, options);
            }
            let $g = &geom(dims4(&x), dims4(&weight), &options);
            let ($x, $w, $dy) = (x, weight, dense(output_grad));
            $body
        }
    };
}

conv_grad!(conv2d_x_backward, |g, _, w, dy| {
    let dx = conv::x_backward(g, f32s(&dense(w)), f32s(&dy));
    tensor(Shape::new([g.n, g.cin, g.h, g.w]), dx)
});

conv_grad!(conv2d_weight_backward, |g, x, w, dy| {
    tensor(
        w.shape(),
        conv::weight_backward(g, f32s(&dense(x)), f32s(&dy)),
    )
});

pub(crate) fn conv2d_bias_backward(
    x: FloatTensor<Cpu>,
    bias: FloatTensor<Cpu>,
    output_grad: FloatTensor<Cpu>,
) -> FloatTensor<Cpu> {
    if !all_f32(&[&output_grad]) {
        return Flex::conv2d_bias_backward(x, bias, output_grad);
    }
    let dy = dense(output_grad);
    let [n, cout, ho, wo] = dims4(&dy);
    tensor(
        Shape::new([cout]),
        conv::bias_backward(n, cout, ho * wo, f32s(&dy)),
    )
}

/// Sliding blocks as im2col columns (what burn's default builds from a convolution with an
/// identity kernel: `K` times the work).
pub(crate) fn unfold4d(
    x: FloatTensor<Cpu>,
    kernel_size: [usize; 2],
    options: UnfoldOptions,
) -> FloatTensor<Cpu> {
    if !all_f32(&[&x]) {
        return Flex::unfold4d(x, kernel_size, options);
    }
    let x = dense(x);
    let [n, c, h, w] = dims4(&x);
    let weight = [1, c, kernel_size[0], kernel_size[1]];
    let g = ConvGeom::new(
        [n, c, h, w],
        weight,
        options.stride,
        options.padding,
        options.dilation,
        1,
    );
    let cols = conv::unfold(&g, f32s(&x));
    tensor(
        Shape::new([n, c * kernel_size[0] * kernel_size[1], g.ho * g.wo]),
        cols,
    )
}

fn pool_geom(
    x: &FlexTensor,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
) -> PoolGeom {
    let [n, c, h, w] = dims4(x);
    PoolGeom::new(n * c, [h, w], kernel, stride, padding, dilation)
}

fn pooled_shape(x: &FlexTensor, g: &PoolGeom) -> Shape {
    let [n, c, _, _] = dims4(x);
    Shape::new([n, c, g.ho, g.wo])
}

pub(crate) fn max_pool2d(
    x: FloatTensor<Cpu>,
    kernel_size: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
    ceil_mode: bool,
) -> FloatTensor<Cpu> {
    max_pool2d_with_indices(x, kernel_size, stride, padding, dilation, ceil_mode).output
}

pub(crate) fn max_pool2d_with_indices(
    x: FloatTensor<Cpu>,
    kernel_size: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
    ceil_mode: bool,
) -> MaxPool2dWithIndices<Cpu> {
    if ceil_mode || !all_f32(&[&x]) {
        let r = Flex::max_pool2d_with_indices(x, kernel_size, stride, padding, dilation, ceil_mode);
        return MaxPool2dWithIndices::new(r.output, r.indices);
    }
    let x = dense(x);
    let g = pool_geom(&x, kernel_size, stride, padding, dilation);
    let (out, idx) = pool::max_forward(&g, f32s(&x));
    let shape = pooled_shape(&x, &g);
    MaxPool2dWithIndices::new(tensor(shape.clone(), out), tensor(shape, idx))
}

#[allow(clippy::too_many_arguments)] // the signature of ModuleOps
pub(crate) fn max_pool2d_with_indices_backward(
    x: FloatTensor<Cpu>,
    kernel_size: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
    ceil_mode: bool,
    output_grad: FloatTensor<Cpu>,
    indices: IntTensor<Cpu>,
) -> MaxPool2dBackward<Cpu> {
    if ceil_mode || !all_f32(&[&x, &output_grad]) || indices.dtype() != DType::I64 {
        let r = Flex::max_pool2d_with_indices_backward(
            x,
            kernel_size,
            stride,
            padding,
            dilation,
            ceil_mode,
            output_grad,
            indices,
        );
        return MaxPool2dBackward::new(r.x_grad);
    }
    let (dy, idx) = (dense(output_grad), dense(indices));
    let g = pool_geom(&x, kernel_size, stride, padding, dilation);
    let dx = pool::max_backward(&g, f32s(&dy), elems::<i64>(&idx));
    MaxPool2dBackward::new(tensor(x.shape(), dx))
}

pub(crate) fn avg_pool2d(
    x: FloatTensor<Cpu>,
    kernel_size: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    count_include_pad: bool,
    ceil_mode: bool,
) -> FloatTensor<Cpu> {
    if ceil_mode || !all_f32(&[&x]) {
        return Flex::avg_pool2d(
            x,
            kernel_size,
            stride,
            padding,
            count_include_pad,
            ceil_mode,
        );
    }
    let x = dense(x);
    let g = pool_geom(&x, kernel_size, stride, padding, [1, 1]);
    let out = pool::avg_forward(&g, f32s(&x), count_include_pad);
    tensor(pooled_shape(&x, &g), out)
}

pub(crate) fn avg_pool2d_backward(
    x: FloatTensor<Cpu>,
    grad: FloatTensor<Cpu>,
    kernel_size: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    count_include_pad: bool,
    ceil_mode: bool,
) -> FloatTensor<Cpu> {
    if ceil_mode || !all_f32(&[&x, &grad]) {
        return Flex::avg_pool2d_backward(
            x,
            grad,
            kernel_size,
            stride,
            padding,
            count_include_pad,
            ceil_mode,
        );
    }
    let dy = dense(grad);
    let g = pool_geom(&x, kernel_size, stride, padding, [1, 1]);
    tensor(
        x.shape(),
        pool::avg_backward(&g, f32s(&dy), count_include_pad),
    )
}

pub(crate) fn adaptive_avg_pool2d(
    x: FloatTensor<Cpu>,
    output_size: [usize; 2],
) -> FloatTensor<Cpu> {
    if !all_f32(&[&x]) {
        return Flex::adaptive_avg_pool2d(x, output_size);
    }
    let x = dense(x);
    let [n, c, h, w] = dims4(&x);
    let y = pool::adaptive_avg_forward(n * c, [h, w], output_size, f32s(&x));
    tensor(Shape::new([n, c, output_size[0], output_size[1]]), y)
}

pub(crate) fn adaptive_avg_pool2d_backward(
    x: FloatTensor<Cpu>,
    grad: FloatTensor<Cpu>,
) -> FloatTensor<Cpu> {
    if !all_f32(&[&x, &grad]) {
        return Flex::adaptive_avg_pool2d_backward(x, grad);
    }
    let dy = dense(grad);
    let [n, c, h, w] = dims4(&x);
    let [_, _, oh, ow] = dims4(&dy);
    tensor(
        x.shape(),
        pool::adaptive_avg_backward(n * c, [h, w], [oh, ow], f32s(&dy)),
    )
}
