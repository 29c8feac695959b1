//! VGG-11/13/16/19 with BatchNorm in the CIFAR form of kuangliu's "pytorch-cifar"
//! (`models/vgg.py`):
//!
//! ```python
//! class VGG(nn.Module):
//!     def __init__(self, vgg_name):
//!         self.features = self._make_layers(cfg[vgg_name])
//!         self.classifier = nn.Linear(512, 10)
//!     def forward(self, x):
//!         out = self.features(x)
//!         out = out.view(out.size(0), -1)
//!         return self.classifier(out)
//!     def _make_layers(self, cfg):
//!         layers, in_channels = [], 3
//!         for x in cfg:
//!             if x == 'M':
//!                 layers += [nn.MaxPool2d(kernel_size=2, stride=2)]
//!             else:
//!                 layers += [nn.Conv2d(in_channels, x, kernel_size=3, padding=1),
//!                            nn.BatchNorm2d(x), nn.ReLU(inplace=True)]
//!                 in_channels = x
//!         layers += [nn.AvgPool2d(kernel_size=1, stride=1)]
//!         return nn.Sequential(*layers)
//! ```
//!
//! with the class count as a parameter. `features` is a `Vec<Layer>` that numbers its
//! members exactly as the `nn.Sequential` does. VGG-16 has 14,728,266 parameters for 10
//! classes.

use burn::module::Module;
use burn::nn::{Linear, Relu};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use crate::hooks::{LayerHooks, Plain};

use crate::layers::{Layer, avg_pool, batch_norm, conv2d, linear, max_pool, sequential};

/// The depth of a VGG network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VggDepth {
    /// VGG-11.
    D11,
    /// VGG-13.
    D13,
    /// VGG-16.
    D16,
    /// VGG-19.
    D19,
}

/// One entry of a VGG configuration: a 3x3 conv block with this many channels, or a max-pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    Conv(usize),
    Pool,
}

impl VggDepth {
    /// The `cfg` list of the reference (`'M'` = max-pool).
    fn config(self) -> Vec<Item> {
        use Item::{Conv as C, Pool as M};
        let stage = |c: usize, n: usize| {
            let mut v = vec![C(c); n];
            v.push(M);
            v
        };
        let counts = match self {
            VggDepth::D11 => [1, 1, 2, 2, 2],
            VggDepth::D13 => [2, 2, 2, 2, 2],
            VggDepth::D16 => [2, 2, 3, 3, 3],
            VggDepth::D19 => [2, 2, 4, 4, 4],
        };
        [64, 128, 256, 512, 512]
            .into_iter()
            .zip(counts)
            .flat_map(|(c, n)| stage(c, n))
            .collect()
    }
}

/// A VGG network (`features`, `classifier`).
#[derive(Module, Debug)]
pub struct Vgg<B: Backend> {
    /// The `nn.Sequential` of conv / BatchNorm / ReLU / max-pool layers and the final
    /// 1x1 average pool.
    pub features: Vec<Layer<B>>,
    /// `Linear(512, num_classes)`.
    pub classifier: Linear<B>,
}

impl<B: Backend> Vgg<B> {
    /// A freshly initialised VGG of the given depth with `num_classes` outputs.
    pub fn new(depth: VggDepth, num_classes: usize, device: &B::Device) -> Self {
        let mut features = Vec::new();
        let mut cin = 3;
        for item in depth.config() {
            match item {
                Item::Pool => features.push(Layer::MaxPool(max_pool(2, 2))),
                Item::Conv(c) => {
                    features.push(Layer::Conv(conv2d(cin, c, 3, 1, 1, true, device)));
                    features.push(Layer::BatchNorm(batch_norm(c, device)));
                    features.push(Layer::Relu(Relu::new()));
                    cin = c;
                }
            }
        }
        features.push(Layer::AvgPool(avg_pool(1, 1)));
        Self {
            features,
            classifier: linear(512, num_classes, device),
        }
    }

    /// Logits `[B, num_classes]` of images `[B, 3, S, S]` (S = 32 in the papers; larger
    /// inputs are averaged over the final map).
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        self.forward_hooked(x, &mut Plain)
    }

    /// [`Self::forward`] with the parameterised layers applied through `hooks`.
    pub fn forward_hooked<H: LayerHooks<B>>(&self, x: Tensor<B, 4>, h: &mut H) -> Tensor<B, 2> {
        let x = sequential(&self.features, x, h);
        let x = crate::layers::global_avg_pool(x);
        h.linear(&self.classifier, x.flatten(1, 3))
    }
}
