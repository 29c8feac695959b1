//! `--executor slurm`: the job graph as Slurm job arrays. Jobs that wait for the same arrays
//! and ask for the same resources form one array (`sbatch --parsable --array=0-K`), which
//! depends on the arrays of the jobs it needs (`--dependency=afterok:...`,
//! `--kill-on-invalid-dep=yes`), asks for `--cpus-per-task`, `--mem`, `--time` and, for GPU
//! jobs, `--gres=gpu:1`. Every array task runs one job's command in its directory and, when
//! it succeeds, writes a completion marker `done/<job>` holding the job's key and seconds.
//! The driver polls `squeue` until its arrays have left the queue (bounded by `--wait-s`),
//! hands each job on as its marker appears, and names the failed jobs with their logs. A
//! rerun submits only the jobs without a current marker: what a failure or `scancel` left
//! undone, nothing else.
//!
//! Layout of the executor's directory (on the filesystem the cluster shares):
//! ```text
//! submissions.json        every submission: its arrays' job ids and their jobs
//! scripts/<n>-<k>.sh      array k of submission n
//! logs/<job>.log          a job's output; logs/slurm-<array>_<task>.out Slurm's own
//! done/<job>              "<key> <seconds>" once the job succeeded
//! ```

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::{Job, hms};
use tanas_core::write_atomic;

/// Options of `--executor slurm`.
#[derive(Debug, Clone, clap::Args)]
pub struct SlurmArgs {
    /// Slurm partition of every job (`sbatch --partition`).
    #[arg(long)]
    partition: Option<String>,
    /// Slurm account of every job (`sbatch --account`).
    #[arg(long)]
    account: Option<String>,
    /// One more `sbatch` option for every job, repeatable (`--sbatch-arg=--qos=long`).
    #[arg(long = "sbatch-arg", allow_hyphen_values = true)]
    sbatch_args: Vec<String>,
    /// Seconds between two looks at the queue.
    #[arg(long, default_value_t = 10.0)]
    poll_s: f64,
    /// Stop waiting after this many seconds (the jobs stay queued; rerun to wait again).
    #[arg(long, default_value_t = 7 * 24 * 3600)]
    wait_s: u64,
}

