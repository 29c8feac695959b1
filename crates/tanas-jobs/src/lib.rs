//! The job graph of a tanas experiment and the executors that run it, free of burn (the
//! `cargo xtask reproduce` driver and `tanas run` share it).
//!
//! - [`Job`]: one node of the graph: an exact command line (a `tanas` stage), the directory
//!   it runs in, the nodes it needs, its key and its [`Resources`]; [`to_json`] prints a
//!   graph.
//! - [`local`]: `inline` (one job at a time, in order) and `local --jobs N` (N processes on
//!   this machine, the cores shared among them).
//! - [`slurm`]: job arrays submitted with `sbatch`, resumable.
//!
//! The jobs find what other jobs made in the artifact store (`tanas_core::Store`), whose
//! per-key locks make two jobs that need the same network or Fisher build it once; results
//! do not depend on the executor.

pub mod local;
pub mod slurm;

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use anyhow::Result;
use serde::Deserialize;
use serde_json::{Value, json};

pub use local::{Executor, ExecutorKind, run_all};
pub use slurm::SlurmArgs;

/// How a job graph is run: the command-line options of the executors.
#[derive(Debug, Clone, clap::Args)]
pub struct ExecutorArgs {
    /// Where the stages run: `inline` (one after another), `local` (up to `--jobs` at once
    /// on this machine, the cores shared among the stages running) or `slurm` (job arrays
    /// submitted with `sbatch`, see docs/cluster.md).
    #[arg(long, value_enum, default_value = "inline")]
    pub executor: ExecutorKind,
    /// Stages at once with `--executor local`.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub jobs: u64,
    /// Options of `--executor slurm`.
    #[command(flatten)]
    pub slurm: SlurmArgs,
}

/// Runs `jobs` with the executor `args` names: `started(i, workers)` as job `i` starts on
/// this machine (`workers`: how many run at once at most), `done(i, seconds)` once it has
/// finished (under Slurm also for the jobs an earlier submission finished). A failed job
/// stops the run with an error naming it; `slurm_dir` keeps the Slurm executor's scripts,
/// logs and completion markers.
pub fn execute(
    jobs: &[Job],
    args: &ExecutorArgs,
    slurm_dir: &Path,
    mut started: impl FnMut(usize, usize),
    mut done: impl FnMut(usize, f64) -> Result<()>,
) -> Result<()> {
    if args.executor == ExecutorKind::Slurm {
        return slurm::run(jobs, slurm_dir, &args.slurm, done);
    }
    let exec = Executor::new(args.executor, args.jobs as usize);
    let needs: Vec<Vec<usize>> = jobs.iter().map(|j| j.needs.clone()).collect();
    run_all(
        &needs,
        exec.jobs,
        |i, sharing| {
            started(i, exec.jobs);
            local::spawn(&jobs[i], exec.threads(sharing))
        },
        |i, status, seconds| {
            if !status.success() {
                let argv: Vec<_> = jobs[i].argv.iter().map(|a| a.to_string_lossy()).collect();
                anyhow::bail!("{}: {} failed ({status})", jobs[i].label, argv.join(" "));
            }
            done(i, seconds)
        },
    )
}

/// What one job asks of a machine: `--cpus-per-task`, `--mem` and `--time` under Slurm;
/// `cpus` is also the job's `RAYON_NUM_THREADS` there.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Resources {
    /// CPU cores.
    pub cpus: usize,
    /// Memory in MiB.
    pub mem_mib: u64,
    /// Wall-clock limit in seconds.
    pub time_s: f64,
}

impl Default for Resources {
    fn default() -> Self {
        Resources {
            cpus: 2,
            mem_mib: 4096,
            time_s: 600.0,
        }
    }
}

/// One node of the job graph.
#[derive(Debug, Clone)]
pub struct Job {
    /// Stable identity: `<group>/<kind>/<what>` (with `/` as `.`, the file name of its log and
    /// completion marker under Slurm).
    pub id: String,
    /// What progress lines call it.
    pub label: String,
    /// The whole command line: the program, then its arguments.
    pub argv: Vec<OsString>,
    /// The directory it runs in.
    pub cwd: PathBuf,
    /// Indices of the jobs that must have finished before this one starts (all smaller than
    /// its own).
    pub needs: Vec<usize>,
    /// [`Job::key_of`] its command line: the same key, the same work.
    pub key: String,
    /// What one run of it asks of a machine.
    pub resources: Resources,
    /// GPUs per run (0 or 1: `--gres=gpu:1`).
    pub gpus: usize,
    /// Estimated seconds (progress only).
    pub estimate: f64,
}

