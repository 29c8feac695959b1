//! Errors of the pipeline: those of the stages, with the file or task they concern.

use std::path::PathBuf;

/// Everything a pipeline run can fail with.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// An experiment or pipeline file is invalid.
    #[error("{}: {problem}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Reading data or tasks failed.
    #[error(transparent)]
    Data(Box<tanas_data::DataError>),
    /// Building or loading a network failed.
    #[error(transparent)]
    Zoo(Box<tanas_zoo::ZooError>),
    /// Training failed.
    #[error("training `{task}` (seed {seed}): {source}")]
    Train {
        /// The task.
        task: String,
        /// The seed.
        seed: u64,
        /// The cause.
        source: Box<tanas_train::TrainError>,
    },
    /// A Fisher computation failed.
    #[error("Fisher of the `{net}` network on `{data}` data: {source}")]
    Fisher {
        /// The task the network was trained on.
        net: String,
        /// The task whose data was used.
        data: String,
        /// The cause.
        source: Box<tanas_fisher::EstimatorError>,
    },
    /// Reading or writing a Fisher file failed.
    #[error(transparent)]
    FisherFile(Box<tanas_fisher::FisherError>),
    /// A distance computation failed.
    #[error(transparent)]
    Distance(Box<tanas_distance::DistanceError>),
    /// The artifact store could not give an artifact.
    #[error(transparent)]
    Store(#[from] tanas_core::StoreError),
    /// A search failed.
    #[error(transparent)]
    Search(Box<tanas_search::SearchError>),
}

impl From<tanas_core::SettingsError> for PipelineError {
    fn from(e: tanas_core::SettingsError) -> Self {
        PipelineError::Config {
            path: e.path,
            problem: e.problem,
        }
    }
}

/// `?` on the stages' errors boxes them (they are large; the pipeline's error stays small).
macro_rules! boxed_from {
    ($($variant:ident: $ty:ty),*) => {$(
        impl From<$ty> for PipelineError {
            fn from(e: $ty) -> Self {
                Self::$variant(Box::new(e))
            }
        }
    )*};
}

boxed_from!(
    Data: tanas_data::DataError,
    Zoo: tanas_zoo::ZooError,
    FisherFile: tanas_fisher::FisherError,
    Distance: tanas_distance::DistanceError
);

/// Result alias of the pipeline.
pub type Result<T, E = PipelineError> = std::result::Result<T, E>;
