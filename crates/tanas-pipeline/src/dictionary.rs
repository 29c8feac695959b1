//! [`TaskDictionary`]: the learned tasks, each with its epsilon-networks, its own Fisher and
//! the search space of the best cell found for it (paper 003, Algorithm 2).
//!
//! ```text
//! DIR/manifest.json              settings + one entry per task (written atomically), with the
//!                                store paths of its epsilon-networks
//! DIR/tasks/<id>/space.json      the learned space: ops and nodes of the best cell
//! DIR/tasks/<id>/index.json      `nets/seed-<s>`, `fisher/seed-<s>`, `search` -> store path
//! DIR/store/                     the artifact store (default; another with `with_store`)
//! ```
//! The networks, Fishers and searches are artifacts of the [`Store`]: one a distance matrix
//! made with the same settings is found, not made again, and so are the target networks and
//! cross Fishers that [`TaskDictionary::closest`] needs. Adding a task writes only its
//! artifacts, `tasks/<id>/` and the manifest; an interrupted `add` resumes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};
use tanas_core::Store;
use tanas_data::{TaskData, TaskSpec};
use tanas_distance::matrix::mean;
use tanas_distance::{HeadRule, TaskDistance, distance};
use tanas_search::{
    Algorithm, FuseConfig, SearchSpace, SpaceRule, StageRecord, TRACE_FILE, read_trace,
};
use tanas_train::TrainConfig;
use tanas_zoo::Arch;
use tanas_zoo::cell::{CellSkeleton, Genotype, Op};

use crate::artifacts::{NetOf, fisher, load_net, network, search};
use crate::error::{PipelineError, Result};
use crate::experiment::{FisherSettings, check_networks};
use crate::matrix::{write_file, write_json};

/// Format tag of `manifest.json` (2: networks in the artifact store).
pub const MANIFEST_FORMAT: &str = "tanas-dictionary/3";

/// How every task of a dictionary is represented and searched; fixed when it is created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DictSettings {
    /// Epsilon-network architecture.
    pub arch: Arch,
    /// One network per seed.
    pub seeds: Vec<u64>,
    /// Training of the epsilon-networks (`seed` stays 0: the seeds are `seeds`).
    #[serde(default)]
    pub train: TrainConfig,
    /// Fisher settings.
    #[serde(default)]
    pub fisher: FisherSettings,
    /// FUSE settings of the per-task search.
    #[serde(default)]
    pub search: FuseConfig,
    /// Skeleton (C, L) of searched cell networks (default [`tanas_search::SEARCH_SKELETON`]).
    #[serde(default = "search_skeleton")]
    pub skeleton: CellSkeleton,
    /// How a task's learned space is built from its search (default: the best cell's node
    /// counts and the 4 operations of most evidence; `{ rule = "union" }` for every operation
    /// of the best cell).
    #[serde(default)]
    pub space: SpaceRule,
}

fn search_skeleton() -> CellSkeleton {
    tanas_search::SEARCH_SKELETON
}

impl DictSettings {
    /// Reads settings from a TOML file (the fields of this struct; `[train]`, `[fisher]` and
    /// `[search]` may name only what they change).
    pub fn read(path: &Path) -> Result<Self> {
        let settings: Self = tanas_core::read_toml(path)?;
        settings
            .validate()
            .map_err(|problem| PipelineError::Config {
                path: path.into(),
                problem,
            })?;
        Ok(settings)
    }

    /// Checks every value with the command line's bounds: the networks' settings, the
    /// search's and the skeleton.
    pub fn validate(&self) -> std::result::Result<(), String> {
        check_networks(&self.seeds, &self.train, &self.fisher)?;
        self.search.validate().map_err(|e| e.to_string())?;
        self.skeleton.validate().map_err(|e| e.to_string())
    }
}

/// One learned task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DictEntry {
    /// The task definition (copied, so the dictionary is self-contained).
    pub spec: TaskSpec,
    /// Number of task labels.
    pub num_labels: usize,
    /// The best cell found for the task.
    pub genotype: Genotype,
    /// Its search space, relative to the dictionary (`tasks/<id>/space.json`).
    pub space: PathBuf,
    /// The operations of that space (a copy, for readers of the manifest).
    #[serde(default)]
    pub space_ops: Vec<Op>,
    /// The number of distinct genotypes of that space ([`SearchSpace::size`]).
    #[serde(default)]
    pub space_size: f64,
    /// Test accuracy of the searched network (plain arg-max).
    pub test_accuracy: f64,
    /// Balanced test accuracy of the searched network.
    pub balanced_accuracy: f64,
    /// Mean test accuracy of the epsilon-networks (plain arg-max).
    pub net_test_accuracy: f64,
    /// Mean balanced test accuracy of the epsilon-networks.
    pub net_balanced_accuracy: f64,
    /// The epsilon-networks in the store (`network/<key>`), one per seed in settings order.
    pub networks: Vec<String>,
}

