//! `cargo xtask reproduce`: the papers' experiments end to end through the `tanas` binary's
//! stages (`distance matrix`, `dict add`, `search`, `baseline`), then a report generated
//! from the stages' JSON (`<out>/REPORT.md`, figures and JSON beside it).
//!
//! Layout of `<out>` (default `docs/results/<profile>/`):
//! ```text
//! REPORT.md, run.json, data.json, tasks.json
//! <study>/<arch>/{ftd,logdet}.{json,csv,svg,png}, nets.json     matrices (copied)
//! <study>/dictionary.json                                        the dictionary manifest
//! <study>/search/<target>/{fuse-closest,...}.json                final reports
//! artifacts/store/                                               networks, Fishers, searches
//! artifacts/<study>/...                                          each stage's output directory
//! ```
//! Every stage runs with `--store artifacts/store`: a network, Fisher or search is made once,
//! under a key of how it was made, and every stage that needs it (the matrix, the dictionary,
//! a target's search) finds it there; a rerun finds everything and finishes quickly.

mod claims;
mod executor;
mod matrix;
mod profile;
mod report;
mod stats;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use std::cell::RefCell;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::tanas::{Tanas, build_tanas, workspace_root};
use executor::{Executor, ExecutorKind};
use profile::{Profile, Study};
use tanas_core::write_atomic;

/// Options of `cargo xtask reproduce`.
#[derive(Debug, clap::Args)]
pub struct ReproduceArgs {
    /// The experiment profile: a file of configs/profiles/ by name (`quick`: CPU, embedded
    /// data, ~25 min; `paper`) or the path of a profile file.
    #[arg(long, default_value = "quick")]
    profile: String,
    /// Where tensors live (`cpu`, `cuda`, `cuda:N`); passed to every `tanas` stage.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Output directory (default: docs/results/<profile>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Where the stages run: `inline` (one after another) or `local` (up to `--jobs` at once
    /// on this machine, each with `RAYON_NUM_THREADS = cores / jobs`).
    #[arg(long, value_enum, default_value = "inline")]
    executor: ExecutorKind,
    /// Stages at once with `--executor local`.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=256))]
    jobs: u64,
    /// A `tanas` binary to use instead of building one (e.g. a `--features cuda` release
    /// build copied to a GPU machine).
    #[arg(long)]
    tanas: Option<PathBuf>,
}

