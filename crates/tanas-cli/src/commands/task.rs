//! `tanas task show`.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use anyhow::Context;
use tanas_core::report::TaskInfo;
use tanas_data::{DataDirs, Dataset, TaskData, TaskFile};

use crate::cli::TaskCommand;
use crate::output::outln;
use crate::output::{counts, print_json};

pub fn run(cmd: TaskCommand, dirs: &DataDirs) -> anyhow::Result<()> {
    match cmd {
        TaskCommand::Show { tasks, task, json } => {
            let file = TaskFile::read(&tasks)?;
            let specs = match &task {
                Some(id) => vec![file.get(id)?.clone()],
                None => file.tasks.clone(),
            };
            let mut datasets: HashMap<String, Dataset> = HashMap::new();
            let mut infos = Vec::new();
            for spec in &specs {
                let ds = match datasets.entry(spec.dataset.clone()) {
                    Entry::Occupied(e) => e.into_mut(),
                    Entry::Vacant(e) => e.insert(
                        file.load_dataset(spec, dirs)
                            .with_context(|| format!("task `{}`", spec.id))?,
                    ),
                };
                let data = TaskData::build(spec, ds)?;
                infos.push(TaskInfo {
                    id: spec.id.clone(),
                    dataset: spec.dataset.to_string(),
                    kind: spec.kind.to_string(),
                    num_labels: data.num_labels,
                    balanced: spec.balanced(),
                    train: data.train.label_counts(data.num_labels),
                    val: data.val.label_counts(data.num_labels),
                    test: data.test.label_counts(data.num_labels),
                    probe: data.probe.label_counts(data.num_labels),
                });
            }
            if json {
                print_json(&infos)
            } else {
                for i in &infos {
                    outln!(
                        "{} ({} {}, {} labels{})",
                        i.id,
                        i.dataset,
                        i.kind,
                        i.num_labels,
                        if i.balanced { ", balanced" } else { "" }
                    );
                    outln!(
                        "  train {:>6}  per label {}",
                        i.train.iter().sum::<usize>(),
                        counts(&i.train)
                    );
                    outln!(
                        "  val   {:>6}  per label {}",
                        i.val.iter().sum::<usize>(),
                        counts(&i.val)
                    );
                    outln!(
                        "  test  {:>6}  per label {}",
                        i.test.iter().sum::<usize>(),
                        counts(&i.test)
                    );
                    outln!(
                        "  probe {:>6}  per label {}",
                        i.probe.iter().sum::<usize>(),
                        counts(&i.probe)
                    );
                }
                Ok(())
            }
        }
    }
}
