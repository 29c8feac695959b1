//! Typed errors of the model zoo. Every error that concerns a file names it.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::cell::CellError;

/// How many names an error message lists before it summarises the rest.
const LISTED: usize = 8;

/// A tensor whose shape in a weights file differs from the model's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeMismatch {
    /// The PyTorch `state_dict` name of the tensor.
    pub name: String,
    /// The shape the model expects (PyTorch layout).
    pub expected: Vec<usize>,
    /// The shape found in the file (PyTorch layout).
    pub found: Vec<usize>,
}

/// Everything that can go wrong while building models or moving their weights.
#[derive(Debug, thiserror::Error)]
pub enum ZooError {
    /// An architecture name that the zoo does not know.
    #[error(transparent)]
    UnknownArch(#[from] tanas_core::arch::UnknownArch),
    /// `cellnet` was requested without a genotype.
    #[error("architecture `cellnet` needs a genotype")]
    MissingGenotype,
    /// A class count of zero.
    #[error("the number of classes must be at least 1, got {0}")]
    InvalidNumClasses(usize),
    /// The cell network could not be built.
    #[error("cell network: {0}")]
    Cell(#[from] CellError),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A weights file whose extension names no format the zoo reads.
    #[error("{}: unknown weights format (expected .safetensors, .pt or .pth)", path.display())]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// A weights file that cannot be parsed (truncated, corrupt, wrong format).
    #[error("{}: cannot read weights: {problem}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong, in words.
        problem: String,
    },
    /// A weights file that was read but does not fit the model.
    #[error("{}: weights do not fit the model: {}", path.display(), describe_mismatch(missing, mismatched, unexpected))]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// Tensors the model needs that the file lacks (PyTorch names).
        missing: Vec<String>,
        /// Tensors present in both with different shapes.
        mismatched: Vec<ShapeMismatch>,
        /// Tensors in the file that the model does not have (PyTorch names;
        /// `num_batches_tracked` is never listed).
        unexpected: Vec<String>,
    },
    /// The model's tensors could not be written.
    #[error("{}: cannot write weights: {problem}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What is wrong, in words.
        problem: String,
    },
}

impl ZooError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// A corrupt-file error on `path`.
    pub fn corrupt(path: impl Into<PathBuf>, problem: impl ToString) -> Self {
        Self::Corrupt {
            path: path.into(),
            problem: problem.to_string(),
        }
    }
}

/// One line that summarises what does not fit, listing at most [`LISTED`] names per kind.
fn describe_mismatch(
    missing: &[String],
    mismatched: &[ShapeMismatch],
    unexpected: &[String],
) -> String {
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("{} missing ({})", missing.len(), listing(missing)));
    }
    if !mismatched.is_empty() {
        let items: Vec<String> = mismatched
            .iter()
            .map(|m| format!("{}: model {:?}, file {:?}", m.name, m.expected, m.found))
            .collect();
        parts.push(format!("{} mis-shaped ({})", items.len(), listing(&items)));
    }
    if !unexpected.is_empty() {
        parts.push(format!(
            "{} unexpected ({})",
            unexpected.len(),
            listing(unexpected)
        ));
    }
    parts.join("; ")
}

/// `a, b, c, ... and N more`.
fn listing(items: &[String]) -> String {
    let mut out = items
        .iter()
        .take(LISTED)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > LISTED {
        let _ = write!(out, ", ... and {} more", items.len() - LISTED);
    }
    out
}
