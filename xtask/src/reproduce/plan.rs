//! The job graph of a reproduction: one node per `tanas` stage (a distance matrix, a
//! dictionary task, a target's search with one seed, a baseline), the config files it reads,
//! the stages it needs, the files it publishes into the report, its key and its resources.
//! `cargo xtask reproduce --plan` prints it as JSON; the executors run it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{Value, json};

use super::Dirs;
use super::profile::{Profile, Resources, Study};
use crate::tanas::Tanas;
use tanas_core::write_atomic;

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
    /// `tanas dict add` of one task (its networks and own Fisher are the matrix's).
    DictAdd { task: String, file: String },
    /// `tanas search` of a target with one search seed.
    Search {
        target: String,
        file: String,
        method: Method,
        seed: u64,
    },
    /// `tanas baseline` of a hand-designed network on a target.
    Baseline {
        target: String,
        file: String,
        arch: String,
    },
}

impl StageKind {
    /// `<kind>/<what>`, unique within a study.
    fn id(&self) -> String {
        match self {
            Self::NetworkPart { arch, task, seed } => {
                format!("network/{arch}/{task}-seed-{seed}")
            }
            Self::Matrix { arch } => format!("matrix/{arch}"),
            Self::DictAdd { task, .. } => format!("dict-add/{task}"),
            Self::Search {
                target,
                method,
                seed,
                ..
            } => format!("search/{target}/{}", method.run_name(*seed)),
            Self::Baseline { target, arch, .. } => format!("baseline/{target}/{arch}"),
        }
    }
}

/// The search methods compared for every target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// FUSE in the closest dictionary task's space (TA-NAS).
    FuseClosest,
    /// FUSE in the papers' general space.
    FuseGeneral,
    /// Random search in the general space, at FUSE's candidate-epoch budget.
    RandomGeneral,
}

impl Method {
    /// Every method, in report order.
    pub const ALL: [Method; 3] = [Self::FuseClosest, Self::FuseGeneral, Self::RandomGeneral];

    /// Method name.
    pub fn id(self) -> &'static str {
        match self {
            Self::FuseClosest => "fuse-closest",
            Self::FuseGeneral => "fuse-general",
            Self::RandomGeneral => "random-general",
        }
    }

    /// File stem and directory name of the search with `seed`.
    pub fn run_name(self, seed: u64) -> String {
        format!("{}-seed-{seed}", self.id())
    }

    fn args(self) -> [&'static str; 4] {
        match self {
            Self::FuseClosest => ["--algo", "fuse", "--space", "closest"],
            Self::FuseGeneral => ["--algo", "fuse", "--space", "general"],
            Self::RandomGeneral => ["--algo", "random", "--space", "general"],
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
        _ => 5.0,
    }
}

/// The stages of `study` over its tasks `ids` (task id, task file), in plan order: the
/// distance matrices, the dictionary tasks, then per target the searches and baselines.
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
            format!("dictionary: add {task}"),
            e.dict_task,
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

/// A node of the job graph: a stage's `tanas` call, the stages it needs, the files it
/// copies into the report directory when it is done, its key and its resources.
pub struct Job {
    /// The stage.
    pub stage: Stage,
    /// The `tanas` arguments (without the global `--device`, `--store`, `--quiet`).
    pub args: Vec<OsString>,
    /// Indices of the jobs that must have finished before this one starts.
    pub needs: Vec<usize>,
    /// (made by the stage, copy in the report directory).
    pub publish: Vec<(PathBuf, PathBuf)>,
    /// FNV-1a of the full command and of every file it names (its config files, task files):
    /// the same key, the same work. The artifacts the stage builds have their own keys in
    /// the store; this one tells an executor whether a finished job is still current.
    pub key: String,
    /// What one run of it asks of a machine.
    pub resources: Resources,
}

/// The jobs of `plan`: writes every stage's config files under `out` (so that each command
/// runs as it is) and computes the keys.
pub fn jobs(plan: Vec<Stage>, t: &Tanas, out: &Path, resources: &Resources) -> Result<Vec<Job>> {
    let needs = needs(&plan);
    plan.into_iter()
        .zip(needs)
        .map(|(stage, needs)| {
            let (args, publish) = prepare(t, out, &stage)?;
            let mut hash = tanas_core::Fnv1a::new();
            for arg in t.argv(&args) {
                hash = hash.bytes(arg.as_encoded_bytes()).u64(0);
                let path = t.root.join(&arg);
                if path.is_file() {
                    let bytes = std::fs::read(&path)
                        .with_context(|| format!("{}: cannot read", path.display()))?;
                    hash = hash.bytes(&bytes);
                }
            }
            let resources = Resources {
                time_s: resources.time_s.max(3.0 * stage.estimate),
                ..*resources
            };
            Ok(Job {
                stage,
                args,
                needs,
                publish,
                key: hash.hex(),
                resources,
            })
        })
        .collect()
}

