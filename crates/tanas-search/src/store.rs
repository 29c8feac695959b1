//! Files of a search: the JSONL trace, JSON checkpoints and the check that a
//! stored search was made with the requested settings.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tanas_core::SettingsMismatch;

use crate::error::{Result, SearchError};

/// The trace: one JSON object per line, one line per FUSE stage or random-search candidate.
pub const TRACE_FILE: &str = "trace.jsonl";
/// The checkpoint after the last completed stage / candidate (the source of truth on resume).
pub const CHECKPOINT_FILE: &str = "checkpoint.json";
/// The [`SearchResult`](crate::SearchResult); its presence marks a finished search.
pub const RESULT_FILE: &str = "result.json";
/// The final network's weights (PyTorch names and layouts, see `tanas_zoo::save_pytorch`).
pub const WEIGHTS_FILE: &str = "weights.safetensors";

/// Writes `value` as pretty JSON (plus a newline) to `path` atomically.
pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| SearchError::json(path, e))?;
    bytes.push(b'\n');
    tanas_core::write_atomic(path, &bytes).map_err(|e| SearchError::io(e.path, e.source))
}

/// Reads a JSON file; `None` if it does not exist.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| SearchError::json(path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SearchError::io(path, e)),
    }
}

/// Rewrites the whole trace (one compact JSON object per line) atomically.
pub(crate) fn write_trace<T: Serialize>(path: &Path, lines: &[T]) -> Result<()> {
    let mut bytes = Vec::new();
    for line in lines {
        serde_json::to_writer(&mut bytes, line).map_err(|e| SearchError::json(path, e))?;
        bytes.push(b'\n');
    }
    // A trace that already says this stays untouched: reading a finished search from the
    // store leaves its files as they were.
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    tanas_core::write_atomic(path, &bytes).map_err(|e| SearchError::io(e.path, e.source))
}

/// Reads a JSONL trace written by a search (one record per line).
pub fn read_trace<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let text = std::fs::read_to_string(path).map_err(|e| SearchError::io(path, e))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| SearchError::json(path, e)))
        .collect()
}

/// Refuses to go on with a stored search whose `what` (config, space, data) differs from
/// the requested one; the error names the first differing field (`config.lr`).
pub(crate) fn check_same<T: Serialize>(
    dir: &Path,
    what: &str,
    stored: &T,
    requested: &T,
) -> Result<()> {
    let to_value = |v: &T| serde_json::to_value(v).map_err(|e| SearchError::json(dir, e));
    let (stored, requested) = (to_value(stored)?, to_value(requested)?);
    match first_difference(what, &stored, &requested) {
        None => Ok(()),
        Some((field, stored, requested)) => Err(SearchError::ConfigMismatch(SettingsMismatch {
            what: "search",
            dir: dir.to_path_buf(),
            field,
            stored,
            requested,
        })),
    }
}

/// The first path at which two JSON values differ, with both values there.
fn first_difference(
    path: &str,
    a: &serde_json::Value,
    b: &serde_json::Value,
) -> Option<(String, String, String)> {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                let sub = format!("{path}.{k}");
                match y.get(k) {
                    Some(vb) => {
                        if let Some(d) = first_difference(&sub, va, vb) {
                            return Some(d);
                        }
                    }
                    None => return Some((sub, va.to_string(), "(absent)".into())),
                }
            }
            y.iter()
                .find(|(k, _)| !x.contains_key(*k))
                .map(|(k, vb)| (format!("{path}.{k}"), "(absent)".into(), vb.to_string()))
        }
        _ if a == b => None,
        _ => Some((path.to_string(), a.to_string(), b.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn first_difference_names_the_field() {
        let a = json!({"x": 1, "y": {"z": [1, 2]}});
        let b = json!({"x": 1, "y": {"z": [1, 3]}});
        assert_eq!(
            first_difference("config", &a, &b),
            Some(("config.y.z".into(), "[1,2]".into(), "[1,3]".into()))
        );
        assert_eq!(first_difference("config", &a, &a), None);
    }
}
