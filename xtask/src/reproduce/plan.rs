//! The job graph of a reproduction: one node per `tanas` stage (a distance matrix, a
//! dictionary task, a target's search with one seed, a baseline), the config files it reads,
//! the stages it needs, the files it publishes into the report, its key and its resources.
//! `cargo xtask reproduce --plan` prints it as JSON; the executors run it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::Dirs;
use super::profile::{Profile, Study};
use crate::tanas::Tanas;
use tanas_core::write_atomic;
use tanas_jobs::{Job, Resources};

/// One step of the plan.
#[derive(Debug, Clone)]
pub struct Stage {
    /// Stable identity in the job graph: `<study>/<kind>/<what>` (also the file name of its
    /// log and completion marker under the Slurm executor, with `/` as `.`).
    pub id: String,
    /// What the progress lines and run.json call it.
    pub label: String,
    /// Estimated seconds on the profile's reference machine.
    pub estimate: f64,
    what: StageKind,
    study: Study,
}

#[derive(Debug, Clone)]
enum StageKind {
    /// `tanas distance matrix --network TASK --seed S`: one epsilon-network of the
    /// architecture's matrix and its Fishers on every task, into the store.
    NetworkPart {
        arch: String,
        task: String,
        seed: u64,
    },
    /// `tanas distance matrix` for one architecture (its networks and Fishers are the
    /// parts', found in the store; the distances and files are its own work).
    Matrix { arch: String },
    /// `tanas dict add --prepare` of one task: its networks, own Fisher and search into the
    /// store (the networks and Fisher are the network parts'), in parallel with the others.
    DictPrepare { task: String, file: String },
    /// `tanas dict add` of one task: finds what its preparation made and adds it to the
    /// dictionary (one writer at a time).
    DictAdd { task: String, file: String },
    /// `tanas search` of a target with one search seed.
    Search {
        target: String,
        file: String,
        method: Method,
        seed: u64,
    },
    /// `tanas baseline` of a hand-designed network on a target (a profile's `baselines`
    /// entry: an architecture, or `cellnet:<genotype>` for a cell network of
    /// `configs/genotypes/<genotype>.json` on the study's skeleton).
    Baseline {
        target: String,
        file: String,
        arch: String,
    },
}

/// A `baselines` entry's file-name form (`cellnet:darts_v2` -> `cellnet-darts_v2`).
pub fn baseline_name(entry: &str) -> String {
    entry.replace(':', "-")
}

/// `tanas baseline`'s network arguments of a `baselines` entry.
fn baseline_args(entry: &str) -> Vec<String> {
    match entry.split_once(':') {
        Some((arch, genotype)) => vec![
            "--arch".into(),
            arch.into(),
            "--genotype".into(),
            format!("configs/genotypes/{genotype}.json"),
        ],
        None => vec!["--arch".into(), entry.into()],
    }
}

impl StageKind {
    /// `<kind>/<what>`, unique within a study.
    fn id(&self) -> String {
        match self {
            Self::NetworkPart { arch, task, seed } => {
                format!("network/{arch}/{task}-seed-{seed}")
            }
            Self::Matrix { arch } => format!("matrix/{arch}"),
            Self::DictPrepare { task, .. } => format!("dict-prepare/{task}"),
            Self::DictAdd { task, .. } => format!("dict-add/{task}"),
            Self::Search {
                target,
                method,
                seed,
                ..
            } => format!("search/{target}/{}", method.run_name(*seed)),
            Self::Baseline { target, arch, .. } => {
                format!("baseline/{target}/{}", baseline_name(arch))
            }
        }
    }
}

/// The search methods compared for every target: TA-NAS, its controls (the same FUSE budget
/// and search seeds in the closest task's space without warm start, in the farthest task's
/// space, in a random other task's space), FUSE in the general space and random search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// FUSE in the closest dictionary task's space, warm-started from its cell (TA-NAS).
    FuseClosest,
    /// FUSE in the closest task's space, every first-stage candidate drawn (no warm start).
    FuseClosestCold,
    /// FUSE in the farthest dictionary task's space (no warm start).
    FuseFarthest,
    /// FUSE in a dictionary task's space drawn with the search seed among those neither the
    /// target nor the closest (no warm start).
    FuseRandomOther,
    /// FUSE in the papers' general space.
    FuseGeneral,
    /// Random search in the general space, at FUSE's candidate-epoch budget.
    RandomGeneral,
}

