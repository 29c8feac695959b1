//! [`run_matrix`]: the distance-matrix experiment of the papers (paper 003, Algorithm 1).
//!
//! For every task `a` and seed, an epsilon-network is trained on `a` (every network of a seed
//! starts from the same initial network N, up to its head); for every ordered pair `(a, b)`
//! the Fisher diagonal `F[a,b]` of network `a` is taken on the first `fisher.samples` samples
//! of task `b`'s probe split; then `d[a,b] = distance(F[a,b], F[b,b])` for each metric, with
//! mean and std over seeds. Rows are source tasks `a`, columns target tasks `b`, as in the
//! papers' figures. For the floor seeds, every task's network gets a twin from the same
//! initial network in another data order ([`floor_order_seed`]): the noise floor of column
//! `b` is the distance between the two. Where the experiment has a `[transfer]` table, every
//! network's body is fine-tuned on every other task, with the paired control from N
//! ([`crate::transfer`]).
//!
//! The networks, Fishers and fine-tunings are artifacts of the [`Store`] (found there when an
//! earlier run, a dictionary or another experiment made them with the same settings); the
//! output directory holds what this experiment shows:
//! ```text
//! distance/<metric>.{json,csv,svg,png}
//! distance/<metric>-head-<other rule>.{json,csv,svg,png}
//! distance/<metric>-noise.json          the noise floor per task
//! distance/transfer-gain-n<n>.{json,svg,png}   the transfer gains (with a [transfer] table)
//! nets.json                      test accuracy of every network, with its store path
//! index.json                     `nets/<task>/seed-<s>`, `floor/<task>/seed-<s>`,
//!                                `fisher/seed-<s>/<a>--on--<b>`, `fisher-floor/seed-<s>/<b>`
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
use crate::transfer::{fine_tuned, gain_heatmap, gain_matrix};
use tanas_data::TaskData;
use tanas_train::TrainConfig;

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
        tasks.len() * exp.seeds.len() * part_steps(exp, tasks.len()),
        "epsilon-networks, Fisher diagonals, floor and transfer",
    );
    let mut nets = Vec::new();
    let mut index = BTreeMap::new();
    let mut parts: Vec<Vec<Part>> = Vec::new(); // [seed][a]
    for &seed in &exp.seeds {
        let mut per_seed = Vec::new();
        for a in tasks {
            let part = part::<B>(exp, store, tasks, a, seed, device, &mut index, &bar)?;
            nets.push(part.net.clone());
            per_seed.push(part);
        }
        parts.push(per_seed);
    }
    bar.finish_and_clear();
    write_json(&out.join("nets.json"), &nets)?;
    write_json(&out.join("index.json"), &index)?;
    let fishers: Vec<Vec<&[FisherDiag]>> = parts
        .iter()
        .map(|row| row.iter().map(|p| p.fishers.as_slice()).collect())
        .collect();

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
            &noise_floor(&ids, &parts, metric, exp.head)?,
        )?;
        tracing::info!("{stem} matrix written to {}", files.json.display());
        matrices.push((m, files));
    }
    if let Some(settings) = &exp.transfer {
        for (k, &n) in settings.samples.iter().enumerate() {
            let mut fine_tuned = BTreeMap::new();
            let mut control = BTreeMap::new();
            for (s, &seed) in exp.seeds.iter().enumerate() {
                let rows: Vec<&TransferRow> = parts[s]
                    .iter()
                    .filter_map(|a| a.transfer.as_ref().map(|t| &t[k]))
                    .collect();
                fine_tuned.insert(seed, rows.iter().map(|r| r.fine_tuned.clone()).collect());
                control.insert(seed, rows.iter().map(|r| r.control).collect());
            }
            let gains = gain_matrix(ids.clone(), n, settings, fine_tuned, control);
            let stem = format!("transfer-gain-n{n}");
            write_json(&out.join("distance").join(format!("{stem}.json")), &gains)?;
            gain_heatmap(&gains).write(out.join("distance"), &stem)?;
            tracing::info!("transfer gains of {n} samples written");
        }
    }
    Ok(MatrixRun {
        tasks: ids,
        nets,
        matrices,
    })
}

/// One (task, seed) of [`run_matrix`]'s work.
struct Part {
    /// The epsilon-network.
    net: NetSummary,
    /// Its Fishers on every task.
    fishers: Vec<FisherDiag>,
    /// The Fisher of its noise-floor twin on its own task (for the floor seeds).
    floor: Option<FisherDiag>,
    /// Per few-shot size of the transfer settings, its transfer row.
    transfer: Option<Vec<TransferRow>>,
}

/// The transfer measurement of one source task, seed and few-shot size.
struct TransferRow {
    /// Per target, the balanced test accuracy after fine-tuning this network's body (`None`
    /// for its own task).
    fine_tuned: Vec<Option<f64>>,
    /// The control's on this task as a target: the same recipe from the initial network.
    control: f64,
}