/// Runs `jobs` on Slurm with its files in `dir`; `done(i, seconds)` takes each job that
/// finished (also those a previous submission finished). Fails naming the jobs that did not
/// finish.
pub fn run(
    jobs: &[Job],
    dir: &Path,
    args: &SlurmArgs,
    mut done: impl FnMut(usize, f64) -> Result<()>,
) -> Result<()> {
    for sub in ["scripts", "logs", "done"] {
        let d = dir.join(sub);
        std::fs::create_dir_all(&d).with_context(|| format!("{}: cannot create", d.display()))?;
    }
    let record_path = dir.join("submissions.json");
    let mut record = if record_path.exists() {
        read_json(&record_path)?
    } else {
        json!([])
    };
    let earlier: Vec<String> = record
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["arrays"].as_array().into_iter().flatten())
        .filter_map(|a| a["job_id"].as_str().map(String::from))
        .collect();
    let queued = in_queue(&earlier)?;
    if !queued.is_empty() {
        bail!(
            "jobs of an earlier submission are still queued ({}): wait for them or scancel them, then rerun",
            queued.join(", ")
        );
    }

    let marker = |i: usize| dir.join("done").join(file_name(&jobs[i].id));
    let finished = |i: usize| -> Option<f64> {
        let text = std::fs::read_to_string(marker(i)).ok()?;
        let (key, seconds) = text.trim().split_once(' ')?;
        (key == jobs[i].key).then(|| seconds.parse().ok())?
    };
    let mut todo = Vec::new();
    for i in 0..jobs.len() {
        match finished(i) {
            Some(seconds) => done(i, seconds)?,
            None => {
                // A marker of other settings is stale: the job runs again.
                let _ = std::fs::remove_file(marker(i));
                todo.push(i);
            }
        }
    }
    if todo.is_empty() {
        eprintln!("slurm: all {} jobs are done", jobs.len());
        return Ok(());
    }
    eprintln!(
        "slurm: {} of {} jobs to run ({} done before)",
        todo.len(),
        jobs.len(),
        jobs.len() - todo.len()
    );

    let groups = groups(jobs, &todo);
    let submission = record.as_array().map_or(0, Vec::len);
    let mut array_ids: Vec<String> = Vec::new();
    let mut arrays = Vec::new();
    for (k, group) in groups.iter().enumerate() {
        let script = dir.join("scripts").join(format!("{submission}-{k}.sh"));
        write_atomic(&script, array_script(jobs, &group.jobs, dir).as_bytes())?;
        let after: Vec<&str> = group.after.iter().map(|&g| array_ids[g].as_str()).collect();
        let sbatch = sbatch_args(jobs, group, &after, dir, args, &script);
        let id = match submit(&sbatch) {
            Ok(id) => id,
            Err(e) => {
                cancel(&array_ids);
                return Err(e.context(format!(
                    "slurm: submitting array {k} failed; the {} arrays submitted before it were cancelled",
                    array_ids.len()
                )));
            }
        };
        arrays.push(json!({
            "job_id": id,
            "jobs": group.jobs.iter().map(|&i| &jobs[i].id).collect::<Vec<_>>(),
            "after": after,
        }));
        array_ids.push(id);
    }
    if let Some(list) = record.as_array_mut() {
        list.push(json!({"submission": submission, "arrays": arrays}));
    }
    write_json(&record_path, &record)?;
    eprintln!(
        "slurm: submitted {} arrays ({}), logs in {}",
        array_ids.len(),
        array_ids.join(", "),
        dir.join("logs").display()
    );

    // Wait, publishing each job as it finishes.
    let t0 = Instant::now();
    let mut reported = vec![false; jobs.len()];
    let mut finished_now = 0;
    loop {
        let queued = in_queue(&array_ids)?;
        for &i in &todo {
            if !reported[i]
                && let Some(seconds) = finished(i)
            {
                reported[i] = true;
                finished_now += 1;
                eprintln!(
                    "[{finished_now}/{}] {} ({:.0} s, elapsed {})",
                    todo.len(),
                    jobs[i].label,
                    seconds,
                    hms(t0.elapsed().as_secs_f64())
                );
                done(i, seconds)?;
            }
        }
        if queued.is_empty() {
            break;
        }
        if t0.elapsed().as_secs() >= args.wait_s {
            bail!(
                "slurm: still queued after {} s: {} (rerun to wait again, or scancel them)",
                args.wait_s,
                queued.join(", ")
            );
        }
        std::thread::sleep(Duration::from_secs_f64(args.poll_s.max(0.1)));
    }
    let failed: Vec<usize> = todo.iter().copied().filter(|&i| !reported[i]).collect();
    if failed.is_empty() {
        return Ok(());
    }
    let mut lines = Vec::new();
    for &i in &failed {
        let log = dir
            .join("logs")
            .join(format!("{}.log", file_name(&jobs[i].id)));
        lines.push(if log.exists() {
            format!("  {}: {}", jobs[i].id, log.display())
        } else {
            format!(
                "  {}: never started (a job it needs failed or was cancelled)",
                jobs[i].id
            )
        });
    }
    bail!(
        "slurm: {} of {} jobs did not finish (rerun to submit only those):\n{}",
        failed.len(),
        todo.len(),
        lines.join("\n")
    )
}

/// One job array: its jobs and the arrays (earlier in the list) it waits for.
struct Group {
    jobs: Vec<usize>,
    after: Vec<usize>,
}

/// The jobs of `todo` grouped into arrays: one per set of arrays waited for (those of its
/// needs among `todo`; the others are done) and resources, in graph order. A job's needs
/// come before it, so every array depends on earlier arrays only.
fn groups(jobs: &[Job], todo: &[usize]) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    let mut group_of: BTreeMap<usize, usize> = BTreeMap::new();
    let mut by_key: BTreeMap<(Vec<usize>, usize, usize, u64, u64), usize> = BTreeMap::new();
    for &i in todo {
        let mut after: Vec<usize> = jobs[i]
            .needs
            .iter()
            .filter_map(|n| group_of.get(n).copied())
            .collect();
        after.sort_unstable();
        after.dedup();
        let r = jobs[i].resources;
        let key = (
            after.clone(),
            r.cpus,
            jobs[i].gpus,
            r.mem_mib,
            r.time_s.ceil() as u64,
        );
        let g = *by_key.entry(key).or_insert_with(|| {
            groups.push(Group {
                jobs: Vec::new(),
                after,
            });
            groups.len() - 1
        });
        groups[g].jobs.push(i);
        group_of.insert(i, g);
    }
    groups
}

