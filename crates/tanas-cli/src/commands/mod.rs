//! One module per subcommand group.

mod bench;
mod bench_conv;
mod bench_grads;
mod data;
pub mod model;
mod run_graph;
pub mod stages;
mod tanas;
mod task;

use std::path::Path;

use crate::cli::{Cli, Command};

/// The artifact store: `--store`, else `default` (`<dict>/store` or `<out>/store`).
pub fn store_at(store: Option<&Path>, default: &Path) -> tanas_core::Store {
    tanas_core::Store::new(store.unwrap_or(default))
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    // A data directory the user named must exist: a typo would otherwise fall back to the
    // default directories without a word.
    let explicit: Vec<_> = cli
        .global
        .data_dirs
        .iter()
        .filter(|d| !d.as_os_str().is_empty())
        .cloned()
        .collect();
    if let Some(d) = explicit.iter().find(|d| !d.is_dir()) {
        anyhow::bail!(
            "data directory {} (--data-dir / TANAS_DATA_DIR): no such directory",
            d.display()
        );
    }
    let cache = match &cli.global.cache_dir {
        Some(d) if d.as_os_str() == "off" => None,
        Some(d) if !d.as_os_str().is_empty() => Some(d.clone()),
        _ => tanas_data::DataDirs::default_cache(),
    };
    let dirs = tanas_data::DataDirs::new(explicit).with_cache(cache);
    let store = cli.global.store.as_deref();
    match cli.command {
        Command::Data(cmd) => data::run(cmd, &dirs),
        Command::Task(cmd) => task::run(cmd, &dirs),
        Command::Model(cmd) => model::run(cmd, &dirs, cli.global.device),
        Command::Genotype(cmd) => model::run_genotype(cmd),
        Command::Train(args) => stages::train(args, &dirs, cli.global.device),
        Command::Fisher(args) => stages::fisher(args, &dirs, cli.global.device),
        Command::Distance(args) => stages::distance(args, &dirs, store, cli.global.device),
        Command::Bench(cmd) => bench::run(cmd, cli.global.device),
        Command::Dict(cmd) => tanas::dict(cmd, &dirs, store, cli.global.device),
        Command::Search(args) => tanas::search(args, &dirs, store, cli.global.device),
        Command::Run(args) => tanas::run(args, &dirs, &cli.global),
        Command::Baseline(args) => tanas::baseline(args, &dirs, store, cli.global.device),
        Command::Check(args) => check(&args),
    }
}

/// `tanas check`: the file read by the reader of the command it is for.
fn check(args: &crate::cli::CheckArgs) -> anyhow::Result<()> {
    use crate::cli::CheckKind;
    let what = match args.kind {
        CheckKind::Experiment => {
            let exp = tanas_pipeline::Experiment::read(&args.file)?;
            format!(
                "a distance-matrix experiment: {} seeds, {} metrics",
                exp.seeds.len(),
                exp.metrics.len()
            )
        }
        CheckKind::DictSettings => {
            let s = tanas_pipeline::DictSettings::read(&args.file)?;
            format!("dictionary settings: {}, {} seeds", s.arch, s.seeds.len())
        }
        CheckKind::Run => {
            tanas_pipeline::TanasExperiment::read(&args.file)?;
            "a TA-NAS experiment".to_string()
        }
    };
    crate::output::outln!("{}: {what}", args.file.display());
    Ok(())
}
