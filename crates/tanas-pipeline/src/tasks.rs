//! Loading the tasks an experiment names, each dataset read once.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::PathBuf;

use tanas_data::{DataDirs, Dataset, DatasetName, TaskData, TaskFile, TaskSpec};

use crate::error::{PipelineError, Result};

/// The tasks of one run, with their data.
pub struct LoadedTasks {
    /// The tasks, in the requested order.
    pub tasks: Vec<TaskData>,
}

impl LoadedTasks {
    /// Loads `ids` (all tasks of `files`, in file order, if empty) from the task files.
    pub fn load(
        files: &[PathBuf],
        ids: &[String],
        dirs: &DataDirs,
        config: &std::path::Path,
    ) -> Result<Self> {
        let specs: Vec<TaskSpec> = if ids.is_empty() {
            let files = files
                .iter()
                .map(|f| TaskFile::read(f))
                .collect::<tanas_data::Result<Vec<_>>>()?;
            files.iter().flat_map(|f| f.tasks.iter().cloned()).collect()
        } else {
            locate(files, ids, config)?
                .into_iter()
                .map(|(_, spec)| spec)
                .collect()
        };
        let mut datasets: HashMap<DatasetName, Dataset> = HashMap::new();
        let mut tasks = Vec::with_capacity(specs.len());
        for spec in &specs {
            let dataset = match datasets.entry(spec.dataset) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => e.insert(dirs.load(spec.dataset)?),
            };
            tasks.push(TaskData::build(spec, dataset)?);
        }
        Ok(Self { tasks })
    }

    /// The ids, in order.
    pub fn ids(&self) -> Vec<String> {
        self.tasks.iter().map(|t| t.spec.id.clone()).collect()
    }
}

/// The task file and definition of each of `ids`, in order: the first of `files` that
/// defines it (each file read once); a task none defines is an error naming `config`.
pub(crate) fn locate(
    files: &[PathBuf],
    ids: &[String],
    config: &std::path::Path,
) -> Result<Vec<(PathBuf, TaskSpec)>> {
    let read = files
        .iter()
        .map(|f| TaskFile::read(f))
        .collect::<tanas_data::Result<Vec<_>>>()?;
    ids.iter()
        .map(|id| {
            files
                .iter()
                .zip(&read)
                .find_map(|(path, f)| {
                    let spec = f.tasks.iter().find(|t| &t.id == id)?;
                    Some((path.clone(), spec.clone()))
                })
                .ok_or_else(|| PipelineError::Config {
                    path: config.into(),
                    problem: format!("task `{id}` is in none of the task files"),
                })
        })
        .collect()
}
