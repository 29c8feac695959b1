//! Running the job graph on this machine: each job is one process, started once the jobs it
//! needs have finished; `inline` runs them one after another in graph order, `local --jobs N`
//! keeps up to N running, each with `RAYON_NUM_THREADS = cores / k` where k jobs run side by
//! side as it starts (a job of a serial chain gets every core; results do not depend on the
//! thread count).

use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::Job;

/// Where the stages run (`--executor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExecutorKind {
    /// One stage at a time, in plan order.
    Inline,
    /// Up to `--jobs` stages at a time on this machine.
    Local,
    /// Job arrays on a Slurm cluster ([`crate::slurm`]).
    Slurm,
}

/// How many stages run at once on this machine, and whether they share its cores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Executor {
    /// Stages at once.
    pub jobs: usize,
    /// Whether each stage gets `RAYON_NUM_THREADS` (`local`; `inline` leaves the default).
    pub share_cores: bool,
}

impl Executor {
    /// The executor `kind` on this machine with `jobs` workers (`inline`: one).
    pub fn new(kind: ExecutorKind, jobs: usize) -> Self {
        match kind {
            ExecutorKind::Inline | ExecutorKind::Slurm => Executor {
                jobs: 1,
                share_cores: false,
            },
            ExecutorKind::Local => Executor {
                jobs: jobs.max(1),
                share_cores: true,
            },
        }
    }

    /// `RAYON_NUM_THREADS` of a stage started while `sharing` stages run side by side
    /// (`None`: the process's default).
    pub fn threads(&self, sharing: usize) -> Option<usize> {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        self.share_cores.then(|| (cores / sharing.max(1)).max(1))
    }
}

/// Starts `job` in its directory (its errors go to the terminal, its output nowhere), with
/// `RAYON_NUM_THREADS` set where `threads` says.
pub fn spawn(job: &Job, threads: Option<usize>) -> Result<Child> {
    let (program, args) = job
        .argv
        .split_first()
        .with_context(|| format!("{}: empty command", job.id))?;
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(&job.cwd).stdout(Stdio::null());
    if let Some(n) = threads {
        cmd.env("RAYON_NUM_THREADS", n.to_string());
    }
    cmd.spawn()
        .with_context(|| format!("{}: cannot run {}", job.id, program.to_string_lossy()))
}

