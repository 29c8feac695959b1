//! The checkpoint directory of a run and atomic file writes.
//!
//! `checkpoint/state.json` names the record files of the last finished epoch; the records
//! carry the epoch in their names (`model-e0003.mpk`), are written (atomically) before the
//! state that names them, and the files of older epochs are removed after it. Whatever
//! moment a run is killed, `state.json` names complete files of one epoch.

use std::io::Write;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder, Record, Recorder};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::config::TrainConfig;
use crate::error::{Result, TrainError};
use crate::metrics::{EpochMetrics, RunInfo};

/// The file in the checkpoint directory that describes the checkpoint.
pub const STATE_FILE: &str = "state.json";

/// The extension burn's `NamedMpkFileRecorder` gives its files.
const RECORD_EXT: &str = "mpk";

/// Prefix of temporary files (removed by [`Checkpoint::clean`]).
const TMP_PREFIX: &str = "tmp-";

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

fn recorder() -> NamedMpkFileRecorder<FullPrecisionSettings> {
    NamedMpkFileRecorder::<FullPrecisionSettings>::new()
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

    /// Saves `record` as `<stem>.mpk` (temporary file, then rename) and returns the file name.
    pub fn save<B: Backend, R: Record<B>>(&self, stem: &str, record: R) -> Result<String> {
        std::fs::create_dir_all(&self.dir).map_err(|e| TrainError::io(&self.dir, e))?;
        let name = format!("{stem}.{RECORD_EXT}");
        let path = self.dir.join(&name);
        // The recorder replaces the extension of the path it is given with its own.
        let tmp_stem = self
            .dir
            .join(format!("{TMP_PREFIX}{stem}-{}", std::process::id()));
        let tmp = tmp_stem.with_extension(RECORD_EXT);
        Recorder::<B>::record(&recorder(), record, tmp_stem).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            TrainError::record(&path, format!("{e:?}"))
        })?;
        std::fs::rename(&tmp, &path).map_err(|e| TrainError::io(&path, e))?;
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
        Recorder::<B>::load(&recorder(), path.clone(), device)
            .map_err(|e| TrainError::record(&path, format!("{e:?}")))
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
            let ours = name.starts_with(TMP_PREFIX) || name.ends_with(&format!(".{RECORD_EXT}"));
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
    write_atomic(path, &bytes)
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tanas-tmp-")
        .tempfile_in(dir)
        .map_err(|e| TrainError::io(path, e))?;
    tmp.write_all(bytes).map_err(|e| TrainError::io(path, e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| TrainError::io(path, e))?;
    tmp.persist(path)
        .map_err(|e| TrainError::io(path, e.error))?;
    Ok(())
}

/// Removes `path` if it exists.
pub fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(TrainError::io(path, e)),
        _ => Ok(()),
    }
}
