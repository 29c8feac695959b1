//! The 2-D convolution of [`CudnnCuda`]: forward, data gradient and weight gradient in cuDNN
//! ([`crate::cudnn`]), for f32 tensors of any stride, padding, dilation and group count. The
//! operands are made contiguous, the output is a fresh contiguous tensor, and CubeCL's stream
//! is synchronised before cuDNN reads what it wrote ([`crate::device`]). Where cuDNN cannot run the call (another
//! float type, a failure it reports) the call goes to burn-cuda's own kernel, with a warning
//! the first time.

use std::sync::atomic::{AtomicBool, Ordering};

use burn_backend::ops::{ConvOptions, FloatTensorOps, ModuleOps};
use burn_backend::tensor::FloatTensor;
use burn_cubecl::tensor::CubeTensor;
use cubecl::cuda::CudaRuntime;

use crate::backend::{CudnnCuda, Inner};
use crate::cudnn::{Pass, Pointers, run};
use crate::device::{address, contiguous, empty, finished};
use crate::geometry::Conv2dGeometry;

/// Runs `pass` with `inputs` (two contiguous f32 tensors, in the pass's order) into a fresh
/// tensor of `out_shape`.
fn pass(
    g: &Conv2dGeometry,
    pass: Pass,
    a: &CubeTensor<CudaRuntime>,
    b: &CubeTensor<CudaRuntime>,
    out_shape: [usize; 4],
) -> Result<CubeTensor<CudaRuntime>, String> {
    let out = empty(a, out_shape);
    finished(a)?;
    let (pa, pb, po) = (address(a)?, address(b)?, address(&out)?);
    let pointers = match pass {
        Pass::Forward => Pointers {
            x: pa,
            w: pb,
            y: po,
        },
        Pass::Data => Pointers {
            x: po,
            w: pa,
            y: pb,
        },
        Pass::Filter => Pointers {
            x: pa,
            w: po,
            y: pb,
        },
    };
    run(a.device.index, g, pass, &pointers)?;
    Ok(out)
}

/// Warns once per pass that cuDNN was not used, and why.
fn fell_back(which: Pass, why: &str) {
    static WARNED: [AtomicBool; 3] = [
        AtomicBool::new(false),
        AtomicBool::new(false),
        AtomicBool::new(false),
    ];
    let i = which as usize;
    if !WARNED[i].swap(true, Ordering::Relaxed) {
        tracing::warn!("conv2d {which:?} runs in burn-cuda's kernel, not cuDNN: {why}");
    }
}

/// `conv2d` (with bias, added by burn-cuda's broadcast add).
pub fn conv2d(
    x: FloatTensor<CudnnCuda>,
    weight: FloatTensor<CudnnCuda>,
    bias: Option<FloatTensor<CudnnCuda>>,
    options: ConvOptions<2>,
) -> FloatTensor<CudnnCuda> {
    let tried = (|| {
        let g = Conv2dGeometry::new(x.meta.shape(), weight.meta.shape(), &options)?;
        let (xc, wc) = (
            contiguous(x.clone()).ok_or("not f32")?,
            contiguous(weight.clone()).ok_or("not f32")?,
        );
        pass(&g, Pass::Forward, &xc, &wc, g.output_shape())
    })();
    match tried {
        Ok(y) => match bias {
            Some(b) => {
                let c = b.meta.shape()[0];
                let b = <Inner as FloatTensorOps<Inner>>::float_reshape(b, [1, c, 1, 1].into());
                <Inner as FloatTensorOps<Inner>>::float_add(y, b)
            }
            None => y,
        },
        Err(why) => {
            fell_back(Pass::Forward, &why);
            <Inner as ModuleOps<Inner>>::conv2d(x, weight, bias, options)
        }
    }
}

/// The gradient of `conv2d` with respect to `x`.
pub fn conv2d_x_backward(
    x: FloatTensor<CudnnCuda>,
    weight: FloatTensor<CudnnCuda>,
    output_grad: FloatTensor<CudnnCuda>,
    options: ConvOptions<2>,
) -> FloatTensor<CudnnCuda> {
    backward(Pass::Data, x, weight, output_grad, options)
}

/// The gradient of `conv2d` with respect to `weight`.
pub fn conv2d_weight_backward(
    x: FloatTensor<CudnnCuda>,
    weight: FloatTensor<CudnnCuda>,
    output_grad: FloatTensor<CudnnCuda>,
    options: ConvOptions<2>,
) -> FloatTensor<CudnnCuda> {
    backward(Pass::Filter, x, weight, output_grad, options)
}

/// A gradient pass (`Data`: of `x`, from the filter; `Filter`: of the filter, from `x`).
fn backward(
    which: Pass,
    x: FloatTensor<CudnnCuda>,
    weight: FloatTensor<CudnnCuda>,
    output_grad: FloatTensor<CudnnCuda>,
    options: ConvOptions<2>,
) -> FloatTensor<CudnnCuda> {
    let tried = (|| {
        let g = Conv2dGeometry::new(x.meta.shape(), weight.meta.shape(), &options)?;
        let dy = contiguous(output_grad.clone()).ok_or("not f32")?;
        let (operand, shape) = match which {
            Pass::Data => (weight.clone(), g.x),
            _ => (x.clone(), g.w),
        };
        let operand = contiguous(operand).ok_or("not f32")?;
        pass(&g, which, &operand, &dy, shape.map(|v| v as usize))
    })();
    tried.unwrap_or_else(|why| {
        fell_back(which, &why);
        match which {
            Pass::Data => {
                <Inner as ModuleOps<Inner>>::conv2d_x_backward(x, weight, output_grad, options)
            }
            _ => {
                <Inner as ModuleOps<Inner>>::conv2d_weight_backward(x, weight, output_grad, options)
            }
        }
    })
}
