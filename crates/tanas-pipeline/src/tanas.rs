//! TA-NAS (paper 003, Algorithm 2): find the dictionary task closest to a target with the
//! Fisher Task Distance, then search only that task's space; and [`run_tanas`], the whole
//! algorithm from one experiment file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};
use tanas_core::Store;
use tanas_core::report::SearchOutcome;
use tanas_data::{DataDirs, TaskData};
use tanas_distance::{HeadRule, TaskDistance};
use tanas_search::{Algorithm, SearchSpace};

use crate::artifacts::search;
use crate::dictionary::{Closeness, DictSettings, TaskDictionary, search_error};
use crate::error::{PipelineError, Result};
use crate::matrix::{write_file, write_json};
use crate::tasks::LoadedTasks;

/// Which space the target is searched in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SpaceChoice {
    /// The learned space of the closest dictionary task (TA-NAS).
    Closest,
    /// The learned space of the farthest dictionary task (a control: does closeness matter?).
    Farthest,
    /// The learned space of a dictionary task drawn with the search seed among those neither
    /// the target nor the closest (a control).
    RandomOther,
    /// The papers' general space.
    General,
    /// A space file.
    File(PathBuf),
}

impl std::str::FromStr for SpaceChoice {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s {
            "closest" => Self::Closest,
            "farthest" => Self::Farthest,
            "random-other" => Self::RandomOther,
            "general" => Self::General,
            path => Self::File(path.into()),
        })
    }
}

impl std::fmt::Display for SpaceChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Closest => f.write_str("closest"),
            Self::Farthest => f.write_str("farthest"),
            Self::RandomOther => f.write_str("random-other"),
            Self::General => f.write_str("general"),
            Self::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Seed-path tag of the draw of [`SpaceChoice::RandomOther`].
const TAG_RANDOM_OTHER: u64 = 41;

impl SpaceChoice {
    /// Whether the space is a dictionary task's, picked by the distances to the target.
    fn by_distance(&self) -> bool {
        matches!(self, Self::Closest | Self::Farthest | Self::RandomOther)
    }

    /// The dictionary task whose space this choice searches, from the distances to the
    /// target (closest first; the target itself is not among them) and the search seed.
    /// `None` for the general space and files, and where there are too few tasks to choose
    /// from (`random-other` needs a task other than the closest).
    pub fn space_task<'a>(&self, distances: &'a [Closeness], seed: u64) -> Option<&'a str> {
        let task = match self {
            Self::Closest => distances.first(),
            Self::Farthest => distances.last(),
            Self::RandomOther => match distances.len() {
                0 | 1 => None,
                n => {
                    let k = tanas_search::derive_seed(seed, &[TAG_RANDOM_OTHER]) % (n as u64 - 1);
                    distances.get(1 + k as usize)
                }
            },
            Self::General | Self::File(_) => None,
        };
        task.map(|c| c.task.as_str())
    }
}

/// What a target search produced (`final.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FinalReport {
    /// The target task.
    pub target: String,
    /// The search algorithm.
    pub algorithm: Algorithm,
    /// The closest dictionary task (when distances were computed).
    pub closest_task: Option<String>,
    /// The dictionary task whose learned space was searched (closest, farthest or a random
    /// other one; none for the general space or a space file).
    #[serde(default)]
    pub space_task: Option<String>,
    /// Distances from the dictionary tasks, closest first.
    pub distances: Vec<Closeness>,
    /// The searched space.
    pub space: SearchSpace,
    /// Its size in distinct genotypes ([`SearchSpace::size`]).
    #[serde(default)]
    pub space_size: f64,
    /// Whether FUSE's first stage started from the closest task's best cell.
    #[serde(default)]
    pub warm_start: bool,
    /// The search seed.
    #[serde(default)]
    pub seed: u64,
    /// The found cell.
    pub genotype: tanas_zoo::cell::Genotype,
    /// Its parameters, its test score and the costs of the search.
    #[serde(flatten)]
    pub outcome: SearchOutcome,
    /// Seconds of the distance computation (target networks and Fishers).
    pub distance_seconds: f64,
    /// The device the search ran on.
    pub device: String,
}

/// How a target is searched (`tanas search`'s options).
#[derive(Debug, Clone, PartialEq)]
pub struct TargetSearch {
    /// The search algorithm.
    pub algorithm: Algorithm,
    /// The space searched.
    pub space: SpaceChoice,
    /// The distance that picks the closest task.
    pub metric: TaskDistance,
    /// How that distance matches heads of different sizes.
    pub head: HeadRule,
    /// Start FUSE's first stage from the closest task's best cell (Algorithm 2's c*).
    pub warm_start: bool,
    /// The search seed (default: the dictionary's search seed): repeated searches of one
    /// target with other seeds give the spread of a method's result.
    pub seed: Option<u64>,
}

impl TargetSearch {
    /// TA-NAS: FUSE in the closest task's space by the FTD (heads excluded), warm-started,
    /// with the dictionary's seed.
    pub fn tanas() -> Self {
        TargetSearch {
            algorithm: Algorithm::Fuse,
            space: SpaceChoice::Closest,
            metric: TaskDistance::Ftd,
            head: HeadRule::Exclude,
            warm_start: true,
            seed: None,
        }
    }
}

