//! Diagonal Fisher information of tanas networks.
//!
//! [`FisherDiag`] is the diagonal of the empirical Fisher information matrix of one network on
//! one task's data (paper 003, eq. (2)): an ordered list of named per-parameter tensors in
//! PyTorch names and layouts, unnormalised, with metadata saying which network, which data and
//! which estimator produced it. It is plain Rust data (`Vec<f32>`), saved and loaded as
//! safetensors readable from Python.
//!
//! [`fisher_diag`] computes it for any zoo model with the estimators of [`estimator`]; the
//! exact one takes true per-sample gradients from one batched backward pass (see `tap`).

pub mod bench;
pub mod diag;
pub mod estimator;
mod tap;

pub use diag::*;
pub use estimator::{Estimator, EstimatorError, FisherConfig, fisher_diag};
