//! Datasets and tasks for tanas.
//!
//! - Readers for the IDX format (MNIST, Fashion-MNIST; plain or gzip) and the CIFAR-10 /
//!   CIFAR-100 binary formats, validating every header and length ([`idx`], [`cifar`]).
//! - The catalogue of known datasets and the data-directory search ([`catalog`]).
//! - Task specs in TOML and their relabelling ([`task`]), balanced train / val / test splits
//!   ([`split`]), and burn `Dataset` / `Batcher` implementations ([`batch`]).

pub mod batch;
pub mod catalog;
pub mod cifar;
pub mod error;
pub mod idx;
pub mod image_set;
pub mod split;
pub mod task;

pub use batch::{TaskBatch, TaskBatcher, TaskItem};
pub use catalog::{DataDirs, Dataset, DatasetName};
pub use error::{DataError, Result};
pub use image_set::ImageSet;
pub use split::{Split, TaskData, TaskSplit};
pub use task::{TaskFile, TaskKind, TaskSpec};

use std::path::Path;

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, then a rename,
/// so that an interrupted write never leaves a half-written file behind. The file ends up an
/// ordinary `rw-r--r--` one (temporary files are created `rw-------`).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let io = |e: std::io::Error| DataError::io(path, e);
    let mut builder = tempfile::Builder::new();
    builder.prefix(".tanas-").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        builder.permissions(std::fs::Permissions::from_mode(0o644));
    }
    let mut tmp = builder.tempfile_in(dir).map_err(io)?;
    tmp.write_all(bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}