impl Method {
    /// Every method, in report order.
    pub const ALL: [Method; 6] = [
        Self::FuseClosest,
        Self::FuseClosestCold,
        Self::FuseFarthest,
        Self::FuseRandomOther,
        Self::FuseGeneral,
        Self::RandomGeneral,
    ];

    /// Method name.
    pub fn id(self) -> &'static str {
        match self {
            Self::FuseClosest => "fuse-closest",
            Self::FuseClosestCold => "fuse-closest-cold",
            Self::FuseFarthest => "fuse-farthest",
            Self::FuseRandomOther => "fuse-random-other",
            Self::FuseGeneral => "fuse-general",
            Self::RandomGeneral => "random-general",
        }
    }

    /// File stem and directory name of the search with `seed`.
    pub fn run_name(self, seed: u64) -> String {
        format!("{}-seed-{seed}", self.id())
    }

    fn args(self) -> &'static [&'static str] {
        match self {
            Self::FuseClosest => &["--algo", "fuse", "--space", "closest"],
            Self::FuseClosestCold => &["--algo", "fuse", "--space", "closest", "--no-warm-start"],
            Self::FuseFarthest => &["--algo", "fuse", "--space", "farthest"],
            Self::FuseRandomOther => &["--algo", "fuse", "--space", "random-other"],
            Self::FuseGeneral => &["--algo", "fuse", "--space", "general"],
            Self::RandomGeneral => &["--algo", "random", "--space", "general"],
        }
    }
}

/// Approximate parameter counts (millions) of the hand-designed networks, for the ETA.
fn mparams(arch: &str) -> f64 {
    match arch {
        "small-cnn" => 0.6,
        "resnet18" => 11.2,
        "vgg16" => 14.7,
        "densenet121" => 7.0,
        // A cell network on the study's skeleton trains about as long as a found network.
        a if a.starts_with("cellnet") => 3.0,
        _ => 5.0,
    }
}

/// The stages of `study` over its tasks `ids` (task id, task file), in plan order: the
/// distance matrices (network parts, then the matrix), the dictionary tasks (preparations,
/// then additions), then per target the searches and baselines.
pub fn plan(study: &Study, ids: &[(String, String)], profile: &Profile) -> Vec<Stage> {
    let e = profile.estimate;
    let stage = |label: String, estimate: f64, what: StageKind| Stage {
        id: format!("{}/{}", study.name, what.id()),
        label: format!("{}: {label}", study.name),
        estimate,
        what,
        study: study.clone(),
    };
    let file_of = |task: &str| {
        ids.iter()
            .find(|(id, _)| id == task)
            .map_or_else(|| study.task_files[0].clone(), |(_, f)| f.clone())
    };
    // Most of a matrix's time is its networks and Fishers: spread over the parts.
    let parts = (ids.len() as f64 * study.seeds as f64).max(1.0);
    let mut stages = Vec::new();
    for arch in &study.archs {
        for seed in 0..study.seeds {
            for (task, _) in ids {
                stages.push(stage(
                    format!("network {arch} {task} seed {seed}"),
                    0.95 * e.matrix / parts,
                    StageKind::NetworkPart {
                        arch: arch.clone(),
                        task: task.clone(),
                        seed,
                    },
                ));
            }
        }
        stages.push(stage(
            format!("distance matrix ({arch})"),
            0.05 * e.matrix,
            StageKind::Matrix { arch: arch.clone() },
        ));
    }
    for (task, file) in ids {
        stages.push(stage(
            format!("dictionary: prepare {task}"),
            e.dict_task,
            StageKind::DictPrepare {
                task: task.clone(),
                file: file.clone(),
            },
        ));
    }
    for (task, file) in ids {
        stages.push(stage(
            format!("dictionary: add {task}"),
            1.0,
            StageKind::DictAdd {
                task: task.clone(),
                file: file.clone(),
            },
        ));
    }
    for target in &study.targets {
        for method in Method::ALL {
            for seed in 0..study.search_seeds {
                stages.push(stage(
                    format!("{target}: {} seed {seed}", method.id()),
                    e.search,
                    StageKind::Search {
                        target: target.to_string(),
                        file: file_of(target),
                        method,
                        seed,
                    },
                ));
            }
        }
        for arch in &study.baselines {
            stages.push(stage(
                format!("{target}: baseline {arch}"),
                e.baseline_per_mparam * mparams(arch),
                StageKind::Baseline {
                    target: target.to_string(),
                    file: file_of(target),
                    arch: arch.clone(),
                },
            ));
        }
    }
    stages
}

