//! `tanas dict add | list | closest`, `tanas search`, `tanas run`: the task dictionary and
//! TA-NAS (paper 003, Algorithm 2).

use std::path::Path;

use anyhow::{Context, Result};
use burn::tensor::backend::AutodiffBackend;
use tanas_core::OutDirLock;
use tanas_data::{DataDirs, TaskData};
use tanas_distance::{HeadRule, TaskDistance};
use tanas_pipeline::dictionary::{DictSettings, TaskDictionary};
use tanas_pipeline::experiment::FisherSettings;
use tanas_pipeline::{
    BaselineReport, FinalReport, TanasExperiment, TargetSearch, baseline_target, run_tanas,
    search_target,
};
use tanas_search::{FuseConfig, SEARCH_SKELETON};
use tanas_train::TrainConfig;

use crate::backend::{BackendJob, dispatch};
use crate::cli::{BaselineArgs, DictCommand, Global, RunArgs, SearchArgs, TargetArgs};
use crate::commands::run_graph;
use crate::commands::stages::load_task;
use crate::commands::store_at;
use crate::device::DeviceArg;
use crate::output::{outln, print_json};

/// Runs `tanas dict ...`.
pub fn dict(
    cmd: DictCommand,
    dirs: &DataDirs,
    store: Option<&Path>,
    device: DeviceArg,
) -> Result<()> {
    match cmd {
        DictCommand::Add {
            dict,
            tasks,
            task,
            settings,
            arch,
            seeds,
            epochs,
            prepare,
            json,
        } => {
            // A preparation writes only to the store (whose entries have their own locks), so
            // that several run at once.
            let _lock = (!prepare).then(|| OutDirLock::acquire(&dict)).transpose()?;
            let data = load_task(&tasks, &task, dirs)?;
            let settings = match settings {
                Some(path) => DictSettings::read(&path)?,
                // An existing dictionary keeps its settings: flags that differ from them are
                // refused below, naming the field, like a differing --settings file.
                None => {
                    let mut s = if dict.join("manifest.json").exists() {
                        TaskDictionary::open(&dict)?.manifest().settings.clone()
                    } else {
                        DictSettings {
                            arch: tanas_zoo::Arch::SmallCnn,
                            seeds: (0..3).collect(),
                            train: TrainConfig::default(),
                            fisher: FisherSettings::default(),
                            search: FuseConfig::default(),
                            skeleton: SEARCH_SKELETON,
                            space: Default::default(),
                        }
                    };
                    if let Some(arch) = arch {
                        s.arch = arch.parse()?;
                    }
                    if let Some(n) = seeds {
                        s.seeds = (0..n).collect();
                    }
                    if let Some(e) = epochs {
                        s.train.epochs = e;
                    }
                    s
                }
            };
            let store = store_at(store, &dict.join("store"));
            if prepare {
                let id = data.spec.id.clone();
                let job = PrepareJob {
                    dir: &dict,
                    settings: &settings,
                    store: &store,
                    data,
                };
                dispatch(device, job)?;
                if json {
                    return print_json(&serde_json::json!({"task": id, "prepared": true}));
                }
                outln!("{id}: prepared (networks, Fisher and search in the store)");
                return Ok(());
            }
            let mut d = TaskDictionary::open_or_create(&dict, settings)?.with_store(store);
            let entry = dispatch(device, AddJob { dict: &mut d, data })?;
            if json {
                return print_json(&entry);
            }
            outln!(
                "{}: best cell test accuracy {:.4}; space {}",
                entry.spec.id,
                entry.test_accuracy,
                entry.space.display()
            );
            Ok(())
        }
        DictCommand::List { dict, json } => {
            let d = TaskDictionary::open(&dict)?;
            if json {
                return print_json(d.manifest());
            }
            for e in &d.manifest().tasks {
                let ops: Vec<_> = e.genotype.ops().iter().map(|o| o.to_string()).collect();
                outln!(
                    "{:<14} {} labels, nets {:.4} (balanced {:.4}), cell {:.4} (balanced {:.4}), {} nodes, ops: {}",
                    e.spec.id,
                    e.num_labels,
                    e.net_test_accuracy,
                    e.net_balanced_accuracy,
                    e.test_accuracy,
                    e.balanced_accuracy,
                    e.genotype.nodes(),
                    ops.join(" ")
                );
            }
            Ok(())
        }
        DictCommand::Closest {
            target,
            metric,
            head,
            json,
        } => {
            let d = open_dict(&target.dict, store)?;
            let data = load_task(&target.tasks, &target.task, dirs)?;
            let rows = dispatch(
                device,
                ClosestJob {
                    dict: &d,
                    data,
                    metric,
                    head,
                },
            )?;
            if json {
                return print_json(&rows);
            }
            for r in &rows {
                outln!("{:<14} {:.4} ± {:.4}", r.task, r.mean, r.std);
            }
            Ok(())
        }
    }
}

