//! Atomic file writes.

use std::path::Path;

use crate::error::{DistanceError, Result};

/// Writes `bytes` to `path` atomically ([`tanas_core::write_atomic`]).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    tanas_core::write_atomic(path, bytes).map_err(|e| DistanceError::io(path, e))
}
