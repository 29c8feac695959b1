//! The pipeline's artifacts in the [`Store`]: epsilon-networks, Fisher diagonals and
//! searches. Each is made once, under a key of everything its result depends on (settings,
//! seed, the exact samples, the artifacts it was made from), and every stage that needs it
//! (the distance matrix, the dictionary, a target's search) finds it by that key.

use std::path::Path;

use burn::tensor::backend::AutodiffBackend;
use serde::Serialize;
use tanas_core::{Artifact, Store, StoreEntry};
use tanas_data::{TaskData, TaskSpec, TaskSplit};
use tanas_fisher::{Estimator, FisherDiag, FisherMeta, fisher_diag};
use tanas_search::{Algorithm, FuseConfig, SearchResult, SearchSpace};
use tanas_train::{RunInfo, TrainConfig, TrainOutcome};
use tanas_zoo::cell::Genotype;
use tanas_zoo::{Arch, ModelSpec, ZooModel};

use crate::dictionary::search_error;
use crate::error::{PipelineError, Result};
use crate::experiment::FisherSettings;

/// A trained epsilon-network (`weights.safetensors`, `metrics.json`, its checkpoint).
pub struct Network;
impl Artifact for Network {
    const KIND: &'static str = "network";
    const FORMAT: u32 = 2;
}

/// A Fisher diagonal of a network on a task's data (`fisher.safetensors`).
pub struct Fisher;
impl Artifact for Fisher {
    const KIND: &'static str = "fisher";
    const FORMAT: u32 = 1;
}

/// A search with its final network (checkpoint, trace, `result.json`, weights).
pub struct Search;
impl Artifact for Search {
    const KIND: &'static str = "search";
    const FORMAT: u32 = 2;
}

/// File of a [`Fisher`] artifact.
pub const FISHER_FILE: &str = "fisher.safetensors";

/// The samples an artifact was made from: the task, the exact samples, the size of the
/// image sets they index (a subset of a dataset and the full one differ there) and, for a
/// declared dataset, the digest of its decoded content (its files may change; the
/// built-ins' do not).
#[derive(Debug, Serialize)]
pub(crate) struct DataKey<'a> {
    task: &'a TaskSpec,
    fingerprint: String,
    images: Vec<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dataset: Option<&'a str>,
}

impl<'a> DataKey<'a> {
    pub(crate) fn new(task: &'a TaskData, splits: &[&TaskSplit]) -> Self {
        DataKey {
            task: &task.spec,
            fingerprint: tanas_data::fingerprint(splits),
            images: splits.iter().map(|s| s.images().len()).collect(),
            dataset: task.dataset_digest.as_deref(),
        }
    }

    fn of(task: &'a TaskData) -> Self {
        Self::new(task, &[&task.train, &task.val, &task.test])
    }
}

/// A network found or trained, with its store entry.
#[derive(Debug)]
pub(crate) struct TrainedNet {
    /// Where it is stored.
    pub entry: StoreEntry,
    /// Its weights and metrics.
    pub outcome: TrainOutcome,
}

/// The epsilon-network of `arch` on `task` with `seed`: found in `store`, or trained there.
pub(crate) fn network<B: AutodiffBackend>(
    store: &Store,
    arch: Arch,
    train: &TrainConfig,
    task: &TaskData,
    seed: u64,
    device: &B::Device,
) -> Result<TrainedNet> {
    #[derive(Serialize)]
    struct Recipe<'a> {
        run: RunInfo,
        data: DataKey<'a>,
        train: &'a TrainConfig,
    }
    let spec = ModelSpec::new(arch, task.num_labels);
    let mut cfg = train.with_seed(seed);
    cfg.quiet = true;
    let fit = |dir: &Path| {
        tanas_train::train::<B>(&spec, task, &cfg, dir, device).map_err(|source| {
            PipelineError::Train {
                task: task.spec.id.clone(),
                seed,
                source: Box::new(source),
            }
        })
    };
    let recipe = Recipe {
        run: RunInfo::new(&spec, task),
        data: DataKey::of(task),
        train: &cfg,
    };
    let entry =
        store.get_or_build::<Network, PipelineError>(&recipe, &[], |dir| fit(dir).map(drop))?;
    // A finished run: read back as it is stored.
    let outcome = fit(&entry.dir)?;
    Ok(TrainedNet { entry, outcome })
}

/// Loads a trained network with `num_labels` outputs from its weights.
pub(crate) fn load_net<B: AutodiffBackend>(
    arch: Arch,
    num_labels: usize,
    weights: &Path,
    device: &B::Device,
) -> Result<ZooModel<B>> {
    let model = ZooModel::<B>::new(&ModelSpec::new(arch, num_labels), device)?;
    Ok(tanas_zoo::load_pytorch(model, weights)?)
}

