//! The command-line grammar.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::device::DeviceArg;

/// Task-aware neural architecture search: find the learned task closest to a new one
/// (Fisher Task Distance) and search for a network in its space (FUSE).
#[derive(Debug, Parser)]
#[command(name = "tanas", version, about, propagate_version = true)]
pub struct Cli {
    /// Options every subcommand takes.
    #[command(flatten)]
    pub global: Global,
    /// The stage to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand takes.
#[derive(Debug, Args)]
pub struct Global {
    /// A directory with datasets in `<dir>/<name>/` (repeatable; searched first, before the
    /// repository's `data/` and `/usr/share/datasets`).
    #[arg(
        long = "data-dir",
        global = true,
        env = "TANAS_DATA_DIR",
        value_delimiter = ':'
    )]
    pub data_dirs: Vec<PathBuf>,
    /// Where datasets declared in task files (`[[dataset]]`) are kept once decoded, found
    /// again by their files' names, sizes and times (default: `$XDG_CACHE_HOME/tanas` or
    /// `~/.cache/tanas`; `off`: decode every time).
    #[arg(long = "cache-dir", global = true, env = "TANAS_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// The artifact store: where networks, Fishers and searches are kept, found by a key of
    /// how they were made, and shared by every stage that uses the same store (default:
    /// `<dict>/store` for commands with a dictionary, `<out>/dict/store` for `run`,
    /// `<out>/store` for `distance matrix`).
    #[arg(long, global = true, env = "TANAS_STORE")]
    pub store: Option<PathBuf>,
    /// Where tensors live: `cpu`, `flex`, `cuda[:N]` or `cudnn[:N]` (burn-cuda with cuDNN's
    /// convolutions); the GPU ones need a build with `--features cuda`.
    #[arg(long, global = true, default_value = "cpu")]
    pub device: DeviceArg,
    /// More log output (-v info, -vv debug, -vvv trace); `RUST_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Datasets: where they are and what they hold.
    #[command(subcommand)]
    Data(DataCommand),
    /// Tasks defined in TOML files.
    #[command(subcommand)]
    Task(TaskCommand),
    /// The model zoo: architectures, their tensors, evaluation of given weights.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Cell genotypes (JSON) of cell networks.
    #[command(subcommand)]
    Genotype(GenotypeCommand),
    /// Train an epsilon-approximation network on a task (resumes from DIR's checkpoint).
    Train(TrainArgs),
    /// The diagonal Fisher information of a network on a task's data.
    Fisher(FisherArgs),
    /// Distance between two Fisher diagonals, or `distance matrix` for an experiment.
    Distance(DistanceArgs),
    /// Measurements: Fisher estimators vs forward + backward, training throughput.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// The task dictionary: learned tasks with their networks, Fishers and search spaces.
    #[command(subcommand)]
    Dict(DictCommand),
    /// Search a network for a target task (FUSE or random) in the closest task's space.
    Search(SearchArgs),
    /// The whole TA-NAS pipeline (Algorithm 2) from one experiment file; resumable.
    Run(RunArgs),
    /// Train a hand-designed network on a target exactly like a searched network's final
    /// step (the dictionary's settings) and test it once: the baseline of the search tables.
    Baseline(BaselineArgs),
    /// Check a settings file as the command that reads it does, running nothing: one error
    /// line naming the file and the problem, or a line saying it is valid.
    Check(CheckArgs),
}

/// `tanas check`
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// What the file is for.
    #[arg(value_enum)]
    pub kind: CheckKind,
    /// The file.
    pub file: PathBuf,
}

/// The settings files `tanas check` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckKind {
    /// A distance-matrix experiment (`tanas distance matrix --experiment`).
    Experiment,
    /// Dictionary settings (`tanas dict add --settings`).
    DictSettings,
    /// A TA-NAS experiment (`tanas run`).
    Run,
}

