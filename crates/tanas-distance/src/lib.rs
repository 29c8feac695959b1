//! Task distances between Fisher diagonals, for tanas.
//!
//! - [`TaskDistance`]: the Fisher Task Distance (paper 003, eq. (4)), the log-determinant
//!   distance (paper 000, eq. (1)-(2)) and one minus the cosine similarity, all on Fisher
//!   diagonals normalised to unit trace; [`distance`] / [`compare`] match the two diagonals'
//!   tensors by name, with a [`HeadRule`] for classification heads of different size.
//! - [`DistanceMatrix`]: asymmetric matrices `d[a][b] = distance(F[a,b], F[b,b])` (rows =
//!   source task, columns = target task) per seed, their mean and std over seeds, JSON / CSV
//!   files and heatmaps (SVG and PNG).
//!
//! The formulas, conventions and file formats are described in `docs/distances.md`.

pub mod error;
pub mod heatmap;
pub mod matrix;
pub mod metric;

pub use error::{DistanceError, Result};
pub use heatmap::{Heatmap, HeatmapFiles};
pub use matrix::{CONVENTION, DistanceMatrix, Grid, MATRIX_FORMAT, MatrixFiles};
pub use metric::{
    Comparison, DEFAULT_SIGMA2, HeadRule, TaskDistance, compare, compare_files, distance,
};
