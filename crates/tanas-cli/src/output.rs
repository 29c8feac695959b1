//! Printing results: JSON for `--json`, text otherwise.

use serde::Serialize;

/// Prints a line on stdout (like `println!`) without panicking when stdout is a closed pipe
/// (`tanas ... | head`): then the process ends quietly.
macro_rules! outln {
    ($($arg:tt)*) => { $crate::output::write_out(format_args!("{}\n", format_args!($($arg)*))) };
}
pub(crate) use outln;

/// The first failed write to stdout, if one failed: the command then fails ([`finish`]).
static WRITE_ERROR: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Writes to stdout. A closed pipe (`tanas ... | head`) ends the process quietly with
/// success; any other failure (a full disk) is kept, later writes are skipped, and [`finish`]
/// turns it into the command's error.
pub fn write_out(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    if WRITE_ERROR.get().is_some() {
        return;
    }
    match std::io::stdout().lock().write_fmt(args) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            let _ = WRITE_ERROR.set(e.to_string());
        }
        Ok(()) => {}
    }
}

/// Flushes stdout: an error if any write to it failed, so that output that never arrived
/// is not a success.
pub fn finish() -> anyhow::Result<()> {
    use std::io::Write;
    if let Err(e) = std::io::stdout().lock().flush()
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        let _ = WRITE_ERROR.set(e.to_string());
    }
    match WRITE_ERROR.get() {
        Some(e) => anyhow::bail!("cannot write to standard output: {e}"),
        None => Ok(()),
    }
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    outln!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Formats counts as `a/b/c`.
pub fn counts(values: &[usize]) -> String {
    values
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join("/")
}
