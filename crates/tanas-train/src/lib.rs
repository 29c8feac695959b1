//! Training and evaluation of tanas networks: the epsilon-approximation networks that
//! represent tasks.
//!
//! [`train()`] fits a zoo network ([`tanas_zoo::ZooModel`]) to a task's train split with Adam
//! (PyTorch's epsilon, [`ADAM_EPSILON`]) and mean cross-entropy, keeps the weights of the
//! best validation accuracy, stops early once the validation accuracy reaches
//! `target_accuracy` (the network is then an epsilon-approximation, epsilon = 1 - A) and
//! evaluates the kept weights once on the test split. [`evaluate`] is the evaluation loop
//! (BatchNorm in inference mode via `model.valid()`), [`throughput`] the training benchmark.
//!
//! # Files
//!
//! In the output directory:
//! - `weights.safetensors`: the kept weights, PyTorch names and layouts
//!   ([`tanas_zoo::save_pytorch`]);
//! - `metrics.json`: [`TrainMetrics`], per-epoch metrics, test result, config, run identity
//!   and stop reason; its presence marks a finished run;
//! - `checkpoint/`: `state.json` ([`checkpoint::CheckpointState`]) and burn records
//!   (`NamedMpkFileRecorder<FullPrecisionSettings>`) of the model and Adam state after the
//!   last epoch and of the best weights so far, rewritten after every epoch.
//!
//! Every file is written to a temporary file and renamed; a run that fails leaves no
//! `weights.safetensors` or `metrics.json`.
//!
//! # Resume
//!
//! Calling [`train()`] again on the same directory goes on from the checkpoint. Every setting
//! that decides the weights must be the same as stored (all of [`TrainConfig`] except
//! `epochs` and `quiet`; architecture, classes, genotype, task spec and the exact samples),
//! otherwise [`TrainError::ConfigMismatch`] names the first field that differs. `epochs` is
//! the total epoch budget:
//! - a finished run is returned as stored ([`RunStatus::AlreadyFinished`]) when it would
//!   have ended the same way under the new budget: it reached its target within `epochs`,
//!   or it trained exactly `epochs` epochs;
//! - a run that stopped at a smaller budget is extended up to `epochs` (its
//!   `metrics.json` / `weights.safetensors` are removed first and rewritten at the end);
//! - asking for fewer epochs than a run has already trained is an error.
//!
//! A resumed or extended run ends bit-identical to one trained in a single call.
//!
//! # Determinism
//!
//! The backend is seeded with `seed` before the network is built (all parameters are
//! initialised at once); epoch `e` (1-based) visits the train samples in the order of a
//! ChaCha8 permutation seeded with `seed` on stream `e` ([`epoch_order`]), and reseeds the
//! backend from (seed, e). With a deterministic backend (Flex on CPU) the same config and
//! seed give bit-identical weights.

pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod error;
pub mod eval;
pub mod fine_tune;
pub mod metrics;
pub mod train;

pub use bench::throughput;
pub use config::{ADAM_EPSILON, TrainConfig};
pub use error::{Result, TrainError};
pub use eval::{Eval, Tally, evaluate, evaluate_with_progress};
pub use fine_tune::fine_tune;
pub use metrics::{EpochMetrics, RunInfo, StopReason, TrainMetrics};
pub use train::{
    CHECKPOINT_DIR, METRICS_FILE, RunStatus, TrainOutcome, WEIGHTS_FILE, epoch_order, fit_epoch,
    seeded, train,
};