/// Searches a network for `target` as `how` says: the search is an artifact of the
/// dictionary's store (found there when an equal search ran before, e.g. the dictionary's
/// own search of a task); `out` gets `final.json`, `genotype.dot` and `index.json` (the
/// search's store path: its trace, checkpoint and weights).
pub fn search_target<B: AutodiffBackend>(
    dict: &TaskDictionary,
    target: &TaskData,
    how: &TargetSearch,
    out: &Path,
    device_name: &str,
    device: &B::Device,
) -> Result<FinalReport> {
    let settings = &dict.manifest().settings;
    let mut config = settings.search.clone();
    if let Some(seed) = how.seed {
        config.common.seed = seed;
    }
    let (algorithm, choice) = (how.algorithm, &how.space);
    let t0 = Instant::now();
    let distances = if choice.by_distance() {
        dict.closest::<B>(target, how.metric, how.head, device)?
    } else {
        Vec::new()
    };
    let distance_seconds = t0.elapsed().as_secs_f64();
    let closest_task = distances.first().map(|c| c.task.clone());
    let space_task = choice
        .space_task(&distances, config.common.seed)
        .map(str::to_string);
    if choice.by_distance() && space_task.is_none() {
        return Err(PipelineError::Config {
            path: dict.dir().join("manifest.json"),
            problem: format!(
                "no dictionary task for the space `{choice}` (random-other needs one besides the target and the closest one)"
            ),
        });
    }
    let space = match (choice, &space_task) {
        (SpaceChoice::File(path), _) => SearchSpace::load(path).map_err(search_error)?,
        (_, Some(task)) => dict.space(task)?,
        (_, None) => SearchSpace::general()
            .with_skeleton(settings.skeleton)
            .map_err(search_error)?,
    };
    // Algorithm 2's c*: the closest task's best cell starts FUSE's first stage (the control
    // spaces start cold, like the general space, so that they differ from TA-NAS only in
    // the space; `--no-warm-start` gives the closest space's cold start).
    let incumbent = match (how.warm_start, algorithm, choice, &space_task) {
        (true, Algorithm::Fuse, SpaceChoice::Closest, Some(task)) => {
            dict.get(task).map(|e| e.genotype.clone())
        }
        _ => None,
    };
    let warm_start = incumbent.is_some();
    let (found, result) = search::<B>(
        dict.store(),
        algorithm,
        &config,
        &space,
        incumbent.as_ref(),
        target,
        device,
    )?;
    write_json(
        &out.join("index.json"),
        &BTreeMap::from([("search", found.id())]),
    )?;
    let report = FinalReport {
        target: target.spec.id.clone(),
        algorithm,
        closest_task,
        space_task,
        distances,
        space_size: space.size(),
        warm_start,
        seed: config.common.seed,
        space,
        genotype: result.genotype.clone(),
        outcome: SearchOutcome {
            params: result.params,
            score: result.score,
            search_seconds: result.search_seconds,
            candidate_epochs: result.candidate_epochs,
            final_seconds: result.final_seconds,
        },
        distance_seconds,
        device: device_name.to_string(),
    };
    write_json(&out.join("final.json"), &report)?;
    write_file(
        &out.join("genotype.dot"),
        result.genotype.to_dot().as_bytes(),
    )?;
    Ok(report)
}

/// A TA-NAS experiment (`tanas run`).
///
/// ```toml
/// task_files = ["../tasks/mnist.toml", "../tasks/fashion.toml"]   # relative to this file
/// dictionary_tasks = ["mnist-0", "mnist-1", "mnist-3", "fashion-0"]
/// target = "mnist-2"
/// algorithm = "fuse"        # fuse | random
/// metric = "ftd"
/// head = "exclude"          # exclude | pad (heads of different sizes)
///
/// [dictionary]              # DictSettings: arch, seeds, train, fisher, search, skeleton
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TanasExperiment {
    /// Task files, relative to the experiment file.
    pub task_files: Vec<PathBuf>,
    /// The learned tasks.
    pub dictionary_tasks: Vec<String>,
    /// The new task.
    pub target: String,
    /// The search algorithm.
    #[serde(default = "default_algorithm")]
    pub algorithm: Algorithm,
    /// The task distance.
    #[serde(default = "default_metric")]
    pub metric: String,
    /// How the distance matches heads of different sizes (default `exclude`).
    #[serde(default)]
    pub head: HeadRule,
    /// Whether FUSE's first stage starts from the closest task's best cell (default true;
    /// false for the ablation).
    #[serde(default = "yes")]
    pub warm_start: bool,
    /// Settings of the dictionary.
    pub dictionary: DictSettings,
}

fn default_algorithm() -> Algorithm {
    Algorithm::Fuse
}

fn yes() -> bool {
    true
}

fn default_metric() -> String {
    "ftd".into()
}

