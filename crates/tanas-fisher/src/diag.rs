//! [`FisherDiag`]: a diagonal Fisher information as named per-parameter tensors, and its
//! safetensors file format.
//!
//! # File format
//!
//! A safetensors file with one `F32` tensor per parameter, named and shaped as in PyTorch's
//! `state_dict` (`conv1.weight` `[32, 3, 3, 3]`, `fc1.weight` `[out, in]`, ...), values
//! unnormalised. The header's `__metadata__` (string to string) holds:
//!
//! | key | value |
//! |---|---|
//! | `format` | `pt` (what `safetensors.torch.save_file` writes) |
//! | `producer` | `tanas` |
//! | `tanas_format` | [`FORMAT`] |
//! | `arch`, `task`, `net_task`, `split`, `estimator` | the [`FisherMeta`] fields |
//! | `samples`, `num_classes` | decimal integers |
//! | `tensor_order` | JSON array of the tensor names in their order (safetensors sorts by name) |
//! | `extra.<key>` | each entry of [`FisherMeta::extra`] |
//!
//! From Python: `safetensors.torch.load_file(path)` gives the tensors and
//! `safetensors.safe_open(path, "pt").metadata()` the metadata. Files written elsewhere load
//! too: missing metadata keys take their default (empty / 0) and, without `tensor_order`, the
//! tensors keep the order of their data in the file.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

/// The value of the `tanas_format` metadata key in files written by [`FisherDiag::save`].
pub const FORMAT: &str = "tanas-fisher-diag/1";

/// The largest Fisher file [`FisherDiag::load`] reads: 4 GiB (a DenseNet-161 diagonal is
/// about 0.1 GiB).
pub const FILE_CAP: u64 = 4 << 30;

/// Metadata keys written by [`FisherDiag::save`] that are not [`FisherMeta`] fields.
const KEY_FORMAT: &str = "format";
const KEY_PRODUCER: &str = "producer";
const KEY_TANAS_FORMAT: &str = "tanas_format";
const KEY_ORDER: &str = "tensor_order";
/// Prefix of the metadata keys that hold [`FisherMeta::extra`].
const EXTRA_PREFIX: &str = "extra.";

/// Everything that can go wrong while building, normalising, saving or loading a
/// [`FisherDiag`]. Every error about a file names it.
#[derive(Debug, thiserror::Error)]
pub enum FisherError {
    /// The file does not exist.
    #[error("{}: no such file", path.display())]
    NotFound {
        /// The file.
        path: PathBuf,
    },
    /// The file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not a valid safetensors file (truncated, corrupt header, bad offsets).
    #[error("{}: not a valid safetensors file: {problem}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A tensor in the file is not `F32`.
    #[error("{}: tensor `{tensor}` has dtype {dtype}; a Fisher diagonal must be F32", path.display())]
    Dtype {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// The dtype found.
        dtype: String,
    },
    /// A metadata entry of the file cannot be read.
    #[error("{}: metadata `{key}`: {problem}", path.display())]
    Metadata {
        /// The file.
        path: PathBuf,
        /// The metadata key.
        key: String,
        /// What is wrong.
        problem: String,
    },
    /// A tensor in the file has invalid values (NaN, infinite, negative) or a bad shape.
    #[error("{}: tensor `{tensor}`: {problem}", path.display())]
    InvalidInFile {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// What is wrong.
        problem: String,
    },
    /// A tensor with invalid values (NaN, infinite, negative), a shape that does not match its
    /// number of values, or an empty name.
    #[error("Fisher tensor `{tensor}`: {problem}")]
    InvalidTensor {
        /// The tensor's name.
        tensor: String,
        /// What is wrong.
        problem: String,
    },
    /// Two tensors with the same name.
    #[error("duplicate Fisher tensor name `{0}`")]
    Duplicate(String),
    /// Normalisation of a diagonal whose entries are all zero (or that has no entries).
    #[error("the Fisher diagonal has zero trace (no non-zero entry); it cannot be normalised")]
    ZeroTrace,
    /// The file could not be serialised.
    #[error("{}: cannot write: {problem}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        problem: String,
    },
}

