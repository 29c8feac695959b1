//! Helpers shared by the zoo's integration tests.
#![allow(dead_code, missing_docs)]

use std::path::PathBuf;

use burn::backend::Autodiff;
use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};
use tanas_zoo::cell::{CellSkeleton, Genotype};
use tanas_zoo::{Arch, ModelSpec, ZooModel};

/// The CPU backend (tanas-cpu).
pub use tanas_cpu::Cpu;
/// The CPU backend with autodiff.
pub type CpuAd = Autodiff<Cpu>;

/// The fixture directory.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Every architecture with a fixed definition (all but `cellnet`).
pub fn fixed_archs() -> impl Iterator<Item = Arch> {
    Arch::ALL.into_iter().filter(|a| !a.needs_genotype())
}

/// A spec for `arch`; `cellnet` gets DARTS_V2 on a small skeleton.
pub fn spec(arch: Arch, num_classes: usize) -> ModelSpec {
    let spec = ModelSpec::new(arch, num_classes);
    if arch.needs_genotype() {
        spec.with_genotype(Genotype::darts_v2())
            .with_skeleton(CellSkeleton::new(4, 3))
    } else {
        spec
    }
}

/// Builds `arch` with `num_classes` on `B`.
pub fn build<B: Backend>(arch: Arch, num_classes: usize) -> ZooModel<B> {
    match ZooModel::new(&spec(arch, num_classes), &Default::default()) {
        Ok(m) => m,
        Err(e) => panic!("{arch}: {e}"),
    }
}

/// Replaces every parameter and buffer by random values, so that nothing equals a fresh
/// model's tensors (BatchNorm statistics included).
pub fn randomise<B: Backend, M: Module<B>>(model: M) -> M {
    struct Randomise;
    impl<B: Backend> ModuleMapper<B> for Randomise {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            let (id, t, mapper) = param.consume();
            let r = Tensor::random(t.shape(), Distribution::Uniform(0.5, 1.5), &t.device());
            Param::from_mapped_value(id, r, mapper)
        }
    }
    model.map(&mut Randomise)
}

/// A tiny cell network (2 classes, C = 2, L = 1, parameter-free cell ops: 23 tensors), the
/// network of `fixtures/tiny_cellnet.pt`.
pub fn tiny() -> ZooModel<Cpu> {
    let text = std::fs::read_to_string(fixtures().join("tiny_genotype.json")).expect("genotype");
    let spec = ModelSpec::new(Arch::CellNet, 2)
        .with_genotype(Genotype::from_json(&text).expect("genotype"))
        .with_skeleton(CellSkeleton::new(2, 1));
    ZooModel::new(&spec, &Default::default()).expect("tiny cell network")
}