/// Runs the reproduction.
pub fn run(args: &ReproduceArgs) -> Result<()> {
    let root = workspace_root();
    let profile = Profile::named(&args.profile, &root)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| root.join("docs/results").join(&profile.name));
    let out = std::path::absolute(&out).with_context(|| format!("{}", out.display()))?;
    // One reproduction per output directory at a time; each stage's `tanas` locks its own
    // directory below it.
    let _lock = tanas_core::OutDirLock::acquire(&out)?;
    let tanas = match &args.tanas {
        Some(path) => path.clone(),
        None => build_tanas(&root, args.device != "cpu")?,
    };
    let t = Tanas {
        bin: tanas,
        root: root.clone(),
        device: args.device.clone(),
        store: Some(out.join("artifacts").join("store")),
    };

    let data = t.json(&["data", "info", "--json"])?;
    write_json(&out.join("data.json"), &data)?;
    let mut tasks = Vec::new();
    let mut studies = Vec::new();
    let mut skipped = Vec::new();
    for study in &profile.studies {
        let missing: Vec<&str> = study
            .datasets
            .iter()
            .map(String::as_str)
            .filter(|d| !dataset_found(&data, d))
            .collect();
        if !missing.is_empty() {
            let line = format!(
                "study `{}` skipped: dataset {} not found (search path: {})",
                study.name,
                missing.join(", "),
                search_path(&data)
            );
            eprintln!("{line}");
            skipped.push(line);
            continue;
        }
        let mut ids = Vec::new();
        for file in &study.task_files {
            let shown = t.json(&["task", "show", "--tasks", file, "--json"])?;
            for task in shown.as_array().into_iter().flatten() {
                ids.push((str_of(&task["id"]).to_string(), file.clone()));
                tasks.push(task.clone());
            }
        }
        studies.push((study, ids));
    }
    write_json(&out.join("tasks.json"), &Value::Array(tasks.clone()))?;

    let plan: Vec<Stage> = studies
        .iter()
        .flat_map(|(study, ids)| plan(study, ids, &profile))
        .collect();
    // A rerun reuses the artifacts: keep the seconds of the run that computed them. Without
    // an artifacts directory (a fresh clone: the committed run.json has nothing behind it)
    // every stage computes its results, and so does one that took at least half its
    // recorded time: their own time counts.
    let earlier = read_json(&out.join("run.json")).unwrap_or(Value::Null);
    let reusable = out.join("artifacts").is_dir();
    let first_seconds = |label: &str, now: f64| {
        if !reusable {
            return now;
        }
        earlier["stages"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["stage"] == label)
            .and_then(|s| s["first_seconds"].as_f64())
            .filter(|&recorded| now < 0.5 * recorded)
            .unwrap_or(now)
    };
    let exec = Executor::new(args.executor, args.jobs as usize);
    let progress = RefCell::new(Progress::new(plan.iter().map(|s| s.estimate).collect()));
    let jobs: RefCell<Vec<Option<Job>>> = RefCell::new(plan.iter().map(|_| None).collect());
    let mut timings = Vec::new();
    executor::run_all(
        &needs(&plan),
        exec.jobs,
        |i| {
            progress.borrow_mut().start(i, &plan[i].label, exec.jobs);
            let job = prepare(&t, &out, &plan[i])?;
            let child = t.spawn(&job.args, exec.threads)?;
            jobs.borrow_mut()[i] = Some(job);
            Ok(child)
        },
        |i, status, seconds| {
            let stage = &plan[i];
            let job = jobs.borrow_mut()[i].take();
            let job = job.ok_or_else(|| anyhow::anyhow!("stage {i} ended twice"))?;
            if !status.success() {
                bail!(
                    "{}: tanas {} failed",
                    stage.label,
                    crate::tanas::show(&job.args)
                );
            }
            for (from, to) in &job.publish {
                publish(from, to)?;
            }
            progress.borrow_mut().finish(i, seconds);
            timings.push(json!({
                "stage": stage.label,
                "seconds": seconds,
                "first_seconds": first_seconds(&stage.label, seconds),
            }));
            // After every stage, so an interrupted run's timings survive into the next one.
            let mut so_far = timings.clone();
            so_far.extend(
                earlier["stages"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|s| !timings.iter().any(|t| t["stage"] == s["stage"]))
                    .cloned(),
            );
            write_json(&out.join("run.json"), &json!({"stages": so_far}))
        },
    )?;
    // The plan's order, whatever order the stages ended in.
    timings.sort_by_key(|t| plan.iter().position(|s| t["stage"] == s.label.as_str()));
    let progress = progress.into_inner();

    let run = json!({
        "profile": profile.name,
        "summary": profile.summary,
        "device": args.device,
        "commit": git_commit(&root),
        "seconds": progress.elapsed(),
        "first_seconds": timings.iter().filter_map(|t| t["first_seconds"].as_f64()).sum::<f64>(),
        "skipped": skipped,
        "stages": timings,
    });
    write_json(&out.join("run.json"), &run)?;
    let text = report::write(&out, &profile, &run, &data, &tasks)?;
    write_atomic(&out.join("REPORT.md"), text.as_bytes())?;
    eprintln!(
        "report: {} ({:.0} s)",
        out.join("REPORT.md").display(),
        progress.elapsed()
    );
    Ok(())
}

/// One step of the plan.
#[derive(Debug, Clone)]
struct Stage {
    label: String,
    estimate: f64,
    what: StageKind,
    study: Study,
}

