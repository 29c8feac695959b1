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
use tanas_distance::{DistanceMatrix, MatrixFiles, TaskDistance, distance};
use tanas_fisher::{FisherConfig, FisherDiag, FisherMeta, fisher_diag};
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
    /// Test accuracy of the kept weights.
    pub test_accuracy: f64,
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
            let run = train_net::<B>(exp, a, seed, out, device)?;
            bar.inc(1);
            nets.push(NetSummary {
                task: a.spec.id.clone(),
                seed,
                epochs: run.metrics.epochs.len(),
                val_accuracy: run.metrics.best_val_accuracy,
                test_accuracy: run.metrics.test.accuracy,
            });
            let model = ZooModel::<B>::new(&ModelSpec::new(exp.arch, a.num_labels), device)?;
            let model = tanas_zoo::load_pytorch(model, &run.weights)?;
            let row = tasks
                .iter()
                .map(|b| {
                    let f = fisher_of(exp, &model, a, b, seed, &run.weights, out, device);
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

    let mut matrices = Vec::new();
    for &metric in &exp.metrics {
        let mut m = DistanceMatrix::new(ids.iter().cloned(), metric, exp.head)?;
        for (s, &seed) in exp.seeds.iter().enumerate() {
            for (i, a) in ids.iter().enumerate() {
                for (j, b) in ids.iter().enumerate() {
                    let d = distance(&fishers[s][i][j], &fishers[s][j][j], metric, exp.head)?;
                    m.set(seed, a, b, d)?;
                }
            }
        }
        let files = m.write_all(out.join("distance"), metric_stem(metric))?;
        tracing::info!(
            "{} matrix written to {}",
            metric_stem(metric),
            files.json.display()
        );
        matrices.push((m, files));
    }
    Ok(MatrixRun {
        tasks: ids,
        nets,
        matrices,
    })
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

/// Trains (or finds trained) the network of `task` with `seed`.
fn train_net<B: AutodiffBackend>(
    exp: &Experiment,
    task: &TaskData,
    seed: u64,
    out: &Path,
    device: &B::Device,
) -> Result<TrainOutcome> {
    let spec = ModelSpec::new(exp.arch, task.num_labels);
    let mut cfg = exp.train.config(seed);
    cfg.quiet = true;
    let dir = net_dir(out, &task.spec.id, seed);
    tanas_train::train::<B>(&spec, task, &cfg, &dir, device).map_err(|source| {
        PipelineError::Train {
            task: task.spec.id.clone(),
            seed,
            source: Box::new(source),
        }
    })
}

/// `F[a,b]`: the Fisher of network `a` on task `b`'s test data, reused from its file when the
/// file was made from the same weights and settings.
#[allow(clippy::too_many_arguments)]
fn fisher_of<B: AutodiffBackend>(
    exp: &Experiment,
    model: &ZooModel<B>,
    a: &TaskData,
    b: &TaskData,
    seed: u64,
    weights: &Path,
    out: &Path,
    device: &B::Device,
) -> Result<FisherDiag> {
    let path = out
        .join("fisher")
        .join(format!("seed-{seed}"))
        .join(format!("{}--on--{}.safetensors", a.spec.id, b.spec.id));
    let samples = b.test.truncated(exp.fisher.samples);
    let mut meta = FisherMeta {
        arch: exp.arch.to_string(),
        task: b.spec.id.clone(),
        net_task: a.spec.id.clone(),
        split: "test".into(),
        samples: samples.len(),
        estimator: exp.fisher.estimator.to_string(),
        num_classes: a.num_labels,
        ..FisherMeta::default()
    };
    meta.extra.insert("seed".into(), seed.to_string());
    meta.extra
        .insert("weights_fnv64".into(), file_hash(weights)?);
    if let Ok(existing) = FisherDiag::load(&path)
        && existing.meta == meta
    {
        return Ok(existing);
    }
    let cfg = FisherConfig {
        estimator: exp.fisher.estimator,
        batch_size: exp.fisher.batch_size,
        mc_samples: exp.fisher.mc_samples,
        seed,
    };
    let diag =
        fisher_diag(model, &samples, b.num_labels, &cfg, meta, device).map_err(|source| {
            PipelineError::Fisher {
                net: a.spec.id.clone(),
                data: b.spec.id.clone(),
                source: Box::new(source),
            }
        })?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| PipelineError::Io {
            path: dir.into(),
            source,
        })?;
    }
    diag.save(&path)?;
    Ok(diag)
}

/// FNV-1a 64 of a file, hex: ties a Fisher file to the exact weights it was taken of.
fn file_hash(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|source| PipelineError::Io {
        path: path.into(),
        source,
    })?;
    let h = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    Ok(format!("{h:016x}"))
}

/// Writes pretty JSON atomically.
pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| PipelineError::Config {
        path: path.into(),
        problem: e.to_string(),
    })?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| PipelineError::Io {
            path: dir.into(),
            source,
        })?;
    }
    tanas_data::write_atomic(path, text.as_bytes())?;
    Ok(())
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
