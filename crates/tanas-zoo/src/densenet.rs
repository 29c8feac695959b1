//! DenseNet-121/161 in the CIFAR form of kuangliu's "pytorch-cifar" (`models/densenet.py`):
//!
//! ```python
//! class Bottleneck(nn.Module):
//!     def __init__(self, in_planes, growth_rate):
//!         self.bn1 = nn.BatchNorm2d(in_planes)
//!         self.conv1 = nn.Conv2d(in_planes, 4*growth_rate, kernel_size=1, bias=False)
//!         self.bn2 = nn.BatchNorm2d(4*growth_rate)
//!         self.conv2 = nn.Conv2d(4*growth_rate, growth_rate, 3, padding=1, bias=False)
//!     def forward(self, x):
//!         out = self.conv1(F.relu(self.bn1(x)))
//!         out = self.conv2(F.relu(self.bn2(out)))
//!         return torch.cat([out, x], 1)
//!
//! class Transition(nn.Module):
//!     def __init__(self, in_planes, out_planes):
//!         self.bn = nn.BatchNorm2d(in_planes)
//!         self.conv = nn.Conv2d(in_planes, out_planes, kernel_size=1, bias=False)
//!     def forward(self, x):
//!         return F.avg_pool2d(self.conv(F.relu(self.bn(x))), 2)
//!
//! class DenseNet(nn.Module):  # 121: [6,12,24,16], growth 32; 161: [6,12,36,24], growth 48
//!     def __init__(self, block, nblocks, growth_rate=12, reduction=0.5, num_classes=10):
//!         num_planes = 2*growth_rate
//!         self.conv1 = nn.Conv2d(3, num_planes, kernel_size=3, padding=1, bias=False)
//!         self.dense1 = self._make_dense_layers(block, num_planes, nblocks[0])
//!         num_planes += nblocks[0]*growth_rate
//!         out_planes = int(math.floor(num_planes*reduction))
//!         self.trans1 = Transition(num_planes, out_planes)
//!         num_planes = out_planes
//!         # ... dense2, trans2, dense3, trans3 likewise, then dense4
//!         self.bn = nn.BatchNorm2d(num_planes)
//!         self.linear = nn.Linear(num_planes, num_classes)
//!     def forward(self, x):
//!         out = self.conv1(x)
//!         out = self.trans1(self.dense1(out))
//!         out = self.trans2(self.dense2(out))
//!         out = self.trans3(self.dense3(out))
//!         out = self.dense4(out)
//!         out = F.adaptive_avg_pool2d(F.relu(self.bn(out)), 1)  # avg_pool2d(., 4) at 32x32
//!         return self.linear(out.view(out.size(0), -1))
//! ```
//!
//! 6,956,298 (DenseNet-121) and 26,482,378 (DenseNet-161) parameters for 10 classes.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, Linear};
use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;

use crate::hooks::{LayerHooks, Plain};
use burn::tensor::module::avg_pool2d;

use crate::layers::{batch_norm, conv2d, linear};

/// The depth of a DenseNet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenseNetDepth {
    /// DenseNet-121: blocks `[6, 12, 24, 16]`, growth rate 32.
    D121,
    /// DenseNet-161: blocks `[6, 12, 36, 24]`, growth rate 48.
    D161,
}

impl DenseNetDepth {
    /// Bottlenecks per dense block and the growth rate.
    fn config(self) -> ([usize; 4], usize) {
        match self {
            DenseNetDepth::D121 => ([6, 12, 24, 16], 32),
            DenseNetDepth::D161 => ([6, 12, 36, 24], 48),
        }
    }
}

/// The transition reduction factor of the reference (0.5).
const REDUCTION: f64 = 0.5;

/// BN-ReLU-1x1 conv (4k channels)-BN-ReLU-3x3 conv (k channels), output concatenated
/// *before* its input.
#[derive(Module, Debug)]
pub struct Bottleneck<B: Backend> {
    /// BatchNorm of the input.
    pub bn1: BatchNorm<B>,
    /// 1x1 conv to `4 * growth` channels, no bias.
    pub conv1: Conv2d<B>,
    /// BatchNorm after `conv1`.
    pub bn2: BatchNorm<B>,
    /// 3x3 conv to `growth` channels, no bias.
    pub conv2: Conv2d<B>,
}

impl<B: Backend> Bottleneck<B> {
    /// A bottleneck on `cin` channels adding `growth` channels.
    pub fn new(cin: usize, growth: usize, device: &B::Device) -> Self {
        Self {
            bn1: batch_norm(cin, device),
            conv1: conv2d(cin, 4 * growth, 1, 1, 0, false, device),
            bn2: batch_norm(4 * growth, device),
            conv2: conv2d(4 * growth, growth, 3, 1, 1, false, device),
        }
    }

    /// `cat([new features, x], dim 1)`, parameterised layers through `h`.
    pub fn forward_hooked<H: LayerHooks<B>>(&self, x: Tensor<B, 4>, h: &mut H) -> Tensor<B, 4> {
        let out = relu(h.batch_norm(&self.bn1, x.clone()));
        let out = h.conv2d(&self.conv1, out);
        let out = relu(h.batch_norm(&self.bn2, out));
        let out = h.conv2d(&self.conv2, out);
        Tensor::cat(vec![out, x], 1)
    }
}

