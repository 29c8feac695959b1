//! Weight files: export -> import round trips, errors on files that do not fit, and
//! PyTorch's own logits for the small CNN (`fixtures/small_cnn_*.safetensors`).

mod common;

use std::path::{Path, PathBuf};

use burn::tensor::{Tensor, TensorData};
use burn_store::{ModuleStore, SafetensorsStore};
use tanas_zoo::weights::pytorch_snapshots;
use tanas_zoo::{Arch, ShapeMismatch, ZooError, ZooModel, load_pytorch, save_pytorch};

use common::{Cpu, build, fixtures, randomise};

/// A path named `name` in a new temporary directory (kept while the guard lives).
fn temp_file(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(name);
    (dir, path)
}

/// The missing, mis-shaped and unexpected tensors of a `Mismatch` error.
fn mismatch(err: &ZooError) -> (&[String], &[ShapeMismatch], &[String]) {
    match err {
        ZooError::Mismatch {
            missing,
            mismatched,
            unexpected,
            ..
        } => (missing, mismatched, unexpected),
        other => panic!("wrong error: {other}"),
    }
}

/// The error message `msg` names each of `names`.
fn assert_names(msg: &str, names: &[&str]) {
    for name in names {
        assert!(msg.contains(name), "{msg} does not name {name}");
    }
}

/// Every tensor of `model` by PyTorch name, as raw data.
fn tensors(model: &ZooModel<Cpu>) -> Vec<(String, TensorData)> {
    pytorch_snapshots(model)
        .into_iter()
        .map(|s| (s.full_path(), s.to_data().expect("tensor data")))
        .collect()
}

