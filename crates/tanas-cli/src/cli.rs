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
    /// Where tensors live: `cpu` or `cuda[:N]` (CUDA needs a build with `--features cuda`).
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
}

/// `tanas data ...`
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Every known dataset: where it was found, split sizes, per-class counts, or why it is
    /// missing or invalid.
    Info {
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
