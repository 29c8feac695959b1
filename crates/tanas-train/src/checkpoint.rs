//! The checkpoint directory of a run and atomic file writes.
//!
//! `checkpoint/state.json` names the record files of the last finished epoch; the records
//! carry the epoch in their names (`model-e0003.mpk`), are written (atomically) before the
//! state that names them, and the files of older epochs are removed after it. Whatever
//! moment a run is killed, `state.json` names complete files of one epoch.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Record, Recorder};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::config::TrainConfig;
use crate::error::{Result, TrainError};
use crate::metrics::{EpochMetrics, RunInfo};

/// The file in the checkpoint directory that describes the checkpoint.
pub const STATE_FILE: &str = "state.json";

/// The extension of record files (burn's named MessagePack format).
const RECORD_EXT: &str = "mpk";

/// `checkpoint/state.json`: where a run stands after its last finished epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    /// Format tag ([`crate::metrics::FORMAT`]).
    pub format: String,
    /// The settings of the run.
    pub config: TrainConfig,
    /// What the run trains on.
    pub run: RunInfo,
    /// Metrics of every finished epoch.
    pub epochs: Vec<EpochMetrics>,
    /// The epoch of the best weights so far.
    pub best_epoch: usize,
    /// Their validation accuracy.
    pub best_val_accuracy: f64,
    /// Record of the model after the last epoch (autodiff backend, training state).
    pub model_file: String,
    /// Record of the Adam state after the last epoch.
    pub optim_file: String,
    /// Record of the best weights so far (inference backend).
    pub best_file: String,
}

/// A run's checkpoint directory.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    dir: PathBuf,
}

/// Records are encoded in memory and written by [`write_atomic`], so that a failed write
/// reports the OS's error (a full disk, a permission) rather than the recorder's string.
fn recorder() -> NamedMpkBytesRecorder<FullPrecisionSettings> {
    NamedMpkBytesRecorder::<FullPrecisionSettings>::new()
}

impl Checkpoint {
    /// The checkpoint in `dir` (not created until something is saved).
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of `state.json`.
    pub fn state_path(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }

    /// The state, or `None` if there is no checkpoint.
    pub fn read_state(&self) -> Result<Option<CheckpointState>> {
        read_json(&self.state_path())
    }

    /// Writes the state atomically.
    pub fn write_state(&self, state: &CheckpointState) -> Result<()> {
        write_json_atomic(&self.state_path(), state)
    }

    /// Saves `record` as `<stem>.mpk` (atomically) and returns the file name.
    pub fn save<B: Backend, R: Record<B>>(&self, stem: &str, record: R) -> Result<String> {
        let name = format!("{stem}.{RECORD_EXT}");
        let path = self.dir.join(&name);
        let bytes = Recorder::<B>::record(&recorder(), record, ())
            .map_err(|e| TrainError::record(&path, format!("{e:?}")))?;
        tanas_core::write_atomic(&path, &bytes).map_err(|e| TrainError::io(e.path, e.source))?;
        Ok(name)
    }

    /// Loads the record file `name`.
    pub fn load<B: Backend, R: Record<B>>(&self, name: &str, device: &B::Device) -> Result<R> {
        let path = self.dir.join(name);
        if !path.is_file() {
            return Err(TrainError::MissingCheckpoint {
                dir: self.dir.clone(),
                missing: name.to_string(),
            });
        }
        let bytes = std::fs::read(&path).map_err(|e| TrainError::io(&path, e))?;
        // burn's message carries a hint about its 0.14 format change on further lines, which
        // misleads here: the file is ours, written by this version, and damaged.
        Recorder::<B>::load(&recorder(), bytes, device).map_err(|e| {
            let cause = format!("{e:?}");
            let cause = cause.split(['\n', '\\']).next().unwrap_or_default();
            TrainError::record(
                &path,
                format!(
                    "damaged or truncated ({cause}); remove {} to train the run from scratch",
                    self.dir.display()
                ),
            )
        })
    }

    /// Removes record and temporary files that `keep` does not name.
    pub fn clean(&self, keep: &[&str]) -> Result<()> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(TrainError::io(&self.dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| TrainError::io(&self.dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let ours = tanas_core::out_dir::is_stale_temp(&name)
                || name.ends_with(&format!(".{RECORD_EXT}"));
            if ours && !keep.contains(&name.as_str()) {
                let path = entry.path();
                std::fs::remove_file(&path).map_err(|e| TrainError::io(&path, e))?;
            }
        }
        Ok(())
    }
}

/// Reads a JSON file; `None` if it does not exist.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| TrainError::json(path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(TrainError::io(path, e)),
    }
}

/// Writes `value` as pretty JSON to `path` atomically.
pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| TrainError::json(path, e))?;
    bytes.push(b'\n');
    tanas_core::write_atomic(path, &bytes).map_err(|e| TrainError::io(e.path, e.source))
}

/// Removes `path` if it exists.
pub fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(TrainError::io(path, e)),
        _ => Ok(()),
    }
}
