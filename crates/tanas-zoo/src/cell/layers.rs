//! The building blocks of cell operations, in DARTS's ReLU-conv-BN forms and with DARTS's
//! parameter names.
//!
//! DARTS builds its operations from `nn.Sequential`s (`op.1.weight` is the first conv of a
//! `ReLUConvBN`). A `Vec<`[`SeqLayer`]`>` numbers its members the same way, ReLUs included, and
//! because `SeqLayer` is an enum, its variant names drop out of the paths when tensors are
//! collected with `skip_enum_variants` (as the zoo's weights module does), so the tensors carry
//! DARTS's `state_dict` names.
//!
//! All convolutions are bias-free and all BatchNorms affine with burn's defaults (epsilon
//! 1e-5, momentum 0.1), as in DARTS's final networks. Paddings are explicit so that dilation
//! is honoured; at stride 2 every block maps a size `h` to `ceil(h / 2)`.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d, Relu};
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;

use crate::hooks::LayerHooks;
pub use crate::layers::{Layer as SeqLayer, sequential};
use burn::tensor::ops::PadMode;
use burn::tensor::{Tensor, s};

/// Shape of a bias-free 2D convolution.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConvSpec {
    /// Input and output channels.
    pub channels: [usize; 2],
    /// Kernel size (height, width).
    pub kernel: [usize; 2],
    /// Stride (height, width).
    pub stride: [usize; 2],
    /// Symmetric padding (height, width).
    pub padding: [usize; 2],
    /// Dilation (both axes).
    pub dilation: usize,
    /// Groups (`channels[0]` for a depthwise convolution).
    pub groups: usize,
}

impl ConvSpec {
    /// A square `k x k` convolution, padding `k / 2`, no dilation, one group.
    pub fn square(cin: usize, cout: usize, k: usize, stride: usize) -> Self {
        ConvSpec {
            channels: [cin, cout],
            kernel: [k, k],
            stride: [stride, stride],
            padding: [k / 2, k / 2],
            dilation: 1,
            groups: 1,
        }
    }

    /// A 1x1 convolution with stride 1.
    pub fn pointwise(cin: usize, cout: usize) -> Self {
        ConvSpec::square(cin, cout, 1, 1)
    }

    /// A depthwise `k x k` convolution with the given dilation and "same" padding.
    pub fn depthwise(c: usize, k: usize, stride: usize, dilation: usize) -> Self {
        let pad = dilation * (k - 1) / 2;
        ConvSpec {
            channels: [c, c],
            kernel: [k, k],
            stride: [stride, stride],
            padding: [pad, pad],
            dilation,
            groups: c,
        }
    }

    /// Builds the convolution (Kaiming-uniform init, as PyTorch's default).
    pub fn init<B: Backend>(self, device: &B::Device) -> Conv2d<B> {
        let [ph, pw] = self.padding;
        Conv2dConfig::new(self.channels, self.kernel)
            .with_stride(self.stride)
            .with_padding(PaddingConfig2d::Explicit(ph, pw, ph, pw))
            .with_dilation([self.dilation, self.dilation])
            .with_groups(self.groups)
            .with_bias(false)
            .init(device)
    }

    /// Builds the convolution as a sequence member.
    pub fn layer<B: Backend>(self, device: &B::Device) -> SeqLayer<B> {
        SeqLayer::Conv(self.init(device))
    }
}

/// A BatchNorm over `c` channels with DARTS's settings.
pub(crate) fn batch_norm<B: Backend>(c: usize, device: &B::Device) -> BatchNorm<B> {
    BatchNormConfig::new(c).init(device)
}

/// A BatchNorm as a sequence member.
fn bn_layer<B: Backend>(c: usize, device: &B::Device) -> SeqLayer<B> {
    SeqLayer::BatchNorm(batch_norm(c, device))
}

/// DARTS `ReLUConvBN`: `op` = [ReLU, conv, BN] (also `conv_3x3`/`5x5`/`7x7` and the 1x1
/// preprocessing of cell inputs). Tensors: `op.1.weight`, `op.2.*`.
#[derive(Module, Debug)]
pub struct ReluConvBn<B: Backend> {
    /// ReLU, convolution, BatchNorm.
    pub op: Vec<SeqLayer<B>>,
}

impl<B: Backend> ReluConvBn<B> {
    /// `k x k` convolution from `cin` to `cout` channels, padding `k / 2`.
    pub fn new(cin: usize, cout: usize, k: usize, stride: usize, device: &B::Device) -> Self {
        ReluConvBn {
            op: vec![
                SeqLayer::Relu(Relu),
                ConvSpec::square(cin, cout, k, stride).layer(device),
                bn_layer(cout, device),
            ],
        }
    }

    /// Applies ReLU, conv, BN. Parameterised layers go through `h`.
    pub fn forward_hooked<H: LayerHooks<B>>(&self, x: Tensor<B, 4>, h: &mut H) -> Tensor<B, 4> {
        sequential(&self.op, x, h)
    }
}

/// DARTS `SepConv`: `op` = two blocks of [ReLU, depthwise `k x k` conv, 1x1 conv, BN]; only
/// the first depthwise conv carries the stride. Tensors: `op.{1,2,3,5,6,7}`.
#[derive(Module, Debug)]
pub struct SepConv<B: Backend> {
    /// The eight layers.
    pub op: Vec<SeqLayer<B>>,
}

