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
mod plan;
mod profile;
mod record;
mod report;
mod stats;
mod transfer;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use std::cell::RefCell;
use std::collections::HashSet;

use anyhow::{Context, Result};
use serde_json::json;

use crate::tanas::{Tanas, build_tanas, workspace_root};
use plan::Stage;
pub use plan::{Method, baseline_name};
use profile::{Profile, Study};
use record::{RunRecord, StageTime};
use tanas_core::report::{DataInfo, TaskInfo};
use tanas_core::write_atomic;
pub use tanas_jobs::hms;

/// Options of `cargo xtask reproduce`.
#[derive(Debug, clap::Args)]
pub struct ReproduceArgs {
    /// The experiment profile: a file of configs/profiles/ by name (`quick`: CPU, embedded
    /// data, ~33 min with `--executor local --jobs 2`; `paper`) or the path of a profile file.
    #[arg(long, default_value = "quick")]
    profile: String,
    /// Where tensors live (`cpu`, `cuda`, `cuda:N`); passed to every `tanas` stage.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Output directory (default: docs/results/<profile>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Where and how many stages at once.
    #[command(flatten)]
    exec: tanas_jobs::ExecutorArgs,
    /// Print the job graph as JSON (each node's command, key, needs and resources) and stop;
    /// the stages' config files are written, so every command runs as printed.
    #[arg(long)]
    plan: bool,
    /// A `tanas` binary to use instead of building one (e.g. a `--features cuda` release
    /// build copied to a GPU machine).
    #[arg(long)]
    tanas: Option<PathBuf>,
    /// A study whose datasets are missing is an error (default: it is skipped with a
    /// warning that names it).
    #[arg(long)]
    strict: bool,
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
        None => build_tanas(&root, crate::tanas::is_gpu(&args.device))?,
    };
    let t = Tanas {
        bin: tanas,
        root: root.clone(),
        device: args.device.clone(),
        store: Some(out.join("artifacts").join("store")),
    };

    // The built-in datasets and those the studies' task files declare.
    let mut info_args = vec!["data", "info", "--json"];
    for study in &profile.studies {
        for f in &study.task_files {
            if !info_args.contains(&f.as_str()) {
                info_args.push(f);
            }
        }
    }
    let data: DataInfo = t.json(&info_args)?;
    write_json(&out.join("data.json"), &data)?;
    let mut tasks = Vec::new();
    let mut studies = Vec::new();
    let mut skipped = Vec::new();
    let profile_err = |study: &Study, problem: String| {
        anyhow::anyhow!(
            "{}: study `{}`: {problem}",
            profile.path.display(),
            study.name
        )
    };
    for study in &profile.studies {
        if let Some(d) = study
            .datasets
            .iter()
            .find(|d| !data.datasets.iter().any(|k| &k.name == *d))
        {
            let known: Vec<&str> = data.datasets.iter().map(|k| k.name.as_str()).collect();
            return Err(profile_err(
                study,
                format!("datasets: unknown dataset {d:?} ({})", known.join(", ")),
            ));
        }
        let missing: Vec<&str> = study
            .datasets
            .iter()
            .map(String::as_str)
            .filter(|d| !data.found(d))
            .collect();
        if !missing.is_empty() {
            let line = format!(
                "study `{}` skipped: dataset {} not found (search path: {})",
                study.name,
                missing.join(", "),
                data.search_path
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            if args.strict {
                return Err(profile_err(study, format!("{line} (--strict)")));
            }
            eprintln!("{line}");
            skipped.push(line);
            continue;
        }
        let mut ids = Vec::new();
        for file in &study.task_files {
            let shown: Vec<TaskInfo> = t.json(&["task", "show", "--tasks", file, "--json"])?;
            for task in shown {
                ids.push((task.id.clone(), file.clone()));
                tasks.push(task);
            }
        }
        if let Some(t) = study
            .targets
            .iter()
            .find(|t| !ids.iter().any(|(id, _)| id == *t))
        {
            return Err(profile_err(
                study,
                format!("targets: {t:?} is not a task of the study's task files"),
            ));
        }
        studies.push((study, ids));
    }
    write_json(&out.join("tasks.json"), &tasks)?;

    let stages: Vec<Stage> = studies
        .iter()
        .flat_map(|(study, ids)| plan::plan(study, ids, &profile))
        .collect();
    let plan::Graph { jobs, publish } = plan::graph(stages, &t, &out, &profile.resources)?;
    // The settings files written from the profile, read as their stages will read them:
    // a typo in a [search] or transfer table is named now, not when its stage runs.
    for (study, _) in &studies {
        let dirs = Dirs::of(&out, &study.name);
        let mut files: Vec<(&str, PathBuf)> = study
            .archs
            .iter()
            .map(|arch| ("experiment", dirs.matrix(arch).join("experiment.toml")))
            .collect();
        files.push(("dict-settings", dirs.work.join("dict-settings.toml")));
        for (kind, file) in files {
            if file.is_file() {
                t.check(kind, &file)
                    .map_err(|e| profile_err(study, format!("{e:#}")))?;
            }
        }
    }
    if args.plan {
        let graph =
            tanas_jobs::to_json(&jobs, json!({"profile": profile.name, "device": t.device}));
        println!("{}", serde_json::to_string_pretty(&graph)?);
        return Ok(());
    }
    // A rerun reuses the artifacts: keep the seconds of the run that computed them. Without
    // an artifacts directory (a fresh clone: the committed run.json has nothing behind it)
    // every stage computes its results, and so does one that took at least half its
    // recorded time: their own time counts.
    let earlier: RunRecord = read_json(&out.join("run.json")).unwrap_or_default();
    let reusable = out.join("artifacts").is_dir();
    let first_seconds = |label: &str, now: f64| {
        if !reusable {
            return now;
        }
        earlier
            .stage(label)
            .map(|s| s.first_seconds)
            .filter(|&recorded| now < 0.5 * recorded)
            .unwrap_or(now)
    };
    // What run.json says of this run; the seconds are filled in as the stages end.
    let record = RunRecord {
        profile: profile.name.clone(),
        summary: profile.summary.clone(),
        device: args.device.clone(),
        commit: git_commit(&root),
        skipped,
        ..RunRecord::default()
    };
    let progress = RefCell::new(Progress::new(jobs.iter().map(|j| j.estimate).collect()));
    let timings = RefCell::new(Vec::new());
    // A finished stage: its results into the report directory, its time into run.json.
    let done = |i: usize, seconds: f64| -> Result<()> {
        let job = &jobs[i];
        for (from, to) in &publish[i] {
            plan::publish(from, to)?;
        }
        progress.borrow_mut().finish(i, seconds);
        let mut timings = timings.borrow_mut();
        timings.push(StageTime {
            stage: job.label.clone(),
            seconds,
            first_seconds: first_seconds(&job.label, seconds),
        });
        // After every stage, so an interrupted run's timings survive into the next one.
        let mut stages = timings.clone();
        stages.extend(
            earlier
                .stages
                .iter()
                .filter(|s| !timings.iter().any(|t| t.stage == s.stage))
                .cloned(),
        );
        let so_far = RunRecord {
            stages,
            ..record.clone()
        };
        write_json(&out.join("run.json"), &so_far)
    };
    tanas_jobs::execute(
        &jobs,
        &args.exec,
        &out.join("slurm"),
        |i, workers| progress.borrow_mut().start(&jobs[i].label, workers),
        done,
    )?;
    let mut timings = timings.into_inner();
    // The plan's order, whatever order the stages ended in.
    timings.sort_by_key(|t| jobs.iter().position(|j| t.stage == j.label));
    let progress = progress.into_inner();

    let run = RunRecord {
        seconds: progress.elapsed(),
        first_seconds: timings.iter().map(|t| t.first_seconds).sum(),
        stages: timings,
        ..record
    };
    write_json(&out.join("run.json"), &run)?;
    // What an earlier run published that this one did not (another method, architecture or
    // target of other settings) goes: the report shows this run's results only.
    let published: HashSet<&Path> = publish
        .iter()
        .flatten()
        .map(|(_, to)| to.as_path())
        .collect();
    let ran: Vec<&Study> = studies.iter().map(|(study, _)| *study).collect();
    for study in &ran {
        for stale in remove_stale(&Dirs::of(&out, &study.name).report, &published)? {
            eprintln!("removed {} (not made by this run)", stale.display());
        }
    }
    let text = report::write(&out, &profile, &ran, &run, &data, &tasks)?;
    write_atomic(&out.join("REPORT.md"), text.as_bytes())?;
    eprintln!(
        "report: {} ({:.0} s)",
        out.join("REPORT.md").display(),
        progress.elapsed()
    );
    Ok(())
}