/// The job graph of a plan: one node per stage, and the files each stage copies into the
/// report directory when it is done (made by the stage, copy in the report directory).
pub struct Graph {
    /// The nodes, in plan order.
    pub jobs: Vec<Job>,
    /// Per node, its (result, report copy) pairs.
    pub publish: Vec<Vec<(PathBuf, PathBuf)>>,
}

/// The job graph of `plan`: writes every stage's config files under `out` (so that each
/// command runs as it is) and computes the keys.
pub fn graph(plan: Vec<Stage>, t: &Tanas, out: &Path, resources: &Resources) -> Result<Graph> {
    let needs = needs(&plan);
    let mut graph = Graph {
        jobs: Vec::new(),
        publish: Vec::new(),
    };
    for (stage, needs) in plan.into_iter().zip(needs) {
        let (args, publish) = prepare(t, out, &stage)?;
        let argv = t.argv(&args);
        graph.jobs.push(Job {
            key: Job::key_of(&argv, &t.root)?,
            id: stage.id,
            label: stage.label,
            argv,
            cwd: t.root.clone(),
            needs,
            resources: Resources {
                time_s: resources.time_s.max(3.0 * stage.estimate),
                ..*resources
            },
            gpus: usize::from(crate::tanas::is_gpu(&t.device)),
            estimate: stage.estimate,
        });
        graph.publish.push(publish);
    }
    Ok(graph)
}

/// What each stage needs to have finished before it starts: a matrix its architecture's
/// network parts; a dictionary task's preparation the first architecture's network parts of
/// that task (its networks and own Fisher are found in the store); its addition the
/// preparation and the task added before it (one writer per dictionary); a search or a
/// baseline the whole dictionary. Network parts need nothing.
pub fn needs(plan: &[Stage]) -> Vec<Vec<usize>> {
    let mut needs = Vec::with_capacity(plan.len());
    for (i, stage) in plan.iter().enumerate() {
        let same_study = |k: &usize| plan[*k].study.name == stage.study.name;
        let before = 0..i;
        let last_add = before
            .rev()
            .filter(same_study)
            .find(|&k| matches!(plan[k].what, StageKind::DictAdd { .. }));
        needs.push(match &stage.what {
            StageKind::NetworkPart { .. } => Vec::new(),
            StageKind::Matrix { arch } => (0..i)
                .filter(same_study)
                .filter(|&k| {
                    matches!(&plan[k].what, StageKind::NetworkPart { arch: a, .. } if a == arch)
                })
                .collect(),
            StageKind::DictPrepare { task, .. } => (0..i)
                .filter(same_study)
                .filter(|&k| {
                    matches!(&plan[k].what, StageKind::NetworkPart { arch, task: t, .. }
                        if *arch == stage.study.archs[0] && t == task)
                })
                .collect(),
            StageKind::DictAdd { task, .. } => (0..i)
                .filter(same_study)
                .filter(|&k| matches!(&plan[k].what, StageKind::DictPrepare { task: t, .. } if t == task))
                .chain(last_add)
                .collect(),
            StageKind::Search { .. } | StageKind::Baseline { .. } => last_add.into_iter().collect(),
        });
    }
    needs
}

/// Writes the config files of `stage` and says how to run it: its `tanas` arguments and
/// the files it publishes.
type Prepared = (Vec<OsString>, Vec<(PathBuf, PathBuf)>);

