//! What a search may read: the train and val splits only ([`SearchData`]). The test split is
//! not part of it; it reaches the final step ([`crate::retrain_and_test`]) alone.

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use tanas_data::{Split, TaskBatch, TaskBatcher, TaskData, TaskItem, TaskSplit};

use crate::error::{Result, SearchError};

/// The data of a search phase: the train split (fits weights), the val split (fits alpha,
/// selects candidates) and the number of classes. It has no test split, so a search phase
/// cannot read one.
#[derive(Debug, Clone, Copy)]
pub struct SearchData<'a> {
    /// Fits the candidates' weights.
    pub train: &'a TaskSplit,
    /// Fits alpha (FUSE) and ranks candidates (random search).
    pub val: &'a TaskSplit,
    /// Number of classes (network outputs); every label must be below it.
    pub num_classes: usize,
    /// The task's id ("" if none): part of the seed path of the candidate draws, so that two
    /// tasks searched with one config draw different candidates.
    pub task: &'a str,
}

impl<'a> SearchData<'a> {
    /// Search data from its parts.
    pub fn new(train: &'a TaskSplit, val: &'a TaskSplit, num_classes: usize) -> Self {
        SearchData {
            train,
            val,
            num_classes,
            task: "",
        }
    }

    /// The same data, drawing candidates for task `id`.
    pub fn for_task(self, id: &'a str) -> Self {
        SearchData { task: id, ..self }
    }

    /// The train and val splits of a task (its test split is left out) and its id.
    pub fn from_task(data: &'a TaskData) -> Self {
        SearchData::new(&data.train, &data.val, data.num_labels).for_task(&data.spec.id)
    }
}

/// The splits a search works on after its sample limits, checked: what a
/// [`crate::SearchStrategy`] step reads.
#[derive(Debug, Clone)]
pub struct Splits {
    /// The train split (its first `train_limit` samples).
    pub train: TaskSplit,
    /// The val split (its first `val_limit` samples).
    pub val: TaskSplit,
    /// Number of classes; every label is below it.
    pub classes: usize,
    /// The task's id ("" if none): on the seed path of candidate draws.
    pub task: String,
}

impl Splits {
    /// Applies the limits (first `n` samples of each split) and checks that both splits are
    /// non-empty and every label is below `num_classes`.
    pub(crate) fn new(
        data: &SearchData<'_>,
        train_limit: Option<usize>,
        val_limit: Option<usize>,
    ) -> Result<Self> {
        let limit =
            |s: &TaskSplit, n: Option<usize>| n.map_or_else(|| s.clone(), |n| s.truncated(n));
        let splits = Splits {
            train: limit(data.train, train_limit),
            val: limit(data.val, val_limit),
            classes: data.num_classes,
            task: data.task.to_string(),
        };
        if splits.classes == 0 {
            return Err(SearchError::config("num_classes", "must be at least 1"));
        }
        for (split, s) in [(Split::Train, &splits.train), (Split::Val, &splits.val)] {
            if s.is_empty() {
                return Err(SearchError::EmptySplit { split });
            }
            match s.labels().iter().max() {
                Some(&label) if label >= splits.classes => {
                    return Err(SearchError::LabelOutOfRange {
                        split,
                        label,
                        classes: splits.classes,
                    });
                }
                _ => {}
            }
        }
        Ok(splits)
    }

    /// What identifies the data of a search (checked on resume).
    pub(crate) fn identity(&self) -> DataIdentity {
        DataIdentity {
            num_classes: self.classes,
            train_samples: self.train.len(),
            train_fingerprint: tanas_data::fingerprint(&[&self.train]),
            val_samples: self.val.len(),
            val_fingerprint: tanas_data::fingerprint(&[&self.val]),
            task: self.task.clone(),
        }
    }

    /// The final network's training samples: train, then val when `with_val`.
    pub(crate) fn final_train(&self, with_val: bool) -> Concat<'_> {
        Concat {
            first: &self.train,
            second: with_val.then_some(&self.val),
        }
    }
}

/// The samples a search saw: sizes and a fingerprint (FNV-1a over sample indices and labels)
/// of the train and val splits after the limits. A search resumes only on the same data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataIdentity {
    /// Number of classes.
    pub num_classes: usize,
    /// Train samples used.
    pub train_samples: usize,
    /// Fingerprint of the train samples (hex).
    pub train_fingerprint: String,
    /// Val samples used.
    pub val_samples: usize,
    /// Fingerprint of the val samples (hex).
    pub val_fingerprint: String,
    /// The task the candidates were drawn for (absent: none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub task: String,
}

/// One split followed by an optional second one, as one dataset.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Concat<'a> {
    first: &'a TaskSplit,
    second: Option<&'a TaskSplit>,
}

impl Dataset<TaskItem> for Concat<'_> {
    fn get(&self, index: usize) -> Option<TaskItem> {
        let n = self.first.len();
        if index < n {
            self.first.get(index)
        } else {
            self.second.and_then(|s| s.get(index - n))
        }
    }

    fn len(&self) -> usize {
        self.first.len() + self.second.map_or(0, TaskSplit::len)
    }
}

/// The samples `order[..]` of `ds` as one batch, checking that every label is below
/// `classes` (`split` names the split in the error).
pub(crate) fn batch_of<B: Backend, D: Dataset<TaskItem> + ?Sized>(
    ds: &D,
    order: &[usize],
    classes: usize,
    split: Split,
    device: &B::Device,
) -> Result<TaskBatch<B>> {
    let items: Vec<TaskItem> = order.iter().filter_map(|&i| ds.get(i)).collect();
    if let Some(label) = items.iter().map(|item| item.label).find(|&l| l >= classes) {
        return Err(SearchError::LabelOutOfRange {
            split,
            label,
            classes,
        });
    }
    Ok(TaskBatcher.batch(items, device))
}