/// Removes every file below `dir` that is not in `keep`, and the directories left empty;
/// returns the removed files.
fn remove_stale(dir: &Path, keep: &HashSet<&Path>) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(removed);
    };
    for entry in entries {
        let path = entry.with_context(|| format!("{}", dir.display()))?.path();
        if path.is_dir() {
            removed.extend(remove_stale(&path, keep)?);
            // Only an empty directory goes.
            let _ = std::fs::remove_dir(&path);
        } else if !keep.contains(path.as_path()) {
            std::fs::remove_file(&path).with_context(|| format!("{}", path.display()))?;
            removed.push(path);
        }
    }
    Ok(removed)
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

    fn start(&mut self, label: &str, jobs: usize) {
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
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    Ok(write_atomic(
        path,
        serde_json::to_string_pretty(value)?.as_bytes(),
    )?)
}

/// Reads a JSON file as a `T`.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{}: not JSON", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An earlier run's report files that this run did not publish go, with the directories
    /// they leave empty; what it published stays.
    #[test]
    fn stale_report_files_are_removed() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("study");
        let file = |rel: &str| {
            let path = dir.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, b"{}").unwrap();
            path
        };
        let kept = [
            file("small-cnn/ftd.json"),
            file("search/mnist-2/fuse-closest-seed-0.json"),
        ];
        let stale = [
            file("search/mnist-2/fuse-closest.json"),
            file("vgg11/ftd.json"),
        ];
        let keep: HashSet<&Path> = kept.iter().map(PathBuf::as_path).collect();
        let mut removed = remove_stale(&dir, &keep).unwrap();
        removed.sort();
        assert_eq!(removed, stale);
        assert!(kept.iter().all(|p| p.exists()));
        assert!(!dir.join("vgg11").exists(), "an emptied directory goes");
        assert!(
            remove_stale(&root.path().join("absent"), &keep)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn eta_scales_with_the_stages_that_worked() {
        let mut p = Progress::new(vec![10.0, 10.0, 10.0]);
        p.finish(0, 20.0); // twice the estimate
        p.finish(1, 0.5); // reused: ignored
        assert!((p.worked_actual / p.worked_estimate - 2.0).abs() < 1e-12);
    }
}
