//! Typed errors of the distance crate. Every error that concerns a file names it; every error
//! that concerns a tensor names the tensor.

use std::path::PathBuf;

use tanas_fisher::FisherError;

/// Everything that can go wrong while comparing Fisher diagonals or writing distance matrices.
#[derive(Debug, thiserror::Error)]
pub enum DistanceError {
    /// A metric name that is not `ftd`, `logdet` or `cosine`.
    #[error("unknown task distance `{0}`; valid: ftd, logdet, cosine")]
    UnknownMetric(String),
    /// A head rule that is not `pad` or `exclude`.
    #[error("unknown head rule `{0}`; valid: pad, exclude")]
    UnknownHeadRule(String),
    /// A `sigma2` for the log-det distance that is not a positive finite number.
    #[error("sigma2 must be a positive finite number, got {0}")]
    InvalidSigma2(f64),
    /// A tensor present in one Fisher diagonal and not in the other.
    #[error(
        "tensor `{name}` is in the {present} Fisher diagonal but not in the {missing} one \
         (the two come from different architectures?)"
    )]
    MissingTensor {
        /// The tensor's name.
        name: String,
        /// `first` or `second`: the diagonal that has it.
        present: &'static str,
        /// `first` or `second`: the diagonal that lacks it.
        missing: &'static str,
    },
    /// Two tensors of the same name whose shapes differ in more than the leading (class)
    /// dimension.
    #[error(
        "tensor `{name}`: shapes {a:?} (first) and {b:?} (second) differ in more than the \
         leading (class) dimension"
    )]
    ShapeMismatch {
        /// The tensor's name.
        name: String,
        /// Its shape in the first diagonal.
        a: Vec<usize>,
        /// Its shape in the second diagonal.
        b: Vec<usize>,
    },
    /// No parameter is left to compare (every tensor was excluded, or the diagonals are empty).
    #[error("no parameters to compare (the diagonals are empty or every tensor was excluded)")]
    Empty,
    /// A diagonal whose compared entries are all zero: it cannot be normalised to unit trace.
    #[error("the {0} Fisher diagonal is zero on every compared parameter; it cannot be normalised")]
    ZeroTrace(&'static str),
    /// A Fisher diagonal could not be loaded.
    #[error(transparent)]
    Fisher(#[from] FisherError),
    /// A distance matrix over no task, or with an empty task id.
    #[error("a distance matrix needs at least one task and non-empty task ids")]
    NoTasks,
    /// The same task id twice in a distance matrix.
    #[error("task `{0}` is listed twice")]
    DuplicateTask(String),
    /// A task id that is not one of the matrix's tasks.
    #[error("unknown task `{task}`; the matrix's tasks are: {known}")]
    UnknownTask {
        /// The id that was given.
        task: String,
        /// The matrix's task ids, comma separated.
        known: String,
    },
    /// A distance that is negative, NaN or infinite.
    #[error(
        "distance {value} from `{source_task}` to `{target}` (seed {seed}) is not a finite non-negative number"
    )]
    InvalidValue {
        /// The seed.
        seed: u64,
        /// The source task (row).
        source_task: String,
        /// The target task (column).
        target: String,
        /// The value.
        value: f64,
    },
    /// Two matrices that cannot be merged (different tasks, metric or head rule).
    #[error("cannot merge distance matrices: {0}")]
    Incompatible(String),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A distance-matrix JSON file that cannot be parsed or is inconsistent.
    #[error("{}: not a valid distance-matrix file: {problem}", path.display())]
    BadMatrixFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A heatmap could not be drawn or encoded.
    #[error("{}: cannot draw the heatmap: {problem}", path.display())]
    Plot {
        /// The file being written.
        path: PathBuf,
        /// What went wrong.
        problem: String,
    },
}

/// The result type of this crate.
pub type Result<T, E = DistanceError> = std::result::Result<T, E>;

impl DistanceError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DistanceError::Io {
            path: path.into(),
            source,
        }
    }
}
