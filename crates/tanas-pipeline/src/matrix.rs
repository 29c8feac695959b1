//! [`run_matrix`]: the distance-matrix experiment of the papers (paper 003, Algorithm 1).
//!
//! For every task `a` and seed, an epsilon-network is trained on `a`; for every ordered pair
//! `(a, b)` the Fisher diagonal `F[a,b]` of network `a` is taken on the first
//! `fisher.samples` test samples of task `b`; then `d[a,b] = distance(F[a,b], F[b,b])` for
//! each metric, with mean and std over seeds. Rows are source tasks `a`, columns target
//! tasks `b`, as in the papers' figures.
//!
//! Artifact directory:
//! ```text
//! nets/<task>/seed-<s>/          training run (weights.safetensors, metrics.json, checkpoint)
//! fisher/seed-<s>/<a>--on--<b>.safetensors
//! distance/<metric>.{json,csv,svg,png}
//! nets.json                      test accuracy of every network
//! ```
//! Every stage reuses what is already there and valid, so a rerun resumes.

use std::path::{Path, PathBuf};

use burn::tensor::backend::AutodiffBackend;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tanas_data::{DataDirs, TaskData};
use tanas_distance::matrix::{mean, sample_std};
use tanas_distance::{DistanceMatrix, HeadRule, MatrixFiles, TaskDistance, distance};
use tanas_fisher::{Estimator, FisherConfig, FisherDiag, FisherMeta, fisher_diag};
use tanas_train::TrainOutcome;
use tanas_zoo::{ModelSpec, ZooModel};

use crate::error::{PipelineError, Result};
use crate::experiment::Experiment;
use crate::tasks::LoadedTasks;

/// One trained epsilon-network.
#[derive(Debug, Clone, Serialize)]
pub struct NetSummary {
    /// The task it was trained on.
    pub task: String,
    /// Its seed.
    pub seed: u64,
    /// Epochs trained.
    pub epochs: usize,
    /// Best validation accuracy.
    pub val_accuracy: f64,
    /// Test accuracy of the kept weights (decisions with the dataset's label prior).
    pub test_accuracy: f64,
    /// Test accuracy of the plain arg-max, where it differs in kind from `test_accuracy`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub argmax_accuracy: Option<f64>,
}

/// What [`run_matrix`] produced.
#[derive(Debug)]
pub struct MatrixRun {
    /// The task ids, in matrix order.
    pub tasks: Vec<String>,
    /// The trained networks.
    pub nets: Vec<NetSummary>,
    /// One matrix per metric, with the files written.
    pub matrices: Vec<(DistanceMatrix, MatrixFiles)>,
}

