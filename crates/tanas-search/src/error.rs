//! Typed errors of search spaces and searches. Every error that concerns a file names it.

use std::path::PathBuf;

use tanas_core::{FileError, SettingsMismatch};
use tanas_data::Split;
use tanas_train::TrainError;
use tanas_zoo::ZooError;
use tanas_zoo::cell::{CellError, MAX_NODES, Op};

/// Everything that can be wrong with a search space.
#[derive(Debug, thiserror::Error)]
pub enum SpaceError {
    /// A space that allows no operation.
    #[error("the search space allows no operations (list at least one in `ops`)")]
    NoOps,
    /// A space that allows no node count.
    #[error("the search space allows no node counts (list at least one in `nodes`)")]
    NoNodes,
    /// An operation name that is not in the operations table.
    #[error(
        "unknown operation `{name}` in the search space; known operations: {}",
        Op::names_joined()
    )]
    UnknownOp {
        /// The name as written.
        name: String,
    },
    /// The same operation listed twice.
    #[error("operation `{0}` is listed twice in the search space")]
    DuplicateOp(Op),
    /// The same node count listed twice.
    #[error("node count {0} is listed twice in the search space")]
    DuplicateNodes(usize),
    /// A node count a cell cannot have.
    #[error(
        "node count {0} is out of range: a cell has 1 to {MAX_NODES} intermediate nodes (the papers use 3 or 4)"
    )]
    NodeCount(usize),
    /// A skeleton that cannot build a network.
    #[error("invalid skeleton: {0}")]
    Skeleton(#[source] CellError),
    /// A genotype that cannot define a space (it does not validate).
    #[error("invalid genotype: {0}")]
    Genotype(#[source] CellError),
    /// Text that is not JSON of a search space's shape.
    #[error("invalid search space JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Everything that can go wrong in a search (FUSE or random search).
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// A search space file that cannot be used; the error names the file.
    #[error("{}: {source}", path.display())]
    SpaceFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: SpaceError,
    },
    /// An invalid search space (not read from a file).
    #[error(transparent)]
    Space(#[from] SpaceError),
    /// A config value out of range.
    #[error("invalid search config: {field}: {problem}")]
    InvalidConfig {
        /// The field, as spelt in the config.
        field: &'static str,
        /// What is wrong, in words.
        problem: String,
    },
    /// A split with no samples.
    #[error("the {split} split is empty")]
    EmptySplit {
        /// Which split.
        split: Split,
    },
    /// A sample whose label the networks cannot predict.
    #[error("the {split} split has label {label} but the networks have only {classes} outputs")]
    LabelOutOfRange {
        /// The split that holds the sample.
        split: Split,
        /// The offending label.
        label: usize,
        /// The networks' output count.
        classes: usize,
    },
    /// The output directory holds a search made with other settings.
    #[error(transparent)]
    ConfigMismatch(#[from] SettingsMismatch),
    /// A loss became NaN or infinite.
    #[error("search diverged: non-finite loss in {during} (try a smaller learning rate)")]
    NonFinite {
        /// Where, in words (`stage 2, round 1, weight epoch 1`).
        during: String,
    },
    /// The search was asked to stop (see `Fuse::with_interrupt`); everything up to the last
    /// completed step is checkpointed and a rerun goes on from there.
    #[error(
        "{}: search interrupted after {completed} completed step(s); run again to resume",
        dir.display()
    )]
    Interrupted {
        /// The output directory.
        dir: PathBuf,
        /// Completed stages (FUSE) or candidates (random search).
        completed: usize,
    },
    /// A genotype, skeleton or cell network problem.
    #[error(transparent)]
    Cell(#[from] CellError),
    /// A network could not be built or its weights written.
    #[error(transparent)]
    Zoo(#[from] ZooError),
    /// Training or evaluation failed.
    #[error(transparent)]
    Train(#[from] TrainError),
    /// A file of the search could not be read or written, or its JSON parsed.
    #[error(transparent)]
    File(#[from] FileError),
}

impl SearchError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        FileError::io(path, source).into()
    }

    pub(crate) fn json(path: impl Into<PathBuf>, source: serde_json::Error) -> Self {
        FileError::json(path, source).into()
    }

    pub(crate) fn config(field: &'static str, problem: impl Into<String>) -> Self {
        Self::InvalidConfig {
            field,
            problem: problem.into(),
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = SearchError> = std::result::Result<T, E>;
