//! Training on the embedded MNIST task `mnist-0` (digit 0 vs rest), small subsets.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::path::Path;
use std::sync::OnceLock;

use burn::backend::Autodiff;
use tanas_core::SettingsMismatch;
use tanas_cpu::Cpu;
use tanas_data::TaskData;
use tanas_train::{
    EpochMetrics, RunStatus, StopReason, Tally, TrainConfig, TrainError, TrainOutcome, epoch_order,
    evaluate, fine_tune, train,
};
use tanas_zoo::{Arch, ModelSpec, ZooModel};

type B = Autodiff<Cpu>;

/// `mnist-0` with 512 train, 128 val and 256 test samples (built once per test binary).
fn data() -> &'static TaskData {
    static DATA: OnceLock<TaskData> = OnceLock::new();
    DATA.get_or_init(|| {
        let mut data = TaskData::embedded_mnist("mnist-0").unwrap();
        data.train = data.train.truncated(512);
        data.val = data.val.truncated(128);
        data.test = data.test.truncated(256);
        data
    })
}

fn spec() -> ModelSpec {
    ModelSpec::new(Arch::SmallCnn, 2)
}

fn cfg(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 32,
        quiet: true,
        ..TrainConfig::default()
    }
}

/// The first 256 / 64 / 64 samples of [`data`]: enough for the properties that do not need
/// learning to show (determinism, resume, stop rules, errors).
fn small() -> &'static TaskData {
    static SMALL: OnceLock<TaskData> = OnceLock::new();
    SMALL.get_or_init(|| {
        let mut d = data().clone();
        d.train = d.train.truncated(256);
        d.val = d.val.truncated(64);
        d.test = d.test.truncated(64);
        d
    })
}

/// Trains small-cnn on [`small`].
fn run(cfg: &TrainConfig, dir: &Path) -> Result<TrainOutcome, TrainError> {
    train::<B>(&spec(), small(), cfg, dir, &Default::default())
}

fn weights(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("weights.safetensors")).unwrap()
}

/// Asserts that two runs wrote the same weights: identical tensor bytes and the same header
/// (as JSON: the zoo writes the safetensors metadata map in hash order).
fn same_weights(a: &Path, b: &Path) {
    let split = |bytes: &[u8]| {
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
        (header, bytes[8 + n..].to_vec())
    };
    let ((ha, da), (hb, db)) = (split(&weights(a)), split(&weights(b)));
    assert_eq!(ha, hb, "safetensors headers differ");
    let first = da.iter().zip(&db).position(|(x, y)| x != y);
    assert!(
        da.len() == db.len() && first.is_none(),
        "tensor bytes differ (first at {first:?})"
    );
}

/// Epoch metrics without the timings.
fn untimed(epochs: &[EpochMetrics]) -> Vec<EpochMetrics> {
    epochs
        .iter()
        .map(|e| EpochMetrics {
            seconds: 0.0,
            images_per_second: 0.0,
            ..e.clone()
        })
        .collect()
}