impl FisherError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        if source.kind() == std::io::ErrorKind::NotFound {
            FisherError::NotFound {
                path: path.to_path_buf(),
            }
        } else {
            FisherError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    }
}

/// What a Fisher diagonal was computed from: which network, which data, which estimator.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FisherMeta {
    /// The architecture of the network (a zoo name such as `small-cnn`).
    pub arch: String,
    /// The task whose data the Fisher was taken on (task `b` of `F[a,b]`).
    pub task: String,
    /// The task the network was trained on (task `a` of `F[a,b]`).
    pub net_task: String,
    /// The split of `task`'s data used (`test` in the papers).
    pub split: String,
    /// The number of samples the Fisher was averaged over.
    pub samples: usize,
    /// The estimator (`exact`, `mc`, `batch`).
    pub estimator: String,
    /// The number of outputs (classes) of the network.
    pub num_classes: usize,
    /// Free-form extra entries (seed, weights file, ...).
    pub extra: BTreeMap<String, String>,
}

/// The Fisher diagonal of one parameter tensor: PyTorch name, PyTorch shape, one non-negative
/// finite `f32` per parameter in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct FisherTensor {
    name: String,
    shape: Vec<usize>,
    values: Vec<f32>,
}

/// Why `values` are not a valid Fisher diagonal, if they are not.
fn check_values(values: &[f32]) -> Result<(), String> {
    for (i, &v) in values.iter().enumerate() {
        if v.is_nan() {
            return Err(format!("entry {i} is NaN"));
        }
        if v.is_infinite() {
            return Err(format!("entry {i} is infinite"));
        }
        if v < 0.0 {
            return Err(format!("entry {i} is negative ({v})"));
        }
    }
    Ok(())
}

/// The number of elements of `shape`, or `None` on overflow.
fn numel_of(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

/// `(||a - b||^2, ||b||^2)`, summed in f64: the parts of a relative L2 error of `a` against
/// the reference `b` (equal lengths; extra values of the longer are ignored).
pub fn squared_distance_and_norm(a: &[f32], b: &[f32]) -> (f64, f64) {
    a.iter().zip(b).fold((0.0, 0.0), |(diff, norm), (&a, &b)| {
        let (a, b) = (f64::from(a), f64::from(b));
        (diff + (a - b).powi(2), norm + b.powi(2))
    })
}

/// The relative L2 error `sqrt(diff / norm)` from [`squared_distance_and_norm`]'s parts; an
/// all-zero reference compares absolutely (`sqrt(diff)`).
pub fn relative_l2(diff: f64, norm: f64) -> f64 {
    if norm > 0.0 {
        (diff / norm).sqrt()
    } else {
        diff.sqrt()
    }
}

impl FisherTensor {
    /// A tensor from its name, shape (PyTorch layout) and row-major values. Fails if the name is
    /// empty, the number of values does not match the shape, or a value is NaN, infinite or
    /// negative.
    pub fn new(
        name: impl Into<String>,
        shape: Vec<usize>,
        values: Vec<f32>,
    ) -> Result<Self, FisherError> {
        let name = name.into();
        let invalid = |problem: String| FisherError::InvalidTensor {
            tensor: name.clone(),
            problem,
        };
        if name.is_empty() {
            return Err(invalid("empty tensor name".into()));
        }
        match numel_of(&shape) {
            Some(n) if n == values.len() => {}
            _ => {
                return Err(invalid(format!(
                    "shape {shape:?} does not match its {} values",
                    values.len()
                )));
            }
        }
        check_values(&values).map_err(invalid)?;
        Ok(Self {
            name,
            shape,
            values,
        })
    }

    /// A tensor of zeros, for estimators that accumulate into it. Fails on an empty name or a
    /// shape whose element count overflows.
    pub fn zeros(name: impl Into<String>, shape: Vec<usize>) -> Result<Self, FisherError> {
        let name = name.into();
        let n = numel_of(&shape).ok_or_else(|| FisherError::InvalidTensor {
            tensor: name.clone(),
            problem: format!("shape {shape:?} is too large"),
        })?;
        Self::new(name, shape, vec![0.0; n])
    }

    /// The PyTorch parameter name (`conv1.weight`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The shape in PyTorch layout (`[out, in]` for a linear weight).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The values, row-major.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// The values, mutable (for estimators). [`FisherDiag::validate`] and
    /// [`FisherDiag::save`] check them again.
    pub fn values_mut(&mut self) -> &mut [f32] {
        &mut self.values
    }

    /// The values, by value.
    pub fn into_values(self) -> Vec<f32> {
        self.values
    }

    /// The number of parameters.
    pub fn numel(&self) -> usize {
        self.values.len()
    }

    /// The sum of the values, accumulated in `f64`.
    pub fn sum(&self) -> f64 {
        self.values.iter().map(|&v| f64::from(v)).sum()
    }

    /// Checks that every value is finite and non-negative.
    pub fn validate(&self) -> Result<(), FisherError> {
        check_values(&self.values).map_err(|problem| FisherError::InvalidTensor {
            tensor: self.name.clone(),
            problem,
        })
    }
}

/// The diagonal of the Fisher information of one network on one task's data: an ordered list of
/// named per-parameter tensors (PyTorch names and layouts, unnormalised) plus [`FisherMeta`].
///
/// `F[a,b]` in the papers' notation is the Fisher of the network trained on task `a`
/// ([`FisherMeta::net_task`]) on the data of task `b` ([`FisherMeta::task`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FisherDiag {
    /// What the diagonal was computed from.
    pub meta: FisherMeta,
    tensors: Vec<FisherTensor>,
    index: HashMap<String, usize>,
}

