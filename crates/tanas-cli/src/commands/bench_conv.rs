//! `tanas bench conv`: milliseconds per call of the three passes of a 2-D convolution
//! (forward, data gradient, weight gradient), called as the backend's own ops (no autodiff),
//! on the convolution shapes of ResNet-18 (batch 128) and of DARTS_V2's cells (C=16, batch
//! 64) at 32x32 inputs. `cargo xtask bench conv` times PyTorch on the same shapes.

use std::time::Instant;

use anyhow::Result;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::ops::{ConvOptions, FloatTensor, ModuleOps};
use burn::tensor::{Distribution, Tensor, TensorMetadata};
use serde::Serialize;

use crate::backend::BackendJob;

/// Warm-up calls per pass (autotuning and algorithm choice happen there).
const WARMUP: usize = 3;

/// One benchmarked convolution.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ConvShape {
    /// Where the shape occurs.
    pub name: &'static str,
    /// Input `[N, C_in, H, W]`.
    pub x: [usize; 4],
    /// Filter `[C_out, C_in / groups, KH, KW]`.
    pub w: [usize; 4],
    pub stride: usize,
    pub padding: usize,
    pub dilation: usize,
    pub groups: usize,
}

/// `name`'s convolution of `x` to `cout` channels with a `k x k` filter and `[stride,
/// padding, dilation, groups]`.
const fn shape(
    name: &'static str,
    x: [usize; 4],
    cout: usize,
    k: usize,
    spdg: [usize; 4],
) -> ConvShape {
    let [stride, padding, dilation, groups] = spdg;
    ConvShape {
        name,
        x,
        w: [cout, x[1] / groups, k, k],
        stride,
        padding,
        dilation,
        groups,
    }
}

/// ResNet-18's distinct convolutions (CIFAR stem) at batch 128, then DARTS_V2's at C=16,
/// batch 64: separable (depthwise 3x3 and 5x5, pointwise 1x1), dilated, in a normal cell at
/// 32x32 and a reduction cell.
pub const SHAPES: [ConvShape; 14] = [
    shape("resnet18 stem", [128, 3, 32, 32], 64, 3, [1, 1, 1, 1]),
    shape("resnet18 layer1", [128, 64, 32, 32], 64, 3, [1, 1, 1, 1]),
    shape("resnet18 down2", [128, 64, 32, 32], 128, 3, [2, 1, 1, 1]),
    shape("resnet18 skip2", [128, 64, 32, 32], 128, 1, [2, 0, 1, 1]),
    shape("resnet18 layer2", [128, 128, 16, 16], 128, 3, [1, 1, 1, 1]),
    shape("resnet18 layer3", [128, 256, 8, 8], 256, 3, [1, 1, 1, 1]),
    shape("resnet18 layer4", [128, 512, 4, 4], 512, 3, [1, 1, 1, 1]),
    shape("darts sep3 dw", [64, 16, 32, 32], 16, 3, [1, 1, 1, 16]),
    shape("darts sep5 dw", [64, 16, 32, 32], 16, 5, [1, 2, 1, 16]),
    shape("darts sep pw", [64, 16, 32, 32], 16, 1, [1, 0, 1, 1]),
    shape("darts dil3 dw", [64, 16, 32, 32], 16, 3, [1, 2, 2, 16]),
    shape(
        "darts reduce sep3 dw",
        [64, 32, 32, 32],
        32,
        3,
        [2, 1, 1, 32],
    ),
    shape("darts cell8 sep3 dw", [64, 64, 8, 8], 64, 3, [1, 1, 1, 64]),
    shape("darts cell8 pw", [64, 64, 8, 8], 64, 1, [1, 0, 1, 1]),
];

/// One pass of one shape.
#[derive(Debug, Serialize)]
pub struct ConvRow {
    #[serde(flatten)]
    pub shape: ConvShape,
    /// `forward`, `data` (gradient of the input) or `weight` (gradient of the filter).
    pub pass: &'static str,
    /// Milliseconds per call (the device synchronised after the timed calls).
    pub ms: f64,
}

/// Times every pass of every shape of [`SHAPES`].
pub struct ConvJob {
    /// Timed calls per pass.
    pub reps: usize,
}

impl BackendJob for ConvJob {
    type Output = Vec<ConvRow>;
    fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<Vec<ConvRow>> {
        type I<B> = <B as AutodiffBackend>::InnerBackend;
        let mut rows = Vec::new();
        for s in SHAPES {
            let options =
                ConvOptions::new([s.stride; 2], [s.padding; 2], [s.dilation; 2], s.groups);
            let normal = |dims: [usize; 4]| {
                Tensor::<I<B>, 4>::random(dims, Distribution::Normal(0.0, 1.0), &device)
                    .into_primitive()
                    .tensor()
            };
            let (x, w) = (normal(s.x), normal(s.w));
            let y = I::<B>::conv2d(x.clone(), w.clone(), None, options.clone());
            let dy = normal(y.shape().dims::<4>());
            for pass in ["forward", "data", "weight"] {
                let call = || match pass {
                    "forward" => I::<B>::conv2d(x.clone(), w.clone(), None, options.clone()),
                    "data" => {
                        I::<B>::conv2d_x_backward(x.clone(), w.clone(), dy.clone(), options.clone())
                    }
                    _ => I::<B>::conv2d_weight_backward(
                        x.clone(),
                        w.clone(),
                        dy.clone(),
                        options.clone(),
                    ),
                };
                let ms = time::<I<B>>(&device, self.reps, call)?;
                rows.push(ConvRow { shape: s, pass, ms });
            }
        }
        Ok(rows)
    }
}

/// Milliseconds per call of `call`: [`WARMUP`] calls, then `reps` timed ones, the device
/// synchronised before the clock starts and before it stops.
fn time<I: Backend>(
    device: &I::Device,
    reps: usize,
    call: impl Fn() -> FloatTensor<I>,
) -> Result<f64> {
    let sync = || I::sync(device).map_err(|e| anyhow::anyhow!("device sync: {e:?}"));
    for _ in 0..WARMUP {
        drop(call());
    }
    sync()?;
    let start = Instant::now();
    for _ in 0..reps {
        drop(call());
    }
    sync()?;
    Ok(start.elapsed().as_secs_f64() * 1e3 / reps as f64)
}
