//! [`ZooModel`]: one burn module type for every architecture of the zoo, built from a
//! [`ModelSpec`].

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use crate::hooks::{LayerHooks, Plain};

use crate::Arch;
use crate::ZooError;
use crate::cell::{CellNet, CellSkeleton, Genotype};
use crate::densenet::{DenseNet, DenseNetDepth};
use crate::resnet::{ResNet, ResNetDepth};
use crate::small_cnn::SmallCnn;
use crate::vgg::{Vgg, VggDepth};
use crate::weights::{self, TensorInfo};

/// What to build: the architecture, the class count and, for `cellnet`, the genotype and
/// skeleton.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    /// The architecture.
    pub arch: Arch,
    /// The number of output classes (at least 1).
    pub num_classes: usize,
    /// The cells of a `cellnet` (required there, ignored by the other architectures).
    pub genotype: Option<Genotype>,
    /// The size of a `cellnet` (ignored by the other architectures).
    pub skeleton: CellSkeleton,
}

impl ModelSpec {
    /// A spec without genotype and with the default skeleton.
    pub fn new(arch: Arch, num_classes: usize) -> Self {
        Self {
            arch,
            num_classes,
            genotype: None,
            skeleton: CellSkeleton::default(),
        }
    }

    /// The same spec with a genotype.
    pub fn with_genotype(mut self, genotype: Genotype) -> Self {
        self.genotype = Some(genotype);
        self
    }

    /// The same spec with a skeleton.
    pub fn with_skeleton(mut self, skeleton: CellSkeleton) -> Self {
        self.skeleton = skeleton;
        self
    }
}

/// A network of the zoo. Its tensors carry the PyTorch `state_dict` names of the reference
/// definitions (see [`crate::weights`]): the enum variant does not appear in them.
// A few kilobytes of module handles per model, built once: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum ZooModel<B: Backend> {
    /// `small-cnn`.
    SmallCnn(SmallCnn<B>),
    /// `vgg11`, `vgg13`, `vgg16`, `vgg19`.
    Vgg(Vgg<B>),
    /// `resnet18`, `resnet34`.
    ResNet(ResNet<B>),
    /// `densenet121`, `densenet161`.
    DenseNet(DenseNet<B>),
    /// `cellnet`.
    CellNet(CellNet<B>),
}

impl<B: Backend> ZooModel<B> {
    /// Builds and initialises the network of `spec` on `device`.
    ///
    /// Every parameter is initialised here, in `state_dict` order, so that seeding the
    /// backend before this call fixes the weights whatever is done with the model later.
    pub fn new(spec: &ModelSpec, device: &B::Device) -> Result<Self, ZooError> {
        let k = spec.num_classes;
        if k == 0 {
            return Err(ZooError::InvalidNumClasses(k));
        }
        let model = match spec.arch {
            Arch::SmallCnn => ZooModel::SmallCnn(SmallCnn::new(k, device)),
            Arch::Vgg11 => ZooModel::Vgg(Vgg::new(VggDepth::D11, k, device)),
            Arch::Vgg13 => ZooModel::Vgg(Vgg::new(VggDepth::D13, k, device)),
            Arch::Vgg16 => ZooModel::Vgg(Vgg::new(VggDepth::D16, k, device)),
            Arch::Vgg19 => ZooModel::Vgg(Vgg::new(VggDepth::D19, k, device)),
            Arch::ResNet18 => ZooModel::ResNet(ResNet::new(ResNetDepth::D18, k, device)),
            Arch::ResNet34 => ZooModel::ResNet(ResNet::new(ResNetDepth::D34, k, device)),
            Arch::DenseNet121 => ZooModel::DenseNet(DenseNet::new(DenseNetDepth::D121, k, device)),
            Arch::DenseNet161 => ZooModel::DenseNet(DenseNet::new(DenseNetDepth::D161, k, device)),
            Arch::CellNet => {
                let genotype = spec.genotype.as_ref().ok_or(ZooError::MissingGenotype)?;
                ZooModel::CellNet(CellNet::new(genotype, &spec.skeleton, k, device)?)
            }
        };
        model.visit(&mut Initialise);
        Ok(model)
    }

    /// Logits `[B, num_classes]` of images `[B, 3, 32, 32]`.
    ///
    /// BatchNorm uses batch statistics on an autodiff backend and running statistics on a
    /// plain one (use `model.valid()` for eval mode).
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        self.forward_hooked(x, &mut Plain)
    }

    /// [`Self::forward`] with every `Conv2d`, `Linear` and `BatchNorm` applied through
    /// `hooks` (see [`crate::hooks`]: eval-mode BatchNorm, per-sample gradient taps).
    pub fn forward_hooked<H: LayerHooks<B>>(&self, x: Tensor<B, 4>, hooks: &mut H) -> Tensor<B, 2> {
        match self {
            ZooModel::SmallCnn(m) => m.forward_hooked(x, hooks),
            ZooModel::Vgg(m) => m.forward_hooked(x, hooks),
            ZooModel::ResNet(m) => m.forward_hooked(x, hooks),
            ZooModel::DenseNet(m) => m.forward_hooked(x, hooks),
            ZooModel::CellNet(m) => m.forward_hooked(x, hooks),
        }
    }

    /// The number of trainable parameters (PyTorch's `sum(p.numel() for p in
    /// model.parameters())`): BatchNorm running statistics are not counted, unlike
    /// burn's `Module::num_params`.
    pub fn num_params(&self) -> usize {
        weights::tensor_infos(self)
            .iter()
            .filter(|t| t.is_parameter())
            .map(TensorInfo::num_elements)
            .sum()
    }

    /// The number of output classes (the output size of the last `Linear` layer).
    pub fn num_classes(&self) -> usize {
        let mut head = LastLinear::default();
        self.visit(&mut head);
        head.d_output
    }

    /// Every parameter and buffer under its PyTorch `state_dict` name and shape, in
    /// `state_dict` order (see [`weights::tensor_infos`]).
    pub fn tensor_infos(&self) -> Vec<TensorInfo> {
        weights::tensor_infos(self)
    }
}

/// Initialises every lazy parameter, in visit order.
struct Initialise;

impl<B: Backend> ModuleVisitor<B> for Initialise {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let _ = param.val();
    }
}

/// Finds the output size of the last `Linear` layer (burn layout `[d_in, d_out]`).
#[derive(Default)]
struct LastLinear {
    containers: Vec<String>,
    d_output: usize,
}

impl<B: Backend> ModuleVisitor<B> for LastLinear {
    fn enter_module(&mut self, _name: &str, container_type: &str) {
        self.containers.push(container_type.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.containers.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let in_linear = self.containers.last().is_some_and(|c| c == "Struct:Linear");
        let shape = param.lazy_shape();
        if in_linear && D == 2 {
            self.d_output = shape[1];
        }
    }
}
