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
    /// The mean over the labels present of each label's accuracy (recall), in [0, 1]: what
    /// the accuracy would be with every label equally frequent; a constant predictor scores
    /// 1 / labels.
    #[serde(default)]
    pub balanced_accuracy: f64,
}

/// Sums of an evaluation, batch by batch: the loss and, per label, samples and hits.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    loss_sum: f64,
    /// `(samples, hits)` per label.
    per_label: Vec<(u64, u64)>,
}

impl Tally {
    /// Adds a batch: `logits` `[N, K]` against `labels` `[N]`.
    pub fn add<B: Backend>(&mut self, logits: Tensor<B, 2>, labels: Tensor<B, 1, Int>) {
        let n = labels.dims()[0];
        if n == 0 {
            return;
        }
        let loss = cross_entropy(logits.clone(), labels.clone()).sum();
        let predicted = logits.argmax(1).reshape([n]);
        let ints: Vec<i64> = Tensor::cat(vec![labels, predicted], 0)
            .into_data()
            .iter::<i64>()
            .collect();
        self.loss_sum += loss.into_scalar().elem::<f64>();
        let (labels, predicted) = ints.split_at(n);
        for (&l, &p) in labels.iter().zip(predicted) {
            let l = usize::try_from(l).unwrap_or(0);
            if self.per_label.len() <= l {
                self.per_label.resize(l + 1, (0, 0));
            }
            self.per_label[l].0 += 1;
            self.per_label[l].1 += u64::from(l as i64 == p);
        }
    }

    /// The mean loss, the accuracy and the balanced accuracy (all 0 for no samples).
    pub fn finish(&self) -> Eval {
        let n: u64 = self.per_label.iter().map(|c| c.0).sum();
        let hits: u64 = self.per_label.iter().map(|c| c.1).sum();
        let present: Vec<f64> = self
            .per_label
            .iter()
            .filter(|c| c.0 > 0)
            .map(|&(k, h)| h as f64 / k as f64)
            .collect();
        let d = n.max(1) as f64;
        Eval {
            samples: n as usize,
            loss: self.loss_sum / d,
            accuracy: hits as f64 / d,
            balanced_accuracy: present.iter().sum::<f64>() / present.len().max(1) as f64,
        }
    }
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
    let mut tally = Tally::default();
    for chunk in order.chunks(batch_size) {
        let batch = batch_of::<B>(split, chunk, device);
        tally.add(model.forward(batch.images), batch.labels);
        bar.inc(chunk.len() as u64);
    }
    Ok(tally.finish())
}

#[cfg(test)]
mod tests {
    use tanas_cpu::Cpu;

    use super::*;

    type B = Cpu;

    #[test]
    fn tally_counts_accuracy_and_balanced_accuracy_per_label() {
        let device = Default::default();
        // Labels 0 0 0 1 (3:1); predictions 0 0 0 0: a constant predictor of the frequent
        // label, accuracy 3/4, balanced accuracy (1 + 0) / 2.
        let logits = Tensor::<B, 2>::from_floats([[2.0, 0.0]; 4], &device);
        let labels = Tensor::<B, 1, Int>::from_ints([0, 0, 0, 1], &device);
        let mut tally = Tally::default();
        tally.add(logits.clone(), labels.clone());
        let e = tally.finish();
        assert_eq!(e.samples, 4);
        assert!((e.accuracy - 0.75).abs() < 1e-12);
        assert!((e.balanced_accuracy - 0.5).abs() < 1e-12);
        // Batch by batch gives what one batch gives; the loss is the mean cross-entropy.
        let mut split = Tally::default();
        split.add(
            logits.clone().narrow(0, 0, 2),
            labels.clone().narrow(0, 0, 2),
        );
        split.add(logits.narrow(0, 2, 2), labels.narrow(0, 2, 2));
        let f = split.finish();
        assert_eq!(
            (f.samples, f.accuracy, f.balanced_accuracy),
            (4, e.accuracy, e.balanced_accuracy)
        );
        let ce = |z: f64| -(z.exp() / (z.exp() + 1.0)).ln();
        let expected = (3.0 * ce(2.0) + ce(-2.0)) / 4.0;
        assert!((e.loss - expected).abs() < 1e-5, "{} vs {expected}", e.loss);
        assert_eq!(Tally::default().finish().samples, 0);
    }
}
