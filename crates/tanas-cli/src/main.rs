//! `tanas`: task-aware neural architecture search from the command line.
//!
//! One subcommand per pipeline stage; see `tanas --help` and docs/cli.md.

mod backend;
mod cli;
mod commands;
mod device;
mod limits;
mod output;

use std::process::ExitCode;

use clap::Parser;

/// Tensor buffers come and go with every op: this allocator keeps and reuses them where the
/// system allocator maps, faults in and unmaps large blocks each time (docs/perf.md).
#[global_allocator]
static ALLOCATOR: tanas_cpu::Allocator = tanas_cpu::Allocator;

fn main() -> ExitCode {
    tanas_cpu::keep_freed_memory();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => err.exit(), // --help, --version
        Err(err) => {
            // clap's usage errors span several lines; keep the one that says what is wrong.
            let text = err.render().to_string();
            eprintln!(
                "{}",
                text.lines().next().unwrap_or("error: invalid arguments")
            );
            return ExitCode::from(2);
        }
    };
    init_logging(cli.global.verbose, cli.global.quiet);
    match commands::run(cli).and_then(|()| output::finish()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", one_line(&err));
            ExitCode::FAILURE
        }
    }
}

/// The whole context chain on one line, each cause once: an error that already shows its
/// source in its own message (`path: No such file or directory`) does not get it appended again.
fn one_line(err: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if msg.contains(&text) {
            continue;
        }
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&text);
    }
    msg.replace('\n', " ")
}

/// Logs go to stderr; `RUST_LOG` wins over `-v` / `-q`.
fn init_logging(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn,tanas=info",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}