/// Runs stages `0..needs.len()`, stage `i` once every stage of `needs[i]` (all before `i`)
/// has finished, at most `jobs` at once, ready stages in index order: `start(i, sharing)`
/// launches stage `i`, `sharing` being how many stages run side by side once it has started
/// (a stage of a serial chain starts alone and may take every core); `finish(i, status,
/// seconds)` takes its end (an error there is the stage's failure). After a failure no stage
/// starts; the running ones are waited for and the first error is returned.
pub fn run_all(
    needs: &[Vec<usize>],
    jobs: usize,
    mut start: impl FnMut(usize, usize) -> Result<Child>,
    mut finish: impl FnMut(usize, ExitStatus, f64) -> Result<()>,
) -> Result<()> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Waiting,
        Running,
        Done,
    }
    let mut state = vec![State::Waiting; needs.len()];
    let mut running: Vec<(usize, Child, Instant)> = Vec::new();
    let mut failure: Option<anyhow::Error> = None;
    loop {
        if failure.is_none() {
            let ready: Vec<usize> = (0..needs.len())
                .filter(|&i| {
                    state[i] == State::Waiting && needs[i].iter().all(|&n| state[n] == State::Done)
                })
                .take(jobs.max(1).saturating_sub(running.len()))
                .collect();
            let sharing = running.len() + ready.len();
            for i in ready {
                match start(i, sharing) {
                    Ok(child) => {
                        state[i] = State::Running;
                        running.push((i, child, Instant::now()));
                    }
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
        }
        if running.is_empty() {
            break;
        }
        let (k, status) = wait_any(&mut running)?;
        let (i, _, t0) = running.remove(k);
        match finish(i, status, t0.elapsed().as_secs_f64()) {
            Ok(()) => state[i] = State::Done,
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    match failure {
        Some(e) => Err(e),
        None if state.iter().all(|&s| s == State::Done) => Ok(()),
        None => anyhow::bail!("the plan's dependencies leave stages that can never start"),
    }
}

/// Waits until one of the running processes ends: its position and exit status.
fn wait_any(running: &mut [(usize, Child, Instant)]) -> Result<(usize, ExitStatus)> {
    loop {
        for (k, (_, child, _)) in running.iter_mut().enumerate() {
            if let Some(status) = child.try_wait()? {
                return Ok((k, status));
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Runs stages that append "start i" / "end i" to a log, each taking `ms[i]`.
    fn run(
        needs: &[Vec<usize>],
        jobs: usize,
        ms: &[u64],
        fail: Option<usize>,
    ) -> (Result<()>, Vec<String>) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let log = dir.path().join("log");
        let result = run_all(
            needs,
            jobs,
            |i, _| {
                let code = if Some(i) == fail { 1 } else { 0 };
                let script = format!(
                    "echo start {i} >> {0}; sleep {1}; echo end {i} >> {0}; exit {code}",
                    log.display(),
                    ms[i] as f64 / 1000.0
                );
                Ok(Command::new("sh").args(["-c", &script]).spawn()?)
            },
            |i, status, _| {
                anyhow::ensure!(status.success(), "stage {i} failed");
                Ok(())
            },
        );
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        (result, text.lines().map(String::from).collect())
    }

    #[test]
    fn a_stage_that_starts_alone_shares_the_cores_with_no_one() {
        let sharing = |needs: &[Vec<usize>]| {
            let mut seen = Vec::new();
            let r = run_all(
                needs,
                2,
                |i, k| {
                    seen.push((i, k));
                    Ok(Command::new("true").spawn()?)
                },
                |_, _, _| Ok(()),
            );
            assert!(r.is_ok());
            seen
        };
        // A chain: every stage runs alone.
        assert_eq!(
            sharing(&[vec![], vec![0], vec![1]]),
            [(0, 1), (1, 1), (2, 1)]
        );
        // Independent stages: two side by side, each with half the cores.
        assert_eq!(sharing(&[vec![], vec![]])[..], [(0, 2), (1, 2)]);
        let e = Executor::new(ExecutorKind::Local, 2);
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        assert_eq!(e.threads(1), Some(cores));
        assert_eq!(e.threads(2), Some((cores / 2).max(1)));
        assert_eq!(Executor::new(ExecutorKind::Inline, 4).threads(1), None);
    }

    #[test]
    fn one_job_runs_the_plan_in_order() {
        let (r, log) = run(&[vec![], vec![], vec![0]], 1, &[50, 10, 10], None);
        assert!(r.is_ok());
        assert_eq!(
            log,
            ["start 0", "end 0", "start 1", "end 1", "start 2", "end 2"]
        );
    }

    #[test]
    fn two_jobs_overlap_and_respect_what_a_stage_needs() {
        // 0 and 1 run together; 2 needs 0 (the slow one), so it starts after 1 ended too.
        let (r, log) = run(&[vec![], vec![], vec![0]], 2, &[300, 50, 10], None);
        assert!(r.is_ok());
        // Both started before either ended (in whichever order their shells wrote).
        let mut first = log[..2].to_vec();
        first.sort();
        assert_eq!(first, ["start 0", "start 1"], "{log:?}");
        let pos = |s: &str| log.iter().position(|l| l == s).unwrap_or(usize::MAX);
        assert!(pos("end 0") < pos("start 2"), "{log:?}");
    }

    #[test]
    fn after_a_failure_nothing_starts_and_the_running_stages_finish() {
        let (r, log) = run(&[vec![], vec![], vec![]], 2, &[50, 300, 10], Some(0));
        assert_eq!(
            r.map_err(|e| e.to_string()),
            Err("stage 0 failed".to_string())
        );
        assert!(log.contains(&"end 1".to_string()), "{log:?}");
        assert!(!log.contains(&"start 2".to_string()), "{log:?}");
    }
}
