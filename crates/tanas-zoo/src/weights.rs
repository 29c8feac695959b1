//! PyTorch-compatible names and weight files.
//!
//! # How burn paths become PyTorch names
//!
//! The zoo's modules are laid out like the PyTorch reference definitions (same field
//! names, same declaration order, `nn.Sequential` as a `Vec` of the
//! [`Layer`](crate::layers::Layer) enum), so a burn module path differs from the PyTorch
//! `state_dict` name in two ways only, both handled by burn-store:
//!
//! 1. enum variant names (`ZooModel::Vgg`, `Layer::Conv`, ...) appear in burn paths and
//!    not in PyTorch names: they are dropped (`skip_enum_variants`);
//! 2. burn's `BatchNorm` calls `weight`/`bias` `gamma`/`beta`, and burn's `Linear` stores
//!    its weight `[in, out]` where PyTorch stores `[out, in]`: the
//!    [`BurnToPyTorchAdapter`] (export, [`tensor_infos`]) and [`PyTorchToBurnAdapter`]
//!    (import) rename and transpose.
//!
//! [`pytorch_snapshots`] and [`apply_pytorch`] are the only places where these two rules
//! are configured; export, import and [`tensor_infos`] all go through them. Tensors come
//! out in the module's visit order, which is PyTorch's `state_dict` order (parameters,
//! then buffers, of each module before its children). `num_batches_tracked` is neither
//! written nor required: PyTorch recreates it when loading a state dict without it.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;
use std::rc::Rc;

use burn::module::{Module, ParamId};
use burn::tensor::DType;
use burn::tensor::backend::Backend;
use burn_store::{
    ApplyResult, BurnToPyTorchAdapter, ModuleSnapshot, ModuleStore, PyTorchToBurnAdapter,
    PytorchStore, SafetensorsStore, TensorSnapshot,
};
use safetensors::Dtype;
use safetensors::tensor::TensorView;
use serde::{Deserialize, Serialize};

use crate::ZooError;
use crate::error::ShapeMismatch;

/// burn-store drops enum variant names from paths (PyTorch names have none).
const SKIP_ENUM_VARIANTS: bool = true;

/// The suffix of the BatchNorm buffer that burn does not have.
const NUM_BATCHES_TRACKED: &str = "num_batches_tracked";

/// Names of the non-trainable buffers (BatchNorm running statistics).
const BUFFER_NAMES: [&str; 3] = ["running_mean", "running_var", NUM_BATCHES_TRACKED];

/// A tensor of a model as PyTorch's `state_dict` has it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TensorInfo {
    /// The `state_dict` name, e.g. `features.1.running_mean`.
    pub name: String,
    /// The shape in PyTorch layout (Linear weight `[out, in]`).
    pub shape: Vec<usize>,
}

