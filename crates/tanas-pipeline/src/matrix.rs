//! [`run_matrix`]: the distance-matrix experiment of the papers (paper 003, Algorithm 1).
//!
//! For every task `a` and seed, an epsilon-network is trained on `a`; for every ordered pair
//! `(a, b)` the Fisher diagonal `F[a,b]` of network `a` is taken on the first
//! `fisher.samples` test samples of task `b`; then `d[a,b] = distance(F[a,b], F[b,b])` for
//! each metric, with mean and std over seeds. Rows are source tasks `a`, columns target
//! tasks `b`, as in the papers' figures.
//!
//! The networks and Fishers are artifacts of the [`Store`] (found there when an earlier run,
//! a dictionary or another experiment made them with the same settings); the output
//! directory holds what this experiment shows:
//! ```text
//! distance/<metric>.{json,csv,svg,png}
//! nets.json                      test accuracy of every network, with its store path
//! index.json                     `nets/<task>/seed-<s>` and `fisher/seed-<s>/<a>--on--<b>`
//!                                -> store path (`network/<key>`, `fisher/<key>`)
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::backend::AutodiffBackend;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tanas_core::Store;
use tanas_data::DataDirs;
use tanas_distance::matrix::{mean, sample_std};
use tanas_distance::{DistanceMatrix, HeadRule, MatrixFiles, TaskDistance, distance};
use tanas_fisher::FisherDiag;

use crate::artifacts::{NetOf, fisher, load_net, network};
use crate::error::{PipelineError, Result};
use crate::experiment::Experiment;
use crate::tasks::LoadedTasks;
use tanas_data::TaskData;

pub use tanas_core::report::{NetSummary, NoiseFloor};

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

/// Runs the experiment into `out` on backend `B`, its networks and Fishers in `store`.
pub fn run_matrix<B: AutodiffBackend>(
    exp: &Experiment,
    dirs: &DataDirs,
    out: &Path,
    store: &Store,
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
    let mut index = BTreeMap::new();
    let mut fishers: Vec<Vec<Vec<FisherDiag>>> = Vec::new(); // [seed][a][b]
    for &seed in &exp.seeds {
        let mut per_seed = Vec::new();
        for a in tasks {
            let (net, row) =
                net_and_fishers::<B>(exp, store, tasks, a, seed, device, &mut index, &bar)?;
            nets.push(net);
            per_seed.push(row);
        }
        fishers.push(per_seed);
    }
    bar.finish_and_clear();
    write_json(&out.join("nets.json"), &nets)?;
    write_json(&out.join("index.json"), &index)?;

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

/// One row of [`run_matrix`]'s work: the epsilon-network of task `a` with `seed` and its
/// Fishers on every task, found in or added to the store (`index` gets their store paths).
#[allow(clippy::too_many_arguments)]
fn net_and_fishers<B: AutodiffBackend>(
    exp: &Experiment,
    store: &Store,
    tasks: &[TaskData],
    a: &TaskData,
    seed: u64,
    device: &B::Device,
    index: &mut BTreeMap<String, String>,
    bar: &ProgressBar,
) -> Result<(NetSummary, Vec<FisherDiag>)> {
    let net = network::<B>(store, exp.arch, &exp.train, a, seed, device)?;
    bar.inc(1);
    let metrics = &net.outcome.metrics;
    let summary = NetSummary {
        task: a.spec.id.clone(),
        seed,
        epochs: metrics.epochs.len(),
        val_accuracy: metrics.best_val_accuracy,
        test_accuracy: metrics.test.accuracy,
        balanced_accuracy: metrics.test.balanced_accuracy,
        network: net.entry.id(),
    };
    index.insert(format!("nets/{}/seed-{seed}", a.spec.id), net.entry.id());
    let model = load_net::<B>(exp.arch, a.num_labels, &net.outcome.weights, device)?;
    let of = NetOf {
        task: &a.spec.id,
        num_labels: a.num_labels,
        entry: &net.entry,
    };
    let row = tasks
        .iter()
        .map(|b| {
            let f = fisher(store, exp.arch, &exp.fisher, &model, of, b, seed, device);
            bar.inc(1);
            let (f, entry) = f?;
            index.insert(
                format!("fisher/seed-{seed}/{}--on--{}", a.spec.id, b.spec.id),
                entry.id(),
            );
            Ok(f)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((summary, row))
}

/// One network of the experiment, the one of `task` with `seed`, and its Fishers on every
/// task of the experiment, into the store; `out` gets that part's `nets.json` and
/// `index.json`. A [`run_matrix`] with the same store afterwards finds them: executors run
/// the parts as separate jobs, then the matrix.
#[allow(clippy::too_many_arguments)]
pub fn run_matrix_part<B: AutodiffBackend>(
    exp: &Experiment,
    dirs: &DataDirs,
    out: &Path,
    store: &Store,
    device: &B::Device,
    task: &str,
    seed: u64,
) -> Result<NetSummary> {
    let loaded = LoadedTasks::load(&exp.task_files, &exp.tasks, dirs, &exp.path)?;
    let config = |problem: String| PipelineError::Config {
        path: exp.path.clone(),
        problem,
    };
    let a = loaded
        .tasks
        .iter()
        .find(|t| t.spec.id == task)
        .ok_or_else(|| {
            config(format!(
                "no task `{task}` in the experiment ({})",
                loaded.ids().join(", ")
            ))
        })?;
    if !exp.seeds.contains(&seed) {
        return Err(config(format!(
            "seed {seed} is not among the experiment's seeds {:?}",
            exp.seeds
        )));
    }
    let bar = progress(
        1 + loaded.tasks.len(),
        "epsilon-network and its Fisher diagonals",
    );
    let mut index = BTreeMap::new();
    let (net, _) =
        net_and_fishers::<B>(exp, store, &loaded.tasks, a, seed, device, &mut index, &bar)?;
    bar.finish_and_clear();
    write_json(&out.join("nets.json"), &[&net])?;
    write_json(&out.join("index.json"), &index)?;
    Ok(net)
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
            // Each unordered pair once: every metric is symmetric in its two diagonals.
            for (s, fs) in fishers.iter().enumerate() {
                for ft in &fishers[s + 1..] {
                    d.push(distance(&fs[i][i], &ft[i][i], metric, head)?);
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