/// BN-ReLU-1x1 conv-2x2 average pool between dense blocks.
#[derive(Module, Debug)]
pub struct Transition<B: Backend> {
    /// BatchNorm of the input.
    pub bn: BatchNorm<B>,
    /// 1x1 conv, no bias.
    pub conv: Conv2d<B>,
}

impl<B: Backend> Transition<B> {
    /// A transition from `cin` to `cout` channels.
    pub fn new(cin: usize, cout: usize, device: &B::Device) -> Self {
        Self {
            bn: batch_norm(cin, device),
            conv: conv2d(cin, cout, 1, 1, 0, false, device),
        }
    }

    /// Halves the spatial size; parameterised layers through `h`.
    pub fn forward_hooked<H: LayerHooks<B>>(&self, x: Tensor<B, 4>, h: &mut H) -> Tensor<B, 4> {
        let out = relu(h.batch_norm(&self.bn, x));
        let out = h.conv2d(&self.conv, out);
        avg_pool2d(out, [2, 2], [2, 2], [0, 0], true, false)
    }
}

/// A CIFAR DenseNet (`conv1`, `dense1`, `trans1`, ..., `dense4`, `bn`, `linear`).
#[derive(Module, Debug)]
pub struct DenseNet<B: Backend> {
    /// 3x3 stem conv to `2 * growth` channels, no bias.
    pub conv1: Conv2d<B>,
    /// Dense block 1.
    pub dense1: Vec<Bottleneck<B>>,
    /// Transition 1.
    pub trans1: Transition<B>,
    /// Dense block 2.
    pub dense2: Vec<Bottleneck<B>>,
    /// Transition 2.
    pub trans2: Transition<B>,
    /// Dense block 3.
    pub dense3: Vec<Bottleneck<B>>,
    /// Transition 3.
    pub trans3: Transition<B>,
    /// Dense block 4.
    pub dense4: Vec<Bottleneck<B>>,
    /// Final BatchNorm.
    pub bn: BatchNorm<B>,
    /// `Linear(channels, num_classes)`.
    pub linear: Linear<B>,
}

impl<B: Backend> DenseNet<B> {
    /// A freshly initialised DenseNet of the given depth with `num_classes` outputs.
    pub fn new(depth: DenseNetDepth, num_classes: usize, device: &B::Device) -> Self {
        let ([n1, n2, n3, n4], growth) = depth.config();
        let mut planes = 2 * growth;
        let conv1 = conv2d(3, planes, 3, 1, 1, false, device);
        let dense = |planes: &mut usize, n: usize| {
            (0..n)
                .map(|_| {
                    let b = Bottleneck::new(*planes, growth, device);
                    *planes += growth;
                    b
                })
                .collect::<Vec<_>>()
        };
        let transition = |planes: &mut usize| {
            // int(math.floor(num_planes * reduction)); exact for the reference's 0.5.
            let out = (*planes as f64 * REDUCTION).floor() as usize;
            let t = Transition::new(*planes, out, device);
            *planes = out;
            t
        };
        let dense1 = dense(&mut planes, n1);
        let trans1 = transition(&mut planes);
        let dense2 = dense(&mut planes, n2);
        let trans2 = transition(&mut planes);
        let dense3 = dense(&mut planes, n3);
        let trans3 = transition(&mut planes);
        let dense4 = dense(&mut planes, n4);
        Self {
            conv1,
            dense1,
            trans1,
            dense2,
            trans2,
            dense3,
            trans3,
            dense4,
            bn: batch_norm(planes, device),
            linear: linear(planes, num_classes, device),
        }
    }

    /// Logits `[B, num_classes]` of images `[B, 3, S, S]` (S = 32 in the papers, any multiple
    /// of 8 from 32 up).
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        self.forward_hooked(x, &mut Plain)
    }

    /// [`Self::forward`] with the parameterised layers applied through `hooks`.
    pub fn forward_hooked<H: LayerHooks<B>>(&self, x: Tensor<B, 4>, h: &mut H) -> Tensor<B, 2> {
        let dense = |blocks: &[Bottleneck<B>], x: Tensor<B, 4>, h: &mut H| {
            blocks.iter().fold(x, |x, b| b.forward_hooked(x, h))
        };
        let out = h.conv2d(&self.conv1, x);
        let out = dense(&self.dense1, out, h);
        let out = self.trans1.forward_hooked(out, h);
        let out = dense(&self.dense2, out, h);
        let out = self.trans2.forward_hooked(out, h);
        let out = dense(&self.dense3, out, h);
        let out = self.trans3.forward_hooked(out, h);
        let out = dense(&self.dense4, out, h);
        let out = relu(h.batch_norm(&self.bn, out));
        let out = crate::layers::global_avg_pool(out);
        h.linear(&self.linear, out.flatten(1, 3))
    }
}
