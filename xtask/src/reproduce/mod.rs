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
mod matrix;
mod profile;
mod report;
mod stats;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::tanas::{Tanas, build_tanas, workspace_root};
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
    let mut progress = Progress::new(plan.iter().map(|s| s.estimate).collect());
    let mut timings = Vec::new();
    for stage in &plan {
        progress.start(&stage.label);
        let t0 = Instant::now();
        run_stage(&t, &out, stage)?;
        let seconds = t0.elapsed().as_secs_f64();
        progress.finish(seconds);
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
        write_json(&out.join("run.json"), &json!({"stages": so_far}))?;
    }

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

fn run_stage(t: &Tanas, out: &Path, stage: &Stage) -> Result<()> {
    let study = &stage.study;
    let dirs = Dirs::of(out, &study.name);
    match &stage.what {
        StageKind::Matrix { arch } => {
            let exp = dirs.matrix(arch).join("experiment.toml");
            write_atomic(&exp, study.experiment_toml(arch, &t.root).as_bytes())?;
            let run = dirs.matrix(arch).join("run");
            t.run(&[
                "distance".into(),
                "matrix".into(),
                "--experiment".into(),
                exp.into(),
                "--out".into(),
                run.clone().into(),
            ])?;
            let dest = dirs.report.join(arch);
            for metric in ["ftd", "logdet"] {
                for ext in ["json", "csv", "svg", "png"] {
                    let name = format!("{metric}.{ext}");
                    publish(&run.join("distance").join(&name), &dest.join(&name))?;
                }
                // The other head rule's matrix and the same-task noise floor.
                for name in [
                    format!("{metric}-head-{}.json", study.other_head()),
                    format!("{metric}-noise.json"),
                ] {
                    publish(&run.join("distance").join(&name), &dest.join(&name))?;
                }
            }
            publish(&run.join("nets.json"), &dest.join("nets.json"))
        }
        StageKind::DictAdd { task, file } => {
            let settings = dirs.work.join("dict-settings.toml");
            write_atomic(&settings, study.dict_toml().as_bytes())?;
            t.run(&[
                "dict".into(),
                "add".into(),
                "--dict".into(),
                dirs.dict().into(),
                "--settings".into(),
                settings.into(),
                "--tasks".into(),
                file.into(),
                "--task".into(),
                task.into(),
            ])?;
            publish(
                &dirs.dict().join("manifest.json"),
                &dirs.report.join("dictionary.json"),
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
            let mut args: Vec<OsString> =
                vec!["search".into(), "--dict".into(), dirs.dict().into()];
            args.extend(method.args().map(OsString::from));
            args.extend([
                "--tasks".into(),
                file.into(),
                "--task".into(),
                target.into(),
                "--head".into(),
                (&study.head).into(),
                "--seed".into(),
                seed.to_string().into(),
                "--out".into(),
                run.clone().into(),
            ]);
            t.run(&args)?;
            publish(&run.join("final.json"), &dirs.target_report(target, &name))
        }
        StageKind::Baseline { target, file, arch } => {
            let name = format!("baseline-{arch}");
            let run = dirs.target(target, &name);
            t.run(&[
                "baseline".into(),
                "--dict".into(),
                dirs.dict().into(),
                "--tasks".into(),
                file.into(),
                "--task".into(),
                target.into(),
                "--arch".into(),
                arch.into(),
                "--out".into(),
                run.clone().into(),
            ])?;
            publish(
                &run.join("baseline.json"),
                &dirs.target_report(target, &name),
            )
        }
    }
}

/// Copies a stage's result into the report directory, replacing an older copy.
fn publish(from: &Path, to: &Path) -> Result<()> {
    let bytes = std::fs::read(from).with_context(|| format!("{}: cannot read", from.display()))?;
    Ok(write_atomic(to, &bytes)?)
}

/// Top-level progress: `[k/N] stage (elapsed, ETA)`. The ETA is the remaining stages'
/// estimates, scaled by how the stages that did work compared with their estimates.
struct Progress {
    estimates: Vec<f64>,
    done: usize,
    t0: Instant,
    worked_actual: f64,
    worked_estimate: f64,
}

impl Progress {
    fn new(estimates: Vec<f64>) -> Self {
        Progress {
            estimates,
            done: 0,
            t0: Instant::now(),
            worked_actual: 0.0,
            worked_estimate: 0.0,
        }
    }

    fn elapsed(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    fn start(&self, label: &str) {
        let scale = if self.worked_estimate > 0.0 {
            self.worked_actual / self.worked_estimate
        } else {
            1.0
        };
        let left: f64 = self.estimates[self.done..].iter().sum::<f64>() * scale;
        eprintln!(
            "[{}/{}] {label}  (elapsed {}, eta {})",
            self.done + 1,
            self.estimates.len(),
            hms(self.elapsed()),
            hms(left)
        );
    }

    fn finish(&mut self, seconds: f64) {
        let estimate = self.estimates[self.done];
        // A stage that found its artifacts took a second or two: it says nothing about speed.
        if seconds > 0.1 * estimate {
            self.worked_actual += seconds;
            self.worked_estimate += estimate;
        }
        self.done += 1;
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
    fn eta_scales_with_the_stages_that_worked() {
        let mut p = Progress::new(vec![10.0, 10.0, 10.0]);
        p.finish(20.0); // twice the estimate
        p.finish(0.5); // reused: ignored
        assert!((p.worked_actual / p.worked_estimate - 2.0).abs() < 1e-12);
    }
}
