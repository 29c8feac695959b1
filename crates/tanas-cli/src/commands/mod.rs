//! One module per subcommand group.

mod data;
mod task;

use crate::cli::{Cli, Command};

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let dirs = tanas_data::DataDirs::new(cli.global.data_dirs.clone());
    match cli.command {
        Command::Data(cmd) => data::run(cmd, &dirs),
        Command::Task(cmd) => task::run(cmd, &dirs),
    }
}
