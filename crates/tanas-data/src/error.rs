//! Typed errors of the data layer. Every error that concerns a file names it.

use std::path::PathBuf;

/// Everything that can go wrong while reading datasets or task specs.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file was read but its content is not what the format requires.
    #[error("{}: {problem}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong, in words.
        problem: String,
    },
    /// Two files that belong together disagree (e.g. image count vs label count).
    #[error("{} and {}: {problem}", a.display(), b.display())]
    Mismatch {
        /// The first file.
        a: PathBuf,
        /// The second file.
        b: PathBuf,
        /// What is wrong, in words.
        problem: String,
    },
    /// A dataset was not found in any data directory.
    #[error("dataset `{name}` not found; looked for {file} in: {searched}")]
    NotFound {
        /// The dataset name.
        name: String,
        /// The file that was looked for.
        file: String,
        /// The directories searched, comma separated.
        searched: String,
    },
    /// The decoded-set cache could not be read or written.
    #[error("decoded-set cache: {0}")]
    Cache(#[from] tanas_core::StoreError),
    /// A task spec is invalid.
    #[error("{}: task `{task}`: {problem}", path.display())]
    Task {
        /// The task file.
        path: PathBuf,
        /// The task id.
        task: String,
        /// What is wrong, in words.
        problem: String,
    },
}

impl DataError {
    /// A format error for `path`.
    pub fn format(path: impl Into<PathBuf>, problem: impl Into<String>) -> Self {
        Self::Format {
            path: path.into(),
            problem: problem.into(),
        }
    }

    /// An I/O error for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result alias of the data layer.
pub type Result<T, E = DataError> = std::result::Result<T, E>;