struct AddJob<'a> {
    dict: &'a mut TaskDictionary,
    data: TaskData,
}

impl BackendJob for AddJob<'_> {
    type Output = tanas_pipeline::dictionary::DictEntry;
    fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<Self::Output> {
        Ok(self.dict.add::<B>(&self.data, &device)?)
    }
}

struct PrepareJob<'a> {
    dir: &'a Path,
    settings: &'a DictSettings,
    store: &'a tanas_core::Store,
    data: TaskData,
}

impl BackendJob for PrepareJob<'_> {
    type Output = ();
    fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<()> {
        Ok(TaskDictionary::prepare::<B>(
            self.dir,
            self.settings,
            self.store,
            &self.data,
            &device,
        )?)
    }
}

struct ClosestJob<'a> {
    dict: &'a TaskDictionary,
    data: TaskData,
    metric: TaskDistance,
    head: HeadRule,
}

impl BackendJob for ClosestJob<'_> {
    type Output = Vec<tanas_pipeline::Closeness>;
    fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<Self::Output> {
        Ok(self
            .dict
            .closest::<B>(&self.data, self.metric, self.head, &device)?)
    }
}

/// Runs `tanas search`.
pub fn search(
    args: SearchArgs,
    dirs: &DataDirs,
    store: Option<&Path>,
    device: DeviceArg,
) -> Result<()> {
    let (_lock, dict, data) = open_target(&args.target, &args.out, dirs, store)?;
    let job = SearchJob {
        dict: &dict,
        data,
        how: TargetSearch {
            algorithm: args.algo,
            space: args.space,
            metric: args.metric,
            head: args.head,
            warm_start: !args.no_warm_start,
            seed: args.seed,
        },
        out: &args.out,
        device_name: device.to_string(),
    };
    let report = dispatch(device, job)?;
    print_report(&report, args.json)
}

struct SearchJob<'a> {
    dict: &'a TaskDictionary,
    data: TaskData,
    how: TargetSearch,
    out: &'a std::path::Path,
    device_name: String,
}

impl BackendJob for SearchJob<'_> {
    type Output = FinalReport;
    fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<FinalReport> {
        Ok(search_target::<B>(
            self.dict,
            &self.data,
            &self.how,
            self.out,
            &self.device_name,
            &device,
        )?)
    }
}

/// Runs `tanas baseline`.
pub fn baseline(
    args: BaselineArgs,
    dirs: &DataDirs,
    store: Option<&Path>,
    device: DeviceArg,
) -> Result<()> {
    let genotype = args
        .genotype
        .as_deref()
        .map(crate::commands::model::read_genotype)
        .transpose()?;
    let (_lock, dict, data) = open_target(&args.target, &args.out, dirs, store)?;
    let job = BaselineJob {
        dict: &dict,
        data,
        arch: args.arch,
        genotype,
        out: &args.out,
        device_name: device.to_string(),
    };
    let r = dispatch(device, job)?;
    if args.json {
        return print_json(&r);
    }
    outln!(
        "{} on {}: test accuracy {:.4} (balanced {:.4}), {} params ({:.3} M), {} epochs on {} samples, {:.1} s",
        r.arch,
        r.target,
        r.score.test_accuracy,
        r.score.balanced_accuracy,
        r.params,
        r.params as f64 / 1e6,
        r.training.epochs,
        r.train_samples,
        r.seconds
    );
    Ok(())
}

struct BaselineJob<'a> {
    dict: &'a TaskDictionary,
    data: TaskData,
    arch: tanas_zoo::Arch,
    genotype: Option<tanas_zoo::cell::Genotype>,
    out: &'a std::path::Path,
    device_name: String,
}