/// A network built through the crate's RNG lock: the tests run in parallel threads, and an
/// unlocked draw from the backend's process-wide RNG would disturb another test's seeded run.
fn model(spec: &ModelSpec) -> ZooModel<Cpu> {
    let dev = Default::default();
    tanas_train::seeded::<Cpu, _>(&dev, 0, || ZooModel::<Cpu>::new(spec, &dev)).unwrap()
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn one_epoch_learns_and_writes_the_files() {
    let dir = tmp();
    let go = || train::<B>(&spec(), data(), &cfg(1), dir.path(), &Default::default());
    let out = go().unwrap();
    assert_eq!(out.status, RunStatus::Trained);
    let m = &out.metrics;
    assert_eq!(
        (m.epochs.len(), m.best_epoch, m.stop_reason),
        (1, 1, StopReason::MaxEpochs)
    );
    assert_eq!(
        (m.task.as_str(), m.num_labels, m.num_params),
        ("mnist-0", 2, 620_362 - 8 * 257)
    );

    // The untrained network of the same seed, for comparison.
    let dev = Default::default();
    let fresh = model(&spec());
    let before = evaluate(&fresh, &data().val, 64, Tally::default(), &dev).unwrap();
    let e = &m.epochs[0];
    assert!(
        e.val_loss < before.loss * 0.8,
        "val loss {} -> {}",
        before.loss,
        e.val_loss
    );
    assert!(e.val_accuracy > 0.8, "val accuracy {}", e.val_accuracy);
    assert!(
        m.test.accuracy > 0.8 && m.test.samples == 256,
        "{:?}",
        m.test
    );
    assert!(e.images_per_second > 0.0 && e.train_loss.is_finite());

    // The files: metrics.json round-trips, the weights load into the zoo and reproduce test.
    let stored: tanas_train::TrainMetrics =
        serde_json::from_slice(&std::fs::read(dir.path().join("metrics.json")).unwrap()).unwrap();
    assert_eq!(&stored, m);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("metrics.json")).unwrap()).unwrap();
    for key in [
        "epochs",
        "test",
        "config",
        "seed",
        "arch",
        "task",
        "num_labels",
        "stop_reason",
    ] {
        assert!(json.get(key).is_some(), "metrics.json lacks {key}");
    }
    let loaded = tanas_zoo::load_pytorch(model(&spec()), &out.weights).unwrap();
    let test = evaluate(&loaded, &data().test, 100, Tally::default(), &dev).unwrap();
    // The stored test numbers are those of the plain arg-max.
    assert_eq!(test.accuracy, m.test.accuracy);
    assert_eq!(test.balanced_accuracy, m.test.balanced_accuracy);
    assert_eq!(m.test.prior_accuracy, None);
    assert!((test.loss - m.test.loss).abs() < 1e-6);
    let ckpt: Vec<String> = std::fs::read_dir(dir.path().join("checkpoint"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(ckpt.len(), 4, "{ckpt:?}");

    // Rerunning returns the stored outcome without training.
    let again = go().unwrap();
    assert_eq!(again.status, RunStatus::AlreadyFinished);
    assert_eq!(again.metrics, out.metrics);

    // A damaged weights file is not reused: the run's last step is redone from its
    // checkpoint and writes the same bytes again.
    let weights = std::fs::read(&out.weights).unwrap();
    assert_eq!(
        m.weights_hash,
        tanas_core::Fnv1a::new().bytes(&weights).hex()
    );
    std::fs::write(&out.weights, &weights[..weights.len() / 2]).unwrap();
    let redone = go().unwrap();
    assert_ne!(redone.status, RunStatus::AlreadyFinished);
    assert_eq!(std::fs::read(&out.weights).unwrap(), weights);
    assert_eq!(redone.metrics.test, out.metrics.test);
}

#[test]
fn same_seed_gives_the_same_bits_and_other_settings_are_refused() {
    let (a, b) = (tmp(), tmp());
    let ra = run(&cfg(1), a.path()).unwrap();
    let rb = run(&cfg(1), b.path()).unwrap();
    same_weights(a.path(), b.path());
    assert_eq!(untimed(&ra.metrics.epochs), untimed(&rb.metrics.epochs));
    assert_eq!(ra.metrics.test, rb.metrics.test);

    for (changed, field) in [
        (TrainConfig { lr: 1e-2, ..cfg(1) }, "lr"),
        (TrainConfig { seed: 1, ..cfg(1) }, "seed"),
        (
            TrainConfig {
                batch_size: 64,
                ..cfg(1)
            },
            "batch_size",
        ),
        (
            TrainConfig {
                target_accuracy: Some(0.9),
                ..cfg(1)
            },
            "target_accuracy",
        ),
    ] {
        let e = run(&changed, a.path()).unwrap_err();
        assert!(
            matches!(&e, TrainError::ConfigMismatch(SettingsMismatch { field: f, .. }) if f == field),
            "{e}"
        );
        assert!(e.to_string().contains(field), "{e}");
    }
    let mut other = small().clone();
    other.train = other.train.truncated(200);
    let e = train::<B>(&spec(), &other, &cfg(1), a.path(), &Default::default()).unwrap_err();
    assert!(e.to_string().contains("train_samples"), "{e}");
    // Nothing was changed by the refused calls.
    same_weights(a.path(), b.path());
}

#[test]
fn resumed_runs_equal_an_uninterrupted_run() {
    let (whole, extended, crashed) = (tmp(), tmp(), tmp());
    let reference = run(&cfg(2), whole.path()).unwrap();

    // A run of 1 epoch, extended to 2 by asking for 2.
    run(&cfg(1), extended.path()).unwrap();
    let e = run(&cfg(2), extended.path()).unwrap();
    assert_eq!(e.status, RunStatus::Resumed { after_epoch: 1 });

    // A 2-epoch run killed after epoch 1's checkpoint (no final files yet).
    run(&cfg(1), crashed.path()).unwrap();
    std::fs::remove_file(crashed.path().join("metrics.json")).unwrap();
    std::fs::remove_file(crashed.path().join("weights.safetensors")).unwrap();
    let c = run(&cfg(2), crashed.path()).unwrap();
    assert_eq!(c.status, RunStatus::Resumed { after_epoch: 1 });

    for (out, dir) in [(&e, extended.path()), (&c, crashed.path())] {
        same_weights(dir, whole.path());
        assert_eq!(
            untimed(&out.metrics.epochs),
            untimed(&reference.metrics.epochs)
        );
        assert_eq!(out.metrics.test, reference.metrics.test);
        assert_eq!(out.metrics.best_epoch, reference.metrics.best_epoch);
    }
    // A damaged checkpoint record is named as such (issue 28: not burn's hint about its
    // 0.14 format change), with what to do.
    let damaged = tmp();
    run(&cfg(1), damaged.path()).unwrap();
    std::fs::remove_file(damaged.path().join("metrics.json")).unwrap();
    let ckpt = damaged.path().join("checkpoint");
    for entry in std::fs::read_dir(&ckpt).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("model-")
        {
            let bytes = std::fs::read(&path).unwrap();
            std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        }
    }
    let e = run(&cfg(2), damaged.path()).unwrap_err().to_string();
    assert!(
        e.contains("damaged or truncated") && !e.contains("0.14") && !e.contains('\n'),
        "{e}"
    );
    // A run cannot be shortened.
    let short = run(&cfg(1), whole.path()).unwrap_err();
    assert!(
        matches!(&short, TrainError::ConfigMismatch(SettingsMismatch { field, .. }) if field == "epochs"),
        "{short}"
    );
}

