//! [`Experiment`]: a distance-matrix experiment read from TOML.
//!
//! ```toml
//! task_files = ["../tasks/mnist.toml"]   # relative to this file
//! tasks = ["mnist-0", "mnist-1"]          # optional: default every task of the files
//! arch = "small-cnn"
//! seeds = [0, 1]
//! metrics = ["ftd", "logdet"]             # ftd | logdet | cosine
//! head = "exclude"                        # exclude | pad
//!
//! [train]                                 # tanas_train::TrainConfig, seed excluded
//! epochs = 3
//!
//! floor_seeds = 1                         # the noise floor's seeds (default 1; 0: none)
//!
//! [fisher]
//! estimator = "exact"                     # exact | mc | batch
//! split = "probe"                         # probe (default) | val | test (the papers')
//! samples = 500                           # first N samples of the data task's split
//! batch_size = 128
//!
//! [transfer]                              # optional: crate::transfer::TransferSettings
//! samples = [100, 500]
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tanas_core::limits::{self, MAX_SEEDS};
use tanas_data::Split;
use tanas_distance::{HeadRule, TaskDistance};
use tanas_fisher::{Estimator, FisherConfig};
use tanas_train::TrainConfig;
use tanas_zoo::Arch;

use crate::error::{PipelineError, Result};
use crate::transfer::TransferSettings;

/// Fisher settings of an experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FisherSettings {
    /// The estimator.
    pub estimator: Estimator,
    /// The split of the data task the Fisher is taken on (default `probe`: the dataset's
    /// held-out training images, which no task trains, validates or is tested on; `val` is
    /// the task's own val split, which other tasks of the dataset may train on; `test` is the
    /// papers' choice).
    pub split: Split,
    /// The first N samples of that split (all if larger).
    pub samples: usize,
    /// Samples per pass.
    pub batch_size: usize,
    /// Label samples per input for `mc`.
    pub mc_samples: usize,
}

impl Default for FisherSettings {
    /// The probe split's first 500 samples, with [`FisherConfig`]'s defaults.
    fn default() -> Self {
        let FisherConfig {
            estimator,
            batch_size,
            mc_samples,
            ..
        } = FisherConfig::default();
        Self {
            estimator,
            split: Split::Probe,
            samples: 500,
            batch_size,
            mc_samples,
        }
    }
}

impl FisherSettings {
    /// The estimator's settings, its label draws seeded with `seed`.
    pub fn config(&self, seed: u64) -> FisherConfig {
        FisherConfig {
            estimator: self.estimator,
            batch_size: self.batch_size,
            mc_samples: self.mc_samples,
            seed,
        }
    }
}

/// A distance-matrix experiment: tasks, network, seeds, and the settings of each stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Task files, relative to the experiment file.
    pub task_files: Vec<PathBuf>,
    /// The tasks, in matrix order (default: every task of the files, in file order).
    #[serde(default)]
    pub tasks: Vec<String>,
    /// The epsilon-network architecture.
    #[serde(default = "default_arch")]
    pub arch: Arch,
    /// One network per task and seed.
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// Distance metrics to compute.
    #[serde(default = "default_metrics")]
    pub metrics: Vec<TaskDistance>,
    /// How heads of different sizes are matched.
    #[serde(default)]
    pub head: HeadRule,
    /// Training settings (their `seed` stays 0: each network's seed is one of `seeds`).
    #[serde(default)]
    pub train: TrainConfig,
    /// Fisher settings.
    #[serde(default)]
    pub fisher: FisherSettings,
    /// The noise floor's seeds: for the first `floor_seeds` seeds (default 1; 0 for none),
    /// every task gets a second network from the same initial network in another data order
    /// (paper 003, Proposition 1: the same task, the same initial network, another data
    /// order), and the floor of task b is the distance between the two on b's probe.
    #[serde(default = "default_floor_seeds")]
    pub floor_seeds: usize,
    /// The transfer measurement ([`TransferSettings`]; default: none).
    #[serde(default)]
    pub transfer: Option<TransferSettings>,
    /// Where the file was read from (not part of the TOML).
    #[serde(skip)]
    pub path: PathBuf,
}

fn default_arch() -> Arch {
    Arch::SmallCnn
}

fn default_floor_seeds() -> usize {
    1
}