/// `tanas dict ...`
#[derive(Debug, Subcommand)]
pub enum DictCommand {
    /// Learn a task: epsilon-networks, its own Fisher, FUSE in the general space, its space.
    Add {
        /// The dictionary directory (created with the settings below if new).
        #[arg(long)]
        dict: PathBuf,
        /// The task file.
        #[arg(long)]
        tasks: PathBuf,
        /// The task id.
        #[arg(long)]
        task: String,
        /// The settings of a new dictionary, from a TOML file (`DictSettings`: arch, seeds,
        /// skeleton, [train], [fisher], [search]); instead of --arch/--seeds/--epochs.
        #[arg(long, conflicts_with_all = ["arch", "seeds", "epochs"])]
        settings: Option<PathBuf>,
        /// Epsilon-network architecture of a new dictionary (default small-cnn); on an
        /// existing one, a value other than its own is an error.
        #[arg(long)]
        arch: Option<String>,
        /// Seeds 0..N of a new dictionary (default 3); on an existing one, a value other than
        /// its own is an error.
        #[arg(long, value_parser = crate::limits::seeds())]
        seeds: Option<u64>,
        /// Training epochs of a new dictionary's epsilon-networks (default `TrainConfig`'s, as
        /// `tanas train`); on an existing one, a value other than its own is an error.
        #[arg(long, value_parser = crate::limits::positive())]
        epochs: Option<usize>,
        /// Only build the task's networks, own Fisher and search into the store, and leave
        /// the dictionary as it is: a job that runs beside the preparations of other tasks;
        /// the `dict add` of the task then finds it all.
        #[arg(long)]
        prepare: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The learned tasks and their spaces.
    List {
        /// The dictionary directory.
        #[arg(long)]
        dict: PathBuf,
        /// Print the manifest as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Distances from every dictionary task to a target, closest first (mean ± std over seeds).
    Closest {
        /// The dictionary and the target.
        #[command(flatten)]
        target: TargetArgs,
        /// ftd, logdet, cosine.
        #[arg(long, default_value = "ftd", value_parser = crate::commands::stages::parse_metric)]
        metric: tanas_distance::TaskDistance,
        /// Heads of different sizes: exclude (default) or pad.
        #[arg(long, default_value = "exclude", value_parser = crate::commands::stages::parse_head)]
        head: tanas_distance::HeadRule,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// A target task and the dictionary it is searched against.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// The dictionary directory (its settings drive searches and final trainings).
    #[arg(long)]
    pub dict: PathBuf,
    /// The task file of the target.
    #[arg(long)]
    pub tasks: PathBuf,
    /// The target task.
    #[arg(long)]
    pub task: String,
}

/// `tanas search`
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// The target.
    #[command(flatten)]
    pub target: TargetArgs,
    /// fuse or random.
    #[arg(long, default_value = "fuse")]
    pub algo: tanas_search::Algorithm,
    /// closest (TA-NAS), farthest or random-other (controls: the farthest dictionary task's
    /// space, or another one drawn with the seed), general, or a space JSON file.
    #[arg(long, default_value = "closest")]
    pub space: tanas_pipeline::SpaceChoice,
    /// The distance that picks the closest task.
    #[arg(long, default_value = "ftd", value_parser = crate::commands::stages::parse_metric)]
    pub metric: tanas_distance::TaskDistance,
    /// Heads of different sizes in that distance: exclude (default) or pad.
    #[arg(long, default_value = "exclude", value_parser = crate::commands::stages::parse_head)]
    pub head: tanas_distance::HeadRule,
    /// Draw every candidate of FUSE's first stage instead of starting from the closest task's
    /// best cell (the ablation of the warm start).
    #[arg(long)]
    pub no_warm_start: bool,
    /// The search seed (default: the dictionary's); repeated searches with other seeds give
    /// a method's spread.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Output directory (final.json, genotype.dot, search/ with trace and checkpoint).
    #[arg(long)]
    pub out: PathBuf,
    /// Print final.json.
    #[arg(long)]
    pub json: bool,
}

/// `tanas baseline`
#[derive(Debug, Args)]
pub struct BaselineArgs {
    /// The target.
    #[command(flatten)]
    pub target: TargetArgs,
    /// The hand-designed architecture (`tanas model list`).
    #[arg(long)]
    pub arch: tanas_zoo::Arch,
    /// For `--arch cellnet`: the genotype JSON file of its cells (e.g.
    /// configs/genotypes/darts_v2.json), built on the dictionary's skeleton.
    #[arg(long)]
    pub genotype: Option<PathBuf>,
    /// Output directory (baseline.json, weights.safetensors).
    #[arg(long)]
    pub out: PathBuf,
    /// Print baseline.json.
    #[arg(long)]
    pub json: bool,
}

/// `tanas run`
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The TA-NAS experiment TOML.
    pub experiment: PathBuf,
    /// The artifact directory (dict/, target/; jobs/ and slurm/ with other executors).
    #[arg(long)]
    pub out: PathBuf,
    /// Where the stages run (`inline`: in this process) and how many at once.
    #[command(flatten)]
    pub exec: tanas_jobs::ExecutorArgs,
    /// Print the job graph as JSON (each node's command, key, needs and resources) and stop.
    #[arg(long)]
    pub plan: bool,
    /// What each job asks of a Slurm node: CPU cores (also its `RAYON_NUM_THREADS`).
    #[arg(long, default_value_t = 2, value_parser = crate::limits::positive())]
    pub job_cpus: usize,
    /// What each job asks of a Slurm node: memory in MiB.
    #[arg(long, default_value_t = 8192, value_parser = clap::value_parser!(u64).range(1..))]
    pub job_mem_mib: u64,
    /// What each job asks of a Slurm node: its wall-clock limit in seconds.
    #[arg(long, default_value_t = 14400.0, value_parser = crate::limits::positive_real())]
    pub job_time_s: f64,
    /// Print final.json.
    #[arg(long)]
    pub json: bool,
}

/// `tanas bench ...`
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Exact Fisher and the naive per-sample loop against one batched forward + backward.
    Fisher {
        /// Architectures (10 classes, random weights, synthetic images).
        #[arg(long, value_delimiter = ',', default_value = "small-cnn,resnet18")]
        archs: Vec<tanas_zoo::Arch>,
        /// Samples the Fisher is taken on.
        #[arg(long, default_value_t = 512, value_parser = crate::limits::positive())]
        samples: usize,
        /// Samples per pass.
        #[arg(long, default_value_t = 128, value_parser = crate::limits::batch_size())]
        batch_size: usize,
        /// Samples the naive loop is timed on (extrapolated to --samples).
        #[arg(long, default_value_t = 64, value_parser = crate::limits::positive())]
        naive_samples: usize,
        /// The cells of `cellnet`.
        #[command(flatten)]
        cells: CellArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One training step's loss and parameter gradients on this device against the CPU's,
    /// from the same weights and batch: the largest relative L2 error per network.
    Grads {
        /// Architectures.
        #[arg(long, value_delimiter = ',', default_value = "small-cnn,resnet18")]
        archs: Vec<tanas_zoo::Arch>,
        /// Images in the batch.
        #[arg(long, default_value_t = 32, value_parser = crate::limits::batch_size())]
        batch_size: usize,
        /// The cells of `cellnet`.
        #[command(flatten)]
        cells: CellArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Milliseconds per call of a convolution's three passes (forward, data gradient,
    /// weight gradient) on ResNet-18's and DARTS's shapes, the backend's own ops.
    Conv {
        /// Timed calls per pass, after 3 warm-up calls.
        #[arg(long, default_value_t = 20, value_parser = crate::limits::positive())]
        reps: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Training images/s (forward + backward + Adam).
    Train {
        /// Architectures.
        #[arg(long, value_delimiter = ',', default_value = "small-cnn,resnet18")]
        archs: Vec<tanas_zoo::Arch>,
        /// Mini-batch size.
        #[arg(long, default_value_t = 128, value_parser = crate::limits::batch_size())]
        batch_size: usize,
        /// Timed steps (after 2 warm-up steps).
        #[arg(long, default_value_t = 5, value_parser = crate::limits::positive())]
        steps: usize,
        /// The cells of `cellnet`.
        #[command(flatten)]
        cells: CellArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// The genotype and skeleton of a `cellnet` in `tanas model` and `tanas bench` (ignored by
/// the other architectures).
#[derive(Debug, Clone, Args)]
pub struct CellArgs {
    /// Genotype JSON (needed by `cellnet`).
    #[arg(long)]
    pub genotype: Option<PathBuf>,
    /// Initial channels C of a cell network.
    #[arg(long, default_value_t = 16, value_parser = crate::limits::channels())]
    pub channels: usize,
    /// Number of cells L of a cell network.
    #[arg(long, default_value_t = 8, value_parser = crate::limits::layers())]
    pub layers: usize,
}

/// `tanas train`
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The task file.
    #[arg(long)]
    pub tasks: PathBuf,
    /// The task id.
    #[arg(long)]
    pub task: String,
    /// Architecture (`tanas model list`); the class count is the task's label count.
    #[arg(long, default_value = "small-cnn")]
    pub arch: String,
    /// Genotype JSON (cell networks only).
    #[arg(long)]
    pub genotype: Option<PathBuf>,
    /// Initial channels C of a cell network (default: DARTS's CIFAR-10 evaluation network).
    #[arg(long, default_value_t = 36, value_parser = crate::limits::channels())]
    pub channels: usize,
    /// Number of cells L of a cell network (default: DARTS's CIFAR-10 evaluation network).
    #[arg(long, default_value_t = 20, value_parser = crate::limits::layers())]
    pub layers: usize,
    /// Training settings from a TOML file (`TrainConfig`: epochs, batch_size, lr,
    /// target_accuracy, patience, max_steps, seed, eval_batch_size); the flags below override it, and
    /// what neither gives is `TrainConfig`'s default.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Seed of initialisation and shuffling (default 0).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Seed of the shuffling alone (default: --seed): the same initial network, another data
    /// order.
    #[arg(long)]
    pub order_seed: Option<u64>,
    /// Fine-tune: start from these weights (PyTorch names, e.g. another task's
    /// weights.safetensors), every tensor but the classification head's; the head is fresh.
    #[arg(long, value_name = "WEIGHTS")]
    pub init: Option<PathBuf>,
    /// Epoch budget (default 30).
    #[arg(long, value_parser = crate::limits::positive())]
    pub epochs: Option<usize>,
    /// Mini-batch size (default 128).
    #[arg(long, value_parser = crate::limits::batch_size())]
    pub batch_size: Option<usize>,
    /// Adam learning rate (default 1e-3).
    #[arg(long, value_parser = crate::limits::positive_real())]
    pub lr: Option<f64>,
    /// Stop once the validation accuracy reaches this (epsilon = 1 - A).
    #[arg(long, value_parser = crate::limits::accuracy())]
    pub target_accuracy: Option<f64>,
    /// Stop after this many epochs without a new best validation accuracy (the best
    /// epoch's weights are kept).
    #[arg(long, value_parser = crate::limits::positive())]
    pub patience: Option<usize>,
    /// A budget in optimiser steps: train at most the epochs that reach it (`--epochs`
    /// still caps them).
    #[arg(long, value_parser = crate::limits::positive())]
    pub max_steps: Option<usize>,
    /// Output directory (weights, metrics.json, checkpoint).
    #[arg(long)]
    pub out: PathBuf,
    /// Print metrics.json.
    #[arg(long)]
    pub json: bool,
}

/// `tanas fisher`
#[derive(Debug, Args)]
pub struct FisherArgs {
    /// The network.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Weights (PyTorch names, safetensors or .pt).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// A `tanas train` output directory (uses its weights.safetensors).
    #[arg(long)]
    pub run: Option<PathBuf>,
    /// The task file of the data.
    #[arg(long)]
    pub tasks: PathBuf,
    /// The task whose data the Fisher is taken on.
    #[arg(long)]
    pub task: String,
    /// The task the network was trained on (recorded in the file).
    #[arg(long)]
    pub net_task: Option<String>,
    /// Which split: probe (default; the dataset's held-out training images), val, test or
    /// train.
    #[arg(long, default_value = "probe", value_parser = crate::commands::stages::parse_split)]
    pub split: tanas_data::Split,
    /// Only N samples (after --skip).
    #[arg(long, value_parser = crate::limits::positive())]
    pub limit: Option<usize>,
    /// Leave out the first N samples of the split.
    #[arg(long, default_value_t = 0)]
    pub skip: usize,
    /// exact (per-sample gradients), mc (sampled labels), batch (the authors' squared
    /// mini-batch gradient), naive (one backward per sample) [default: exact].
    #[arg(long)]
    pub estimator: Option<tanas_fisher::Estimator>,
    /// Label samples per input for `mc` [default: 1].
    #[arg(long, value_parser = crate::limits::positive())]
    pub mc_samples: Option<usize>,
    /// Seed of the `mc` label draws [default: 0].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Samples per pass [default: 128].
    #[arg(long, value_parser = crate::limits::batch_size())]
    pub batch_size: Option<usize>,
    /// Output safetensors file.
    #[arg(long)]
    pub out: PathBuf,
    /// A Fisher file to check the result against (e.g. the CPU result of a GPU run): prints
    /// the largest relative L2 error over its tensors.
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `tanas distance`
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DistanceArgs {
    /// `matrix`: the whole experiment.
    #[command(subcommand)]
    pub command: Option<DistanceCommand>,
    /// Two Fisher diagonals A B (safetensors); the distance from A to B.
    pub files: Vec<PathBuf>,
    /// ftd (Fisher Task Distance), logdet, cosine.
    #[arg(long, default_value = "ftd", value_parser = crate::commands::stages::parse_metric)]
    pub metric: tanas_distance::TaskDistance,
    /// sigma^2 of the log-det distance.
    #[arg(long, default_value_t = 1e-8, value_parser = crate::limits::positive_real())]
    pub sigma2: f64,
    /// Heads of different sizes: exclude (leave them out, default) or pad (zero-pad, the
    /// authors' rule).
    #[arg(long, default_value = "exclude", value_parser = crate::commands::stages::parse_head)]
    pub head: tanas_distance::HeadRule,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `tanas distance matrix`
#[derive(Debug, Subcommand)]
pub enum DistanceCommand {
    /// Train every epsilon-network of an experiment, take every cross-task Fisher, write
    /// the distance matrices (JSON, CSV, heatmaps). Reruns reuse what is there.
    Matrix {
        /// The experiment TOML.
        #[arg(long)]
        experiment: PathBuf,
        /// The artifact directory.
        #[arg(long)]
        out: PathBuf,
        /// Only the epsilon-network of this task (with `--seed`) and its Fishers on every
        /// task, into the store, and no matrix: one job of a cluster executor. A full run
        /// afterwards finds them in the store.
        #[arg(long, requires = "seed")]
        network: Option<String>,
        /// The seed of `--network`.
        #[arg(long, requires = "network")]
        seed: Option<u64>,
    },
}

/// `tanas data ...`
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Every built-in dataset and every one declared in FILES: where it was found, split
    /// sizes, per-class counts, image sizes, unreadable files, or why it is missing or
    /// invalid.
    Info {
        /// Task or dataset files whose `[[dataset]]` tables are listed too.
        files: Vec<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Reads every file of the datasets declared in FILES (the built-ins without FILES),
    /// bypassing the cache, and names every unreadable one; fails if there is any.
    Check {
        /// Task or dataset files whose `[[dataset]]` tables are checked.
        files: Vec<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// `tanas task ...`
#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// Per task: the number of labels and the per-label counts of train / val / test.
    Show {
        /// The task file (TOML with `[[task]]` tables).
        #[arg(long)]
        tasks: PathBuf,
        /// Only this task.
        #[arg(long)]
        task: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Which network: architecture, class count, and for `cellnet` the genotype and skeleton.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// Architecture (`tanas model list`).
    pub arch: String,
    /// Number of outputs.
    #[arg(long, value_parser = crate::limits::num_classes())]
    pub num_classes: usize,
    /// The cells of `cellnet`.
    #[command(flatten)]
    pub cells: CellArgs,
}

/// `tanas model ...`
#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// The architectures of the zoo.
    List,
    /// Trainable parameters and every parameter / buffer with its PyTorch name and shape.
    Info {
        /// The network.
        #[command(flatten)]
        model: ModelArgs,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Eval-mode (BatchNorm running statistics) loss and accuracy of given weights on a task.
    Eval {
        /// The network.
        #[command(flatten)]
        model: ModelArgs,
        /// Weights: safetensors or `.pt` / `.pth` with PyTorch `state_dict` names.
        #[arg(long)]
        weights: PathBuf,
        /// The task file.
        #[arg(long)]
        tasks: PathBuf,
        /// The task id.
        #[arg(long)]
        task: String,
        /// Which split.
        #[arg(long, default_value = "test", value_parser = crate::commands::stages::parse_split)]
        split: tanas_data::Split,
        /// Only the first N samples of the split.
        #[arg(long, value_parser = crate::limits::positive())]
        limit: Option<usize>,
        /// Samples per forward pass.
        #[arg(long, default_value_t = 256, value_parser = crate::limits::batch_size())]
        batch_size: usize,
        /// `argmax` (default): the plain arg-max accuracy only, the papers' metric. `prior`:
        /// also the accuracy of decisions moved from the training label frequencies
        /// (`--trained-on`) to the dataset's (Bayes' rule for a change of prior).
        #[arg(long, default_value = "argmax")]
        decision: Decision,
        /// With `--decision prior`: the label frequencies the weights were trained on, `task`
        /// (this task's train split as tanas draws it) or one number per label (counts or
        /// shares, comma-separated).
        #[arg(long)]
        trained_on: Option<TrainedOn>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// The decisions `tanas model eval` scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Decision {
    /// The plain arg-max.
    Argmax,
    /// The arg-max, and beside it the decisions shifted to the dataset's label prior.
    Prior,
}

/// The training label frequencies of weights, as `--trained-on` states them.
#[derive(Debug, Clone, PartialEq)]
pub enum TrainedOn {
    /// The task's own train split.
    Task,
    /// One count or share per label.
    Frequencies(Vec<f64>),
}

impl std::str::FromStr for TrainedOn {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "task" {
            return Ok(Self::Task);
        }
        let values = s
            .split(',')
            .map(|v| match v.trim().parse::<f64>() {
                Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
                _ => Err(format!(
                    "`{v}` is not a label frequency (`task`, or non-negative numbers separated by commas)"
                )),
            })
            .collect::<Result<Vec<f64>, String>>()?;
        if values.iter().all(|&x| x == 0.0) {
            return Err("the frequencies are all 0".into());
        }
        Ok(Self::Frequencies(values))
    }
}

/// `tanas genotype ...`
#[derive(Debug, Subcommand)]
pub enum GenotypeCommand {
    /// The cells in words, or Graphviz DOT of both cells.
    Show {
        /// The genotype JSON file.
        file: PathBuf,
        /// Print Graphviz DOT.
        #[arg(long)]
        dot: bool,
    },
}
