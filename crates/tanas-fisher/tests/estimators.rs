//! The Fisher estimators against references: the exact (batched per-sample) estimator against
//! the naive one-backward-per-sample loop on every kind of layer the zoo uses, and against a
//! Fisher computed independently with PyTorch on a PyTorch-trained network.

#![allow(clippy::unwrap_used)] // test helpers may panic on a broken fixture

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use tanas_cpu::Cpu;
use tanas_data::{DataDirs, DatasetName, ImageSet, TaskSplit};
use tanas_fisher::{Estimator, FisherConfig, FisherDiag, FisherMeta, fisher_diag};
use tanas_zoo::cell::{CellSkeleton, Genotype};
use tanas_zoo::{Arch, ModelSpec, ZooModel};

type B = Autodiff<Cpu>;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tanas-zoo/tests/fixtures")
}

/// The first `n` embedded MNIST test digits with their digit labels, modulo `k` classes.
fn mnist_split(n: usize, k: usize) -> TaskSplit {
    let ds = DataDirs::only([DataDirs::embedded()])
        .load(DatasetName::Mnist)
        .unwrap();
    let items = (0..n)
        .map(|i| (i, ds.test.labels[i] as usize % k))
        .collect();
    TaskSplit::new(ds.test, items)
}

/// A network initialised from `seed`. The backend RNG is one per process and the tests run
/// in parallel threads: without the lock, their seeding and draws interleave and a test
/// gets a different network from run to run.
fn seeded_model(spec: &ModelSpec, seed: u64) -> ZooModel<B> {
    static RNG_LOCK: Mutex<()> = Mutex::new(());
    let _guard = RNG_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    B::seed(&Default::default(), seed);
    ZooModel::<B>::new(spec, &Default::default()).unwrap()
}

/// Runs the tests of this file one at a time: burn-autodiff 0.21 loses gradient contributions
/// when two backward passes run in parallel threads of one process (burn issue 5573; the
/// naive estimator's DenseNet-121 total came out up to 0.2 % low, docs/fisher.md).
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn run(
    model: &ZooModel<B>,
    split: &TaskSplit,
    k: usize,
    estimator: Estimator,
    batch: usize,
) -> FisherDiag {
    let cfg = FisherConfig {
        estimator,
        batch_size: batch,
        ..FisherConfig::default()
    };
    fisher_diag(
        model,
        split,
        k,
        &cfg,
        FisherMeta::default(),
        &Default::default(),
    )
    .unwrap()
}

/// `||a - b|| / ||b||` over all tensors (matched by name).
fn rel_l2(a: &FisherDiag, b: &FisherDiag) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    assert_eq!(a.len(), b.len());
    for tb in b.tensors() {
        let ta = a
            .get(tb.name())
            .unwrap_or_else(|| panic!("{} missing", tb.name()));
        assert_eq!(ta.shape(), tb.shape(), "{}", tb.name());
        for (&x, &y) in ta.values().iter().zip(tb.values()) {
            num += (f64::from(x) - f64::from(y)).powi(2);
            den += f64::from(y).powi(2);
        }
    }
    (num / den).sqrt()
}

fn exact_matches_naive(spec: ModelSpec, n: usize, batch: usize) {
    let _serial = serial();
    let model = seeded_model(&spec, 7);
    let split = mnist_split(n, spec.num_classes);
    let naive = run(&model, &split, spec.num_classes, Estimator::Naive, batch);
    let exact = run(&model, &split, spec.num_classes, Estimator::Exact, batch);
    let err = rel_l2(&exact, &naive);
    assert!(
        err < 1e-4,
        "{:?}: exact vs naive relative L2 {err}",
        spec.arch
    );
    assert!(naive.total() > 0.0);
    // Every parameter is covered, with PyTorch names.
    assert_eq!(exact.numel(), model.num_params());
}

#[test]
fn exact_matches_naive_small_cnn() {
    exact_matches_naive(ModelSpec::new(Arch::SmallCnn, 10), 12, 5);
}

#[test]
fn exact_matches_naive_vgg() {
    exact_matches_naive(ModelSpec::new(Arch::Vgg11, 4), 4, 4);
}

#[test]
fn exact_matches_naive_resnet() {
    exact_matches_naive(ModelSpec::new(Arch::ResNet18, 3), 4, 4);
}

#[test]
fn exact_matches_naive_densenet() {
    exact_matches_naive(ModelSpec::new(Arch::DenseNet121, 5), 3, 3);
}