#[derive(Debug, Clone)]
enum StageKind {
    /// `tanas distance matrix` for one architecture.
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

fn plan(study: &Study, ids: &[(String, String)], profile: &Profile) -> Vec<Stage> {
    let e = profile.estimate;
    let stage = |label: String, estimate: f64, what: StageKind| Stage {
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
    let mut stages: Vec<Stage> = study
        .archs
        .iter()
        .map(|arch| {
            stage(
                format!("distance matrix ({arch})"),
                e.matrix,
                StageKind::Matrix { arch: arch.clone() },
            )
        })
        .collect();
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

/// Artifact and report directories of a study.
pub struct Dirs {
    /// `<out>/<study>`: what the report shows (small files).
    pub report: PathBuf,
    /// `<out>/artifacts/<study>`: networks, Fishers, searches.
    pub work: PathBuf,
}

impl Dirs {
    /// The directories of `study` under `out`.
    pub fn of(out: &Path, study: &str) -> Self {
        Dirs {
            report: out.join(study),
            work: out.join("artifacts").join(study),
        }
    }

    /// The matrix run of `arch`.
    pub fn matrix(&self, arch: &str) -> PathBuf {
        self.work.join("matrix").join(arch)
    }

    /// The task dictionary.
    pub fn dict(&self) -> PathBuf {
        self.work.join("dict")
    }

    /// The search or baseline run `name` of `target`.
    pub fn target(&self, target: &str, name: &str) -> PathBuf {
        self.work.join("targets").join(target).join(name)
    }

    /// The report copy of the search or baseline report `name` of `target`.
    pub fn target_report(&self, target: &str, name: &str) -> PathBuf {
        self.report
            .join("search")
            .join(target)
            .join(format!("{name}.json"))
    }
}

/// A stage's `tanas` call and the files to copy into the report directory when it is done.
struct Job {
    args: Vec<OsString>,
    publish: Vec<(PathBuf, PathBuf)>,
}

/// What each stage needs to have finished before it starts: a dictionary task the first
/// architecture's distance matrix (its networks and Fishers are found in the store) and the
/// task added before it (one writer per dictionary); a search or a baseline the whole
/// dictionary.
fn needs(plan: &[Stage]) -> Vec<Vec<usize>> {
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
        needs.push(match stage.what {
            StageKind::Matrix { .. } => Vec::new(),
            StageKind::DictAdd { .. } => first_matrix.into_iter().chain(last_add).collect(),
            StageKind::Search { .. } | StageKind::Baseline { .. } => last_add.into_iter().collect(),
        });
    }
    needs
}

/// Writes the config files of `stage` and says how to run it.
fn prepare(t: &Tanas, out: &Path, stage: &Stage) -> Result<Job> {
    let study = &stage.study;
    let dirs = Dirs::of(out, &study.name);
    let os = |items: &[&dyn AsRef<std::ffi::OsStr>]| -> Vec<OsString> {
        items.iter().map(|a| a.as_ref().to_os_string()).collect()
    };
    Ok(match &stage.what {
        StageKind::Matrix { arch } => {
            let exp = dirs.matrix(arch).join("experiment.toml");
            write_atomic(&exp, study.experiment_toml(arch, &t.root).as_bytes())?;
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
            Job {
                args: os(&[
                    &"distance",
                    &"matrix",
                    &"--experiment",
                    &exp,
                    &"--out",
                    &run,
                ]),
                publish,
            }
        }
        StageKind::DictAdd { task, file } => {
            let settings = dirs.work.join("dict-settings.toml");
            write_atomic(&settings, study.dict_toml().as_bytes())?;
            let dict = dirs.dict();
            Job {
                args: os(&[
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
                publish: vec![(
                    dict.join("manifest.json"),
                    dirs.report.join("dictionary.json"),
                )],
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
            Job {
                args,
                publish: vec![(run.join("final.json"), dirs.target_report(target, &name))],
            }
        }
        StageKind::Baseline { target, file, arch } => {
            let name = format!("baseline-{arch}");
            let run = dirs.target(target, &name);
            Job {
                args: os(&[
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
                publish: vec![(run.join("baseline.json"), dirs.target_report(target, &name))],
            }
        }
    })
}

/// Copies a stage's result into the report directory, replacing an older copy.
fn publish(from: &Path, to: &Path) -> Result<()> {
    let bytes = std::fs::read(from).with_context(|| format!("{}: cannot read", from.display()))?;
    Ok(write_atomic(to, &bytes)?)
}

/// Top-level progress: `[k/N] stage (elapsed, ETA)`. The ETA is the unfinished stages'
/// estimates divided among the jobs, scaled by how the stages that did work compared with
/// their estimates.
struct Progress {
    estimates: Vec<f64>,
    finished: Vec<bool>,
    started: usize,
    t0: Instant,
    worked_actual: f64,
    worked_estimate: f64,
}

impl Progress {
    fn new(estimates: Vec<f64>) -> Self {
        Progress {
            finished: vec![false; estimates.len()],
            estimates,
            started: 0,
            t0: Instant::now(),
            worked_actual: 0.0,
            worked_estimate: 0.0,
        }
    }

    fn elapsed(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    fn start(&mut self, _stage: usize, label: &str, jobs: usize) {
        let scale = if self.worked_estimate > 0.0 {
            self.worked_actual / self.worked_estimate
        } else {
            1.0
        };
        let left: f64 = (self.estimates.iter().zip(&self.finished))
            .filter(|(_, done)| !**done)
            .map(|(e, _)| e)
            .sum::<f64>()
            * scale
            / jobs.max(1) as f64;
        self.started += 1;
        eprintln!(
            "[{}/{}] {label}  (elapsed {}, eta {})",
            self.started,
            self.estimates.len(),
            hms(self.elapsed()),
            hms(left)
        );
    }

    fn finish(&mut self, stage: usize, seconds: f64) {
        let estimate = self.estimates[stage];
        // A stage that found its artifacts took a second or two: it says nothing about speed.
        if seconds > 0.1 * estimate {
            self.worked_actual += seconds;
            self.worked_estimate += estimate;
        }
        self.finished[stage] = true;
    }
}

/// `1h02m03s`, `4m05s`, `6s`.
pub fn hms(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, s) => format!("{h}h{m:02}m{s:02}s"),
    }
}

fn dataset_found(data: &Value, name: &str) -> bool {
    data["datasets"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|d| d["name"] == name && d["found"] == true)
}

fn search_path(data: &Value) -> String {
    data["search_path"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

fn git_commit(root: &Path) -> String {
    Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(root)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Writes pretty JSON atomically.
pub fn write_json(path: &Path, value: &Value) -> Result<()> {
    Ok(write_atomic(
        path,
        serde_json::to_string_pretty(value)?.as_bytes(),
    )?)
}

/// Reads a JSON file.
pub fn read_json(path: &Path) -> Result<Value> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{}: not JSON", path.display()))
}

/// A JSON string, or `?`.
pub fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or("?")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hms_formats() {
        assert_eq!(hms(5.4), "5s");
        assert_eq!(hms(245.0), "4m05s");
        assert_eq!(hms(3723.0), "1h02m03s");
    }

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
        // matrix, 3 dictionary tasks, then searches and baselines.
        assert!(matches!(plan[0].what, StageKind::Matrix { .. }));
        assert_eq!(needs[..4], [vec![], vec![0], vec![0, 1], vec![0, 2]]);
        assert!(plan.len() > 4);
        assert!(needs[4..].iter().all(|n| n == &[3]), "{:?}", &needs[4..]);
    }

    #[test]
    fn eta_scales_with_the_stages_that_worked() {
        let mut p = Progress::new(vec![10.0, 10.0, 10.0]);
        p.finish(0, 20.0); // twice the estimate
        p.finish(1, 0.5); // reused: ignored
        assert!((p.worked_actual / p.worked_estimate - 2.0).abs() < 1e-12);
    }
}