impl FisherDiag {
    /// An empty diagonal with the given metadata.
    pub fn new(meta: FisherMeta) -> Self {
        Self {
            meta,
            tensors: Vec::new(),
            index: HashMap::new(),
        }
    }

    /// A diagonal from its tensors, in order. Fails on a duplicate name.
    pub fn from_tensors(
        meta: FisherMeta,
        tensors: impl IntoIterator<Item = FisherTensor>,
    ) -> Result<Self, FisherError> {
        let mut diag = Self::new(meta);
        for t in tensors {
            diag.push(t)?;
        }
        Ok(diag)
    }

    /// Appends a tensor. Fails if the name is already present.
    pub fn push(&mut self, tensor: FisherTensor) -> Result<(), FisherError> {
        if self.index.contains_key(&tensor.name) {
            return Err(FisherError::Duplicate(tensor.name));
        }
        self.index.insert(tensor.name.clone(), self.tensors.len());
        self.tensors.push(tensor);
        Ok(())
    }

    /// The tensor named `name`, if any.
    pub fn get(&self, name: &str) -> Option<&FisherTensor> {
        self.index.get(name).map(|&i| &self.tensors[i])
    }

    /// The tensor named `name`, mutable, if any.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut FisherTensor> {
        self.index.get(name).map(|&i| &mut self.tensors[i])
    }

    /// Whether a tensor named `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// The tensors, in order.
    pub fn tensors(&self) -> &[FisherTensor] {
        &self.tensors
    }

    /// The tensors, in order, mutable (names and shapes stay fixed).
    pub fn tensors_mut(&mut self) -> &mut [FisherTensor] {
        &mut self.tensors
    }

    /// The tensor names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.iter().map(|t| t.name.as_str())
    }

    /// The number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether there is no tensor.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// The number of parameters (entries of the diagonal).
    pub fn numel(&self) -> usize {
        self.tensors.iter().map(FisherTensor::numel).sum()
    }

    /// The trace: the sum of all entries, accumulated in `f64`.
    pub fn total(&self) -> f64 {
        self.tensors.iter().map(FisherTensor::sum).sum()
    }

    /// The diagonal scaled to unit trace over the whole network (what the distances compare).
    /// Adds `normalized = unit-trace` to the extra metadata. Fails with
    /// [`FisherError::ZeroTrace`] if every entry is zero.
    pub fn normalized(&self) -> Result<FisherDiag, FisherError> {
        let total = self.total();
        if total <= 0.0 || !total.is_finite() {
            return Err(FisherError::ZeroTrace);
        }
        let mut out = self.clone();
        for t in &mut out.tensors {
            for v in &mut t.values {
                *v = (f64::from(*v) / total) as f32;
            }
        }
        out.meta
            .extra
            .insert("normalized".into(), "unit-trace".into());
        Ok(out)
    }

    /// The largest relative L2 error `||self_t - ref_t|| / ||ref_t||` over the tensors of
    /// `reference` (an all-zero reference tensor compares absolutely). `None` when a tensor
    /// of `reference` is missing here or has another shape.
    pub fn relative_error(&self, reference: &FisherDiag) -> Option<f64> {
        reference.tensors.iter().try_fold(0.0f64, |worst, r| {
            let t = self.get(r.name()).filter(|t| t.shape() == r.shape())?;
            let (diff, norm) = squared_distance_and_norm(t.values(), r.values());
            Some(worst.max(relative_l2(diff, norm)))
        })
    }

    /// Checks every tensor's values (finite, non-negative).
    pub fn validate(&self) -> Result<(), FisherError> {
        self.tensors.iter().try_for_each(FisherTensor::validate)
    }

    /// Writes the diagonal to `path` as safetensors (format in the [module docs](self)),
    /// atomically: a temporary file in the same directory, then a rename. Fails, writing
    /// nothing, if a value is invalid.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), FisherError> {
        let path = path.as_ref();
        self.validate()?;
        let bytes = self
            .to_safetensors()
            .map_err(|problem| FisherError::Write {
                path: path.to_path_buf(),
                problem,
            })?;
        tanas_core::write_atomic(path, &bytes).map_err(|e| FisherError::Io {
            path: e.path,
            source: e.source,
        })
    }

    /// Reads a diagonal written by [`FisherDiag::save`] (or any safetensors file of `F32`
    /// tensors). Every tensor must be `F32` with finite, non-negative values.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, FisherError> {
        let path = path.as_ref();
        let bytes =
            tanas_core::read_capped(path, FILE_CAP).map_err(|e| FisherError::io(path, e))?;
        Self::from_safetensors(&bytes, path)
    }

    /// The safetensors metadata of this diagonal, sorted by key.
    fn header_metadata(&self) -> Result<BTreeMap<String, String>, String> {
        let m = &self.meta;
        let order: Vec<&str> = self.names().collect();
        let mut h = BTreeMap::from([
            (KEY_FORMAT.to_string(), "pt".to_string()),
            (KEY_PRODUCER.to_string(), "tanas".to_string()),
            (KEY_TANAS_FORMAT.to_string(), FORMAT.to_string()),
            ("arch".to_string(), m.arch.clone()),
            ("task".to_string(), m.task.clone()),
            ("net_task".to_string(), m.net_task.clone()),
            ("split".to_string(), m.split.clone()),
            ("samples".to_string(), m.samples.to_string()),
            ("estimator".to_string(), m.estimator.clone()),
            ("num_classes".to_string(), m.num_classes.to_string()),
            (
                KEY_ORDER.to_string(),
                serde_json::to_string(&order).map_err(|e| e.to_string())?,
            ),
        ]);
        for (k, v) in &m.extra {
            h.insert(format!("{EXTRA_PREFIX}{k}"), v.clone());
        }
        Ok(h)
    }

    /// The whole safetensors file as bytes. Written by hand rather than with
    /// `safetensors::serialize`, whose metadata is a `HashMap` serialised in random order: here
    /// the header lists the metadata sorted by key and the tensors in their order, so the same
    /// diagonal always gives the same bytes.
    fn to_safetensors(&self) -> Result<Vec<u8>, String> {
        let mut header = format!("{{\"__metadata__\":{}", json(&self.header_metadata()?)?);
        let mut offset = 0usize;
        for t in &self.tensors {
            let end = offset + 4 * t.values.len();
            header.push_str(&format!(
                ",{}:{{\"dtype\":\"F32\",\"shape\":{},\"data_offsets\":[{offset},{end}]}}",
                json(&t.name)?,
                json(&t.shape)?,
            ));
            offset = end;
        }
        header.push('}');
        // Pad the header with spaces to a multiple of 8 bytes, as the reference writer does.
        while header.len() % 8 != 0 {
            header.push(' ');
        }
        let mut out = Vec::with_capacity(8 + header.len() + offset);
        out.extend_from_slice(&(header.len() as u64).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        for t in &self.tensors {
            for v in &t.values {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        Ok(out)
    }

    /// Parses a safetensors file already read into memory; `path` names it in errors.
    fn from_safetensors(bytes: &[u8], path: &Path) -> Result<Self, FisherError> {
        let corrupt = |problem: String| FisherError::Corrupt {
            path: path.to_path_buf(),
            problem,
        };
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| corrupt(e.to_string()))?;
        let st = SafeTensors::deserialize(bytes).map_err(|e| corrupt(e.to_string()))?;
        let md = header.metadata().clone().unwrap_or_default();
        let meta_err = |key: &str, problem: String| FisherError::Metadata {
            path: path.to_path_buf(),
            key: key.to_string(),
            problem,
        };
        let text = |key: &str| md.get(key).cloned().unwrap_or_default();
        let number = |key: &str| -> Result<usize, FisherError> {
            match md.get(key) {
                None => Ok(0),
                Some(s) => s
                    .trim()
                    .parse()
                    .map_err(|_| meta_err(key, format!("`{s}` is not a non-negative integer"))),
            }
        };
        let extra = md
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(EXTRA_PREFIX)
                    .map(|k| (k.to_string(), v.clone()))
            })
            .collect();
        let meta = FisherMeta {
            arch: text("arch"),
            task: text("task"),
            net_task: text("net_task"),
            split: text("split"),
            samples: number("samples")?,
            estimator: text("estimator"),
            num_classes: number("num_classes")?,
            extra,
        };

        let order: Vec<String> = match md.get(KEY_ORDER) {
            Some(s) => {
                let order: Vec<String> = serde_json::from_str(s)
                    .map_err(|e| meta_err(KEY_ORDER, format!("not a JSON list of names: {e}")))?;
                let mut given: Vec<&str> = order.iter().map(String::as_str).collect();
                let mut stored = st.names();
                given.sort_unstable();
                stored.sort_unstable();
                if given != stored {
                    return Err(meta_err(
                        KEY_ORDER,
                        "does not list exactly the tensors of the file".into(),
                    ));
                }
                order
            }
            None => header.offset_keys(),
        };

        let mut diag = FisherDiag::new(meta);
        for name in order {
            let view = st.tensor(&name).map_err(|e| corrupt(e.to_string()))?;
            if view.dtype() != Dtype::F32 {
                return Err(FisherError::Dtype {
                    path: path.to_path_buf(),
                    tensor: name,
                    dtype: format!("{:?}", view.dtype()),
                });
            }
            let values: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            let tensor =
                FisherTensor::new(name, view.shape().to_vec(), values).map_err(|e| match e {
                    FisherError::InvalidTensor { tensor, problem } => FisherError::InvalidInFile {
                        path: path.to_path_buf(),
                        tensor,
                        problem,
                    },
                    other => other,
                })?;
            diag.push(tensor).map_err(|e| corrupt(e.to_string()))?;
        }
        Ok(diag)
    }
}