#[test]
fn exact_matches_naive_cell_network_with_every_op() {
    let spec = ModelSpec::new(Arch::CellNet, 10)
        .with_genotype(Genotype::every_op())
        .with_skeleton(CellSkeleton {
            channels: 4,
            layers: 3,
        });
    exact_matches_naive(spec, 6, 4);
}

/// Logits of a network with fewer outputs than the task has labels are zero-padded.
#[test]
fn padding_rule_for_smaller_heads() {
    let _serial = serial();
    let model = seeded_model(&ModelSpec::new(Arch::SmallCnn, 2), 3);
    let split = mnist_split(6, 10);
    let naive = run(&model, &split, 10, Estimator::Naive, 3);
    let exact = run(&model, &split, 10, Estimator::Exact, 3);
    assert!(rel_l2(&exact, &naive) < 1e-4);
    // Without padding, labels >= 2 have no logit: an error, not a panic.
    let cfg = FisherConfig::default();
    assert!(
        fisher_diag(
            &model,
            &split,
            2,
            &cfg,
            FisherMeta::default(),
            &Default::default()
        )
        .is_err()
    );
}

/// PyTorch's exact Fisher (a per-sample loop in float64) of its trained small-cnn on 256
/// real held-out digits (fixtures/torch/README.md).
#[test]
fn exact_matches_pytorch_fisher() {
    let _serial = serial();
    let inputs = std::fs::read(fixtures().join("fisher_input_u8.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&inputs).unwrap();
    let images = st.tensor("images").unwrap();
    let labels = st.tensor("labels").unwrap();
    let n = images.shape()[0];
    let labels: Vec<usize> = labels
        .data()
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as usize)
        .collect();
    let set = ImageSet {
        channels: 1,
        height: 28,
        width: 28,
        pixels: images.data().to_vec(),
        labels: labels.iter().map(|&l| l as u16).collect(),
        coarse_labels: None,
    };
    let split = TaskSplit::new(Arc::new(set), labels.iter().copied().enumerate().collect());
    assert_eq!(split.len(), n);

    // Built under the RNG lock like every other network here: its (overwritten) random
    // initialisation would otherwise interleave with another test's draws.
    let model = seeded_model(&ModelSpec::new(Arch::SmallCnn, 10), 0);
    let model =
        tanas_zoo::load_pytorch(model, fixtures().join("small_cnn_trained.safetensors")).unwrap();
    let ours = run(&model, &split, 10, Estimator::Exact, 128);

    let bytes = std::fs::read(fixtures().join("small_cnn_fisher.safetensors")).unwrap();
    let torch = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for t in ours.tensors() {
        let r = torch
            .tensor(t.name())
            .unwrap_or_else(|_| panic!("{} not in the PyTorch fixture", t.name()));
        assert_eq!(r.shape(), t.shape(), "{}", t.name());
        for (x, c) in t.values().iter().zip(r.data().chunks_exact(4)) {
            let y = f32::from_le_bytes(c.try_into().unwrap());
            num += (f64::from(*x) - f64::from(y)).powi(2);
            den += f64::from(y).powi(2);
        }
    }
    let err = (num / den).sqrt();
    assert!(err < 1e-3, "relative L2 against PyTorch: {err}");
}

#[test]
fn mc_is_seeded_and_batch_differs_from_exact() {
    let _serial = serial();
    let model = seeded_model(&ModelSpec::new(Arch::SmallCnn, 10), 11);
    let split = mnist_split(16, 10);
    let mc = |seed| {
        let cfg = FisherConfig {
            estimator: Estimator::Mc,
            batch_size: 8,
            mc_samples: 2,
            seed,
        };
        fisher_diag(
            &model,
            &split,
            10,
            &cfg,
            FisherMeta::default(),
            &Default::default(),
        )
        .unwrap()
    };
    let (a, b, c) = (mc(1), mc(1), mc(2));
    assert_eq!(rel_l2(&a, &b), 0.0);
    assert!(rel_l2(&a, &c) > 0.0);
    assert_eq!(a.meta.samples, 16);
    let exact = run(&model, &split, 10, Estimator::Exact, 8);
    let batch = run(&model, &split, 10, Estimator::Batch, 8);
    assert!(
        rel_l2(&batch, &exact) > 0.1,
        "the squared mini-batch gradient is not the Fisher"
    );
}
