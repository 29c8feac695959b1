//! The one rule for ids that become file names and command-line arguments: task ids, study
//! names, dictionary manifest entries.

/// The longest id [`check_id`] accepts.
pub const ID_MAX_LEN: usize = 64;

/// Checks an id that becomes a file or directory name (task ids: `<dict>/tasks/<id>/`, the
/// pipeline's artifact paths): 1 to [`ID_MAX_LEN`] ASCII letters, digits, `-`, `_` and `.`,
/// not starting with `.` (so no `..`, no hidden names, no separators) nor with `-` (it would
/// read as an option on a command line: `tanas run` passes ids to its jobs). The error says
/// why.
pub fn check_id(id: &str) -> std::result::Result<(), String> {
    if id.is_empty() {
        return Err("is empty".into());
    }
    if id.len() > ID_MAX_LEN {
        return Err(format!("is longer than {ID_MAX_LEN} characters"));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "has {c:?} (ids are file names: letters, digits, `-`, `_` and `.` only)"
        ));
    }
    if id.starts_with('.') {
        return Err("starts with `.`".into());
    }
    if id.starts_with('-') {
        return Err("starts with `-` (it would read as a command-line option)".into());
    }
    Ok(())
}
