//! `tanas run --executor local | slurm` and `tanas run --plan`: TA-NAS (Algorithm 2) as a
//! job graph of `tanas` commands. Every dictionary task is prepared by a job of its own
//! (`dict add --prepare`: its networks, own Fisher and search, into the store), side by side;
//! the additions then follow one another (one writer per dictionary) and find all of it; last
//! comes the target's search (`tanas search`). The jobs make what the inline run makes: the
//! same store, `dict/` and `target/`.
//!
//! ```text
//! OUT/jobs/dictionary.toml   the experiment's [dictionary] settings (`dict add --settings`)
//! OUT/slurm/                 the Slurm executor's scripts, logs and completion markers
//! ```

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::json;
use tanas_core::{OutDirLock, write_atomic};
use tanas_jobs::{Job, Resources};
use tanas_pipeline::{FinalReport, TanasExperiment};
use tanas_search::Algorithm;

use crate::cli::{Global, RunArgs};
use crate::output::outln;

/// Prints the graph (`--plan`, then `None`) or runs it with the chosen executor and returns
/// the target's report.
pub fn run(args: &RunArgs, exp: &TanasExperiment, global: &Global) -> Result<Option<FinalReport>> {
    let out = std::path::absolute(&args.out).with_context(|| args.out.display().to_string())?;
    let _lock = OutDirLock::acquire(&out)?;
    let jobs = graph(args, exp, &out, global)?;
    if args.plan {
        let experiment = std::path::absolute(&args.experiment)?;
        let graph = tanas_jobs::to_json(&jobs, json!({"experiment": experiment}));
        outln!("{}", serde_json::to_string_pretty(&graph)?);
        return Ok(None);
    }
    let t0 = Instant::now();
    let mut started = 0;
    tanas_jobs::execute(
        &jobs,
        &args.exec,
        &out.join("slurm"),
        |i, _| {
            started += 1;
            tracing::info!(
                "[{started}/{}] {}  (elapsed {})",
                jobs.len(),
                jobs[i].label,
                tanas_jobs::hms(t0.elapsed().as_secs_f64())
            );
        },
        |i, seconds| {
            tracing::info!("{}: done in {seconds:.1} s", jobs[i].label);
            Ok(())
        },
    )?;
    let path = out.join("target").join("final.json");
    let bytes = std::fs::read(&path).with_context(|| format!("{}: cannot read", path.display()))?;
    let report = serde_json::from_slice(&bytes)
        .with_context(|| format!("{}: not a final report", path.display()))?;
    Ok(Some(report))
}

/// The jobs of `exp` writing into `out` (absolute), each an exact `tanas` command line with
/// the global options of this one; writes the dictionary settings file they read.
fn graph(args: &RunArgs, exp: &TanasExperiment, out: &Path, global: &Global) -> Result<Vec<Job>> {
    let exe = std::env::current_exe().context("cannot find the tanas binary")?;
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let abs = |p: &Path| -> Result<PathBuf> {
        std::path::absolute(p).with_context(|| p.display().to_string())
    };
    // The task file of each dictionary task, then the target's (before anything
    // is written: a task no file defines is an error that leaves no trace).
    let files = exp
        .task_file_per_task(&args.experiment)?
        .iter()
        .map(|f| abs(f))
        .collect::<Result<Vec<_>>>()?;
    let settings = out.join("jobs").join("dictionary.toml");
    let text = toml::to_string(&exp.dictionary).context("the dictionary settings as TOML")?;
    write_atomic(&settings, text.as_bytes())?;
    let dict = out.join("dict");
    let store = abs(global.store.as_deref().unwrap_or(&dict.join("store")))?;
    let mut tail: Vec<OsString> = vec![
        "--device".into(),
        global.device.to_string().into(),
        "--store".into(),
        store.into(),
        "--quiet".into(),
    ];
    for d in global
        .data_dirs
        .iter()
        .filter(|d| !d.as_os_str().is_empty())
    {
        tail.extend(["--data-dir".into(), abs(d)?.into()]);
    }
    if let Some(c) = global
        .cache_dir
        .as_deref()
        .filter(|c| !c.as_os_str().is_empty())
    {
        let c = if c.as_os_str() == "off" {
            c.into()
        } else {
            abs(c)?
        };
        tail.extend(["--cache-dir".into(), c.into()]);
    }
    let resources = Resources {
        cpus: args.job_cpus,
        mem_mib: args.job_mem_mib,
        time_s: args.job_time_s,
    };
    let gpus = usize::from(global.device.is_gpu());
    let mut jobs: Vec<Job> = Vec::new();
    let mut push = |id: String, label: String, command: Vec<OsString>, needs: Vec<usize>| {
        let mut argv = vec![exe.clone().into_os_string()];
        argv.extend(command);
        argv.extend(tail.iter().cloned());
        jobs.push(Job {
            key: Job::key_of(&argv, &cwd)?,
            id: format!("run/{id}"),
            label,
            argv,
            cwd: cwd.clone(),
            needs,
            resources,
            gpus,
            estimate: 0.0,
        });
        anyhow::Ok(())
    };
    let n = exp.dictionary_tasks.len();
    let add = |k: usize, prepare: bool| {
        let task = &exp.dictionary_tasks[k];
        tanas_jobs::dict_add(&dict, &settings, &files[k], task, prepare)
    };
    for (k, task) in exp.dictionary_tasks.iter().enumerate() {
        let label = format!("dictionary: prepare {task}");
        push(
            format!("dict-prepare/{task}"),
            label,
            add(k, true),
            Vec::new(),
        )?;
    }
    for (k, task) in exp.dictionary_tasks.iter().enumerate() {
        // Its preparation, and the task added before it.
        let needs = std::iter::once(k)
            .chain((k > 0).then(|| n + k - 1))
            .collect();
        let label = format!("dictionary: add {task}");
        push(format!("dict-add/{task}"), label, add(k, false), needs)?;
    }
    let target = &exp.target;
    let algorithm = Algorithm::ALL
        .iter()
        .find(|(_, a)| *a == exp.algorithm)
        .map_or("fuse", |(name, _)| name);
    let mut command = tanas_jobs::args(&[
        &"search",
        &"--dict",
        &dict,
        &"--tasks",
        &files[n],
        &"--task",
        target,
        &"--algo",
        &algorithm,
        &"--space",
        &"closest",
        &"--metric",
        &exp.metric,
        &"--head",
        &exp.head.to_string(),
        &"--out",
        &out.join("target"),
    ]);
    if !exp.warm_start {
        command.push("--no-warm-start".into());
    }
    let label = format!("{target}: {algorithm} in the closest task's space");
    push(format!("search/{target}"), label, command, vec![2 * n - 1])?;
    Ok(jobs)
}
