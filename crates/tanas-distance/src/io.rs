//! Atomic file writes.

use std::io::Write as _;
use std::path::Path;

use crate::error::{DistanceError, Result};

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, then a rename,
/// so an interrupted run never leaves a half-written file.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let io = |e: std::io::Error| DistanceError::io(path, e);
    let mut builder = tempfile::Builder::new();
    builder.prefix(".tanas-distance-").suffix(".tmp");
    // Temporary files are created rw-------; the result is an ordinary rw-r--r-- file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        builder.permissions(std::fs::Permissions::from_mode(0o644));
    }
    let mut tmp = builder.tempfile_in(dir).map_err(io)?;
    tmp.write_all(bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}
