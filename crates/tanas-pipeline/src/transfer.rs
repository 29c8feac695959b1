//! The transfer measurement: whether a task distance predicts how well a learned task's
//! network transfers to a target (paper 003's abstract: the distance reflects "the complexity
//! of transferring the knowledge from one task to another").
//!
//! For a source task `a`, a target `b` and a seed, the body of `a`'s epsilon-network under a
//! fresh head is fine-tuned on the first `n` samples of `b`'s train split for a fixed number
//! of optimiser steps and tested once on `b`'s test split ([`tanas_train::fine_tune`]); the
//! paired control is the same recipe from the shared initial network N of that seed (every
//! epsilon-network of a seed starts from N: the seeded initialisation does not depend on the
//! head). The gain `g[a][b]` is the fine-tuned network's balanced test accuracy minus the
//! control's. Each fine-tuning is an artifact of the [`Store`].

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};
use tanas_core::report::{GAIN_CONVENTION, GAIN_FORMAT, GainMatrix};
use tanas_core::{Artifact, Store, StoreEntry, limits};
use tanas_data::TaskData;
use tanas_distance::Grid;
use tanas_distance::matrix::{mean, sample_std};
use tanas_train::TrainConfig;
use tanas_zoo::{Arch, ModelSpec};

use crate::error::{PipelineError, Result};
use crate::matrix::write_json;

/// Settings of the transfer measurement: an experiment's `[transfer]` table.
///
/// ```toml
/// [transfer]
/// samples = [100, 500]   # few-shot sizes: the first n samples of the target's train split
/// steps = 40             # optimiser steps (whole epochs over the n samples that reach it)
/// batch_size = 25
/// lr = 1e-3              # Adam
/// test_samples = 1000    # the first N samples of the target's test split
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransferSettings {
    /// Few-shot sizes: one measurement per size, on the first `n` samples of the target's
    /// train split (default 100 and 500).
    pub samples: Vec<usize>,
    /// Optimiser steps: the run trains the whole epochs over its `n` samples that reach this
    /// many steps (default 40).
    pub steps: usize,
    /// Mini-batch size (default 25).
    pub batch_size: usize,
    /// Adam's learning rate (default 1e-3).
    pub lr: f64,
    /// The first N samples of the target's test split every network is tested on (default
    /// 1000).
    pub test_samples: usize,
}

impl Default for TransferSettings {
    fn default() -> Self {
        Self {
            samples: vec![100, 500],
            steps: 40,
            batch_size: 25,
            lr: 1e-3,
            test_samples: 1000,
        }
    }
}

impl TransferSettings {
    /// Checks every value's range.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.samples.is_empty() {
            return Err("transfer.samples is empty".into());
        }
        for &n in &self.samples {
            limits::count("transfer.samples", n, limits::MAX_COUNT)?;
        }
        limits::counts(
            &[
                ("transfer.steps", self.steps),
                ("transfer.test_samples", self.test_samples),
            ],
            limits::MAX_COUNT,
        )?;
        limits::count(
            "transfer.batch_size",
            self.batch_size,
            limits::MAX_BATCH_SIZE,
        )?;
        limits::positive_real("transfer.lr", self.lr)
    }

    /// The optimiser steps of a fine-tuning on `n` samples: whole epochs, the first that
    /// reaches `steps` the last.
    pub fn steps_for(&self, n: usize) -> usize {
        let cfg = self.train_config(0);
        cfg.epoch_budget(n) * n.div_ceil(self.batch_size)
    }

    /// The training settings of one fine-tuning with `seed` (initialisation of the head and,
    /// for the control, of the body; data order).
    fn train_config(&self, seed: u64) -> TrainConfig {
        TrainConfig {
            epochs: self.steps,
            max_steps: Some(self.steps),
            batch_size: self.batch_size,
            lr: self.lr,
            seed,
            quiet: true,
            ..TrainConfig::default()
        }
    }
}

/// A fine-tuning of the transfer measurement (`result.json`).
pub struct Transfer;
impl Artifact for Transfer {
    const KIND: &'static str = "transfer";
    const FORMAT: u32 = 1;
}

/// The file of a [`Transfer`] artifact.
const RESULT_FILE: &str = "result.json";

/// The test result of one fine-tuning.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TransferResult {
    /// Plain arg-max test accuracy.
    pub accuracy: f64,
    /// Balanced test accuracy (mean per-label recall): what the gain compares.
    pub balanced_accuracy: f64,
    /// Test samples.
    pub test_samples: usize,
    /// Optimiser steps trained.
    pub steps: usize,
}