/// Export -> import gives bit-identical parameters and buffers, for every architecture.
#[test]
fn round_trip_is_exact_for_every_arch() {
    let dir = tempfile::tempdir().expect("tempdir");
    for arch in Arch::ALL {
        let k = 3;
        let original = randomise(build::<Cpu>(arch, k));
        let path = dir.path().join(format!("{arch}.safetensors"));
        save_pytorch(&original, &path).unwrap_or_else(|e| panic!("{arch}: {e}"));
        let loaded = load_pytorch(build::<Cpu>(arch, k), &path).unwrap_or_else(|e| panic!("{e}"));
        let (a, b) = (tensors(&original), tensors(&loaded));
        assert_eq!(a.len(), b.len(), "{arch}");
        for ((na, da), (nb, db)) in a.iter().zip(&b) {
            assert_eq!(na, nb, "{arch}");
            assert_eq!(da.shape, db.shape, "{arch}: {na}");
            assert_eq!(da.as_bytes(), db.as_bytes(), "{arch}: {na} differs");
        }
        // Same forward pass (eval mode) after loading.
        let x = Tensor::<Cpu, 4>::ones([1, 3, 32, 32], &Default::default());
        let (ya, yb) = (original.forward(x.clone()), loaded.forward(x));
        assert_eq!(
            ya.into_data().as_bytes(),
            yb.into_data().as_bytes(),
            "{arch}"
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".safetensors"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

/// The head each architecture names (`Arch::head`, which the FTD's `exclude` rule leaves out)
/// is its last layer, the only one with one row per class: what changes with the class count.
#[test]
fn the_named_head_is_the_layer_of_the_classes() {
    for arch in Arch::ALL {
        let (three, five) = (build::<Cpu>(arch, 3), build::<Cpu>(arch, 5));
        let (a, b) = (three.tensor_infos(), five.tensor_infos());
        let changed: Vec<&str> = a
            .iter()
            .zip(&b)
            .filter(|(x, y)| x.shape != y.shape)
            .map(|(x, _)| x.name.as_str())
            .collect();
        let head = arch.head();
        assert_eq!(
            changed,
            [format!("{head}.weight"), format!("{head}.bias")],
            "{arch}"
        );
        assert_eq!(
            a.last().map(|t| t.name.clone()),
            Some(format!("{head}.bias")),
            "{arch}"
        );
    }
}

/// The same weights give the same bytes, save after save (no map in random order).
#[test]
fn saving_the_same_weights_gives_the_same_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = randomise(build::<Cpu>(Arch::SmallCnn, 2));
    let bytes: Vec<Vec<u8>> = (0..8)
        .map(|i| {
            let path = dir.path().join(format!("{i}.safetensors"));
            save_pytorch(&model, &path).expect("save");
            std::fs::read(&path).expect("read")
        })
        .collect();
    assert!(bytes.iter().all(|b| b == &bytes[0]));
}

/// A `torch.save`d state dict whose `nn.Sequential` indices have gaps (`op.1`, `op.2` after a
/// ReLU at `op.0`, as in every cell network and VGG) loads under its own names.
#[test]
fn torch_save_names_with_index_gaps_load() {
    let path = fixtures().join("tiny_cellnet.pt");
    let model = load_pytorch(common::tiny(), &path).expect("tiny_cellnet.pt loads");
    let names: Vec<String> = tensors(&model).into_iter().map(|(n, _)| n).collect();
    assert!(names.contains(&"cells.0.preprocess0.op.1.weight".to_string()));
}

/// Weights holding a NaN are refused, naming the file and the tensor.
#[test]
fn non_finite_weights_are_an_error() {
    let (_dir, path) = temp_file("nan.safetensors");
    save_pytorch(&randomise(build::<Cpu>(Arch::SmallCnn, 2)), &path).expect("save");
    let mut bytes = std::fs::read(&path).expect("read");
    // The data of the last F32 tensor ends the file.
    let end = bytes.len();
    bytes[end - 4..].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(&path, bytes).expect("write");
    let Err(e) = load_pytorch(build::<Cpu>(Arch::SmallCnn, 2), &path) else {
        panic!("NaN weights are refused");
    };
    let e = e.to_string();
    assert_names(&e, &["nan.safetensors", "NaN or infinite"]);
}

/// The exported file holds exactly the PyTorch names, layouts and values.
#[test]
fn export_uses_pytorch_names_and_layouts() {
    let (_dir, path) = temp_file("resnet.safetensors");
    let model = randomise(build::<Cpu>(Arch::ResNet18, 10));
    save_pytorch(&model, &path).expect("save");
    // Overwriting an existing file works too.
    save_pytorch(&model, &path).expect("save again");
    let mut store = SafetensorsStore::from_file(&path);
    let file = store.get_all_snapshots().expect("read back");
    let infos = model.tensor_infos();
    assert_eq!(file.len(), infos.len());
    for info in &infos {
        let s = file
            .get(&info.name)
            .unwrap_or_else(|| panic!("{} not in file", info.name));
        assert_eq!(s.shape.to_vec(), info.shape, "{}", info.name);
    }
    assert_eq!(file["linear.weight"].shape.to_vec(), vec![10, 512]);
    assert!(file.contains_key("layer2.0.shortcut.1.running_var"));
    // Linear weight is stored [out, in]: element (o, i) is burn's (i, o).
    let ZooModel::ResNet(net) = &model else {
        panic!("not a resnet")
    };
    let burn_w = net
        .linear
        .weight
        .val()
        .into_data()
        .to_vec::<f32>()
        .expect("f32");
    let torch_w = file["linear.weight"]
        .to_data()
        .expect("data")
        .to_vec::<f32>()
        .expect("f32");
    for o in 0..10 {
        for i in 0..512 {
            assert_eq!(torch_w[o * 512 + i], burn_w[i * 10 + o]);
        }
    }
}

/// Writes `tensors` as a safetensors file.
fn write(path: &Path, tensors: Vec<(String, TensorData)>) {
    use safetensors::tensor::TensorView;
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, d)| {
            let dtype = match d.dtype {
                burn::tensor::DType::F32 => safetensors::Dtype::F32,
                burn::tensor::DType::F64 => safetensors::Dtype::F64,
                burn::tensor::DType::I64 => safetensors::Dtype::I64,
                other => panic!("dtype {other:?}"),
            };
            let view = TensorView::new(dtype, d.shape.to_vec(), d.as_bytes()).expect("view");
            (n.clone(), view)
        })
        .collect();
    safetensors::serialize_to_file(views, None, path).expect("write");
}

