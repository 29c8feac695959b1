//! Orchestration of the tanas stages over one artifact directory.
//!
//! The algorithm crates (data, zoo, train, fisher, distance, search) each do one job on
//! in-memory values; this crate strings them together the way the papers' experiments do,
//! with every intermediate result in a file so that any run can be resumed, reused or
//! inspected; [`artifacts`] puts the networks, Fishers and searches in the artifact store,
//! where every stage finds them by key: [`matrix`] trains the epsilon-networks of an experiment's tasks and seeds,
//! takes every cross-task Fisher diagonal and writes the distance matrices; [`dictionary`]
//! keeps the learned tasks with their spaces; [`tanas`] runs Algorithm 2 for a target;
//! [`baseline`] trains hand-designed networks the same way for comparison; [`transfer`]
//! measures how well each task's network transfers to every other task.

pub mod artifacts;
pub mod baseline;
pub mod dictionary;
pub mod error;
pub mod experiment;
pub mod matrix;
pub mod tanas;
mod tasks;
pub mod transfer;

pub use baseline::{BaselineReport, baseline_target};
pub use dictionary::{Closeness, DictSettings, TaskDictionary};
pub use error::PipelineError;
pub use experiment::Experiment;
pub use matrix::{MatrixRun, run_matrix, run_matrix_part};
pub use tanas::{
    FinalReport, SpaceChoice, TanasExperiment, TargetSearch, run_tanas, search_target,
};
