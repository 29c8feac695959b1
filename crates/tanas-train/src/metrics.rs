//! What a run records: per-epoch metrics, the run's identity and the final outcome
//! (`metrics.json`).

use std::fmt;

use serde::{Deserialize, Serialize};
use tanas_data::{TaskData, TaskSpec};
use tanas_zoo::cell::{CellSkeleton, Genotype};
use tanas_zoo::{Arch, ModelSpec};

use crate::config::TrainConfig;
use crate::eval::Eval;

/// The format tag of `metrics.json` and of the checkpoint state.
pub const FORMAT: &str = "tanas-train/2";

/// The metrics of one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// The epoch, counted from 1.
    pub epoch: usize,
    /// Mean training cross-entropy over the epoch's samples (train-mode forward passes, the
    /// weights changing during the epoch).
    pub train_loss: f64,
    /// Training accuracy over the same forward passes.
    pub train_accuracy: f64,
    /// Validation loss after the epoch (inference mode).
    pub val_loss: f64,
    /// Validation accuracy after the epoch (inference mode).
    pub val_accuracy: f64,
    /// Wall-clock seconds of the epoch (training and validation).
    pub seconds: f64,
    /// Training images per second (forward, backward and Adam step, batching included).
    pub images_per_second: f64,
}

/// Why a run stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopReason {
    /// The validation accuracy reached `target_accuracy`.
    TargetReached,
    /// `patience` epochs in a row brought no new best validation accuracy.
    NoImprovement,
    /// All `epochs` epochs were trained.
    MaxEpochs,
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TargetReached => "target accuracy reached",
            Self::NoImprovement => "no improvement for `patience` epochs",
            Self::MaxEpochs => "epoch budget used",
        })
    }
}

/// What a run is trained on: it must not change when a run is resumed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The architecture.
    pub arch: Arch,
    /// The network's output count.
    pub num_classes: usize,
    /// The genotype of a `cellnet`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub genotype: Option<Genotype>,
    /// The skeleton of a `cellnet`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skeleton: Option<CellSkeleton>,
    /// The task's spec.
    pub task: TaskSpec,
    /// Number of training samples.
    pub train_samples: usize,
    /// Number of validation samples.
    pub val_samples: usize,
    /// Number of test samples.
    pub test_samples: usize,
    /// FNV-1a hash (hex) of the (index, label) pairs of the three splits: changes whenever
    /// the samples do.
    pub data_fingerprint: String,
}

impl RunInfo {
    /// The identity of training `spec` on `data`.
    pub fn new(spec: &ModelSpec, data: &TaskData) -> Self {
        let cell = spec.arch.needs_genotype();
        Self {
            arch: spec.arch,
            num_classes: spec.num_classes,
            genotype: if cell { spec.genotype.clone() } else { None },
            skeleton: cell.then_some(spec.skeleton),
            task: data.spec.clone(),
            train_samples: data.train.len(),
            val_samples: data.val.len(),
            test_samples: data.test.len(),
            data_fingerprint: tanas_data::fingerprint(&[&data.train, &data.val, &data.test]),
        }
    }

    /// The first property that differs from `stored`, as (name, stored, requested).
    pub fn mismatch(&self, stored: &RunInfo) -> Option<(&'static str, String, String)> {
        let fields: [(&'static str, String, String); 9] = [
            ("arch", stored.arch.to_string(), self.arch.to_string()),
            (
                "num_classes",
                stored.num_classes.to_string(),
                self.num_classes.to_string(),
            ),
            ("genotype", json(&stored.genotype), json(&self.genotype)),
            ("skeleton", json(&stored.skeleton), json(&self.skeleton)),
            ("task", json(&stored.task), json(&self.task)),
            (
                "train_samples",
                stored.train_samples.to_string(),
                self.train_samples.to_string(),
            ),
            (
                "val_samples",
                stored.val_samples.to_string(),
                self.val_samples.to_string(),
            ),
            (
                "test_samples",
                stored.test_samples.to_string(),
                self.test_samples.to_string(),
            ),
            (
                "data_fingerprint",
                stored.data_fingerprint.clone(),
                self.data_fingerprint.clone(),
            ),
        ];
        fields.into_iter().find(|(_, a, b)| a != b)
    }
}

/// Compact JSON of a value, for messages.
fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|e| format!("<{e}>"))
}

/// `metrics.json`: everything about a finished run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainMetrics {
    /// Format tag ([`FORMAT`]).
    pub format: String,
    /// The architecture name.
    pub arch: Arch,
    /// The task id.
    pub task: String,
    /// The task's label count (= the network's output count).
    pub num_labels: usize,
    /// Trainable parameters of the network (PyTorch's count).
    pub num_params: usize,
    /// The seed (also in `config`).
    pub seed: u64,
    /// The training settings.
    pub config: TrainConfig,
    /// What was trained on.
    pub run: RunInfo,
    /// One entry per trained epoch, in order.
    pub epochs: Vec<EpochMetrics>,
    /// The epoch whose weights were kept (best validation accuracy, earliest on ties).
    pub best_epoch: usize,
    /// Its validation accuracy.
    pub best_val_accuracy: f64,
    /// Why training stopped.
    pub stop_reason: StopReason,
    /// The kept weights on the test split, evaluated once at the end.
    pub test: Eval,
    /// Seconds of all epochs together (over every resumed part).
    pub train_seconds: f64,
    /// The FNV-1a hash of `weights.safetensors` as written ([`weights_hash`]): a finished run
    /// is reused only while its weights file still has it.
    #[serde(default)]
    pub weights_hash: String,
}

/// The hash [`TrainMetrics::weights_hash`] holds: FNV-1a of the file's bytes, 16 hex digits
/// (`None` when it cannot be read).
pub fn weights_hash(path: &std::path::Path) -> Option<String> {
    tanas_core::store::FileSum::of(path).ok().map(|s| s.fnv1a)
}
