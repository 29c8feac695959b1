//! Typed errors of training and evaluation. Every error that concerns a file names it.

use std::path::PathBuf;

use tanas_core::{FileError, SettingsMismatch};
use tanas_data::Split;
use tanas_zoo::ZooError;

/// Everything that can go wrong while training or evaluating a network.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A [`TrainConfig`](crate::TrainConfig) value out of range.
    #[error("invalid training config: {field}: {problem}")]
    InvalidConfig {
        /// The field, as spelt in the config.
        field: &'static str,
        /// What is wrong, in words.
        problem: String,
    },
    /// The network's output count differs from the task's label count.
    #[error("task `{task}` has {labels} labels but the network has {classes} outputs")]
    LabelMismatch {
        /// The task id.
        task: String,
        /// The task's label count.
        labels: usize,
        /// The network's output count.
        classes: usize,
    },
    /// A sample whose label the network cannot predict.
    #[error("the {split} split has label {label} but the network has only {classes} outputs")]
    LabelOutOfRange {
        /// The split that holds the sample.
        split: String,
        /// The largest label in the split.
        label: usize,
        /// The network's output count.
        classes: usize,
    },
    /// A split with no samples where samples are needed.
    #[error("task `{task}`: the {split} split is empty{hint}")]
    EmptySplit {
        /// The task id.
        task: String,
        /// Which split.
        split: Split,
        /// Extra advice (may be empty).
        hint: String,
    },
    /// The output directory holds a run made with other settings.
    #[error(transparent)]
    ConfigMismatch(#[from] SettingsMismatch),
    /// A finished run should be extended but its checkpoint is gone.
    #[error("{}: the run there needs its checkpoint to go on, but {missing} is missing", dir.display())]
    MissingCheckpoint {
        /// The output directory.
        dir: PathBuf,
        /// The missing file.
        missing: String,
    },
    /// The training loss became NaN or infinite.
    #[error(
        "training diverged: non-finite loss in epoch {epoch}, batch {batch} (try a smaller learning rate)"
    )]
    NonFinite {
        /// The epoch (1-based).
        epoch: usize,
        /// The batch within the epoch (1-based).
        batch: usize,
    },
    /// An evaluation loss became NaN or infinite (the weights are no longer finite).
    #[error(
        "training diverged: non-finite {split} loss after epoch {epoch} (try a smaller learning rate)"
    )]
    NonFiniteEval {
        /// The epoch after which the evaluation ran (1-based).
        epoch: usize,
        /// The evaluated split.
        split: Split,
    },
    /// The model could not be built or its weights written.
    #[error(transparent)]
    Zoo(#[from] ZooError),
    /// A file of the run could not be read or written, or its JSON parsed.
    #[error(transparent)]
    File(#[from] FileError),
    /// A burn record (checkpoint) could not be read or written.
    #[error("{}: checkpoint record: {problem}", path.display())]
    Record {
        /// The file.
        path: PathBuf,
        /// What went wrong, in words.
        problem: String,
    },
}

impl TrainError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        FileError::io(path, source).into()
    }

    pub(crate) fn json(path: impl Into<PathBuf>, source: serde_json::Error) -> Self {
        FileError::json(path, source).into()
    }

    pub(crate) fn record(path: impl Into<PathBuf>, problem: impl std::fmt::Display) -> Self {
        Self::Record {
            path: path.into(),
            problem: problem.to_string(),
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;