fn read_json(path: &Path) -> Result<Value> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{}: not JSON", path.display()))
}

fn write_json(path: &Path, value: &Value) -> Result<()> {
    Ok(write_atomic(
        path,
        serde_json::to_string_pretty(value)?.as_bytes(),
    )?)
}

/// A job id as a file name (`/` as `.`).
fn file_name(id: &str) -> String {
    id.replace('/', ".")
}

/// `s` quoted for `sh`.
fn sh_quote(s: &OsStr) -> String {
    format!("'{}'", s.to_string_lossy().replace('\'', r"'\''"))
}

/// The script of one array: task k runs job `group[k]` in the workspace root with
/// `RAYON_NUM_THREADS` = its CPUs, its output in `logs/<job>.log`, and marks it done.
fn array_script(jobs: &[Job], group: &[usize], dir: &Path) -> String {
    let q = |p: &Path| sh_quote(p.as_os_str());
    let mut s =
        String::from("#!/bin/sh\n# Written by the tanas Slurm executor: one array task per job.\n");
    s += "export RAYON_NUM_THREADS=\"${SLURM_CPUS_PER_TASK:-1}\"\n";
    s += "case \"$SLURM_ARRAY_TASK_ID\" in\n";
    for (k, &i) in group.iter().enumerate() {
        let argv: Vec<String> = jobs[i].argv.iter().map(|a| sh_quote(a)).collect();
        s += &format!(
            "{k}) job={} key={} dir={}\n   set -- {} ;;\n",
            file_name(&jobs[i].id),
            jobs[i].key,
            q(&jobs[i].cwd),
            argv.join(" ")
        );
    }
    s += "*) echo \"no job for array task $SLURM_ARRAY_TASK_ID\" >&2; exit 2 ;;\nesac\n";
    s += "cd \"$dir\" || exit 1\n";
    s += &format!("log={}/\"$job.log\"\n", q(&dir.join("logs")));
    s += &format!("marker={}/\"$job\"\n", q(&dir.join("done")));
    s += "echo \"$job: job $SLURM_ARRAY_JOB_ID task $SLURM_ARRAY_TASK_ID on $(hostname)\" >\"$log\"\n";
    s += "t0=$(date +%s.%N)\n";
    s += "\"$@\" >>\"$log\" 2>&1 || { status=$?; echo \"exit status $status\" >>\"$log\"; exit $status; }\n";
    s += "t1=$(date +%s.%N)\n";
    s += "echo \"$key $(awk \"BEGIN { print $t1 - $t0 }\")\" >\"$marker.tmp\" && mv \"$marker.tmp\" \"$marker\"\n";
    s
}

/// The `sbatch` command line of one array.
fn sbatch_args(
    jobs: &[Job],
    group: &Group,
    after: &[&str],
    dir: &Path,
    args: &SlurmArgs,
    script: &Path,
) -> Vec<String> {
    let first = &jobs[group.jobs[0]];
    let r = first.resources;
    // A lone job is named after itself, an array after its jobs' common kind.
    let name = if group.jobs.len() == 1 {
        file_name(&first.id)
    } else {
        let parts: Vec<&str> = first.id.split('/').take(2).collect();
        format!("{}[{}]", parts.join("."), group.jobs.len())
    };
    let mut a = vec![
        "--parsable".to_string(),
        format!("--job-name=tanas.{name}"),
        format!("--array=0-{}", group.jobs.len() - 1),
        format!("--cpus-per-task={}", r.cpus),
        format!("--mem={}M", r.mem_mib),
        format!("--time={}", (r.time_s / 60.0).ceil().max(1.0) as u64),
        format!("--output={}", dir.join("logs/slurm-%A_%a.out").display()),
        "--kill-on-invalid-dep=yes".to_string(),
    ];
    if !after.is_empty() {
        a.push(format!("--dependency=afterok:{}", after.join(":")));
    }
    if first.gpus > 0 {
        a.push("--gres=gpu:1".into());
    }
    if let Some(p) = &args.partition {
        a.push(format!("--partition={p}"));
    }
    if let Some(acc) = &args.account {
        a.push(format!("--account={acc}"));
    }
    a.extend(args.sbatch_args.iter().cloned());
    a.push(script.display().to_string());
    a
}

