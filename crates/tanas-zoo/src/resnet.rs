//! ResNet-18/34 in the CIFAR form of kuangliu's "pytorch-cifar" (`models/resnet.py`):
//!
//! ```python
//! class BasicBlock(nn.Module):
//!     expansion = 1
//!     def __init__(self, in_planes, planes, stride=1):
//!         self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
//!         self.bn1 = nn.BatchNorm2d(planes)
//!         self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
//!         self.bn2 = nn.BatchNorm2d(planes)
//!         self.shortcut = nn.Sequential()
//!         if stride != 1 or in_planes != planes:
//!             self.shortcut = nn.Sequential(
//!                 nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
//!                 nn.BatchNorm2d(planes))
//!     def forward(self, x):
//!         out = F.relu(self.bn1(self.conv1(x)))
//!         out = self.bn2(self.conv2(out))
//!         return F.relu(out + self.shortcut(x))
//!
//! class ResNet(nn.Module):   # num_blocks [2,2,2,2] (18) or [3,4,6,3] (34)
//!     def __init__(self, block, num_blocks, num_classes=10):
//!         self.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
//!         self.bn1 = nn.BatchNorm2d(64)
//!         self.layer1 = self._make_layer(block, 64, num_blocks[0], stride=1)
//!         self.layer2 = self._make_layer(block, 128, num_blocks[1], stride=2)
//!         self.layer3 = self._make_layer(block, 256, num_blocks[2], stride=2)
//!         self.layer4 = self._make_layer(block, 512, num_blocks[3], stride=2)
//!         self.linear = nn.Linear(512, num_classes)
//!     def forward(self, x):
//!         out = F.relu(self.bn1(self.conv1(x)))
//!         out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
//!         out = F.adaptive_avg_pool2d(out, 1)  # avg_pool2d(out, 4) at a 32x32 input
//!         return self.linear(out.view(out.size(0), -1))
//! ```
//!
//! 11,173,962 (ResNet-18) and 21,282,122 (ResNet-34) parameters for 10 classes.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, Linear};
use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;

use crate::hooks::{LayerHooks, Plain};

use crate::layers::{Layer, batch_norm, conv2d, linear, sequential};

/// The depth of a ResNet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResNetDepth {
    /// ResNet-18: blocks `[2, 2, 2, 2]`.
    D18,
    /// ResNet-34: blocks `[3, 4, 6, 3]`.
    D34,
}

impl ResNetDepth {
    /// Blocks per stage.
    fn blocks(self) -> [usize; 4] {
        match self {
            ResNetDepth::D18 => [2, 2, 2, 2],
            ResNetDepth::D34 => [3, 4, 6, 3],
        }
    }
}

/// The residual block of ResNet-18/34.
#[derive(Module, Debug)]
pub struct BasicBlock<B: Backend> {
    /// 3x3 conv, stride 1 or 2, no bias.
    pub conv1: Conv2d<B>,
    /// BatchNorm after `conv1`.
    pub bn1: BatchNorm<B>,
    /// 3x3 conv, stride 1, no bias.
    pub conv2: Conv2d<B>,
    /// BatchNorm after `conv2`.
    pub bn2: BatchNorm<B>,
    /// Empty (identity) or `[1x1 conv, BatchNorm]` when the shape changes.
    pub shortcut: Vec<Layer<B>>,
}

impl<B: Backend> BasicBlock<B> {
    /// A block from `cin` to `cout` channels with the given stride.
    pub fn new(cin: usize, cout: usize, stride: usize, device: &B::Device) -> Self {
        let shortcut = if stride != 1 || cin != cout {
            vec![
                Layer::Conv(conv2d(cin, cout, 1, stride, 0, false, device)),
                Layer::BatchNorm(batch_norm(cout, device)),
            ]
        } else {
            Vec::new()
        };
        Self {
            conv1: conv2d(cin, cout, 3, stride, 1, false, device),
            bn1: batch_norm(cout, device),
            conv2: conv2d(cout, cout, 3, 1, 1, false, device),
            bn2: batch_norm(cout, device),
            shortcut,
        }
    }

    /// Applies the block, parameterised layers through `h`.
    pub fn forward_hooked<H: LayerHooks<B>>(&self, x: Tensor<B, 4>, h: &mut H) -> Tensor<B, 4> {
        let out = h.conv2d(&self.conv1, x.clone());
        let out = relu(h.batch_norm(&self.bn1, out));
        let out = h.conv2d(&self.conv2, out);
        let out = h.batch_norm(&self.bn2, out);
        relu(out + sequential(&self.shortcut, x, h))
    }
}

/// A CIFAR ResNet (`conv1`, `bn1`, `layer1..4`, `linear`).
#[derive(Module, Debug)]
pub struct ResNet<B: Backend> {
    /// 3x3 stem conv, 64 channels, no bias.
    pub conv1: Conv2d<B>,
    /// Stem BatchNorm.
    pub bn1: BatchNorm<B>,
    /// Stage 1, 64 channels, stride 1.
    pub layer1: Vec<BasicBlock<B>>,
    /// Stage 2, 128 channels, stride 2.
    pub layer2: Vec<BasicBlock<B>>,
    /// Stage 3, 256 channels, stride 2.
    pub layer3: Vec<BasicBlock<B>>,
    /// Stage 4, 512 channels, stride 2.
    pub layer4: Vec<BasicBlock<B>>,
    /// `Linear(512, num_classes)`.
    pub linear: Linear<B>,
}

impl<B: Backend> ResNet<B> {
    /// A freshly initialised ResNet of the given depth with `num_classes` outputs.
    pub fn new(depth: ResNetDepth, num_classes: usize, device: &B::Device) -> Self {
        let [n1, n2, n3, n4] = depth.blocks();
        let mut cin = 64;
        let mut stage = |cout: usize, n: usize, stride: usize| {
            (0..n)
                .map(|i| {
                    let s = if i == 0 { stride } else { 1 };
                    let block = BasicBlock::new(cin, cout, s, device);
                    cin = cout;
                    block
                })
                .collect::<Vec<_>>()
        };
        let layer1 = stage(64, n1, 1);
        let layer2 = stage(128, n2, 2);
        let layer3 = stage(256, n3, 2);
        let layer4 = stage(512, n4, 2);
        Self {
            conv1: conv2d(3, 64, 3, 1, 1, false, device),
            bn1: batch_norm(64, device),
            layer1,
            layer2,
            layer3,
            layer4,
            linear: linear(512, num_classes, device),
        }
    }

    /// Logits `[B, num_classes]` of images `[B, 3, S, S]` (S = 32 in the papers, any multiple
    /// of 8 from 32 up).
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        self.forward_hooked(x, &mut Plain)
    }

    /// [`Self::forward`] with the parameterised layers applied through `hooks`.
    pub fn forward_hooked<H: LayerHooks<B>>(&self, x: Tensor<B, 4>, h: &mut H) -> Tensor<B, 2> {
        let out = h.conv2d(&self.conv1, x);
        let mut out = relu(h.batch_norm(&self.bn1, out));
        for block in self
            .layer1
            .iter()
            .chain(&self.layer2)
            .chain(&self.layer3)
            .chain(&self.layer4)
        {
            out = block.forward_hooked(out, h);
        }
        let out = crate::layers::global_avg_pool(out);
        h.linear(&self.linear, out.flatten(1, 3))
    }
}
