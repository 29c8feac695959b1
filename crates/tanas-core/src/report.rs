//! The records the stages report as JSON, typed for their readers: `cargo xtask reproduce`
//! builds its report from these (it stays free of burn), scripts may too.
//!
//! Most are written by the stage itself through these types (one definition). Four are
//! readers' views of a larger record whose other fields need burn-side types: [`SearchSummary`]
//! of tanas-pipeline's `FinalReport`, [`BaselineSummary`] of its `BaselineReport`,
//! [`DictionarySummary`] of its dictionary file and [`MatrixSummary`] of tanas-distance's
//! matrix file; tanas-pipeline's `tests/reports.rs` and `tests/cli.rs` read written files
//! back through them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::cell::{Genotype, Op};

/// A network's one evaluation on the test split, as every report gives it (flattened: its
/// fields stand beside the report's own).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TestScore {
    /// Test accuracy of the plain arg-max (the papers' metric; docs/decisions.md).
    pub test_accuracy: f64,
    /// Balanced test accuracy: the mean over labels of each label's arg-max accuracy.
    #[serde(default)]
    pub balanced_accuracy: f64,
    /// Test accuracy of decisions shifted to a stated label prior, only where one was asked
    /// for (never by the pipeline's stages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior_accuracy: Option<f64>,
    /// Test samples evaluated.
    pub test_samples: usize,
}

/// One trained epsilon-network (`nets.json` of a distance matrix).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetSummary {
    /// The task it was trained on.
    pub task: String,
    /// Its seed.
    pub seed: u64,
    /// Epochs trained.
    pub epochs: usize,
    /// Best validation accuracy.
    pub val_accuracy: f64,
    /// Test accuracy of the kept weights (plain arg-max).
    pub test_accuracy: f64,
    /// Balanced test accuracy of the kept weights (mean per-label recall).
    pub balanced_accuracy: f64,
    /// Its path in the store (`network/<key>`).
    pub network: String,
}

/// The noise floor of a task's column: the distance between two networks of the task that
/// start from the same initial network and see the data in different orders, each Fisher
/// taken on the task's probe (paper 003, Proposition 1 / Theorem 1: the same task, the same
/// initial network, another data order), over the floor seeds. Beside it, for comparison, the
/// distance between networks of different seeds (different initial networks and data
/// orders): two independently initialised networks hold their hidden units in different
/// orders, which a parameter-indexed diagonal Fisher does not undo, so that number measures
/// this misalignment as much as noise (docs/distances.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoiseFloor {
    /// The task.
    pub task: String,
    /// Mean over the floor seeds of the distance between a network and its twin (the same
    /// initial network, another data order).
    pub mean: f64,
    /// Sample standard deviation over the floor seeds (0 for one).
    pub std: f64,
    /// Number of floor pairs (one per floor seed).
    pub pairs: usize,
    /// Mean over the pairs of different seeds (each unordered pair once).
    pub across_init_mean: f64,
    /// Sample standard deviation over those pairs (0 for one pair).
    pub across_init_std: f64,
    /// Number of such pairs.
    pub across_init_pairs: usize,
}

/// The `format` value of gain-matrix files.
pub const GAIN_FORMAT: &str = "tanas-transfer-gain/1";

/// The row/column convention of gain-matrix files.
pub const GAIN_CONVENTION: &str = "rows = source task a (the body of its network), columns = \
target task b: g[a][b] = balanced test accuracy on b after fine-tuning a's network body under a \
fresh head on n samples of b, minus the same recipe's from the shared initial network N";

/// The transfer gains of one few-shot size over seeds (`transfer-gain-n<n>.json`): the
/// layout of a distance matrix's file (`tasks`, `mean`, `std`, `per_seed`; rows = source,
/// columns = target; `null` on the diagonal) with the accuracies it is computed from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GainMatrix {
    /// [`GAIN_FORMAT`].
    pub format: String,
    /// [`GAIN_CONVENTION`].
    pub convention: String,
    /// The few-shot size n.
    pub samples: usize,
    /// Optimiser steps each fine-tuning trained (whole epochs over its `samples`).
    pub steps: usize,
    /// The step budget of the settings (`steps` is the first whole epoch that reaches it).
    pub step_budget: usize,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Test samples of every network (the first of the target's test split).
    pub test_samples: usize,
    /// The task ids: the row and the column order.
    pub tasks: Vec<String>,
    /// The seeds.
    pub seeds: Vec<u64>,
    /// Mean gain over seeds.
    pub mean: Vec<Vec<Option<f64>>>,
    /// Sample std of the gain over seeds.
    pub std: Vec<Vec<Option<f64>>>,
    /// The gains per seed.
    pub per_seed: BTreeMap<u64, Vec<Vec<Option<f64>>>>,
    /// Per seed, the fine-tuned networks' balanced test accuracies `[a][b]`.
    pub fine_tuned: BTreeMap<u64, Vec<Vec<Option<f64>>>>,
    /// Per seed, the controls' balanced test accuracies `[b]`.
    pub control: BTreeMap<u64, Vec<f64>>,
}

/// `tanas data info --json`: where datasets are looked for and what was found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataInfo {
    /// The data directories, in search order.
    pub search_path: Vec<PathBuf>,
    /// Every dataset tanas reads.
    pub datasets: Vec<DatasetInfo>,
}

impl DataInfo {
    /// Whether dataset `name` was found.
    pub fn found(&self, name: &str) -> bool {
        self.datasets.iter().any(|d| d.name == name && d.found)
    }
}