/// Runs the experiment into `out` on backend `B`.
pub fn run_matrix<B: AutodiffBackend>(
    exp: &Experiment,
    dirs: &DataDirs,
    out: &Path,
    device: &B::Device,
) -> Result<MatrixRun> {
    let loaded = LoadedTasks::load(&exp.task_files, &exp.tasks, dirs, &exp.path)?;
    let tasks = &loaded.tasks;
    let ids = loaded.ids();

    let bar = progress(
        tasks.len() * exp.seeds.len() * (1 + tasks.len()),
        "epsilon-networks and Fisher diagonals",
    );
    let mut nets = Vec::new();
    let mut fishers: Vec<Vec<Vec<FisherDiag>>> = Vec::new(); // [seed][a][b]
    for &seed in &exp.seeds {
        let mut per_seed = Vec::new();
        for a in tasks {
            let run = train_at::<B>(
                exp.arch,
                &exp.train,
                a,
                seed,
                &net_dir(out, &a.spec.id, seed),
                device,
            )?;
            bar.inc(1);
            nets.push(NetSummary {
                task: a.spec.id.clone(),
                seed,
                epochs: run.metrics.epochs.len(),
                val_accuracy: run.metrics.best_val_accuracy,
                test_accuracy: run.metrics.test.accuracy,
                argmax_accuracy: run.metrics.test.argmax_accuracy,
            });
            let model = load_net::<B>(exp.arch, a.num_labels, &run.weights, device)?;
            let row = tasks
                .iter()
                .map(|b| {
                    let fdir = out.join("fisher").join(format!("seed-{seed}"));
                    let path = fisher_path(&fdir, &a.spec.id, &b.spec.id);
                    let f = fisher_at(
                        exp.arch,
                        &exp.fisher,
                        &model,
                        a.into(),
                        b,
                        seed,
                        &run.weights,
                        &path,
                        device,
                    );
                    bar.inc(1);
                    f
                })
                .collect::<Result<Vec<_>>>()?;
            per_seed.push(row);
        }
        fishers.push(per_seed);
    }
    bar.finish_and_clear();
    write_json(&out.join("nets.json"), &nets)?;

    let fill = |metric: TaskDistance, head: HeadRule| -> Result<DistanceMatrix> {
        let mut m = DistanceMatrix::new(ids.iter().cloned(), metric, head)?;
        for (s, &seed) in exp.seeds.iter().enumerate() {
            for (i, a) in ids.iter().enumerate() {
                for (j, b) in ids.iter().enumerate() {
                    let d = distance(&fishers[s][i][j], &fishers[s][j][j], metric, head)?;
                    m.set(seed, a, b, d)?;
                }
            }
        }
        Ok(m)
    };
    // The other head rule, for comparison: the same Fishers, so it costs only the distances.
    let other_head = exp.head.other();
    let mut matrices = Vec::new();
    for &metric in &exp.metrics {
        let stem = metric_stem(metric);
        let m = fill(metric, exp.head)?;
        let files = m.write_all(out.join("distance"), stem)?;
        fill(metric, other_head)?
            .write_all(out.join("distance"), &format!("{stem}-head-{other_head}"))?;
        write_json(
            &out.join("distance").join(format!("{stem}-noise.json")),
            &noise_floor(&ids, &fishers, metric, exp.head)?,
        )?;
        tracing::info!("{stem} matrix written to {}", files.json.display());
        matrices.push((m, files));
    }
    Ok(MatrixRun {
        tasks: ids,
        nets,
        matrices,
    })
}

/// The distance between two networks of one task trained with different seeds, each
/// Fisher taken on the task's own data: what the distance gives for "the same task" (the
/// matrix's diagonal is 0 by construction, since it compares a network with itself).
#[derive(Debug, Clone, Serialize)]
pub struct NoiseFloor {
    /// The task.
    pub task: String,
    /// Mean over the ordered pairs of different seeds.
    pub mean: f64,
    /// Sample standard deviation over those pairs (0 for one pair).
    pub std: f64,
    /// Number of seed pairs.
    pub pairs: usize,
}

/// The [`NoiseFloor`] of every task, from the Fishers `[seed][a][b]`.
fn noise_floor(
    ids: &[String],
    fishers: &[Vec<Vec<FisherDiag>>],
    metric: TaskDistance,
    head: HeadRule,
) -> Result<Vec<NoiseFloor>> {
    ids.iter()
        .enumerate()
        .map(|(i, task)| {
            let mut d = Vec::new();
            for (s, fs) in fishers.iter().enumerate() {
                for (t, ft) in fishers.iter().enumerate() {
                    if s != t {
                        d.push(distance(&fs[i][i], &ft[i][i], metric, head)?);
                    }
                }
            }
            Ok(NoiseFloor {
                task: task.clone(),
                mean: mean(&d).unwrap_or(0.0),
                std: sample_std(&d).unwrap_or(0.0),
                pairs: d.len(),
            })
        })
        .collect()
}

/// The file stem of a metric's outputs.
pub fn metric_stem(metric: TaskDistance) -> &'static str {
    match metric {
        TaskDistance::Ftd => "ftd",
        TaskDistance::LogDet { .. } => "logdet",
        TaskDistance::Cosine => "cosine",
    }
}

/// Directory of the network of `task` and `seed`.
pub fn net_dir(out: &Path, task: &str, seed: u64) -> PathBuf {
    out.join("nets").join(task).join(format!("seed-{seed}"))
}

/// Trains (or finds trained) the network of `task` with `seed` in `dir`.
pub(crate) fn train_at<B: AutodiffBackend>(
    arch: tanas_zoo::Arch,
    train: &crate::experiment::TrainSettings,
    task: &TaskData,
    seed: u64,
    dir: &Path,
    device: &B::Device,
) -> Result<TrainOutcome> {
    let spec = ModelSpec::new(arch, task.num_labels);
    let mut cfg = train.config(seed);
    cfg.quiet = true;
    tanas_train::train::<B>(&spec, task, &cfg, dir, device).map_err(|source| PipelineError::Train {
        task: task.spec.id.clone(),
        seed,
        source: Box::new(source),
    })
}

