//! The small CNN: the quick epsilon-approximation network, defined in issue 3 of this
//! project (there is no external reference). In PyTorch it reads
//!
//! ```python
//! class SmallCNN(nn.Module):
//!     def __init__(self, num_classes):
//!         super().__init__()
//!         self.conv1 = nn.Conv2d(3, 32, 3, padding=1)
//!         self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
//!         self.conv3 = nn.Conv2d(64, 128, 3, padding=1)
//!         self.fc1 = nn.Linear(2048, 256)
//!         self.fc2 = nn.Linear(256, num_classes)
//!     def forward(self, x):
//!         x = F.max_pool2d(F.relu(self.conv1(x)), 2)
//!         x = F.max_pool2d(F.relu(self.conv2(x)), 2)
//!         x = F.max_pool2d(F.relu(self.conv3(x)), 2)
//!         x = F.adaptive_avg_pool2d(x, 4)  # nothing at a 32x32 input
//!         x = torch.flatten(x, 1)
//!         return self.fc2(F.relu(self.fc1(x)))
//! ```
//!
//! 620,362 parameters for 10 classes.

use burn::module::Module;
use burn::nn::Linear;
use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;

use crate::hooks::{LayerHooks, Plain};
use burn::tensor::module::{adaptive_avg_pool2d, max_pool2d};

use crate::layers::{conv2d, linear};

/// The small CNN (`conv1..3`, `fc1`, `fc2`).
#[derive(Module, Debug)]
pub struct SmallCnn<B: Backend> {
    /// `Conv2d(3, 32, 3, padding=1)`.
    pub conv1: Conv2d<B>,
    /// `Conv2d(32, 64, 3, padding=1)`.
    pub conv2: Conv2d<B>,
    /// `Conv2d(64, 128, 3, padding=1)`.
    pub conv3: Conv2d<B>,
    /// `Linear(2048, 256)`.
    pub fc1: Linear<B>,
    /// `Linear(256, num_classes)`.
    pub fc2: Linear<B>,
}

impl<B: Backend> SmallCnn<B> {
    /// A freshly initialised small CNN with `num_classes` outputs.
    pub fn new(num_classes: usize, device: &B::Device) -> Self {
        Self {
            conv1: conv2d(3, 32, 3, 1, 1, true, device),
            conv2: conv2d(32, 64, 3, 1, 1, true, device),
            conv3: conv2d(64, 128, 3, 1, 1, true, device),
            fc1: linear(128 * 4 * 4, 256, device),
            fc2: linear(256, num_classes, device),
        }
    }

    /// Logits `[B, num_classes]` of images `[B, 3, S, S]` (S = 32 in the papers; a larger
    /// input's last map is averaged to 4x4).
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        self.forward_hooked(x, &mut Plain)
    }

    /// [`Self::forward`] with the parameterised layers applied through `hooks`.
    pub fn forward_hooked<H: LayerHooks<B>>(&self, x: Tensor<B, 4>, h: &mut H) -> Tensor<B, 2> {
        let x = pool(relu(h.conv2d(&self.conv1, x)));
        let x = pool(relu(h.conv2d(&self.conv2, x)));
        let x = pool(relu(h.conv2d(&self.conv3, x)));
        let [_, _, rows, cols] = x.dims();
        let x = if (rows, cols) == (4, 4) {
            x
        } else {
            adaptive_avg_pool2d(x, [4, 4])
        };
        let x: Tensor<B, 2> = x.flatten(1, 3);
        let x = relu(h.linear(&self.fc1, x));
        h.linear(&self.fc2, x)
    }
}

/// `F.max_pool2d(x, 2)`.
fn pool<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    max_pool2d(x, [2, 2], [2, 2], [0, 0], [1, 1], false)
}
