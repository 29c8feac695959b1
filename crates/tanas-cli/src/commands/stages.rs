//! `tanas train`, `tanas fisher`, `tanas distance [matrix]`: the task-distance stages.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::tensor::backend::AutodiffBackend;
use serde_json::json;
use tanas_core::OutDirLock;
use tanas_data::{DataDirs, Split, TaskData, TaskSplit};
use tanas_distance::{HeadRule, TaskDistance, compare_files};
use tanas_fisher::{FisherConfig, FisherDiag, FisherMeta, fisher_diag};
use tanas_pipeline::{Experiment, run_matrix, run_matrix_part};
use tanas_train::TrainConfig;
use tanas_zoo::{ModelSpec, ZooModel};

use crate::backend::{BackendJob, dispatch};
use crate::cli::{DistanceArgs, DistanceCommand, FisherArgs, TrainArgs};
use crate::commands::model::model_spec;
use crate::commands::store_at;
use crate::device::DeviceArg;
use crate::output::{outln, print_json};

/// Loads one task of a task file with its data.
pub fn load_task(tasks: &std::path::Path, id: &str, dirs: &DataDirs) -> Result<TaskData> {
    Ok(TaskData::load(tasks, id, dirs)?)
}

/// `tanas train`.
pub fn train(args: TrainArgs, dirs: &DataDirs, device: DeviceArg) -> Result<()> {
    let _lock = OutDirLock::acquire(&args.out)?;
    let data = load_task(&args.tasks, &args.task, dirs)?;
    let spec = crate::commands::model::with_cells(
        ModelSpec::new(args.arch.parse()?, data.num_labels),
        args.genotype.as_deref(),
        args.channels,
        args.layers,
    )?;
    let mut cfg = match &args.config {
        Some(path) => tanas_core::read_toml::<TrainConfig>(path)?,
        None => TrainConfig::default(),
    };
    cfg.epochs = args.epochs.unwrap_or(cfg.epochs);
    cfg.batch_size = args.batch_size.unwrap_or(cfg.batch_size);
    cfg.lr = args.lr.unwrap_or(cfg.lr);
    cfg.seed = args.seed.unwrap_or(cfg.seed);
    cfg.order_seed = args.order_seed.or(cfg.order_seed);
    cfg.init = args.init.or(cfg.init);
    cfg.target_accuracy = args.target_accuracy.or(cfg.target_accuracy);
    cfg.patience = args.patience.or(cfg.patience);
    cfg.max_steps = args.max_steps.or(cfg.max_steps);
    let outcome = dispatch(
        device,
        TrainJob {
            spec,
            data,
            cfg,
            out: args.out.clone(),
        },
    )?;
    let m = &outcome.metrics;
    if args.json {
        return print_json(m);
    }
    outln!(
        "{}: {} epochs ({:?}), best val accuracy {:.4} (epoch {}), test accuracy {:.4}; {}",
        m.task,
        m.epochs.len(),
        m.stop_reason,
        m.best_val_accuracy,
        m.best_epoch,
        m.test.accuracy,
        outcome.weights.display()
    );
    Ok(())
}

struct TrainJob {
    spec: ModelSpec,
    data: TaskData,
    cfg: TrainConfig,
    out: PathBuf,
}

impl BackendJob for TrainJob {
    type Output = tanas_train::train::TrainOutcome;
    fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<Self::Output> {
        Ok(tanas_train::train::train::<B>(
            &self.spec, &self.data, &self.cfg, &self.out, &device,
        )?)
    }
}

/// `tanas fisher`.
pub fn fisher(args: FisherArgs, dirs: &DataDirs, device: DeviceArg) -> Result<()> {
    let data = load_task(&args.tasks, &args.task, dirs)?;
    let weights = match (&args.weights, &args.run) {
        (Some(w), None) => w.clone(),
        (None, Some(run)) => run.join("weights.safetensors"),
        _ => bail!("give exactly one of --weights FILE or --run DIR"),
    };
    // Writing the Fisher over the weights it is computed from would destroy the network.
    let same = |a: &std::path::Path, b: &std::path::Path| {
        a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
    };
    if same(&args.out, &weights) {
        bail!(
            "{}: --out is the network's own weights file; write the Fisher elsewhere",
            args.out.display()
        );
    }
    let spec = model_spec(&args.model)?;
    let split = data.split(args.split);
    if args.skip > 0 && args.skip >= split.len() {
        bail!(
            "--skip {} leaves no samples: the {} split of task {} has {}",
            args.skip,
            args.split,
            data.spec.id,
            split.len()
        );
    }
    let samples = split.window(args.skip, args.limit.unwrap_or(usize::MAX));
    // The flags given override the estimator's defaults.
    let default = FisherConfig::default();
    let cfg = FisherConfig {
        estimator: args.estimator.unwrap_or(default.estimator),
        batch_size: args.batch_size.unwrap_or(default.batch_size),
        mc_samples: args.mc_samples.unwrap_or(default.mc_samples),
        seed: args.seed.unwrap_or(default.seed),
    };
    let mut meta = FisherMeta {
        arch: spec.arch.to_string(),
        task: data.spec.id.clone(),
        split: args.split.to_string(),
        num_classes: spec.num_classes,
        ..FisherMeta::default()
    };
    meta.net_task = args.net_task.clone().unwrap_or_default();
    meta.extra
        .insert("weights".into(), weights.display().to_string());
    if args.skip > 0 {
        meta.extra.insert("skip".into(), args.skip.to_string());
    }
    let job = FisherJob {
        spec,
        weights,
        samples,
        num_labels: data.num_labels,
        cfg,
        meta,
        out: args.out.clone(),
    };
    let total = dispatch(device, job)?;
    let relative_error = match &args.reference {
        Some(path) => {
            let reference = FisherDiag::load(path)?;
            let ours = FisherDiag::load(&args.out)?;
            let err = ours.relative_error(&reference).with_context(|| {
                format!(
                    "{}: its tensors are not those of {}",
                    path.display(),
                    args.out.display()
                )
            })?;
            Some(err)
        }
        None => None,
    };
    if args.json {
        return print_json(
            &json!({ "out": args.out, "total": total, "relative_error": relative_error }),
        );
    }
    outln!(
        "Fisher diagonal (trace {total:.6e}) written to {}",
        args.out.display()
    );
    if let Some(err) = relative_error {
        outln!("largest relative L2 error against the reference: {err:.3e}");
    }
    Ok(())
}