/// `v` as compact JSON.
fn json<T: Serialize + ?Sized>(v: &T) -> Result<String, String> {
    serde_json::to_string(v).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use safetensors::tensor::TensorView;

    use super::*;

    fn sample() -> FisherDiag {
        let meta = FisherMeta {
            arch: "small-cnn".into(),
            task: "mnist-1".into(),
            net_task: "mnist-0".into(),
            split: "test".into(),
            samples: 512,
            estimator: "exact".into(),
            num_classes: 2,
            extra: BTreeMap::from([("seed".into(), "3".into()), ("note".into(), "a b=c".into())]),
        };
        // Names deliberately out of alphabetical order: the order must survive a round trip.
        FisherDiag::from_tensors(
            meta,
            [
                FisherTensor::new(
                    "conv1.weight",
                    vec![2, 1, 1, 2],
                    vec![0.5, 1e-30, 3.25, 0.0],
                )
                .unwrap(),
                FisherTensor::new("conv1.bias", vec![2], vec![7.0, f32::MIN_POSITIVE]).unwrap(),
                FisherTensor::new("bn1.weight", vec![2], vec![1.0, 2.0]).unwrap(),
                FisherTensor::new("fc.weight", vec![2, 3], vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
                    .unwrap(),
            ],
        )
        .unwrap()
    }

    #[test]
    fn lookup_total_and_normalized() {
        let d = sample();
        assert_eq!(d.len(), 4);
        assert_eq!(d.numel(), 14);
        assert_eq!(d.get("bn1.weight").unwrap().values(), &[1.0, 2.0]);
        assert!(d.get("nope").is_none());
        let names: Vec<&str> = d.names().collect();
        assert_eq!(
            names,
            ["conv1.weight", "conv1.bias", "bn1.weight", "fc.weight"]
        );
        let expected: f64 = [0.5f32, 1e-30, 3.25, 0.0, 7.0, f32::MIN_POSITIVE, 1.0, 2.0]
            .iter()
            .chain(&[0.1f32, 0.2, 0.3, 0.4, 0.5, 0.6])
            .map(|&v| f64::from(v))
            .sum();
        assert_eq!(d.total(), expected);
        let n = d.normalized().unwrap();
        assert!((n.total() - 1.0).abs() < 1e-6);
        assert_eq!(n.meta.extra["normalized"], "unit-trace");
    }

    #[test]
    fn relative_error_is_the_worst_tensor() {
        let d = sample();
        assert_eq!(d.relative_error(&d), Some(0.0));
        let mut e = d.clone();
        // bn1.weight [1, 2] -> [1, 2.5]: error 0.5 / sqrt(5).
        e.get_mut("bn1.weight").unwrap().values_mut()[1] = 2.5;
        let err = e.relative_error(&d).unwrap();
        assert!((err - 0.5 / 5f64.sqrt()).abs() < 1e-9, "{err}");
        let mut missing = FisherDiag::new(d.meta.clone());
        missing.push(d.get("fc.weight").unwrap().clone()).unwrap();
        assert_eq!(missing.relative_error(&d), None);
        assert_eq!(d.relative_error(&missing), Some(0.0));
    }

    #[test]
    fn invalid_tensors_are_rejected() {
        assert!(matches!(
            FisherTensor::new("a", vec![2, 2], vec![1.0; 3]),
            Err(FisherError::InvalidTensor { .. })
        ));
        for bad in [f32::NAN, f32::INFINITY, -1.0] {
            let e = FisherTensor::new("w", vec![2], vec![1.0, bad]).unwrap_err();
            assert!(e.to_string().contains("`w`"), "{e}");
            assert!(e.to_string().contains("entry 1"), "{e}");
        }
        assert!(FisherTensor::new("", vec![1], vec![1.0]).is_err());
        let mut d = sample();
        let dup = FisherTensor::new("bn1.weight", vec![1], vec![1.0]).unwrap();
        assert!(matches!(d.push(dup), Err(FisherError::Duplicate(_))));
        let zero = FisherDiag::from_tensors(
            FisherMeta::default(),
            [FisherTensor::zeros("w", vec![3]).unwrap()],
        )
        .unwrap();
        assert!(matches!(zero.normalized(), Err(FisherError::ZeroTrace)));
    }

    #[test]
    fn safetensors_round_trip_is_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.safetensors");
        let d = sample();
        d.save(&path).unwrap();
        let back = FisherDiag::load(&path).unwrap();
        assert_eq!(back, d);
        // Bit-exact values, including subnormals.
        for (a, b) in d.tensors().iter().zip(back.tensors()) {
            let ab: Vec<u32> = a.values().iter().map(|v| v.to_bits()).collect();
            let bb: Vec<u32> = b.values().iter().map(|v| v.to_bits()).collect();
            assert_eq!(ab, bb);
        }
        // Only the file itself is left in the directory (no temp file).
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // The metadata is plain strings, as Python's safe_open(...).metadata() shows it.
        let bytes = std::fs::read(&path).unwrap();
        let (_, h) = SafeTensors::read_metadata(&bytes).unwrap();
        let md = h.metadata().clone().unwrap();
        assert_eq!(md["arch"], "small-cnn");
        assert_eq!(md["samples"], "512");
        assert_eq!(md["net_task"], "mnist-0");
        assert_eq!(md["extra.seed"], "3");
        assert_eq!(md["format"], "pt");
    }

    #[test]
    fn saved_bytes_are_deterministic_and_in_tensor_order() {
        let d = sample();
        let (a, b) = (d.to_safetensors().unwrap(), d.to_safetensors().unwrap());
        assert_eq!(a, b);
        // The reference reader accepts the file, and the data lie in the diagonal's order.
        let (n, header) = SafeTensors::read_metadata(&a).unwrap();
        assert_eq!(n % 8, 0);
        let names: Vec<&str> = d.names().collect();
        assert_eq!(header.offset_keys(), names);
        let st = SafeTensors::deserialize(&a).unwrap();
        assert_eq!(st.tensor("fc.weight").unwrap().shape(), [2, 3]);
    }

    #[test]
    fn load_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.safetensors");
        let e = FisherDiag::load(&missing).unwrap_err();
        assert!(matches!(e, FisherError::NotFound { .. }));
        assert!(e.to_string().contains("missing.safetensors"), "{e}");

        let corrupt = dir.path().join("corrupt.safetensors");
        std::fs::write(&corrupt, b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}").unwrap();
        let e = FisherDiag::load(&corrupt).unwrap_err();
        assert!(matches!(e, FisherError::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains("corrupt.safetensors"), "{e}");

        // Truncated: a valid file cut short.
        let good = dir.path().join("good.safetensors");
        sample().save(&good).unwrap();
        let bytes = std::fs::read(&good).unwrap();
        let cut = dir.path().join("cut.safetensors");
        std::fs::write(&cut, &bytes[..bytes.len() - 3]).unwrap();
        let e = FisherDiag::load(&cut).unwrap_err();
        assert!(matches!(e, FisherError::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains("cut.safetensors"), "{e}");
    }

    fn write_raw(path: &Path, dtype: Dtype, shape: Vec<usize>, data: &[u8]) {
        let view = TensorView::new(dtype, shape, data).unwrap();
        safetensors::serialize_to_file([("w", view)], None, path).unwrap();
    }

    #[test]
    fn load_rejects_bad_dtype_and_values() {
        let dir = tempfile::tempdir().unwrap();
        let f64_path = dir.path().join("f64.safetensors");
        write_raw(&f64_path, Dtype::F64, vec![1], &1.0f64.to_le_bytes());
        let e = FisherDiag::load(&f64_path).unwrap_err();
        assert!(matches!(e, FisherError::Dtype { .. }), "{e}");
        assert!(e.to_string().contains("f64.safetensors"), "{e}");
        assert!(e.to_string().contains("F64"), "{e}");

        for (file, bad) in [("nan.safetensors", f32::NAN), ("neg.safetensors", -0.5)] {
            let p = dir.path().join(file);
            let data: Vec<u8> = [1.0f32, bad].iter().flat_map(|v| v.to_le_bytes()).collect();
            write_raw(&p, Dtype::F32, vec![2], &data);
            let e = FisherDiag::load(&p).unwrap_err();
            assert!(matches!(e, FisherError::InvalidInFile { .. }), "{e}");
            assert!(e.to_string().contains(file), "{e}");
            assert!(e.to_string().contains("`w`"), "{e}");
        }

        // A foreign file without metadata loads with default metadata.
        let plain = dir.path().join("plain.safetensors");
        let data: Vec<u8> = [1.0f32, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        write_raw(&plain, Dtype::F32, vec![2], &data);
        let d = FisherDiag::load(&plain).unwrap();
        assert_eq!(d.meta, FisherMeta::default());
        assert_eq!(d.get("w").unwrap().values(), &[1.0, 2.0]);
    }

    #[test]
    fn save_refuses_invalid_values_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.safetensors");
        let mut d = sample();
        d.get_mut("fc.weight").unwrap().values_mut()[0] = f32::NAN;
        assert!(d.save(&path).is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