/// The network a Fisher is taken of.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NetOf<'a> {
    /// The task it was trained on.
    pub task: &'a str,
    /// Its outputs (the task's label count).
    pub num_labels: usize,
    /// Its store entry.
    pub entry: &'a StoreEntry,
}

/// `F[a,b]`: the Fisher of network `a` (`model`) on task `b`'s data (the split and samples
/// of `settings`), seeded with `seed`: found in `store`, or computed there; with its entry.
#[allow(clippy::too_many_arguments)]
pub(crate) fn fisher<B: AutodiffBackend>(
    store: &Store,
    arch: Arch,
    settings: &FisherSettings,
    model: &ZooModel<B>,
    a: NetOf<'_>,
    b: &TaskData,
    seed: u64,
    device: &B::Device,
) -> Result<(FisherDiag, StoreEntry)> {
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
    // The settings the estimate depends on beyond the fields above.
    match settings.estimator {
        Estimator::Mc => meta
            .extra
            .insert("mc_samples".into(), settings.mc_samples.to_string()),
        Estimator::Batch => meta
            .extra
            .insert("batch_size".into(), settings.batch_size.to_string()),
        Estimator::Exact | Estimator::Naive => None,
    };
    meta.extra.insert("network".into(), a.entry.id());
    #[derive(Serialize)]
    struct Recipe<'a> {
        meta: &'a FisherMeta,
        data: DataKey<'a>,
    }
    let recipe = Recipe {
        meta: &meta,
        data: DataKey::new(b, &[&samples]),
    };
    let entry = store.get_or_build::<Fisher, PipelineError>(&recipe, &[a.entry], |dir| {
        let cfg = settings.config(seed);
        let diag = fisher_diag(model, &samples, b.num_labels, &cfg, meta.clone(), device).map_err(
            |source| PipelineError::Fisher {
                net: a.task.to_string(),
                data: b.spec.id.clone(),
                source: Box::new(source),
            },
        )?;
        Ok(diag.save(dir.join(FISHER_FILE))?)
    })?;
    let path = entry.dir.join(FISHER_FILE);
    let diag = FisherDiag::load(&path)?;
    // The file must be what its key says: a copied or damaged entry is refused, naming it.
    let (m, total) = (&diag.meta, diag.total());
    let problem = if (&m.arch, &m.net_task, &m.task, &m.split, m.samples)
        != (
            &meta.arch,
            &meta.net_task,
            &meta.task,
            &meta.split,
            meta.samples,
        ) {
        Some(format!(
            "holds the Fisher of a {} network of `{}` on {} samples of `{}` ({}), not of `{}` on {} samples of `{}` ({})",
            m.arch,
            m.net_task,
            m.samples,
            m.task,
            m.split,
            meta.net_task,
            meta.samples,
            meta.task,
            meta.split
        ))
    } else if total <= 0.0 || total.is_nan() {
        Some("is zero on every parameter".to_string())
    } else {
        None
    };
    match problem {
        Some(p) => Err(PipelineError::Config {
            path,
            problem: format!(
                "{p}: a damaged or foreign store entry; remove {} to rebuild it",
                entry.dir.display()
            ),
        }),
        None => Ok((diag, entry)),
    }
}

/// A search on `task` in `space` with the settings `cfg`, starting from `warm_start` where
/// given ([`Algorithm::run_task`]): found in `store`, or run there (resuming).
pub(crate) fn search<B: AutodiffBackend>(
    store: &Store,
    algorithm: Algorithm,
    cfg: &FuseConfig,
    space: &SearchSpace,
    warm_start: Option<&Genotype>,
    task: &TaskData,
    device: &B::Device,
) -> Result<(StoreEntry, SearchResult)> {
    #[derive(Serialize)]
    struct Recipe<'a> {
        algorithm: Algorithm,
        config: &'a FuseConfig,
        space: &'a SearchSpace,
        warm_start: Option<&'a Genotype>,
        data: DataKey<'a>,
    }
    let run = |dir: &Path| {
        let mut cfg = cfg.clone();
        cfg.common.quiet = true;
        algorithm
            .run_task::<B>(&cfg, space.clone(), warm_start.cloned(), task, dir, device)
            .map_err(search_error)
    };
    let recipe = Recipe {
        algorithm,
        config: cfg,
        space,
        warm_start,
        data: DataKey::of(task),
    };
    let entry =
        store.get_or_build::<Search, PipelineError>(&recipe, &[], |dir| run(dir).map(drop))?;
    let result = run(&entry.dir)?;
    Ok((entry, result))
}