impl TensorInfo {
    /// The number of elements.
    pub fn num_elements(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the tensor is a trainable parameter rather than a buffer (BatchNorm
    /// `running_mean`, `running_var`, `num_batches_tracked`).
    pub fn is_parameter(&self) -> bool {
        let last = self.name.rsplit('.').next().unwrap_or_default();
        !BUFFER_NAMES.contains(&last)
    }
}

/// Every parameter and buffer of `model` under its PyTorch `state_dict` name and shape, in
/// `state_dict` order (`num_batches_tracked` left out).
pub fn tensor_infos<B: Backend, M: Module<B>>(model: &M) -> Vec<TensorInfo> {
    pytorch_snapshots(model)
        .iter()
        .map(|s| TensorInfo {
            name: s.full_path(),
            shape: s.shape.to_vec(),
        })
        .collect()
}

/// The tensors of `model` under their PyTorch names and in PyTorch layout, in `state_dict`
/// order; their data is read lazily. Pending BatchNorm running-statistic updates are
/// folded in first.
pub fn pytorch_snapshots<B: Backend, M: Module<B>>(model: &M) -> Vec<TensorSnapshot> {
    flush_running_stats(model);
    model.collect(
        None,
        Some(Box::new(BurnToPyTorchAdapter)),
        SKIP_ENUM_VARIANTS,
    )
}

/// The trainable parameters of `model`: id, PyTorch name and PyTorch shape, in `state_dict`
/// order (buffers such as BatchNorm's running statistics left out).
pub fn parameters<B: Backend, M: Module<B>>(model: &M) -> Vec<(ParamId, String, Vec<usize>)> {
    pytorch_snapshots(model)
        .into_iter()
        .filter_map(|s| {
            let info = TensorInfo {
                name: s.full_path(),
                shape: s.shape.to_vec(),
            };
            info.is_parameter().then_some(())?;
            Some((s.tensor_id?, info.name, info.shape))
        })
        .collect()
}

/// Applies tensors named and laid out as in PyTorch to `model`.
fn apply_pytorch<B: Backend, M: Module<B>>(
    model: &mut M,
    snapshots: Vec<TensorSnapshot>,
) -> ApplyResult {
    model.apply(
        snapshots,
        None,
        Some(Box::new(PyTorchToBurnAdapter)),
        SKIP_ENUM_VARIANTS,
    )
}

/// Folds pending running-statistic updates of an autodiff model into the values that are
/// read (burn defers them; `into_record` syncs, and clones share the state).
fn flush_running_stats<B: Backend, M: Module<B>>(model: &M) {
    drop(model.clone().into_record());
}

/// Loads PyTorch weights into `model`: a safetensors file of a `state_dict` (as written by
/// `safetensors.torch.save_file(model.state_dict(), path)`) or a `torch.save`d `.pt`/`.pth`
/// file holding a `state_dict` (at the top level, or under a `state_dict` key). The format
/// is recognised from the content.
///
/// Every tensor of the model must be in the file with its shape; `num_batches_tracked` is
/// ignored; anything else in the file is unexpected. Floating-point tensors of other
/// precisions are converted to `f32`. On any problem the model is dropped and the error
/// names the file and lists the offending tensors.
pub fn load_pytorch<B: Backend, M: Module<B>>(
    model: M,
    path: impl AsRef<Path>,
) -> Result<M, ZooError> {
    load_except(model, path.as_ref(), None)
}

/// Loads every tensor of `model` but those of its classification layer `head` (a
/// top-level module name, [`Arch::head`](crate::Arch::head)) from a PyTorch weights file, as
/// [`load_pytorch`] does: the body of another task's network under a fresh head, the start
/// of a fine-tuning. The file's `head` tensors, whatever their shapes, are ignored; the
/// model's keep their values.
pub fn load_pytorch_body<B: Backend, M: Module<B>>(
    model: M,
    path: impl AsRef<Path>,
    head: &str,
) -> Result<M, ZooError> {
    load_except(model, path.as_ref(), Some(head))
}

/// [`load_pytorch`], leaving out the tensors of the top-level module `skip`.
fn load_except<B: Backend, M: Module<B>>(
    mut model: M,
    path: &Path,
    skip: Option<&str>,
) -> Result<M, ZooError> {
    let skipped =
        |name: &str| skip.is_some_and(|h| name.strip_prefix(h).is_some_and(|r| r.starts_with('.')));
    let mut file = read_snapshots(path)?;
    file.retain(|name, _| !skipped(name));
    let expected: Vec<TensorInfo> = tensor_infos(&model)
        .into_iter()
        .filter(|t| !skipped(&t.name))
        .collect();
    check_fit(path, &expected, &file)?;
    let snapshots = file
        .into_values()
        .filter(|s| !is_num_batches_tracked(&s.full_path()))
        .map(|s| to_f32(path, s))
        .collect::<Result<Vec<_>, _>>()?;
    let mut result = apply_pytorch(&mut model, snapshots);
    // burn's paths of what received nothing start with the model's enum variant.
    result
        .missing
        .retain(|(name, _)| !skip.is_some_and(|h| name.split('.').take(2).any(|part| part == h)));
    check_applied(path, &result, expected.len())?;
    if let Some(name) = first_non_finite(&model) {
        return Err(ZooError::corrupt(
            path,
            format!("tensor `{name}` holds NaN or infinite values"),
        ));
    }
    Ok(model)
}

/// The PyTorch name of the first floating-point tensor of `model` with a NaN or infinity.
fn first_non_finite<B: Backend, M: Module<B>>(model: &M) -> Option<String> {
    pytorch_snapshots(model).into_iter().find_map(|s| {
        let data = s.to_data().ok()?;
        let values = data.as_slice::<f32>().ok()?;
        values.iter().any(|v| !v.is_finite()).then(|| s.full_path())
    })
}

/// Writes `model` to a safetensors file in PyTorch names and layouts, loadable with
/// `model.load_state_dict(safetensors.torch.load_file(path))`. The file is written to a
/// temporary file in the same directory and renamed into place, so `path` never holds a
/// partial file.
pub fn save_pytorch<B: Backend, M: Module<B>>(
    model: &M,
    path: impl AsRef<Path>,
) -> Result<(), ZooError> {
    let path = path.as_ref();
    let bytes = safetensors_bytes(pytorch_snapshots(model)).map_err(|problem| ZooError::Write {
        path: path.to_path_buf(),
        problem,
    })?;
    tanas_core::write_atomic(path, &bytes).map_err(|e| ZooError::io(e.path, e.source))?;
    Ok(())
}

/// Serialises `snapshots` (already in PyTorch names and layouts) as a safetensors file.
fn safetensors_bytes(snapshots: Vec<TensorSnapshot>) -> Result<Vec<u8>, String> {
    let mut tensors = Vec::with_capacity(snapshots.len());
    for s in snapshots {
        let name = s.full_path();
        let data = s.to_data().map_err(|e| format!("tensor `{name}`: {e:?}"))?;
        tensors.push((name, data));
    }
    let mut views = Vec::with_capacity(tensors.len());
    for (name, data) in &tensors {
        let dtype = safetensors_dtype(data.dtype)
            .ok_or_else(|| format!("tensor `{name}` has unsupported dtype {:?}", data.dtype))?;
        let view = TensorView::new(dtype, data.shape.to_vec(), data.as_bytes())
            .map_err(|e| format!("tensor `{name}`: {e}"))?;
        views.push((name.as_str(), view));
    }
    // What `safetensors.torch.save_file` writes; some PyTorch loaders check it. One key only:
    // safetensors writes the metadata `HashMap` in its (random) iteration order, so a second
    // key would make the bytes of two identical saves differ.
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize(views, Some(metadata)).map_err(|e| e.to_string())
}

/// The safetensors dtype of a burn float dtype.
fn safetensors_dtype(dtype: DType) -> Option<Dtype> {
    match dtype {
        DType::F64 => Some(Dtype::F64),
        DType::F32 => Some(Dtype::F32),
        DType::F16 => Some(Dtype::F16),
        DType::BF16 => Some(Dtype::BF16),
        _ => None,
    }
}

/// Reads every tensor of a weights file, keyed by name.
fn read_snapshots(path: &Path) -> Result<BTreeMap<String, TensorSnapshot>, ZooError> {
    let format = weights_format(path)?;
    let snapshots = if format != WeightsFormat::Safetensors {
        if format == WeightsFormat::TorchZip {
            check_archive_sizes(path)?;
        }
        let mut all = torch_snapshots(path, None)?;
        let prefix = "state_dict.";
        if !all.is_empty() && all.keys().all(|k| k.starts_with(prefix)) {
            all = torch_snapshots(path, Some("state_dict"))?;
        }
        all
    } else {
        let mut store = SafetensorsStore::from_file(path);
        store
            .get_all_snapshots()
            .map_err(|e| ZooError::corrupt(path, e))?
            .clone()
    };
    Ok(snapshots)
}

/// The tensors of a `torch.save`d file, at the top level or under `key`.
fn torch_snapshots(
    path: &Path,
    key: Option<&str>,
) -> Result<BTreeMap<String, TensorSnapshot>, ZooError> {
    // The zoo's modules carry PyTorch's own names, gaps in `nn.Sequential` indices included
    // (`op.1`, `op.2` after a parameter-free `op.0`): burn-store must not renumber them.
    let mut store = PytorchStore::from_file(path).map_indices_contiguous(false);
    if let Some(key) = key {
        store = store.with_top_level_key(key);
    }
    Ok(store
        .get_all_snapshots()
        .map_err(|e| ZooError::corrupt(path, e))?
        .clone())
}

/// Deflate inflates at most 1032-fold.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// In a `torch.save` zip archive, the sizes the entries declare must be possible for the file
/// at hand: burn-store allocates each entry's declared size before reading it, so a corrupt
/// size field would otherwise ask for gigabytes.
fn check_archive_sizes(path: &Path) -> Result<(), ZooError> {
    let file = std::fs::File::open(path).map_err(|e| ZooError::io(path, e))?;
    let file_len = file.metadata().map_err(|e| ZooError::io(path, e))?.len();
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| ZooError::corrupt(path, e))?;
    for i in 0..archive.len() {
        let entry = archive
            .by_index_raw(i)
            .map_err(|e| ZooError::corrupt(path, e))?;
        let limit = match entry.compression() {
            zip::CompressionMethod::Stored => entry.compressed_size(),
            _ => entry.compressed_size().saturating_mul(MAX_DEFLATE_RATIO),
        };
        if entry.size() > limit.min(file_len.saturating_mul(MAX_DEFLATE_RATIO)) {
            return Err(ZooError::corrupt(
                path,
                format!(
                    "archive entry `{}` declares {} bytes, more than its {} stored bytes can hold",
                    entry.name(),
                    entry.size(),
                    entry.compressed_size()
                ),
            ));
        }
    }
    Ok(())
}

/// How a weights file is laid out, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WeightsFormat {
    /// Safetensors (8-byte header length, then a JSON header), or anything unrecognised.
    Safetensors,
    /// A `torch.save` zip archive.
    TorchZip,
    /// A legacy `torch.save` pickle stream.
    TorchLegacy,
}

