//! The module behind one edge: maps an [`Op`] (plus channels and stride) to its layers.

use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use crate::hooks::{LayerHooks, Plain};

use super::layers::{
    DilConv, FactorizedReduce, Identity, ReluConvBn, SepConv, SeqLayer, Zero, conv_7x1_1x7,
    sequential,
};
use tanas_core::cell::Op;

/// The layers of one edge operation (DARTS's `_ops[j]`). burn's own paths include the variant
/// name (`cells.0._ops.3.SepConv.op.1.Conv.weight`); collected with `skip_enum_variants` they
/// are DARTS's (`cells.0._ops.3.op.1.weight`).
// A network holds a few hundred of these at most; boxing would only add indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum EdgeOp<B: Backend> {
    /// `none`.
    Zero(Zero),
    /// `skip_connect` at stride 1.
    Identity(Identity),
    /// `skip_connect` at stride 2.
    FactorizedReduce(FactorizedReduce<B>),
    /// `max_pool_3x3`.
    MaxPool(MaxPool2d),
    /// `avg_pool_3x3`.
    AvgPool(AvgPool2d),
    /// `conv_3x3`, `conv_5x5`, `conv_7x7`.
    ReluConvBn(ReluConvBn<B>),
    /// `sep_conv_3x3`, `sep_conv_5x5`.
    SepConv(SepConv<B>),
    /// `dil_conv_3x3`, `dil_conv_5x5`.
    DilConv(DilConv<B>),
    /// `conv_7x1_1x7` (a bare sequence, as in DARTS: tensors `1.weight`, `2.weight`, `3.*`).
    Conv7x1And1x7(Vec<SeqLayer<B>>),
}

impl<B: Backend> EdgeOp<B> {
    /// Builds `op` on `c` channels with the given stride (1, or 2 for edges leaving an input
    /// node of a reduction cell).
    pub fn new(op: Op, c: usize, stride: usize, device: &B::Device) -> Self {
        let pool_padding = PaddingConfig2d::Explicit(1, 1, 1, 1);
        match op {
            Op::None => EdgeOp::Zero(Zero { stride }),
            Op::SkipConnect if stride == 1 => EdgeOp::Identity(Identity),
            Op::SkipConnect => EdgeOp::FactorizedReduce(FactorizedReduce::new(c, c, device)),
            Op::MaxPool3x3 => EdgeOp::MaxPool(
                MaxPool2dConfig::new([3, 3])
                    .with_strides([stride, stride])
                    .with_padding(pool_padding)
                    .init(),
            ),
            Op::AvgPool3x3 => EdgeOp::AvgPool(
                AvgPool2dConfig::new([3, 3])
                    .with_strides([stride, stride])
                    .with_padding(pool_padding)
                    .with_count_include_pad(false)
                    .init(),
            ),
            Op::Conv3x3 => EdgeOp::ReluConvBn(ReluConvBn::new(c, c, 3, stride, device)),
            Op::Conv5x5 => EdgeOp::ReluConvBn(ReluConvBn::new(c, c, 5, stride, device)),
            Op::Conv7x7 => EdgeOp::ReluConvBn(ReluConvBn::new(c, c, 7, stride, device)),
            Op::SepConv3x3 => EdgeOp::SepConv(SepConv::new(c, 3, stride, device)),
            Op::SepConv5x5 => EdgeOp::SepConv(SepConv::new(c, 5, stride, device)),
            Op::DilConv3x3 => EdgeOp::DilConv(DilConv::new(c, 3, stride, device)),
            Op::DilConv5x5 => EdgeOp::DilConv(DilConv::new(c, 5, stride, device)),
            Op::Conv7x1And1x7 => EdgeOp::Conv7x1And1x7(conv_7x1_1x7(c, stride, device)),
        }
    }

    /// Applies the operation.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.forward_hooked(x, &mut Plain)
    }

    /// Applies the operation, parameterised layers through `h`.
    pub fn forward_hooked<H: LayerHooks<B>>(&self, x: Tensor<B, 4>, h: &mut H) -> Tensor<B, 4> {
        match self {
            EdgeOp::Zero(z) => z.forward(&x),
            EdgeOp::Identity(_) => x,
            EdgeOp::FactorizedReduce(m) => m.forward_hooked(x, h),
            EdgeOp::MaxPool(m) => m.forward(x),
            EdgeOp::AvgPool(m) => m.forward(x),
            EdgeOp::ReluConvBn(m) => m.forward_hooked(x, h),
            EdgeOp::SepConv(m) => m.forward_hooked(x, h),
            EdgeOp::DilConv(m) => m.forward_hooked(x, h),
            EdgeOp::Conv7x1And1x7(m) => sequential(m, x, h),
        }
    }
}