fn small_cnn_tensors() -> Vec<(String, TensorData)> {
    tensors(&randomise(build::<Cpu>(Arch::SmallCnn, 10)))
}

#[test]
fn missing_tensor_is_an_error_naming_it_and_the_file() {
    let (_dir, path) = temp_file("partial.safetensors");
    let mut t = small_cnn_tensors();
    t.retain(|(n, _)| n != "conv2.bias" && n != "fc1.weight");
    write(&path, t);
    let err = load_pytorch(build::<Cpu>(Arch::SmallCnn, 10), &path).expect_err("missing");
    let msg = err.to_string();
    let (missing, mismatched, unexpected) = mismatch(&err);
    assert_eq!(missing, &["conv2.bias", "fc1.weight"]);
    assert!(mismatched.is_empty() && unexpected.is_empty());
    assert!(msg.contains("partial.safetensors"), "{msg}");
    assert_names(&msg, &["conv2.bias", "fc1.weight"]);
    assert!(!msg.contains('\n'), "one line: {msg}");
}

/// A file for another class count: the classifier is mis-shaped.
#[test]
fn wrong_class_count_is_a_shape_error() {
    let (_dir, path) = temp_file("five.safetensors");
    save_pytorch(&build::<Cpu>(Arch::Vgg11, 5), &path).expect("save");
    let err = load_pytorch(build::<Cpu>(Arch::Vgg11, 10), &path).expect_err("mis-shaped");
    let (missing, mismatched, unexpected) = mismatch(&err);
    assert!(missing.is_empty() && unexpected.is_empty());
    let names: Vec<&str> = mismatched.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["classifier.weight", "classifier.bias"]);
    assert_eq!(mismatched[0].expected, vec![10, 512]);
    assert_eq!(mismatched[0].found, vec![5, 512]);
    let msg = err.to_string();
    assert_names(&msg, &["five.safetensors", "classifier.weight"]);
}

/// A file of another architecture: long lists are cut short in the message.
#[test]
fn other_arch_lists_missing_and_unexpected() {
    let (_dir, path) = temp_file("resnet.safetensors");
    save_pytorch(&build::<Cpu>(Arch::ResNet18, 10), &path).expect("save");
    let err = load_pytorch(build::<Cpu>(Arch::Vgg11, 10), &path).expect_err("other arch");
    let (missing, _, unexpected) = mismatch(&err);
    assert_eq!(missing.len(), 50, "no VGG name is in a ResNet file");
    assert!(!unexpected.is_empty());
    assert!(err.to_string().contains("more"), "{err}");
}

/// `num_batches_tracked` (int64, written by PyTorch) is ignored; float64 files load.
#[test]
fn num_batches_tracked_ignored_and_f64_converted() {
    let (_dir, path) = temp_file("torchlike.safetensors");
    let model = randomise(build::<Cpu>(Arch::ResNet18, 4));
    let mut t: Vec<(String, TensorData)> = tensors(&model)
        .into_iter()
        .map(|(n, d)| (n, d.convert::<f64>()))
        .collect();
    let bn: Vec<String> = t
        .iter()
        .filter_map(|(n, _)| n.strip_suffix(".running_var").map(str::to_string))
        .collect();
    for prefix in bn {
        t.push((
            format!("{prefix}.num_batches_tracked"),
            TensorData::new(vec![7i64], [0usize; 0]),
        ));
    }
    write(&path, t);
    let loaded = load_pytorch(build::<Cpu>(Arch::ResNet18, 4), &path).expect("loads");
    for ((n, a), (_, b)) in tensors(&model).iter().zip(tensors(&loaded).iter()) {
        assert_eq!(a.as_bytes(), b.as_bytes(), "{n}");
    }
}