fn weights_format(path: &Path) -> Result<WeightsFormat, ZooError> {
    let file = std::fs::File::open(path).map_err(|e| ZooError::io(path, e))?;
    let mut head = Vec::with_capacity(9);
    file.take(9)
        .read_to_end(&mut head)
        .map_err(|e| ZooError::io(path, e))?;
    Ok(if head.get(8) == Some(&b'{') {
        WeightsFormat::Safetensors
    } else if head.starts_with(b"PK\x03\x04") {
        WeightsFormat::TorchZip
    } else if head.first() == Some(&0x80) {
        WeightsFormat::TorchLegacy
    } else {
        WeightsFormat::Safetensors
    })
}

/// Compares names and shapes before anything is applied.
fn check_fit(
    path: &Path,
    expected: &[TensorInfo],
    file: &BTreeMap<String, TensorSnapshot>,
) -> Result<(), ZooError> {
    let wanted: HashMap<&str, &[usize]> = expected
        .iter()
        .map(|t| (t.name.as_str(), t.shape.as_slice()))
        .collect();
    let mut missing = Vec::new();
    let mut mismatched = Vec::new();
    for t in expected {
        match file.get(&t.name) {
            None => missing.push(t.name.clone()),
            Some(s) if s.shape.as_slice() != t.shape.as_slice() => mismatched.push(ShapeMismatch {
                name: t.name.clone(),
                expected: t.shape.clone(),
                found: s.shape.to_vec(),
            }),
            Some(_) => {}
        }
    }
    let unexpected: Vec<String> = file
        .keys()
        .filter(|k| !wanted.contains_key(k.as_str()) && !is_num_batches_tracked(k))
        .cloned()
        .collect();
    if missing.is_empty() && mismatched.is_empty() && unexpected.is_empty() {
        Ok(())
    } else {
        Err(ZooError::Mismatch {
            path: path.to_path_buf(),
            missing,
            mismatched,
            unexpected,
        })
    }
}