fn default_seeds() -> Vec<u64> {
    vec![0, 1, 2]
}

fn default_metrics() -> Vec<TaskDistance> {
    vec![TaskDistance::Ftd, TaskDistance::logdet()]
}

impl Experiment {
    /// The seeds whose networks get a noise-floor twin: the first `floor_seeds`.
    pub fn floor_seeds(&self) -> &[u64] {
        &self.seeds[..self.floor_seeds.min(self.seeds.len())]
    }

    /// Reads and checks an experiment file.
    pub fn read(path: &Path) -> Result<Self> {
        let text = tanas_core::read_text(path).map_err(|source| PipelineError::Io {
            path: path.into(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses experiment TOML; `path` anchors relative task files and names errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let err = |problem: String| PipelineError::Config {
            path: path.into(),
            problem,
        };
        let mut value: toml::Table = tanas_core::settings::parse_toml(text, path)?;
        // Metrics are written as plain names (`"ftd"`, `"logdet"`); the type's own serde form
        // is a table (`{ name = "logdet", sigma2 = 1e-8 }`), which is accepted too.
        if let Some(toml::Value::Array(metrics)) = value.get_mut("metrics") {
            for m in metrics.iter_mut() {
                if let toml::Value::String(name) = m {
                    let parsed: TaskDistance =
                        name.parse().map_err(|e| err(format!("metrics: {e}")))?;
                    *m = toml::Value::try_from(parsed).map_err(|e| err(e.to_string()))?;
                }
            }
        }
        let mut exp: Experiment = value
            .try_into()
            .map_err(|e: toml::de::Error| err(tanas_core::one_line(&e.to_string())))?;
        let base = path.parent().unwrap_or(Path::new("."));
        exp.task_files = exp.task_files.iter().map(|f| base.join(f)).collect();
        exp.path = path.to_path_buf();
        if exp.task_files.is_empty() {
            return Err(err("task_files is empty".into()));
        }
        if exp.metrics.is_empty() {
            return Err(err("metrics is empty".into()));
        }
        check_networks(&exp.seeds, &exp.train, &exp.fisher).map_err(err)?;
        if exp.floor_seeds > MAX_SEEDS {
            return Err(err(format!(
                "floor_seeds = {}: must be at most {MAX_SEEDS}",
                exp.floor_seeds
            )));
        }
        if let Some(t) = &exp.transfer {
            t.validate().map_err(err)?;
        }
        Ok(exp)
    }
}

/// The settings of a set of epsilon-networks and their Fishers (an experiment's, a
/// dictionary's), checked at load with the command line's bounds (`tanas_core::limits`):
/// at least one seed and at most [`MAX_SEEDS`], each once; a valid `[train]` table without
/// `seed` or `init`; Fisher counts from 1.
pub(crate) fn check_networks(
    seeds: &[u64],
    train: &TrainConfig,
    fisher: &FisherSettings,
) -> std::result::Result<(), String> {
    limits::count("the number of seeds", seeds.len(), MAX_SEEDS)?;
    if let Some((i, s)) = seeds
        .iter()
        .enumerate()
        .find(|(i, s)| seeds[..*i].contains(s))
    {
        return Err(format!("seeds: {s} is listed twice (entry {})", i + 1));
    }
    no_train_seed(train)?;
    train.validate().map_err(|e| e.to_string())?;
    limits::counts(
        &[
            ("fisher.samples", fisher.samples),
            ("fisher.mc_samples", fisher.mc_samples),
        ],
        limits::MAX_COUNT,
    )?;
    limits::count(
        "fisher.batch_size",
        fisher.batch_size,
        limits::MAX_BATCH_SIZE,
    )
}

/// A `[train]` table of an experiment or dictionary may not set `seed` (the networks' seeds
/// are the `seeds` list, one network each) nor `init`.
pub(crate) fn no_train_seed(train: &TrainConfig) -> std::result::Result<(), String> {
    if let Some(init) = &train.init {
        return Err(format!(
            "train.init = {:?}: the networks start from their seeds' initialisation (fine-tune with `tanas train --init`)",
            init.display().to_string()
        ));
    }
    match train.seed {
        0 => Ok(()),
        s => Err(format!(
            "train.seed = {s}: the networks' seeds are given by `seeds`, not by [train]"
        )),
    }
}
