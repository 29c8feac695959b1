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
pub use split::{
    PROBE_FRACTION, Split, TaskData, TaskSplit, fingerprint, prior_shift, prior_shift_from,
    probe_mask,
};
pub use task::{TaskFile, TaskKind, TaskSpec};