/// The manifest: settings and tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub format: String,
    /// Settings shared by every task.
    pub settings: DictSettings,
    /// The tasks, in the order they were added.
    pub tasks: Vec<DictEntry>,
}

/// Distance of one dictionary task to a target.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Closeness {
    /// The dictionary task.
    pub task: String,
    /// Mean distance over seeds.
    pub mean: f64,
    /// Sample standard deviation over seeds (0 with one seed).
    pub std: f64,
    /// Per seed.
    pub per_seed: Vec<f64>,
}

/// A task dictionary directory.
#[derive(Debug, Clone)]
pub struct TaskDictionary {
    dir: PathBuf,
    manifest: Manifest,
    store: Store,
}

impl TaskDictionary {
    /// Opens `dir`, or creates it with `settings` if it has no manifest yet. An existing
    /// dictionary made with other settings is an error that lists the differing fields.
    pub fn open_or_create(dir: &Path, settings: DictSettings) -> Result<Self> {
        if dir.join("manifest.json").exists() {
            let dict = Self::open(dir)?;
            dict.check_settings(&settings)?;
            return Ok(dict);
        }
        let manifest = Manifest {
            format: MANIFEST_FORMAT.into(),
            settings,
            tasks: Vec::new(),
        };
        let dict = Self {
            store: Store::new(dir.join("store")),
            dir: dir.to_path_buf(),
            manifest,
        };
        dict.save()?;
        Ok(dict)
    }

    /// An error listing the differing fields when the dictionary was made with other
    /// settings than `settings`.
    fn check_settings(&self, settings: &DictSettings) -> Result<()> {
        let (stored, requested) = (
            serde_json::to_value(&self.manifest.settings),
            serde_json::to_value(settings),
        );
        if let (Ok(stored), Ok(requested)) = (stored, requested)
            && stored != requested
        {
            let fields = tanas_core::store::differing_fields(&stored, &requested);
            return Err(PipelineError::Config {
                path: self.dir.join("manifest.json"),
                problem: format!(
                    "the dictionary was made with other settings ({}; stored -> requested)",
                    fields.join("; ")
                ),
            });
        }
        Ok(())
    }

    /// The same dictionary with its artifacts in `store` instead of `DIR/store`.
    pub fn with_store(mut self, store: Store) -> Self {
        self.store = store;
        self
    }

    /// The artifact store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Opens an existing dictionary.
    pub fn open(dir: &Path) -> Result<Self> {
        let path = dir.join("manifest.json");
        let text = tanas_core::read_text(&path).map_err(|source| PipelineError::Io {
            path: path.clone(),
            source,
        })?;
        let manifest: Manifest =
            serde_json::from_str(&text).map_err(|e| PipelineError::Config {
                path: path.clone(),
                problem: e.to_string(),
            })?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(PipelineError::Config {
                path,
                problem: format!("format `{}` is not {MANIFEST_FORMAT}", manifest.format),
            });
        }
        // Ids become paths (`tasks/<id>/`): the same plain-name rule as task files.
        for t in &manifest.tasks {
            if let Err(p) = tanas_data::task::check_id(&t.spec.id) {
                return Err(PipelineError::Config {
                    path,
                    problem: format!("task id {:?} {p}", t.spec.id),
                });
            }
        }
        Ok(Self {
            store: Store::new(dir.join("store")),
            dir: dir.to_path_buf(),
            manifest,
        })
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The entry of task `id`.
    pub fn get(&self, id: &str) -> Option<&DictEntry> {
        self.manifest.tasks.iter().find(|t| t.spec.id == id)
    }

    fn save(&self) -> Result<()> {
        write_json(&self.dir.join("manifest.json"), &self.manifest)
    }

    fn task_dir(&self, id: &str) -> PathBuf {
        self.dir.join("tasks").join(id)
    }

