//! Printing results: JSON for `--json`, text otherwise.

use serde::Serialize;

/// Prints a line on stdout (like `println!`) without panicking when stdout is a closed pipe
/// (`tanas ... | head`): then the process ends quietly.
macro_rules! outln {
    ($($arg:tt)*) => { $crate::output::write_out(format_args!("{}\n", format_args!($($arg)*))) };
}
pub(crate) use outln;

/// Writes to stdout; a closed pipe ends the process with success, other errors are ignored
/// like `println!` would report them (there is nowhere left to report to).
pub fn write_out(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    if let Err(e) = std::io::stdout().lock().write_fmt(args)
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(0);
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