#[test]
fn target_accuracy_stops_early() {
    let dir = tmp();
    let c = TrainConfig {
        target_accuracy: Some(0.0),
        ..cfg(3)
    };
    let out = run(&c, dir.path()).unwrap();
    assert_eq!(out.metrics.epochs.len(), 1);
    assert_eq!(out.metrics.stop_reason, StopReason::TargetReached);
    // Reached within any larger budget: nothing to do.
    let again = run(&TrainConfig { epochs: 10, ..c }, dir.path()).unwrap();
    assert_eq!(again.status, RunStatus::AlreadyFinished);
}

#[test]
fn divergence_is_an_error_and_leaves_no_results() {
    let dir = tmp();
    let c = TrainConfig { lr: 1e30, ..cfg(2) };
    let e = run(&c, dir.path()).unwrap_err();
    assert!(
        matches!(e, TrainError::NonFinite { epoch: 1, batch } if batch > 1),
        "{e}"
    );
    assert!(e.to_string().contains("non-finite"), "{e}");
    assert!(!dir.path().join("weights.safetensors").exists());
    assert!(!dir.path().join("metrics.json").exists());
}

#[test]
fn bad_inputs_are_errors() {
    let dir = tmp();
    let e = train::<B>(
        &ModelSpec::new(Arch::SmallCnn, 3),
        data(),
        &cfg(1),
        dir.path(),
        &Default::default(),
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            TrainError::LabelMismatch {
                labels: 2,
                classes: 3,
                ..
            }
        ),
        "{e}"
    );
    let mut empty = data().clone();
    empty.val = empty.val.truncated(0);
    let e = train::<B>(&spec(), &empty, &cfg(1), dir.path(), &Default::default()).unwrap_err();
    assert!(e.to_string().contains("val split is empty"), "{e}");
    let e = run(
        &TrainConfig {
            epochs: 0,
            ..cfg(1)
        },
        dir.path(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("epochs"), "{e}");
    // A network with fewer outputs than the split has labels.
    let dev = Default::default();
    let one = model(&ModelSpec::new(Arch::SmallCnn, 1));
    let e = evaluate(&one, &data().val, 64, Tally::default(), &dev).unwrap_err();
    assert!(
        matches!(
            e,
            TrainError::LabelOutOfRange {
                label: 1,
                classes: 1,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn batchnorm_network_resumes_exactly() {
    // A tiny DARTS cell network: BatchNorm everywhere, running statistics in the weights.
    let spec = ModelSpec::new(Arch::CellNet, 2)
        .with_genotype(tanas_zoo::cell::Genotype::darts_v2())
        .with_skeleton(tanas_zoo::cell::CellSkeleton::new(4, 3));
    let mut small = small().clone();
    small.train = small.train.truncated(128);
    let go = |epochs, dir: &Path| {
        train::<B>(&spec, &small, &cfg(epochs), dir, &Default::default()).unwrap()
    };
    let (whole, extended) = (tmp(), tmp());
    let reference = go(2, whole.path());
    go(1, extended.path());
    let resumed = go(2, extended.path());
    assert_eq!(resumed.status, RunStatus::Resumed { after_epoch: 1 });
    same_weights(whole.path(), extended.path());
    assert_eq!(
        untimed(&resumed.metrics.epochs),
        untimed(&reference.metrics.epochs)
    );
    assert_eq!(resumed.metrics.test, reference.metrics.test);
    assert!(reference.metrics.run.genotype.is_some());
}

/// The same run on a 1-thread and on a 2-thread pool writes the same bits: every sum in the
/// CPU backend has a fixed order (small-cnn, and a cell network with every op: depthwise,
/// dilated, 1x7/7x1 and strided convolutions, both poolings, BatchNorm).
#[test]
fn weights_do_not_depend_on_the_thread_count() {
    let cell = ModelSpec::new(Arch::CellNet, 2)
        .with_genotype(tanas_zoo::cell::Genotype::every_op())
        .with_skeleton(tanas_zoo::cell::CellSkeleton::new(4, 3));
    for spec in [spec(), cell] {
        let dirs = [tmp(), tmp()];
        for (threads, dir) in [1, 2].into_iter().zip(&dirs) {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let cfg = TrainConfig {
                epochs: 1,
                ..cfg(1)
            };
            pool.install(|| train::<B>(&spec, small(), &cfg, dir.path(), &Default::default()))
                .unwrap();
        }
        same_weights(dirs[0].path(), dirs[1].path());
    }
}

#[test]
fn patience_stops_after_epochs_without_a_new_best() {
    let dir = tmp();
    // A learning rate this small leaves the weights as they are (only BatchNorm's running
    // statistics move, and settle within a few epochs): the val accuracy stops improving
    // and patience 2 stops two epochs after the best one.
    let c = TrainConfig {
        lr: 1e-12,
        patience: Some(2),
        ..cfg(10)
    };
    let out = run(&c, dir.path()).unwrap();
    let m = &out.metrics;
    assert_eq!(m.stop_reason, StopReason::NoImprovement);
    assert_eq!(m.epochs.len(), m.best_epoch + 2);
    assert!(m.epochs.len() < 10, "stopped at the budget");
    // No epoch after the best one improved on it (ties do not count as improvements).
    assert!(
        m.epochs
            .iter()
            .all(|e| e.val_accuracy <= m.best_val_accuracy)
    );
    // Stopped within any larger budget: nothing to do.
    let again = run(&TrainConfig { epochs: 20, ..c }, dir.path()).unwrap();
    assert_eq!(again.status, RunStatus::AlreadyFinished);
}

/// An empty val split is named with the val_fraction the task really has.
#[test]
fn an_empty_val_split_names_the_tasks_val_fraction() {
    let mut d = small().clone();
    d.val = d.val.truncated(0);
    let dir = tmp();
    let e = train::<B>(&spec(), &d, &cfg(1), dir.path(), &Default::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("val_fraction = 0.1 of the task's 256 training images"),
        "{e}"
    );
    d.spec.val_fraction = 0.0;
    let e = train::<B>(&spec(), &d, &cfg(1), dir.path(), &Default::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("val_fraction = 0 leaves nothing"), "{e}");
}

/// The order seed moves the data order alone (the initial network is drawn from `seed` only):
/// the same seed and order seed give the same bits, another order seed other weights after
/// training, an order seed equal to the seed the default run; a resume must match it.
#[test]
fn the_order_seed_changes_the_data_order_and_nothing_else() {
    let (a, b, c) = (tmp(), tmp(), tmp());
    let ordered = |s| TrainConfig {
        order_seed: Some(s),
        ..cfg(1)
    };
    run(&ordered(7), a.path()).unwrap();
    run(&ordered(7), b.path()).unwrap();
    same_weights(a.path(), b.path());
    run(&ordered(8), c.path()).unwrap();
    assert_ne!(weights(a.path()), weights(c.path()));
    // `order_seed` equal to `seed` is the default order.
    let (d, e) = (tmp(), tmp());
    run(&cfg(1), d.path()).unwrap();
    run(&ordered(cfg(1).seed), e.path()).unwrap();
    same_weights(d.path(), e.path());
    // A run is resumed only with its own order seed.
    let e = run(&ordered(9), a.path()).unwrap_err().to_string();
    assert!(e.contains("order_seed"), "{e}");
    assert_eq!(epoch_order(100, 7, 1), epoch_order(100, 7, 1));
    assert_ne!(epoch_order(100, 7, 1), epoch_order(100, 8, 1));
}

/// The transfer measurement's paired control: fine-tuning from the initial network N itself
/// (saved with another task's head size, loaded as `init`) reproduces the control, the same
/// recipe from the seeded initialisation, bit for bit (a gain of exactly 0): the body of N
/// does not depend on the head it was built with, and the fresh head is the control's. A
/// trained network's body changes the result.
#[test]
fn fine_tuning_from_the_initial_network_is_its_own_control() {
    let dir = tmp();
    let dev = Default::default();
    let seed = 3;
    let n = tanas_train::seeded::<B, _>(&dev, seed, || {
        ZooModel::<B>::new(&ModelSpec::new(Arch::SmallCnn, 10), &dev)
    })
    .unwrap();
    let n_file = dir.path().join("n.safetensors");
    tanas_zoo::save_pytorch(&n, &n_file).unwrap();
    let recipe = TrainConfig {
        seed,
        max_steps: Some(16),
        ..cfg(5)
    };
    let control = fine_tune::<B>(&spec(), small(), &recipe, &dev).unwrap();
    let from = |init: &Path| TrainConfig {
        init: Some(init.to_path_buf()),
        ..recipe.clone()
    };
    let from_n = fine_tune::<B>(&spec(), small(), &from(&n_file), &dev).unwrap();
    assert_eq!(control, from_n);
    assert!(control.accuracy > 0.5, "{control:?}");

    let trained = tmp();
    run(&TrainConfig { seed: 5, ..cfg(1) }, trained.path()).unwrap();
    let trained = trained.path().join("weights.safetensors");
    let from_trained = fine_tune::<B>(&spec(), small(), &from(&trained), &dev).unwrap();
    assert_ne!(control, from_trained);
    // `train` starts from the same body, and resumes only with the same `init`.
    let (cold, warm) = (tmp(), tmp());
    run(&recipe, cold.path()).unwrap();
    run(&from(&trained), warm.path()).unwrap();
    assert_ne!(weights(cold.path()), weights(warm.path()));
    let e = run(&recipe, warm.path()).unwrap_err().to_string();
    assert!(e.contains("init"), "{e}");
}