fn prepare(t: &Tanas, out: &Path, stage: &Stage) -> Result<Prepared> {
    let study = &stage.study;
    let dirs = Dirs::of(out, &study.name);
    let os = tanas_jobs::args;
    // `tanas distance matrix` of `arch` into `run`, its experiment file written.
    let matrix_args = |arch: &str, run: &Path| -> Result<Vec<OsString>> {
        let exp = dirs.matrix(arch).join("experiment.toml");
        write_atomic(&exp, study.experiment_toml(arch, &t.root).as_bytes())?;
        Ok(os(&[
            &"distance",
            &"matrix",
            &"--experiment",
            &exp,
            &"--out",
            &run,
        ]))
    };
    Ok(match &stage.what {
        StageKind::NetworkPart { arch, task, seed } => {
            let run = dirs
                .matrix(arch)
                .join("parts")
                .join(format!("{task}-seed-{seed}"));
            let mut args = matrix_args(arch, &run)?;
            args.extend(os(&[&"--network", task, &"--seed", &seed.to_string()]));
            (args, Vec::new())
        }
        StageKind::Matrix { arch } => {
            let run = dirs.matrix(arch).join("run");
            let dest = dirs.report.join(arch);
            let mut names = vec!["nets.json".to_string()];
            for n in study.transfer_samples() {
                for ext in ["json", "svg", "png"] {
                    names.push(format!("distance/transfer-gain-n{n}.{ext}"));
                }
            }
            for metric in study.metrics() {
                for ext in ["json", "csv", "svg", "png"] {
                    names.push(format!("distance/{metric}.{ext}"));
                }
                // The other head rule's matrix and the same-task noise floor.
                names.push(format!(
                    "distance/{metric}-head-{}.json",
                    study.other_head()
                ));
                names.push(format!("distance/{metric}-noise.json"));
            }
            let publish = names
                .iter()
                .map(|n| {
                    let file = Path::new(n).file_name().unwrap_or_default();
                    (run.join(n), dest.join(file))
                })
                .collect();
            (matrix_args(arch, &run)?, publish)
        }
        StageKind::DictPrepare { task, file } | StageKind::DictAdd { task, file } => {
            let settings = dirs.work.join("dict-settings.toml");
            write_atomic(&settings, study.dict_toml().as_bytes())?;
            let dict = dirs.dict();
            let prepare = matches!(stage.what, StageKind::DictPrepare { .. });
            let args = tanas_jobs::dict_add(&dict, &settings, Path::new(file), task, prepare);
            if prepare {
                (args, Vec::new())
            } else {
                let manifest = dict.join("manifest.json");
                (args, vec![(manifest, dirs.report.join("dictionary.json"))])
            }
        }
        StageKind::Search {
            target,
            file,
            method,
            seed,
        } => {
            let name = method.run_name(*seed);
            let run = dirs.target(target, &name);
            let mut args = os(&[&"search", &"--dict", &dirs.dict()]);
            args.extend(method.args().iter().map(OsString::from));
            args.extend(os(&[
                &"--tasks",
                file,
                &"--task",
                target,
                &"--head",
                &study.head,
                &"--seed",
                &seed.to_string(),
                &"--out",
                &run,
            ]));
            (
                args,
                vec![(run.join("final.json"), dirs.target_report(target, &name))],
            )
        }
        StageKind::Baseline { target, file, arch } => {
            let name = format!("baseline-{}", baseline_name(arch));
            let run = dirs.target(target, &name);
            let mut args = os(&[
                &"baseline",
                &"--dict",
                &dirs.dict(),
                &"--tasks",
                file,
                &"--task",
                target,
            ]);
            args.extend(baseline_args(arch).into_iter().map(OsString::from));
            args.extend(os(&[&"--out", &run]));
            (
                args,
                vec![(run.join("baseline.json"), dirs.target_report(target, &name))],
            )
        }
    })
}

/// Copies a stage's result into the report directory, replacing an older copy.
pub fn publish(from: &Path, to: &Path) -> Result<()> {
    let bytes = std::fs::read(from).with_context(|| format!("{}: cannot read", from.display()))?;
    Ok(write_atomic(to, &bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_needs_the_matrix_and_the_dictionary_before_it() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let profile = Profile::named("quick", &root).unwrap_or_else(|e| panic!("{e}"));
        let study = &profile.studies[0];
        let ids: Vec<(String, String)> = ["mnist-0", "mnist-1", "mnist-2"]
            .iter()
            .map(|t| (t.to_string(), study.task_files[0].clone()))
            .collect();
        let plan = plan(study, &ids, &profile);
        let needs = needs(&plan);
        // 3 tasks x 3 seeds network parts, the matrix, 3 dictionary preparations (each
        // after its task's network parts), 3 additions (a chain), then searches and baselines.
        assert!((0..9).all(|k| matches!(plan[k].what, StageKind::NetworkPart { .. })));
        assert!(matches!(plan[9].what, StageKind::Matrix { .. }));
        assert!(needs[..9].iter().all(Vec::is_empty));
        assert_eq!(needs[9], (0..9).collect::<Vec<_>>());
        assert_eq!(needs[10..13], [vec![0, 3, 6], vec![1, 4, 7], vec![2, 5, 8]]);
        assert_eq!(needs[13..16], [vec![10], vec![11, 13], vec![12, 14]]);
        assert!(plan.len() > 16);
        assert!(needs[16..].iter().all(|n| n == &[15]), "{:?}", &needs[16..]);
        let mut ids: Vec<&str> = plan.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(
            ids[8..11],
            [
                "mnist-fashion/network/small-cnn/mnist-2-seed-2",
                "mnist-fashion/matrix/small-cnn",
                "mnist-fashion/dict-prepare/mnist-0"
            ]
        );
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), plan.len(), "node ids are unique");
    }
}