#[test]
fn corrupt_and_absent_files_are_errors_naming_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let garbage = dir.path().join("garbage.safetensors");
    std::fs::write(&garbage, b"this is not a safetensors file at all").expect("write");
    let truncated = dir.path().join("truncated.safetensors");
    save_pytorch(&build::<Cpu>(Arch::SmallCnn, 10), &truncated).expect("save");
    let bytes = std::fs::read(&truncated).expect("read");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("truncate");
    let empty = dir.path().join("empty.pt");
    std::fs::write(&empty, b"").expect("write");
    let bad_pickle = dir.path().join("bad.pt");
    std::fs::write(&bad_pickle, b"PK\x03\x04 not really a zip").expect("write");
    for path in [&garbage, &truncated, &empty, &bad_pickle] {
        let err = load_pytorch(build::<Cpu>(Arch::SmallCnn, 10), path).expect_err("corrupt");
        assert!(
            matches!(err, ZooError::Corrupt { .. }),
            "{}: {err}",
            path.display()
        );
        let name = path.file_name().and_then(|n| n.to_str()).expect("name");
        assert!(err.to_string().contains(name), "{err}");
    }
    let absent = dir.path().join("absent.safetensors");
    let err = load_pytorch(build::<Cpu>(Arch::SmallCnn, 10), &absent).expect_err("absent");
    assert!(matches!(err, ZooError::Io { .. }), "{err}");
    assert!(err.to_string().contains("absent.safetensors"), "{err}");
    // The directory is created if needed; a file in its place is an error.
    let err = save_pytorch(
        &build::<Cpu>(Arch::SmallCnn, 10),
        garbage.join("w.safetensors"),
    )
    .expect_err("not a directory");
    assert!(matches!(err, ZooError::Io { .. }), "{err}");
}

/// Weights trained in PyTorch reproduce PyTorch's eval-mode logits to 1e-4 relative.
#[test]
fn small_cnn_reproduces_pytorch_logits() {
    let weights = fixtures().join("small_cnn_trained.safetensors");
    let io = fixtures().join("small_cnn_io.safetensors");
    for f in [&weights, &io] {
        assert!(
            f.exists(),
            "fixture {} is missing: generate it with fixtures/torch (PyTorch) and commit it",
            f.display()
        );
    }
    let model = load_pytorch(build::<Cpu>(Arch::SmallCnn, 10), &weights).expect("load");
    let mut store = SafetensorsStore::from_file(&io);
    let file = store.get_all_snapshots().expect("io fixture");
    let device = Default::default();
    let input = Tensor::<Cpu, 4>::from_data(file["input"].to_data().expect("input"), &device);
    let expected = file["logits"]
        .to_data()
        .expect("logits")
        .to_vec::<f32>()
        .expect("f32");
    let got = model
        .forward(input)
        .into_data()
        .to_vec::<f32>()
        .expect("f32");
    assert_eq!(got.len(), expected.len());
    let max_abs = expected.iter().fold(0f32, |m, v| m.max(v.abs()));
    let max_diff = got
        .iter()
        .zip(&expected)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(max_abs > 0.0);
    assert!(
        max_diff / max_abs < 1e-4,
        "max |diff| {max_diff} vs max |logit| {max_abs}"
    );
}

/// A `torch.save(model.state_dict())` file loads like the safetensors export of the same
/// weights (`fixtures/torch/pt_fixture.py` writes the `.pt`).
#[test]
fn small_cnn_loads_from_torch_save() {
    let pt = fixtures().join("small_cnn_trained.pt");
    assert!(pt.exists(), "fixture {} is missing", pt.display());
    let st = fixtures().join("small_cnn_trained.safetensors");
    let a = load_pytorch(build::<Cpu>(Arch::SmallCnn, 10), &pt).expect("load .pt");
    let b = load_pytorch(build::<Cpu>(Arch::SmallCnn, 10), &st).expect("load safetensors");
    for ((n, x), (_, y)) in tensors(&a).iter().zip(tensors(&b).iter()) {
        assert_eq!(x.as_bytes(), y.as_bytes(), "{n}");
    }
}