/// What `data info` reports for one dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetInfo {
    /// Its name (`mnist`, `fashion-mnist`, `cifar10`, `cifar100`).
    pub name: String,
    /// Whether its files were found.
    pub found: bool,
    /// The directory they were found in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    /// The train split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train: Option<SplitInfo>,
    /// The test split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<SplitInfo>,
    /// Why it could not be found or read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For a declared dataset: the file that declares it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared_in: Option<PathBuf>,
    /// For a declared dataset: its class names, by label.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<String>,
    /// For a declared dataset: the image sizes seen in its files (`"WxH"`, `" rgb"` for
    /// colour) and how many images had each.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sizes: BTreeMap<String, usize>,
    /// For a declared dataset: every image that could not be read, with why (left out
    /// under `on_error = "skip"`; for `data check`, every one found).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<Unreadable>,
}

/// An image file (or CSV row) that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unreadable {
    /// The file (`file:line` for a CSV row).
    pub file: PathBuf,
    /// Why.
    pub problem: String,
}

/// Size and class balance of one split of a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitInfo {
    /// Images.
    pub images: usize,
    /// Images per class.
    pub per_class: Vec<usize>,
}

/// What `tanas task show --json` reports for one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskInfo {
    /// The task id.
    pub id: String,
    /// Its dataset's name.
    pub dataset: String,
    /// Its kind (`indicator`, `multi`, `full`, `subset`).
    pub kind: String,
    /// Its label count.
    pub num_labels: usize,
    /// Whether train and val are balanced over labels.
    pub balanced: bool,
    /// Samples per label of the train split.
    pub train: Vec<usize>,
    /// Samples per label of the val split.
    pub val: Vec<usize>,
    /// Samples per label of the test split.
    pub test: Vec<usize>,
    /// Samples per label of the Fisher probe split (the dataset's held-out training images).
    #[serde(default)]
    pub probe: Vec<usize>,
}

impl TaskInfo {
    /// The share of the most frequent label in the test split: what always predicting it
    /// scores (`None` for an empty split).
    pub fn majority_rate(&self) -> Option<f64> {
        let total: usize = self.test.iter().sum();
        let most = self.test.iter().copied().max()?;
        (total > 0).then(|| most as f64 / total as f64)
    }
}

/// A distance matrix file of `tanas distance matrix` (tanas-distance's `DistanceMatrix`) as
/// its readers need it: rows are source tasks `a`, columns target tasks `b`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MatrixSummary {
    /// The distance.
    pub metric: MetricName,
    /// Task ids, row and column order.
    pub tasks: Vec<String>,
    /// The seeds of its networks.
    #[serde(default)]
    pub seeds: Vec<u64>,
    /// Mean over seeds, `[source][target]`.
    pub mean: Vec<Vec<f64>>,
    /// Sample std over seeds.
    pub std: Vec<Vec<f64>>,
    /// Each seed's matrix (`None` where a distance is missing).
    #[serde(default)]
    pub per_seed: std::collections::BTreeMap<u64, Vec<Vec<Option<f64>>>>,
}

/// A distance's name (`ftd`, `logdet`), of a record that holds its parameters too.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MetricName {
    /// The name.
    pub name: String,
}

/// What a target search found and what it cost: part of its report (flattened into
/// tanas-pipeline's `FinalReport`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchOutcome {
    /// The found network's trainable parameters.
    pub params: usize,
    /// Its one test evaluation after the final retraining.
    #[serde(flatten)]
    pub score: TestScore,
    /// Seconds of the search (FUSE stages or random candidates).
    pub search_seconds: f64,
    /// The search budget spent, in candidate-epochs (networks trained for one epoch over the
    /// train split).
    pub candidate_epochs: usize,
    /// Seconds of the final retraining and test.
    pub final_seconds: f64,
}

/// A target search's report (tanas-pipeline's `FinalReport`, `final.json`) as its readers
/// need it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct SearchSummary {
    /// The closest dictionary task, when distances were computed.
    pub closest_task: Option<String>,
    /// The dictionary task whose learned space was searched, if one was.
    #[serde(default)]
    pub space_task: Option<String>,
    /// The searched space's size in distinct genotypes.
    #[serde(default)]
    pub space_size: f64,
    /// Whether FUSE's first stage started from the closest task's best cell.
    #[serde(default)]
    pub warm_start: bool,
    /// What it found and what it cost.
    #[serde(flatten)]
    pub outcome: SearchOutcome,
}

/// A hand-designed network's report (tanas-pipeline's `BaselineReport`) as its readers need
/// it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct BaselineSummary {
    /// Its trainable parameters.
    pub params: usize,
    /// Its one test evaluation.
    #[serde(flatten)]
    pub score: TestScore,
    /// Seconds of its training and test.
    pub seconds: f64,
}

/// A task dictionary file (`dictionary.json`) as its readers need it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DictionarySummary {
    /// The tasks, in the order they were added.
    pub tasks: Vec<DictTaskSummary>,
}

/// One task of a dictionary.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DictTaskSummary {
    /// The task (of its spec, only the id).
    pub spec: TaskId,
    /// Its epsilon-networks' mean test accuracy.
    pub net_test_accuracy: f64,
    /// Its epsilon-networks' mean balanced test accuracy.
    pub net_balanced_accuracy: f64,
    /// The best cell found for it.
    pub genotype: Genotype,
    /// The found cell's test accuracy.
    pub test_accuracy: f64,
    /// The found cell's balanced test accuracy.
    pub balanced_accuracy: f64,
    /// The operations of its learned space.
    #[serde(default)]
    pub space_ops: Vec<Op>,
    /// Its learned space's size in genotypes.
    #[serde(default)]
    pub space_size: f64,
}

/// A task's id, of a record that holds the whole task spec.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TaskId {
    /// The id.
    pub id: String,
}
