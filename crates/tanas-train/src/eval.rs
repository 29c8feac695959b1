//! Loss, accuracy and the evaluation loop ([`evaluate`]).

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use tanas_data::{TaskBatch, TaskBatcher, TaskItem, TaskSplit};
use tanas_zoo::ZooModel;

use crate::error::{Result, TrainError};

/// The result of evaluating a network on a split.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Eval {
    /// Number of samples evaluated.
    pub samples: usize,
    /// Mean cross-entropy loss (natural log).
    pub loss: f64,
    /// Fraction of samples whose arg-max logit is the label, in [0, 1].
    pub accuracy: f64,
}

/// Per-sample cross-entropy `-log softmax(logits)[label]`, `[N]` (PyTorch's
/// `F.cross_entropy(.., reduction="none")`).
pub fn cross_entropy<B: Backend>(logits: Tensor<B, 2>, labels: Tensor<B, 1, Int>) -> Tensor<B, 1> {
    let n = labels.dims()[0];
    log_softmax(logits, 1)
        .gather(1, labels.reshape([n, 1]))
        .reshape([n])
        .neg()
}

/// Number of samples whose arg-max logit equals the label (first maximum on ties), as a
/// one-element tensor.
pub fn correct<B: Backend>(logits: Tensor<B, 2>, labels: Tensor<B, 1, Int>) -> Tensor<B, 1, Int> {
    let n = labels.dims()[0];
    logits.argmax(1).reshape([n]).equal(labels).int().sum()
}

/// The samples `order[..]` of `split` as one batch on `device`.
pub(crate) fn batch_of<B: Backend>(
    split: &TaskSplit,
    order: &[usize],
    device: &B::Device,
) -> TaskBatch<B> {
    let items: Vec<TaskItem> = order.iter().filter_map(|&i| split.get(i)).collect();
    TaskBatcher.batch(items, device)
}

/// Checks that every label of `split` is below `classes`.
pub(crate) fn check_labels(split: &TaskSplit, split_name: &str, classes: usize) -> Result<()> {
    match split.labels().iter().copied().max() {
        Some(label) if label >= classes => Err(TrainError::LabelOutOfRange {
            split: split_name.to_string(),
            label,
            classes,
        }),
        _ => Ok(()),
    }
}

/// Evaluates `model` on every sample of `split`, in order, in batches of `batch_size`:
/// mean cross-entropy and accuracy.
///
/// Call it with an inference model (`model.valid()` of an autodiff model) so that
/// BatchNorm uses its running statistics. An empty split gives `samples = 0`, loss and
/// accuracy 0. Errors: `batch_size` 0, or a label the network has no output for.
pub fn evaluate<B: Backend>(
    model: &ZooModel<B>,
    split: &TaskSplit,
    batch_size: usize,
    device: &B::Device,
) -> Result<Eval> {
    evaluate_with_progress(model, split, batch_size, device, &ProgressBar::hidden())
}

/// [`evaluate`], advancing `bar` by the number of samples of each batch.
pub fn evaluate_with_progress<B: Backend>(
    model: &ZooModel<B>,
    split: &TaskSplit,
    batch_size: usize,
    device: &B::Device,
    bar: &ProgressBar,
) -> Result<Eval> {
    if batch_size == 0 {
        return Err(TrainError::InvalidConfig {
            field: "eval_batch_size",
            problem: "must be at least 1".into(),
        });
    }
    check_labels(split, "evaluated", model.num_classes())?;
    let order: Vec<usize> = (0..split.len()).collect();
    let (mut loss_sum, mut hits) = (0.0f64, 0.0f64);
    for chunk in order.chunks(batch_size) {
        let batch = batch_of::<B>(split, chunk, device);
        let logits = model.forward(batch.images);
        let loss = cross_entropy(logits.clone(), batch.labels.clone()).sum();
        let hit = correct(logits, batch.labels).float();
        let stats: Vec<f64> = Tensor::cat(vec![loss, hit], 0)
            .into_data()
            .iter::<f64>()
            .collect();
        loss_sum += stats[0];
        hits += stats[1];
        bar.inc(chunk.len() as u64);
    }
    let n = split.len();
    if n == 0 {
        return Ok(Eval {
            samples: 0,
            loss: 0.0,
            accuracy: 0.0,
        });
    }
    Ok(Eval {
        samples: n,
        loss: loss_sum / n as f64,
        accuracy: hits / n as f64,
    })
}