impl TanasExperiment {
    /// Reads an experiment file; task files become relative to its directory.
    pub fn read(path: &Path) -> Result<Self> {
        let err = |problem: String| PipelineError::Config {
            path: path.into(),
            problem,
        };
        let mut exp: Self = tanas_core::read_toml(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        exp.task_files = exp.task_files.iter().map(|f| base.join(f)).collect();
        if exp.dictionary_tasks.is_empty() {
            return Err(err("dictionary_tasks is empty".into()));
        }
        if let Some((i, id)) = exp
            .dictionary_tasks
            .iter()
            .enumerate()
            .find(|(i, id)| exp.dictionary_tasks[..*i].contains(id))
        {
            return Err(err(format!(
                "dictionary_tasks names `{id}` twice (entries {} and {})",
                exp.dictionary_tasks
                    .iter()
                    .position(|x| x == id)
                    .unwrap_or(0)
                    + 1,
                i + 1
            )));
        }
        if exp.dictionary_tasks.contains(&exp.target) {
            return Err(err(format!(
                "the target `{}` is also a dictionary task",
                exp.target
            )));
        }
        exp.metric
            .parse::<TaskDistance>()
            .map_err(|e| err(e.to_string()))?;
        Ok(exp)
    }

    /// The task file of each dictionary task, then the target's (the first of `task_files`
    /// that defines it); `exp_path` is named in the error for a task none defines.
    pub fn task_file_per_task(&self, exp_path: &Path) -> Result<Vec<PathBuf>> {
        let mut ids = self.dictionary_tasks.clone();
        ids.push(self.target.clone());
        let found = crate::tasks::locate(&self.task_files, &ids, exp_path)?;
        Ok(found.into_iter().map(|(file, _)| file).collect())
    }
}

/// Runs Algorithm 2: adds every dictionary task (resumable), finds the target's closest task
/// and searches the target in its space. The dictionary in `out/dict`, the target's report in
/// `out/target`, the networks, Fishers and searches in `store`.
pub fn run_tanas<B: AutodiffBackend>(
    exp: &TanasExperiment,
    exp_path: &Path,
    dirs: &DataDirs,
    out: &Path,
    store: &Store,
    device_name: &str,
    device: &B::Device,
) -> Result<FinalReport> {
    let mut ids = exp.dictionary_tasks.clone();
    ids.push(exp.target.clone());
    let loaded = LoadedTasks::load(&exp.task_files, &ids, dirs, exp_path)?;
    let (target, sources) = loaded
        .tasks
        .split_last()
        .ok_or_else(|| PipelineError::Config {
            path: exp_path.into(),
            problem: "no tasks".into(),
        })?;
    let mut dict = TaskDictionary::open_or_create(&out.join("dict"), exp.dictionary.clone())?
        .with_store(store.clone());
    for (i, task) in sources.iter().enumerate() {
        tracing::info!(
            "dictionary task {}/{}: {}",
            i + 1,
            sources.len(),
            task.spec.id
        );
        dict.add::<B>(task, device)?;
    }
    let metric: TaskDistance = exp
        .metric
        .parse()
        .map_err(|e: tanas_distance::DistanceError| PipelineError::Config {
            path: exp_path.into(),
            problem: e.to_string(),
        })?;
    let how = TargetSearch {
        algorithm: exp.algorithm,
        metric,
        head: exp.head,
        warm_start: exp.warm_start,
        ..TargetSearch::tanas()
    };
    search_target::<B>(
        &dict,
        target,
        &how,
        &out.join("target"),
        device_name,
        device,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranked(ids: &[&str]) -> Vec<Closeness> {
        ids.iter()
            .enumerate()
            .map(|(i, id)| Closeness {
                task: id.to_string(),
                mean: 0.1 * (i + 1) as f64,
                std: 0.0,
                per_seed: Vec::new(),
            })
            .collect()
    }

    #[test]
    fn the_control_spaces_are_the_farthest_and_a_seeded_other_task() {
        // Closest first; the target is never among the distances (`closest` leaves it out).
        let d = ranked(&["m0", "m1", "f3", "f0", "f1"]);
        assert_eq!(SpaceChoice::Closest.space_task(&d, 0), Some("m0"));
        assert_eq!(SpaceChoice::Farthest.space_task(&d, 0), Some("f1"));
        assert_eq!(SpaceChoice::General.space_task(&d, 0), None);
        // The random other task: never the closest, the same for the same seed, and every
        // other task for some seed.
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..64 {
            let t = SpaceChoice::RandomOther.space_task(&d, seed).unwrap();
            assert_ne!(t, "m0");
            assert_eq!(SpaceChoice::RandomOther.space_task(&d, seed), Some(t));
            seen.insert(t);
        }
        assert_eq!(seen.len(), 4, "{seen:?}");
        // With the closest task alone there is no other task to draw.
        assert_eq!(SpaceChoice::RandomOther.space_task(&d[..1], 0), None);
        assert_eq!(SpaceChoice::RandomOther.space_task(&[], 0), None);
        // Names round-trip through the command line's parser.
        for c in [SpaceChoice::Farthest, SpaceChoice::RandomOther] {
            assert_eq!(c.to_string().parse::<SpaceChoice>(), Ok(c));
        }
    }
}