struct FisherJob {
    spec: ModelSpec,
    weights: PathBuf,
    samples: TaskSplit,
    num_labels: usize,
    cfg: FisherConfig,
    meta: FisherMeta,
    out: PathBuf,
}

impl BackendJob for FisherJob {
    type Output = f64;
    fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<f64> {
        let model =
            tanas_zoo::load_pytorch(ZooModel::<B>::new(&self.spec, &device)?, &self.weights)?;
        let diag = fisher_diag(
            &model,
            &self.samples,
            self.num_labels,
            &self.cfg,
            self.meta,
            &device,
        )?;
        diag.save(&self.out)?;
        Ok(diag.total())
    }
}

/// `tanas distance`.
pub fn distance(
    args: DistanceArgs,
    dirs: &DataDirs,
    store: Option<&std::path::Path>,
    device: DeviceArg,
) -> Result<()> {
    match args.command {
        Some(DistanceCommand::Matrix {
            experiment,
            out,
            network,
            seed,
        }) => {
            let _lock = OutDirLock::acquire(&out)?;
            let job = MatrixJob {
                exp: Experiment::read(&experiment)?,
                dirs: dirs.clone(),
                store: store_at(store, &out.join("store")),
                out: out.clone(),
                part: network.zip(seed),
            };
            match dispatch(device, job)? {
                MatrixOutput::Part(net) => outln!(
                    "{} seed {}: test accuracy {:.4}; {}",
                    net.task,
                    net.seed,
                    net.test_accuracy,
                    net.network
                ),
                MatrixOutput::Matrices(run) => {
                    for (m, files) in &run {
                        outln!("{}: {}", m.metric(), files.json.display());
                    }
                }
            }
            Ok(())
        }
        None => {
            let [a, b] = <[PathBuf; 2]>::try_from(args.files)
                .map_err(|_| anyhow::anyhow!("give two Fisher files: A B"))?;
            let metric = match args.metric {
                TaskDistance::LogDet { .. } => TaskDistance::LogDet {
                    sigma2: args.sigma2,
                },
                m => m,
            };
            let c = compare_files(&a, &b, metric, args.head)
                .with_context(|| format!("{} vs {}", a.display(), b.display()))?;
            if args.json {
                print_json(&json!({ "metric": metric_name(metric), "distance": c.distance }))
            } else {
                outln!("{}", c.distance);
                Ok(())
            }
        }
    }
}

fn metric_name(m: TaskDistance) -> &'static str {
    tanas_pipeline::matrix::metric_stem(m)
}

struct MatrixJob {
    exp: Experiment,
    dirs: DataDirs,
    out: PathBuf,
    store: tanas_core::Store,
    /// `--network TASK --seed S`: that part only.
    part: Option<(String, u64)>,
}

/// The whole matrix, or one network's part of it.
enum MatrixOutput {
    Matrices(Vec<(tanas_distance::DistanceMatrix, tanas_distance::MatrixFiles)>),
    Part(tanas_pipeline::matrix::NetSummary),
}

impl BackendJob for MatrixJob {
    type Output = MatrixOutput;
    fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<Self::Output> {
        let (exp, dirs, out, store) = (&self.exp, &self.dirs, &self.out, &self.store);
        Ok(match &self.part {
            Some((task, seed)) => MatrixOutput::Part(run_matrix_part::<B>(
                exp, dirs, out, store, &device, task, *seed,
            )?),
            None => {
                MatrixOutput::Matrices(run_matrix::<B>(exp, dirs, out, store, &device)?.matrices)
            }
        })
    }
}

/// Parses `--head`.
pub fn parse_head(s: &str) -> std::result::Result<HeadRule, String> {
    s.parse()
        .map_err(|e: tanas_distance::DistanceError| e.to_string())
}

/// Parses `--metric`.
pub fn parse_metric(s: &str) -> std::result::Result<TaskDistance, String> {
    s.parse()
        .map_err(|e: tanas_distance::DistanceError| e.to_string())
}

/// Parses `--split`.
pub fn parse_split(s: &str) -> std::result::Result<Split, String> {
    s.parse()
}