/// Loads a trained network with `num_labels` outputs from its weights.
pub(crate) fn load_net<B: AutodiffBackend>(
    arch: tanas_zoo::Arch,
    num_labels: usize,
    weights: &Path,
    device: &B::Device,
) -> Result<ZooModel<B>> {
    let model = ZooModel::<B>::new(&ModelSpec::new(arch, num_labels), device)?;
    Ok(tanas_zoo::load_pytorch(model, weights)?)
}

/// Where `F[a,b]` is stored under `dir`.
pub(crate) fn fisher_path(dir: &Path, a: &str, b: &str) -> PathBuf {
    dir.join(format!("{a}--on--{b}.safetensors"))
}

/// The network a Fisher is taken of: the task it was trained on and its output count.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NetOf<'a> {
    /// The task id.
    pub task: &'a str,
    /// Outputs of the network (the task's label count).
    pub num_labels: usize,
}

impl<'a> From<&'a TaskData> for NetOf<'a> {
    fn from(t: &'a TaskData) -> Self {
        NetOf {
            task: &t.spec.id,
            num_labels: t.num_labels,
        }
    }
}

/// `F[a,b]`: the Fisher of network `a` (`model`, from `weights`) on task `b`'s data (the
/// split of `settings`), stored at `path`; reused from that file when it was made from the
/// same weights and settings.
#[allow(clippy::too_many_arguments)]
pub(crate) fn fisher_at<B: AutodiffBackend>(
    arch: tanas_zoo::Arch,
    settings: &crate::experiment::FisherSettings,
    model: &ZooModel<B>,
    a: NetOf<'_>,
    b: &TaskData,
    seed: u64,
    weights: &Path,
    path: &Path,
    device: &B::Device,
) -> Result<FisherDiag> {
    let samples = b.split(settings.split).truncated(settings.samples);
    let mut meta = FisherMeta {
        arch: arch.to_string(),
        task: b.spec.id.clone(),
        net_task: a.task.to_string(),
        split: settings.split.to_string(),
        samples: samples.len(),
        estimator: settings.estimator.to_string(),
        num_classes: a.num_labels,
        ..FisherMeta::default()
    };
    meta.extra.insert("seed".into(), seed.to_string());
    // The settings the estimate depends on beyond the fields above, so that a Fisher made
    // with others is not reused.
    match settings.estimator {
        Estimator::Mc => meta
            .extra
            .insert("mc_samples".into(), settings.mc_samples.to_string()),
        Estimator::Batch => meta
            .extra
            .insert("batch_size".into(), settings.batch_size.to_string()),
        Estimator::Exact | Estimator::Naive => None,
    };
    meta.extra
        .insert("weights_fnv64".into(), file_hash(weights)?);
    if let Ok(existing) = FisherDiag::load(path)
        && existing.meta == meta
    {
        return Ok(existing);
    }
    let cfg = FisherConfig {
        estimator: settings.estimator,
        batch_size: settings.batch_size,
        mc_samples: settings.mc_samples,
        seed,
    };
    let diag =
        fisher_diag(model, &samples, b.num_labels, &cfg, meta, device).map_err(|source| {
            PipelineError::Fisher {
                net: a.task.to_string(),
                data: b.spec.id.clone(),
                source: Box::new(source),
            }
        })?;
    diag.save(path)?;
    Ok(diag)
}

/// FNV-1a 64 of a file, hex: ties a Fisher file to the exact weights it was taken of.
fn file_hash(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|source| PipelineError::Io {
        path: path.into(),
        source,
    })?;
    Ok(tanas_core::Fnv1a::new().bytes(&bytes).hex())
}

/// Writes pretty JSON atomically (its directory is created).
pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| PipelineError::Config {
        path: path.into(),
        problem: e.to_string(),
    })?;
    write_file(path, text.as_bytes())
}

/// Writes a file atomically ([`tanas_core::write_atomic`]: its directory is created).
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    tanas_core::write_atomic(path, bytes).map_err(|e| PipelineError::Io {
        path: e.path,
        source: e.source,
    })
}

/// A progress bar over `len` steps, hidden when stderr is not a terminal.
pub(crate) fn progress(len: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {elapsed_precise} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(what.to_string());
    bar
}
