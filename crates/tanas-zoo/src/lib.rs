//! The tanas model zoo: the epsilon-approximation networks of the papers (small CNN, VGG,
//! ResNet, DenseNet in their CIFAR forms) and DARTS-style cell networks built from a
//! [`Genotype`](cell::Genotype), with PyTorch-compatible parameter names and weight IO.

pub mod cell;
pub mod densenet;
pub mod error;
pub mod hooks;
pub mod layers;
pub mod model;
pub mod resnet;
pub mod small_cnn;
pub mod vgg;
pub mod weights;

pub use error::{ShapeMismatch, ZooError};
pub use model::{ModelSpec, ZooModel};
pub use tanas_core::arch::{self, Arch};
pub use weights::{TensorInfo, load_pytorch, load_pytorch_body, save_pytorch, tensor_infos};
