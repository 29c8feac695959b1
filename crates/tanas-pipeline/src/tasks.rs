//! Loading the tasks an experiment names, each dataset read once.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::PathBuf;

use tanas_data::{DataDirs, Dataset, DatasetSource, TaskData, TaskFile, TaskSpec};

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
        let read = files
            .iter()
            .map(|f| TaskFile::read(f))
            .collect::<tanas_data::Result<Vec<_>>>()?;
        let chosen: Vec<(&TaskFile, &TaskSpec)> = if ids.is_empty() {
            read.iter()
                .flat_map(|f| f.tasks.iter().map(move |t| (f, t)))
                .collect()
        } else {
            ids.iter()
                .map(|id| find(&read, id, config))
                .collect::<Result<_>>()?
        };
        // Each dataset read once: a built-in by name, a declared one by name and file.
        let mut datasets: HashMap<String, Dataset> = HashMap::new();
        let mut tasks = Vec::with_capacity(chosen.len());
        for (file, spec) in chosen {
            let source = file
                .source(&spec.dataset)
                .map_err(|p| tanas_data::DataError::Task {
                    path: file.path.clone(),
                    task: spec.id.clone(),
                    problem: p,
                })?;
            let key = match &source {
                DatasetSource::Builtin(name) => name.to_string(),
                DatasetSource::Declared(d) => format!("{}@{}", d.name, d.declared_in.display()),
            };
            let dataset = match datasets.entry(key) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => e.insert(source.load(dirs)?),
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

/// The first of `read` that defines task `id`, with its definition; none is an error naming
/// `config`.
fn find<'a>(
    read: &'a [TaskFile],
    id: &str,
    config: &std::path::Path,
) -> Result<(&'a TaskFile, &'a TaskSpec)> {
    read.iter()
        .find_map(|f| Some((f, f.tasks.iter().find(|t| t.id == id)?)))
        .ok_or_else(|| PipelineError::Config {
            path: config.into(),
            problem: format!("task `{id}` is in none of the task files"),
        })
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
        .map(|id| find(&read, id, config).map(|(f, spec)| (f.path.clone(), spec.clone())))
        .collect()
}