/// The data-order seed of the noise-floor twin of the network with `seed` (the twin has the
/// network's `seed`, hence its initial network).
pub fn floor_order_seed(seed: u64) -> u64 {
    const TAG_FLOOR: u64 = 43;
    tanas_search::derive_seed(seed, &[TAG_FLOOR])
}

/// Progress steps of one part: the network, its Fishers, the floor twin, the fine-tunings.
fn part_steps(exp: &Experiment, tasks: usize) -> usize {
    let transfer = exp.transfer.as_ref().map_or(0, |t| t.samples.len() * tasks);
    2 + tasks + transfer
}

/// One part of [`run_matrix`]'s work: the epsilon-network of task `a` with `seed`, its
/// Fishers on every task, its noise-floor twin (for the floor seeds) and its transfer row
/// with its own control (where the experiment measures transfer), found in or added to the
/// store (`index` gets the networks' and Fishers' store paths).
#[allow(clippy::too_many_arguments)]
fn part<B: AutodiffBackend>(
    exp: &Experiment,
    store: &Store,
    tasks: &[TaskData],
    a: &TaskData,
    seed: u64,
    device: &B::Device,
    index: &mut BTreeMap<String, String>,
    bar: &ProgressBar,
) -> Result<Part> {
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
    let fishers = tasks
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
    let floor = if exp.floor_seeds().contains(&seed) {
        let train = TrainConfig {
            order_seed: Some(floor_order_seed(seed)),
            ..exp.train.clone()
        };
        let twin = network::<B>(store, exp.arch, &train, a, seed, device)?;
        let twin_model = load_net::<B>(exp.arch, a.num_labels, &twin.outcome.weights, device)?;
        let of = NetOf {
            entry: &twin.entry,
            ..of
        };
        let (f, entry) = fisher(
            store,
            exp.arch,
            &exp.fisher,
            &twin_model,
            of,
            a,
            seed,
            device,
        )?;
        index.insert(format!("floor/{}/seed-{seed}", a.spec.id), twin.entry.id());
        index.insert(
            format!("fisher-floor/seed-{seed}/{}", a.spec.id),
            entry.id(),
        );
        Some(f)
    } else {
        None
    };
    bar.inc(1);
    let transfer = match &exp.transfer {
        None => None,
        Some(settings) => Some(
            settings
                .samples
                .iter()
                .map(|&n| {
                    let source = Some((&net.entry, net.outcome.weights.as_path()));
                    let tune = |source, b: &TaskData| {
                        let r =
                            fine_tuned::<B>(store, exp.arch, settings, source, b, n, seed, device);
                        bar.inc(1);
                        r.map(|r| r.balanced_accuracy)
                    };
                    let fine_tuned = tasks
                        .iter()
                        .map(|b| {
                            (b.spec.id != a.spec.id)
                                .then(|| tune(source, b))
                                .transpose()
                        })
                        .collect::<Result<Vec<_>>>()?;
                    let control = tune(None, a)?;
                    Ok(TransferRow {
                        fine_tuned,
                        control,
                    })
                })
                .collect::<Result<Vec<_>>>()?,
        ),
    };
    Ok(Part {
        net: summary,
        fishers,
        floor,
        transfer,
    })
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
        part_steps(exp, loaded.tasks.len()),
        "epsilon-network, its Fisher diagonals, floor and transfer",
    );
    let mut index = BTreeMap::new();
    let part = part::<B>(exp, store, &loaded.tasks, a, seed, device, &mut index, &bar)?;
    bar.finish_and_clear();
    write_json(&out.join("nets.json"), &[&part.net])?;
    write_json(&out.join("index.json"), &index)?;
    Ok(part.net)
}

/// The [`NoiseFloor`] of every task, from the parts `[seed][a]`.
fn noise_floor(
    ids: &[String],
    parts: &[Vec<Part>],
    metric: TaskDistance,
    head: HeadRule,
) -> Result<Vec<NoiseFloor>> {
    ids.iter()
        .enumerate()
        .map(|(i, task)| {
            let floor = parts
                .iter()
                .filter_map(|row| {
                    Some(distance(
                        &row[i].fishers[i],
                        row[i].floor.as_ref()?,
                        metric,
                        head,
                    ))
                })
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let mut across = Vec::new();
            // Each unordered pair once: every metric is symmetric in its two diagonals.
            for (s, row) in parts.iter().enumerate() {
                for other in &parts[s + 1..] {
                    across.push(distance(
                        &row[i].fishers[i],
                        &other[i].fishers[i],
                        metric,
                        head,
                    )?);
                }
            }
            Ok(NoiseFloor {
                task: task.clone(),
                mean: mean(&floor).unwrap_or(0.0),
                std: sample_std(&floor).unwrap_or(0.0),
                pairs: floor.len(),
                across_init_mean: mean(&across).unwrap_or(0.0),
                across_init_std: sample_std(&across).unwrap_or(0.0),
                across_init_pairs: across.len(),
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
