//! Building blocks shared by the CNN families: an `nn.Sequential` stand-in and layer
//! constructors with the PyTorch hyper-parameters.
//!
//! PyTorch numbers every member of an `nn.Sequential`, parameter-free ones included
//! (`features.0` conv, `features.1` BatchNorm, `features.2` ReLU, ...). A `Vec<Layer<B>>`
//! numbers its members the same way, and because [`Layer`] is an enum, burn-store drops
//! its variant names from the path when it collects tensors with
//! `skip_enum_variants`, so `features.1.BatchNorm.gamma` becomes `features.1.gamma`
//! (and then `features.1.weight` with the PyTorch adapter; see [`crate::weights`]).

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d, Relu};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use crate::hooks::LayerHooks;

/// One member of an `nn.Sequential` of 2-D layers.
#[derive(Module, Debug)]
pub enum Layer<B: Backend> {
    /// `nn.Conv2d`.
    Conv(Conv2d<B>),
    /// `nn.BatchNorm2d`.
    BatchNorm(BatchNorm<B>),
    /// `nn.ReLU`.
    Relu(Relu),
    /// `nn.MaxPool2d`.
    MaxPool(MaxPool2d),
    /// `nn.AvgPool2d` (`count_include_pad=True`, PyTorch's default).
    AvgPool(AvgPool2d),
}

impl<B: Backend> Layer<B> {
    /// Applies the layer, parameterised layers through `hooks`.
    pub fn forward_hooked<H: LayerHooks<B>>(&self, x: Tensor<B, 4>, hooks: &mut H) -> Tensor<B, 4> {
        match self {
            Layer::Conv(m) => hooks.conv2d(m, x),
            Layer::BatchNorm(m) => hooks.batch_norm(m, x),
            Layer::Relu(m) => m.forward(x),
            Layer::MaxPool(m) => m.forward(x),
            Layer::AvgPool(m) => m.forward(x),
        }
    }
}

/// Applies `layers` in order, like `nn.Sequential.forward`.
pub fn sequential<B: Backend, H: LayerHooks<B>>(
    layers: &[Layer<B>],
    x: Tensor<B, 4>,
    hooks: &mut H,
) -> Tensor<B, 4> {
    layers
        .iter()
        .fold(x, |x, layer| layer.forward_hooked(x, hooks))
}

/// `nn.Conv2d(cin, cout, kernel, stride, padding, bias)` with PyTorch's default init.
pub fn conv2d<B: Backend>(
    cin: usize,
    cout: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    bias: bool,
    device: &B::Device,
) -> Conv2d<B> {
    Conv2dConfig::new([cin, cout], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(
            padding, padding, padding, padding,
        ))
        .with_bias(bias)
        .init(device)
}

/// `nn.BatchNorm2d(c)` (eps 1e-5, momentum 0.1).
pub fn batch_norm<B: Backend>(channels: usize, device: &B::Device) -> BatchNorm<B> {
    BatchNormConfig::new(channels).init(device)
}

/// `nn.Linear(d_in, d_out)` with bias.
pub fn linear<B: Backend>(d_in: usize, d_out: usize, device: &B::Device) -> Linear<B> {
    LinearConfig::new(d_in, d_out).init(device)
}

/// `nn.MaxPool2d(kernel, stride)`.
pub fn max_pool(kernel: usize, stride: usize) -> MaxPool2d {
    MaxPool2dConfig::new([kernel, kernel])
        .with_strides([stride, stride])
        .init()
}

/// The mean over each feature map (`F.adaptive_avg_pool2d(x, 1)`): at a 32x32 network input
/// it is the final `avg_pool2d(out, 4)` of the CIFAR ResNet / DenseNet (a 4x4 map) and nothing
/// for VGG (1x1); at a larger input it keeps the classifier's width.
pub fn global_avg_pool<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [_, _, h, w] = x.dims();
    if h * w == 1 {
        return x;
    }
    burn::tensor::module::avg_pool2d(x, [h, w], [h, w], [0, 0], true, false)
}

/// `nn.AvgPool2d(kernel, stride)`.
pub fn avg_pool(kernel: usize, stride: usize) -> AvgPool2d {
    AvgPool2dConfig::new([kernel, kernel])
        .with_strides([stride, stride])
        .init()
}