    /// Learns `task`: trains its epsilon-networks, takes its own Fisher, runs FUSE in the
    /// general space and stores the best cell's space. A task already in the dictionary is
    /// returned as it is; an id the dictionary holds with another definition is an error
    /// that says what differs.
    pub fn add<B: AutodiffBackend>(
        &mut self,
        task: &TaskData,
        device: &B::Device,
    ) -> Result<DictEntry> {
        if let Some(e) = self.get(&task.spec.id) {
            // What makes the task's data: everything but its description.
            let definition = |spec: &TaskSpec| {
                let mut v = serde_json::to_value(spec).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.remove("description");
                }
                v
            };
            let (held, given) = (definition(&e.spec), definition(&task.spec));
            if held != given {
                let fields = tanas_core::store::differing_fields(&held, &given);
                return Err(PipelineError::Config {
                    path: self.dir.join("manifest.json"),
                    problem: format!(
                        "task `{}` is in the dictionary with another definition ({}; held -> given): give the new task another id, or remove its manifest entry and `tasks/{}` to replace it",
                        task.spec.id,
                        fields.join("; "),
                        task.spec.id
                    ),
                });
            }
            return Ok(e.clone());
        }
        let learned = learn::<B>(&self.manifest.settings, &self.store, task, device)?;
        let id = &task.spec.id;
        let space_rel = Path::new("tasks").join(id).join("space.json");
        write_file(
            &self.dir.join(&space_rel),
            learned.space.to_json().as_bytes(),
        )?;
        write_json(&self.task_dir(id).join("index.json"), &learned.index)?;
        let entry = DictEntry {
            space: space_rel,
            ..learned.entry
        };
        self.manifest.tasks.push(entry.clone());
        self.save()?;
        Ok(entry)
    }

    /// Builds everything [`TaskDictionary::add`] needs for `task` (its networks, own Fisher
    /// and search) into `store`, and changes no dictionary file: jobs that prepare tasks run
    /// side by side, the additions that then find it all one after another. A dictionary
    /// `dir` that exists must have been made with `settings`.
    pub fn prepare<B: AutodiffBackend>(
        dir: &Path,
        settings: &DictSettings,
        store: &Store,
        task: &TaskData,
        device: &B::Device,
    ) -> Result<()> {
        if dir.join("manifest.json").exists() {
            Self::open(dir)?.check_settings(settings)?;
        }
        learn::<B>(settings, store, task, device).map(drop)
    }
    /// The learned search space of task `id`.
    pub fn space(&self, id: &str) -> Result<SearchSpace> {
        let entry = self.get(id).ok_or_else(|| self.missing(id))?;
        SearchSpace::load(&self.dir.join(&entry.space)).map_err(search_error)
    }

    fn missing(&self, id: &str) -> PipelineError {
        let ids: Vec<_> = self
            .manifest
            .tasks
            .iter()
            .map(|t| t.spec.id.as_str())
            .collect();
        PipelineError::Config {
            path: self.dir.join("manifest.json"),
            problem: format!(
                "task `{id}` is not in the dictionary (it has: {})",
                ids.join(", ")
            ),
        }
    }

    /// Distances from every dictionary task to `target`, closest first: for each seed,
    /// `d(F[a, target], F[target, target])` with the networks of that seed, where `F[a, t]`
    /// is network `a` on the target's Fisher probe data. The target's own networks and the Fishers
    /// are artifacts of the store (found there when a distance matrix made them). A
    /// dictionary task equal to the target is left out.
    pub fn closest<B: AutodiffBackend>(
        &self,
        target: &TaskData,
        metric: TaskDistance,
        head: HeadRule,
        device: &B::Device,
    ) -> Result<Vec<Closeness>> {
        let s = &self.manifest.settings;
        let sources: Vec<&DictEntry> = self
            .manifest
            .tasks
            .iter()
            .filter(|e| e.spec.id != target.spec.id)
            .collect();
        if sources.is_empty() {
            return Err(PipelineError::Config {
                path: self.dir.join("manifest.json"),
                problem: "the dictionary has no task to compare with".into(),
            });
        }
        let mut per_task = vec![Vec::new(); sources.len()];
        for (k, &seed) in s.seeds.iter().enumerate() {
            let net = network::<B>(&self.store, s.arch, &s.train, target, seed, device)?;
            let own_model = load_net::<B>(s.arch, target.num_labels, &net.outcome.weights, device)?;
            let of = NetOf {
                task: &target.spec.id,
                num_labels: target.num_labels,
                entry: &net.entry,
            };
            let (own, _) = fisher(
                &self.store,
                s.arch,
                &s.fisher,
                &own_model,
                of,
                target,
                seed,
                device,
            )?;
            for (i, entry) in sources.iter().enumerate() {
                let id = entry.networks.get(k).ok_or_else(|| PipelineError::Config {
                    path: self.dir.join("manifest.json"),
                    problem: format!("task `{}` has no network of seed {seed}", entry.spec.id),
                })?;
                let stored = self.store.entry(id)?;
                // The manifest names the network; it must be this task's, of this seed.
                let metrics = stored.dir.join(tanas_train::METRICS_FILE);
                let made: Option<tanas_train::TrainMetrics> =
                    tanas_train::checkpoint::read_json(&metrics).map_err(|e| {
                        PipelineError::Train {
                            task: entry.spec.id.clone(),
                            seed,
                            source: Box::new(e),
                        }
                    })?;
                if let Some(m) =
                    made.filter(|m| (m.task.as_str(), m.seed) != (&entry.spec.id, seed))
                {
                    return Err(PipelineError::Config {
                        path: self.dir.join("manifest.json"),
                        problem: format!(
                            "task `{}`: its network of seed {seed} ({id}) is a network of `{}` with seed {}",
                            entry.spec.id, m.task, m.seed
                        ),
                    });
                }
                let weights = stored.dir.join(tanas_train::WEIGHTS_FILE);
                let model = load_net::<B>(s.arch, entry.num_labels, &weights, device)?;
                let a = NetOf {
                    task: &entry.spec.id,
                    num_labels: entry.num_labels,
                    entry: &stored,
                };
                let (f, _) = fisher(
                    &self.store,
                    s.arch,
                    &s.fisher,
                    &model,
                    a,
                    target,
                    seed,
                    device,
                )?;
                per_task[i].push(distance(&f, &own, metric, head)?);
            }
        }
        let mut out: Vec<Closeness> = sources
            .iter()
            .zip(per_task)
            .map(|(e, d)| {
                let n = d.len() as f64;
                let mean = d.iter().sum::<f64>() / n;
                let std = if d.len() > 1 {
                    (d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
                } else {
                    0.0
                };
                Closeness {
                    task: e.spec.id.clone(),
                    mean,
                    std,
                    per_seed: d,
                }
            })
            .collect();
        out.sort_by(|a, b| a.mean.total_cmp(&b.mean));
        Ok(out)
    }
}