impl Job {
    /// FNV-1a of the command line and of every file it names (relative to `cwd` or
    /// absolute: config and task files). The artifacts a job builds have their own keys in
    /// the store; this one tells an executor whether a finished job is still current.
    pub fn key_of(argv: &[OsString], cwd: &Path) -> Result<String> {
        let mut hash = tanas_core::Fnv1a::new();
        for arg in argv {
            hash = hash.bytes(arg.as_encoded_bytes()).u64(0);
            let path = cwd.join(arg);
            if path.is_file() {
                hash = hash.bytes(file_hash(&path)?.as_bytes());
            }
        }
        Ok(hash.hex())
    }
}

/// Files at least this large are hashed once per process (per size and modification time).
const REMEMBERED: u64 = 1 << 20;

/// The content hash of the file at `path`. Every job of a graph names the same `tanas`
/// binary (tens of megabytes), which was hashed once per job: a large file is hashed once per
/// process for the same size and modification time; a small one (a config file, which may be
/// rewritten within a clock tick) every time.
fn file_hash(path: &Path) -> Result<String> {
    type Seen = HashMap<PathBuf, (u64, Option<SystemTime>, String)>;
    static SEEN: Mutex<Option<Seen>> = Mutex::new(None);
    let read = |e: std::io::Error| {
        anyhow::Error::from(e).context(format!("{}: cannot read", path.display()))
    };
    let meta = std::fs::metadata(path).map_err(read)?;
    if meta.len() < REMEMBERED {
        return Ok(tanas_core::store::FileSum::of(path).map_err(read)?.fnv1a);
    }
    let stamp = (meta.len(), meta.modified().ok());
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    let seen = seen.get_or_insert_with(HashMap::new);
    if let Some((len, modified, hash)) = seen.get(path)
        && (*len, *modified) == stamp
    {
        return Ok(hash.clone());
    }
    let sum = tanas_core::store::FileSum::of(path).map_err(read)?;
    seen.insert(path.to_path_buf(), (stamp.0, stamp.1, sum.fnv1a.clone()));
    Ok(sum.fnv1a)
}

/// The job graph as JSON: per node its id, label, key, the exact command and directory it
/// runs in, its environment, the ids it needs and its resources (`extra` adds fields at the
/// top, e.g. the profile).
pub fn to_json(jobs: &[Job], extra: Value) -> Value {
    let nodes: Vec<Value> = jobs
        .iter()
        .map(|j| {
            json!({
                "id": j.id,
                "label": j.label,
                "key": j.key,
                "command": j.argv.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>(),
                "cwd": j.cwd,
                "env": {"RAYON_NUM_THREADS": j.resources.cpus.to_string()},
                "needs": j.needs.iter().map(|&n| &jobs[n].id).collect::<Vec<_>>(),
                "resources": {
                    "cpus": j.resources.cpus,
                    "gpus": j.gpus,
                    "mem_mib": j.resources.mem_mib,
                    "time_s": j.resources.time_s.ceil(),
                    "estimate_s": j.estimate,
                },
            })
        })
        .collect();
    let mut graph = match extra {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    graph.insert("nodes".into(), Value::Array(nodes));
    Value::Object(graph)
}

/// Command-line arguments from anything that is a string or a path.
pub fn args(items: &[&dyn AsRef<std::ffi::OsStr>]) -> Vec<OsString> {
    items.iter().map(|a| a.as_ref().to_os_string()).collect()
}

/// The arguments of `tanas dict add` of task `task` of the task file `tasks` into the
/// dictionary `dict` with the settings file `settings`; with `--prepare` where `prepare`
/// says (the job that builds the task's artifacts into the store, beside the others).
pub fn dict_add(
    dict: &Path,
    settings: &Path,
    tasks: &Path,
    task: &str,
    prepare: bool,
) -> Vec<OsString> {
    let mut a = args(&[
        &"dict",
        &"add",
        &"--dict",
        &dict,
        &"--settings",
        &settings,
        &"--tasks",
        &tasks,
        &"--task",
        &task,
    ]);
    if prepare {
        a.push("--prepare".into());
    }
    a
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
    fn the_key_follows_the_command_and_the_files_it_names() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("settings.toml");
        std::fs::write(&file, "a = 1").unwrap_or_else(|e| panic!("{e}"));
        let argv = |x: &str| -> Vec<OsString> { vec!["tanas".into(), x.into()] };
        let key = |x: &str| Job::key_of(&argv(x), dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let before = key("settings.toml");
        assert_eq!(before, key("settings.toml"));
        assert_ne!(before, key("other.toml"));
        std::fs::write(&file, "a = 2").unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(
            before,
            key("settings.toml"),
            "a changed file changes the key"
        );
    }
}