impl BackendJob for BaselineJob<'_> {
    type Output = BaselineReport;
    fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<BaselineReport> {
        Ok(baseline_target::<B>(
            self.dict,
            &self.data,
            self.arch,
            self.genotype.as_ref(),
            self.out,
            &self.device_name,
            &device,
        )?)
    }
}

/// Runs `tanas run`: in this process (`--executor inline`), or as a job graph of `tanas`
/// commands (`--plan`, `--executor local | slurm`, see [`run_graph`]).
pub fn run(args: RunArgs, dirs: &DataDirs, global: &Global) -> Result<()> {
    let store = global.store.as_deref();
    let device = global.device;
    let exp = TanasExperiment::read(&args.experiment)?;
    if args.plan || args.exec.executor != tanas_jobs::ExecutorKind::Inline {
        let report = run_graph::run(&args, &exp, global)?;
        return match report {
            Some(report) => print_report(&report, args.json),
            None => Ok(()),
        };
    }
    let _lock = OutDirLock::acquire(&args.out)?;
    let job = RunJob {
        exp,
        path: &args.experiment,
        dirs,
        // The dictionary's own store: later `--dict OUT/dict` commands find it there.
        store: store_at(store, &args.out.join("dict").join("store")),
        out: &args.out,
        device_name: device.to_string(),
    };
    let report = dispatch(device, job)
        .with_context(|| format!("tanas run {}", args.experiment.display()))?;
    print_report(&report, args.json)
}

struct RunJob<'a> {
    exp: TanasExperiment,
    path: &'a std::path::Path,
    dirs: &'a DataDirs,
    store: tanas_core::Store,
    out: &'a std::path::Path,
    device_name: String,
}

impl BackendJob for RunJob<'_> {
    type Output = FinalReport;
    fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<FinalReport> {
        Ok(run_tanas::<B>(
            &self.exp,
            self.path,
            self.dirs,
            self.out,
            &self.store,
            &self.device_name,
            &device,
        )?)
    }
}

/// What a search or baseline of a target starts from: the lock of its output directory `out`,
/// the dictionary and the target's data.
fn open_target(
    target: &TargetArgs,
    out: &Path,
    dirs: &DataDirs,
    store: Option<&Path>,
) -> Result<(OutDirLock, TaskDictionary, TaskData)> {
    let lock = OutDirLock::acquire(out)?;
    let dict = open_dict(&target.dict, store)?;
    let data = load_task(&target.tasks, &target.task, dirs)?;
    Ok((lock, dict, data))
}

/// Opens the dictionary `dir` with its artifacts in `--store` or `<dir>/store`.
fn open_dict(dir: &Path, store: Option<&Path>) -> Result<TaskDictionary> {
    Ok(TaskDictionary::open(dir)?.with_store(store_at(store, &dir.join("store"))))
}

fn print_report(r: &FinalReport, json: bool) -> Result<()> {
    if json {
        return print_json(r);
    }
    outln!("target:        {}", r.target);
    if let Some(c) = &r.closest_task {
        let d = r.distances.first().map_or(0.0, |d| d.mean);
        outln!("closest task:  {c} (distance {d:.4})");
    }
    if let Some(t) = r
        .space_task
        .as_ref()
        .filter(|t| Some(*t) != r.closest_task.as_ref())
    {
        let d = r
            .distances
            .iter()
            .find(|d| &d.task == t)
            .map_or(0.0, |d| d.mean);
        outln!("space of:      {t} (distance {d:.4})");
    }
    let ops: Vec<_> = r.genotype.ops().iter().map(|o| o.to_string()).collect();
    outln!(
        "genotype:      {} nodes; ops {}",
        r.genotype.nodes(),
        ops.join(" ")
    );
    outln!(
        "params:        {} ({:.3} M)",
        r.outcome.params,
        r.outcome.params as f64 / 1e6
    );
    outln!(
        "test accuracy: {:.4} (balanced {:.4})",
        r.outcome.score.test_accuracy,
        r.outcome.score.balanced_accuracy
    );
    outln!(
        "seconds:       search {:.1}, distances {:.1} ({})",
        r.outcome.search_seconds,
        r.distance_seconds,
        r.device
    );
    Ok(())
}