/// What learning a task made: its entry (`space` still empty), its learned space and the
/// store index of its artifacts.
struct Learned {
    entry: DictEntry,
    space: SearchSpace,
    index: BTreeMap<String, String>,
}

/// Trains the epsilon-networks of `task`, takes its own Fishers, runs FUSE in the general
/// space and derives the learned space: every artifact in `store`, found there when made
/// before.
fn learn<B: AutodiffBackend>(
    s: &DictSettings,
    store: &Store,
    task: &TaskData,
    device: &B::Device,
) -> Result<Learned> {
    let id = &task.spec.id;
    let mut index = BTreeMap::new();
    let (mut accuracies, mut balanced) = (Vec::new(), Vec::new());
    let mut networks = Vec::new();
    for &seed in &s.seeds {
        let net = network::<B>(store, s.arch, &s.train, task, seed, device)?;
        accuracies.push(net.outcome.metrics.test.accuracy);
        balanced.push(net.outcome.metrics.test.balanced_accuracy);
        let model = load_net::<B>(s.arch, task.num_labels, &net.outcome.weights, device)?;
        let of = NetOf {
            task: id,
            num_labels: task.num_labels,
            entry: &net.entry,
        };
        let (_, own) = fisher(store, s.arch, &s.fisher, &model, of, task, seed, device)?;
        index.insert(format!("nets/seed-{seed}"), net.entry.id());
        index.insert(format!("fisher/seed-{seed}"), own.id());
        networks.push(net.entry.id());
    }
    let space = SearchSpace::general()
        .with_skeleton(s.skeleton)
        .map_err(search_error)?;
    let (found, result) = search::<B>(
        store,
        Algorithm::Fuse,
        &s.search,
        &space,
        None,
        task,
        device,
    )?;
    index.insert("search".into(), found.id());
    let stages: Vec<StageRecord> = read_trace(&found.dir.join(TRACE_FILE)).map_err(search_error)?;
    let learned = SearchSpace::learned(s.space, &result.genotype, &stages, &space, s.skeleton)
        .map_err(search_error)?;
    let entry = DictEntry {
        spec: task.spec.clone(),
        num_labels: task.num_labels,
        genotype: result.genotype,
        space: PathBuf::new(),
        space_ops: learned.ops().to_vec(),
        space_size: learned.size(),
        test_accuracy: result.score.test_accuracy,
        balanced_accuracy: result.score.balanced_accuracy,
        net_test_accuracy: mean(&accuracies).unwrap_or(0.0),
        net_balanced_accuracy: mean(&balanced).unwrap_or(0.0),
        networks,
    };
    Ok(Learned {
        entry,
        space: learned,
        index,
    })
}

/// Search errors become pipeline errors (boxed).
pub(crate) fn search_error(e: impl Into<tanas_search::SearchError>) -> PipelineError {
    PipelineError::Search(Box::new(e.into()))
}