/// The data of a fine-tuning on `b` with `n` samples: the first `n` of its train split and
/// the first `settings.test_samples` of its test split.
fn few_shot(b: &TaskData, n: usize, settings: &TransferSettings) -> TaskData {
    let mut data = b.clone();
    data.train = b.train.truncated(n);
    data.test = b.test.truncated(settings.test_samples);
    data
}

/// The fine-tuning of `arch` on `n` samples of `b` with `seed`, from the body of `source`
/// (a network's store entry and weights) or, the control, from the seeded initial network
/// itself: found in `store`, or computed there.
#[allow(clippy::too_many_arguments)]
pub(crate) fn fine_tuned<B: AutodiffBackend>(
    store: &Store,
    arch: Arch,
    settings: &TransferSettings,
    source: Option<(&StoreEntry, &Path)>,
    b: &TaskData,
    n: usize,
    seed: u64,
    device: &B::Device,
) -> Result<TransferResult> {
    let data = few_shot(b, n, settings);
    let base = settings.train_config(seed);
    // The key names the source network by its entry, not by the path of its weights.
    let recipe = (
        arch,
        &base,
        source.map(|(entry, _)| entry.id()),
        crate::artifacts::DataKey::new(&data, &[&data.train, &data.test]),
    );
    let cfg = TrainConfig {
        init: source.map(|(_, weights)| weights.to_path_buf()),
        ..base.clone()
    };
    let inputs: Vec<&StoreEntry> = source.map(|(e, _)| e).into_iter().collect();
    let spec = ModelSpec::new(arch, b.num_labels);
    let entry = store.get_or_build::<Transfer, PipelineError>(&recipe, &inputs, |dir| {
        let test = tanas_train::fine_tune::<B>(&spec, &data, &cfg, device).map_err(|source| {
            PipelineError::Train {
                task: b.spec.id.clone(),
                seed,
                source: Box::new(source),
            }
        })?;
        let result = TransferResult {
            accuracy: test.accuracy,
            balanced_accuracy: test.balanced_accuracy,
            test_samples: data.test.len(),
            steps: settings.steps_for(data.train.len()),
        };
        write_json(&dir.join(RESULT_FILE), &result)
    })?;
    let path = entry.dir.join(RESULT_FILE);
    let text = tanas_core::read_text(&path).map_err(|source| PipelineError::Io {
        path: path.clone(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| PipelineError::Config {
        path,
        problem: format!(
            "not a transfer result ({e}): a damaged store entry; remove {} to rebuild it",
            entry.dir.display()
        ),
    })
}

/// The gain matrix of `samples` from the balanced accuracies of the fine-tuned networks
/// `fine_tuned[seed][a][b]` and of the controls `control[seed][b]`.
pub fn gain_matrix(
    tasks: Vec<String>,
    samples: usize,
    settings: &TransferSettings,
    fine_tuned: BTreeMap<u64, Grid>,
    control: BTreeMap<u64, Vec<f64>>,
) -> GainMatrix {
    let per_seed: BTreeMap<u64, Grid> = fine_tuned
        .iter()
        .map(|(seed, grid)| {
            let c = &control[seed];
            let gains = grid
                .iter()
                .map(|row| {
                    row.iter()
                        .zip(c)
                        .map(|(acc, c)| acc.map(|acc| acc - c))
                        .collect()
                })
                .collect();
            (*seed, gains)
        })
        .collect();
    let n = tasks.len();
    let over_seeds = |f: fn(&[f64]) -> Option<f64>| -> Grid {
        (0..n)
            .map(|i| {
                (0..n)
                    .map(|j| {
                        let v: Vec<f64> = per_seed.values().filter_map(|g| g[i][j]).collect();
                        f(&v)
                    })
                    .collect()
            })
            .collect()
    };
    GainMatrix {
        format: GAIN_FORMAT.to_string(),
        convention: GAIN_CONVENTION.to_string(),
        samples,
        steps: settings.steps_for(samples),
        step_budget: settings.steps,
        batch_size: settings.batch_size,
        lr: settings.lr,
        test_samples: settings.test_samples,
        seeds: per_seed.keys().copied().collect(),
        mean: over_seeds(mean),
        std: over_seeds(sample_std),
        per_seed,
        fine_tuned,
        control,
        tasks,
    }
}

/// The heatmap of a gain matrix.
pub fn gain_heatmap(g: &GainMatrix) -> tanas_distance::Heatmap {
    tanas_distance::Heatmap {
        title: format!(
            "transfer gain, {} samples of the target, {} seeds",
            g.samples,
            g.seeds.len()
        ),
        note: "rows: source task a (its network's body); columns: target task b; cell: \
                   balanced accuracy gain over the initial network"
            .to_string(),
        tasks: g.tasks.clone(),
        seeds: g.seeds.len(),
        mean: g.mean.clone(),
        std: g.std.clone(),
    }
}