/// Turns what burn-store reports after applying into errors: data that cannot be read, or,
/// as a safety net behind [`check_fit`], model tensors that received nothing. (burn-store's
/// `unused` list is not consulted: it also lists tensors applied under an alternative name,
/// such as BatchNorm `weight` for `gamma`.)
fn check_applied(path: &Path, result: &ApplyResult, expected: usize) -> Result<(), ZooError> {
    if let Some(e) = result.errors.first() {
        return Err(ZooError::corrupt(path, e));
    }
    if !result.missing.is_empty() || result.applied.len() != expected {
        return Err(ZooError::Mismatch {
            path: path.to_path_buf(),
            missing: result.missing.iter().map(|(p, _)| p.clone()).collect(),
            mismatched: Vec::new(),
            unexpected: Vec::new(),
        });
    }
    Ok(())
}

/// Whether `name` is a BatchNorm `num_batches_tracked` buffer.
fn is_num_batches_tracked(name: &str) -> bool {
    name == NUM_BATCHES_TRACKED || name.ends_with(&format!(".{NUM_BATCHES_TRACKED}"))
}

/// Converts a floating-point snapshot of another precision to `f32`; other dtypes are an
/// error.
fn to_f32(path: &Path, s: TensorSnapshot) -> Result<TensorSnapshot, ZooError> {
    match s.dtype {
        DType::F32 => Ok(s),
        DType::F64 | DType::F16 | DType::BF16 => {
            let data = s.clone_data_fn();
            Ok(TensorSnapshot::from_closure(
                Rc::new(move || Ok(data()?.convert_dtype(DType::F32))),
                DType::F32,
                s.shape.clone(),
                s.path_stack.clone().unwrap_or_default(),
                s.container_stack.clone().unwrap_or_default(),
                s.tensor_id.unwrap_or_default(),
            ))
        }
        other => Err(ZooError::corrupt(
            path,
            format!(
                "tensor `{}` has dtype {other:?}, expected a floating-point type",
                s.full_path()
            ),
        )),
    }
}