impl<B: Backend> SepConv<B> {
    /// A separable `k x k` convolution on `c` channels.
    pub fn new(c: usize, k: usize, stride: usize, device: &B::Device) -> Self {
        SepConv {
            op: vec![
                SeqLayer::Relu(Relu),
                ConvSpec::depthwise(c, k, stride, 1).layer(device),
                ConvSpec::pointwise(c, c).layer(device),
                bn_layer(c, device),
                SeqLayer::Relu(Relu),
                ConvSpec::depthwise(c, k, 1, 1).layer(device),
                ConvSpec::pointwise(c, c).layer(device),
                bn_layer(c, device),
            ],
        }
    }

    /// Applies both blocks. Parameterised layers go through `h`.
    pub fn forward_hooked<H: LayerHooks<B>>(&self, x: Tensor<B, 4>, h: &mut H) -> Tensor<B, 4> {
        sequential(&self.op, x, h)
    }
}

/// DARTS `DilConv`: `op` = [ReLU, depthwise `k x k` conv with dilation 2 (padding `k - 1`),
/// 1x1 conv, BN]. Tensors: `op.{1,2,3}`.
#[derive(Module, Debug)]
pub struct DilConv<B: Backend> {
    /// The four layers.
    pub op: Vec<SeqLayer<B>>,
}

impl<B: Backend> DilConv<B> {
    /// Dilation of DARTS's dilated convolutions.
    pub const DILATION: usize = 2;

    /// A dilated separable `k x k` convolution on `c` channels.
    pub fn new(c: usize, k: usize, stride: usize, device: &B::Device) -> Self {
        DilConv {
            op: vec![
                SeqLayer::Relu(Relu),
                ConvSpec::depthwise(c, k, stride, Self::DILATION).layer(device),
                ConvSpec::pointwise(c, c).layer(device),
                bn_layer(c, device),
            ],
        }
    }

    /// Applies ReLU, dilated depthwise conv, pointwise conv, BN. Parameterised layers go through `h`.
    pub fn forward_hooked<H: LayerHooks<B>>(&self, x: Tensor<B, 4>, h: &mut H) -> Tensor<B, 4> {
        sequential(&self.op, x, h)
    }
}

/// DARTS's `conv_7x1_1x7`, a bare `nn.Sequential`: [ReLU, 1x7 conv (stride along the width,
/// padding 3), 7x1 conv (stride along the height, padding 3), BN]. Tensors: `{1,2,3}`.
pub fn conv_7x1_1x7<B: Backend>(c: usize, stride: usize, device: &B::Device) -> Vec<SeqLayer<B>> {
    let base = ConvSpec::pointwise(c, c);
    vec![
        SeqLayer::Relu(Relu),
        ConvSpec {
            kernel: [1, 7],
            stride: [1, stride],
            padding: [0, 3],
            ..base
        }
        .layer(device),
        ConvSpec {
            kernel: [7, 1],
            stride: [stride, 1],
            padding: [3, 0],
            ..base
        }
        .layer(device),
        bn_layer(c, device),
    ]
}

/// DARTS `FactorizedReduce`: ReLU, then two 1x1 stride-2 convolutions, one on the input and
/// one on the input shifted by one pixel, concatenated along channels, then BN.
///
/// On odd sizes the shifted input is zero-padded at the bottom/right so that both halves have
/// `ceil(h / 2)` rows (DARTS fails there); on even sizes this is exactly DARTS.
#[derive(Module, Debug)]
pub struct FactorizedReduce<B: Backend> {
    /// 1x1 stride-2 convolution on the input (`ceil(cout / 2)` channels).
    pub conv_1: Conv2d<B>,
    /// 1x1 stride-2 convolution on the shifted input (`cout / 2` channels).
    pub conv_2: Conv2d<B>,
    /// The BatchNorm over `cout` channels.
    pub bn: BatchNorm<B>,
}

impl<B: Backend> FactorizedReduce<B> {
    /// Halves the spatial size, `cin` to `cout` channels.
    pub fn new(cin: usize, cout: usize, device: &B::Device) -> Self {
        let half = cout / 2;
        FactorizedReduce {
            conv_1: ConvSpec::square(cin, cout - half, 1, 2).init(device),
            conv_2: ConvSpec::square(cin, half, 1, 2).init(device),
            bn: batch_norm(cout, device),
        }
    }

    /// Applies the reduction, parameterised layers through `hk`.
    pub fn forward_hooked<H: LayerHooks<B>>(&self, x: Tensor<B, 4>, hk: &mut H) -> Tensor<B, 4> {
        let x = relu(x);
        let [_, _, h, w] = x.dims();
        let (pb, pr) = (h % 2, w % 2);
        let shifted = if pb + pr > 0 {
            x.clone().pad((0, pr, 0, pb), PadMode::Constant(0.0))
        } else {
            x.clone()
        };
        let shifted = shifted.slice(s![.., .., 1..h + pb, 1..w + pr]);
        let out = Tensor::cat(
            vec![hk.conv2d(&self.conv_1, x), hk.conv2d(&self.conv_2, shifted)],
            1,
        );
        hk.batch_norm(&self.bn, out)
    }
}

/// The zero operation: a zero tensor of the output size (`ceil(h / stride)`), no gradient.
#[derive(Module, Clone, Debug)]
pub struct Zero {
    /// 1, or 2 on an edge of a reduction cell leaving an input node.
    pub stride: usize,
}

impl Zero {
    /// Zeros with the input's batch and channels and the strided spatial size.
    pub fn forward<B: Backend>(&self, x: &Tensor<B, 4>) -> Tensor<B, 4> {
        let [n, c, h, w] = x.dims();
        let s = self.stride.max(1);
        Tensor::zeros(
            [n, c, h.div_ceil(s), w.div_ceil(s)],
            (&x.device(), x.dtype()),
        )
    }
}

/// The identity (`skip_connect` at stride 1).
#[derive(Module, Clone, Debug, Default)]
pub struct Identity;