/// Runs `sbatch ARGS` and returns the job id it prints (`--parsable`: `id[;cluster]`).
fn submit(args: &[String]) -> Result<String> {
    let out = Command::new("sbatch")
        .args(args)
        .output()
        .context("cannot run sbatch (is Slurm installed and SLURM_CONF set?)")?;
    if !out.status.success() {
        bail!(
            "sbatch {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let id = text
        .trim()
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        bail!("sbatch printed `{}`, not a job id", text.trim());
    }
    Ok(id)
}

/// Which of the arrays `ids` are still in the queue (pending, running, completing, ...):
/// `squeue` lists this user's jobs by array job id, so ids that left the queue long ago are
/// no error.
fn in_queue(ids: &[String]) -> Result<Vec<String>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let out = Command::new("squeue")
        .args(["--noheader", "--me", "--format=%F"])
        .output()
        .context("cannot run squeue (is Slurm installed and SLURM_CONF set?)")?;
    if !out.status.success() {
        bail!("squeue: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let listed: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .collect();
    Ok(ids
        .iter()
        .filter(|id| listed.contains(id))
        .cloned()
        .collect())
}

/// Cancels arrays (best effort: after a failed submission).
fn cancel(ids: &[String]) {
    if !ids.is_empty() {
        let _ = Command::new("scancel").args(ids).status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Resources;

    /// Jobs with these needs, all with the same resources.
    fn jobs(needs: &[&[usize]]) -> Vec<Job> {
        needs
            .iter()
            .enumerate()
            .map(|(i, n)| Job {
                id: format!("study/kind/{i}"),
                label: format!("job {i}"),
                argv: vec!["true".into()],
                cwd: ".".into(),
                needs: n.to_vec(),
                key: String::new(),
                resources: Resources::default(),
                gpus: 0,
                estimate: 1.0,
            })
            .collect()
    }

    #[test]
    fn arrays_follow_the_needs_of_the_jobs_left() {
        // Three independent parts; a matrix and two preparations after them; a chain of two
        // additions, each after its preparation; two searches after the last addition.
        let jobs = jobs(&[
            &[],
            &[],
            &[],
            &[0, 1, 2],
            &[0],
            &[1],
            &[4],
            &[5, 6],
            &[7],
            &[7],
        ]);
        let all: Vec<usize> = (0..jobs.len()).collect();
        let shape: Vec<(Vec<usize>, Vec<usize>)> = groups(&jobs, &all)
            .into_iter()
            .map(|g| (g.jobs, g.after))
            .collect();
        assert_eq!(
            shape,
            [
                (vec![0, 1, 2], vec![]),
                (vec![3, 4, 5], vec![0]),
                (vec![6], vec![1]),
                (vec![7], vec![1, 2]),
                (vec![8, 9], vec![3]),
            ]
        );
        // A resubmission after the additions: the searches depend on nothing.
        let g = groups(&jobs, &[8, 9]);
        assert_eq!(g.len(), 1);
        assert!(g[0].after.is_empty());
        // Other resources, another array.
        let mut gpu = jobs.clone();
        gpu[9].gpus = 1;
        assert_eq!(groups(&gpu, &[8, 9]).len(), 2);
    }

    #[test]
    fn a_job_runs_in_its_directory_and_marks_itself_done() {
        let jobs = jobs(&[&[]]);
        let script = array_script(&jobs, &[0], Path::new("/shared/slurm"));
        assert!(
            script.contains("0) job=study.kind.0 key= dir='.'"),
            "{script}"
        );
        assert!(script.contains("cd \"$dir\" || exit 1"), "{script}");
        assert!(
            script.contains("marker='/shared/slurm/done'/\"$job\""),
            "{script}"
        );
    }

    #[test]
    fn quoting_survives_quotes_and_spaces() {
        assert_eq!(sh_quote(OsStr::new("a b")), "'a b'");
        assert_eq!(sh_quote(OsStr::new("it's")), r"'it'\''s'");
    }
}