/// The job graph as JSON (`cargo xtask reproduce --plan`): per node its id, label, key, the
/// exact command and directory it runs in, the environment, the ids it needs and its
/// resources. The report is written by the driver once every node is done.
pub fn to_json(jobs: &[Job], t: &Tanas, profile: &str) -> Value {
    let nodes: Vec<Value> = jobs
        .iter()
        .map(|j| {
            json!({
                "id": j.stage.id,
                "label": j.stage.label,
                "key": j.key,
                "command": t.argv(&j.args).iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>(),
                "cwd": t.root,
                "env": {"RAYON_NUM_THREADS": j.resources.cpus.to_string()},
                "needs": j.needs.iter().map(|&n| &jobs[n].stage.id).collect::<Vec<_>>(),
                "resources": {
                    "cpus": j.resources.cpus,
                    "gpus": usize::from(t.device.starts_with("cuda")),
                    "mem_mib": j.resources.mem_mib,
                    "time_s": j.resources.time_s.ceil(),
                    "estimate_s": j.stage.estimate,
                },
            })
        })
        .collect();
    json!({"profile": profile, "device": t.device, "nodes": nodes})
}

/// What each stage needs to have finished before it starts: a matrix its architecture's
/// network parts; a dictionary task the first architecture's distance matrix (its networks
/// and Fishers are found in the store) and the task added before it (one writer per
/// dictionary); a search or a baseline the whole dictionary. Network parts need nothing.
pub fn needs(plan: &[Stage]) -> Vec<Vec<usize>> {
    let mut needs = Vec::with_capacity(plan.len());
    for (i, stage) in plan.iter().enumerate() {
        let same_study = |k: &usize| plan[*k].study.name == stage.study.name;
        let before = 0..i;
        let first_matrix = before.clone().filter(same_study).find(|&k| {
            matches!(&plan[k].what, StageKind::Matrix { arch } if *arch == stage.study.archs[0])
        });
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
            StageKind::DictAdd { .. } => first_matrix.into_iter().chain(last_add).collect(),
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
    let os = |items: &[&dyn AsRef<std::ffi::OsStr>]| -> Vec<OsString> {
        items.iter().map(|a| a.as_ref().to_os_string()).collect()
    };
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
            for metric in ["ftd", "logdet"] {
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
        StageKind::DictAdd { task, file } => {
            let settings = dirs.work.join("dict-settings.toml");
            write_atomic(&settings, study.dict_toml().as_bytes())?;
            let dict = dirs.dict();
            (
                os(&[
                    &"dict",
                    &"add",
                    &"--dict",
                    &dict,
                    &"--settings",
                    &settings,
                    &"--tasks",
                    file,
                    &"--task",
                    task,
                ]),
                vec![(
                    dict.join("manifest.json"),
                    dirs.report.join("dictionary.json"),
                )],
            )
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
            args.extend(method.args().map(OsString::from));
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
            let name = format!("baseline-{arch}");
            let run = dirs.target(target, &name);
            (
                os(&[
                    &"baseline",
                    &"--dict",
                    &dirs.dict(),
                    &"--tasks",
                    file,
                    &"--task",
                    target,
                    &"--arch",
                    arch,
                    &"--out",
                    &run,
                ]),
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
        // 3 tasks x 3 seeds network parts, the matrix, 3 dictionary tasks, then searches
        // and baselines.
        assert!((0..9).all(|k| matches!(plan[k].what, StageKind::NetworkPart { .. })));
        assert!(matches!(plan[9].what, StageKind::Matrix { .. }));
        assert!(needs[..9].iter().all(Vec::is_empty));
        assert_eq!(needs[9], (0..9).collect::<Vec<_>>());
        assert_eq!(needs[10..13], [vec![9], vec![9, 10], vec![9, 11]]);
        assert!(plan.len() > 13);
        assert!(needs[13..].iter().all(|n| n == &[12]), "{:?}", &needs[13..]);
        let mut ids: Vec<&str> = plan.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(
            ids[8..11],
            [
                "mnist-fashion/network/small-cnn/mnist-2-seed-2",
                "mnist-fashion/matrix/small-cnn",
                "mnist-fashion/dict-add/mnist-0"
            ]
        );
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), plan.len(), "node ids are unique");
    }
}
