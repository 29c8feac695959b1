//! Datasets and tasks for tanas.
//!
//! - Readers for the IDX format (MNIST, Fashion-MNIST; plain or gzip) and the CIFAR-10 /
//!   CIFAR-100 binary formats, validating every header and length ([`idx`], [`cifar`]).
//! - The catalogue of built-in datasets and the data-directory search ([`catalog`]).
//! - Datasets declared as data (`[[dataset]]`: image folders, NumPy arrays, CSV), decoded
//!   once under a stated rule and cached ([`declared`], [`decode`]).
//! - Task specs in TOML and their relabelling ([`task`]), balanced train / val / test splits
//!   ([`split`]), and burn `Dataset` / `Batcher` implementations ([`batch`]).

pub mod batch;
pub mod catalog;
pub mod cifar;
mod csv_set;
pub mod declared;
pub mod decode;
pub mod error;
mod folder;
pub mod idx;
pub mod image_set;
pub mod npy;
pub mod split;
pub mod task;

pub use batch::{TaskBatch, TaskBatcher, TaskItem};
pub use catalog::{DataDirs, Dataset, DatasetName};
pub use declared::{DatasetDecl, DeclaredInfo, Format, OnError, Skipped};
pub use error::{DataError, Result};
pub use image_set::ImageSet;
pub use split::{
    PROBE_FRACTION, Split, TaskData, TaskSplit, fingerprint, prior_shift, prior_shift_from,
    probe_mask,
};
pub use task::{DatasetSource, TaskFile, TaskKind, TaskSpec};
