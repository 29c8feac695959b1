//! Loss, accuracy and the evaluation loop ([`evaluate`]).

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use tanas_core::report::TestScore;
use tanas_data::{TaskBatch, TaskBatcher, TaskItem, TaskSplit};
use tanas_zoo::ZooModel;

use crate::error::{Result, TrainError};

/// The result of evaluating a network on a split.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Eval {
    /// Number of samples evaluated.
    pub samples: usize,
    /// Mean cross-entropy loss (natural log) of the logits.
    pub loss: f64,
    /// Fraction of samples whose arg-max logit is the label, in [0, 1] (the papers' metric;
    /// first maximum on ties).
    pub accuracy: f64,
    /// The mean over the labels present of each label's accuracy (recall) of the plain
    /// arg-max, in [0, 1]: what the accuracy would be with every label equally frequent; a
    /// constant predictor scores 1 / labels.
    #[serde(default)]
    pub balanced_accuracy: f64,
    /// The accuracy of the decisions on logits shifted to another label prior, only when one
    /// was asked for ([`Tally::with_prior_shift`]; `tanas model eval --decision prior`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior_accuracy: Option<f64>,
}

impl From<&Eval> for TestScore {
    fn from(e: &Eval) -> Self {
        TestScore {
            test_accuracy: e.accuracy,
            balanced_accuracy: e.balanced_accuracy,
            prior_accuracy: e.prior_accuracy,
            test_samples: e.samples,
        }
    }
}

/// Sums of an evaluation, batch by batch: the loss and, per label, samples and hits.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    loss_sum: f64,
    /// Added to the logits before the decisions of [`Eval::prior_accuracy`].
    shift: Option<Vec<f32>>,
    /// `(samples, arg-max hits, shifted hits)` per label.
    per_label: Vec<(u64, u64, u64)>,
}

impl Tally {
    /// A tally that also decides on `logits + shift` (per label; from
    /// [`tanas_data::prior_shift`]) into [`Eval::prior_accuracy`]; [`Eval::accuracy`] stays
    /// the plain arg-max.
    pub fn with_prior_shift(shift: &[f64]) -> Self {
        Tally {
            shift: Some(shift.iter().map(|&s| s as f32).collect()),
            ..Tally::default()
        }
    }

    /// Adds a batch: `logits` `[N, K]` against `labels` `[N]`.
    pub fn add<B: Backend>(&mut self, logits: Tensor<B, 2>, labels: Tensor<B, 1, Int>) {
        let [n, k] = logits.dims();
        if n == 0 {
            return;
        }
        let loss = cross_entropy(logits.clone(), labels.clone()).sum();
        let mut parts = vec![labels, logits.clone().argmax(1).reshape([n])];
        if let Some(shift) = &self.shift {
            let mut row = shift.clone();
            row.resize(k, 0.0);
            let row = Tensor::<B, 1>::from_floats(row.as_slice(), &logits.device()).reshape([1, k]);
            parts.push((logits + row).argmax(1).reshape([n]));
        }
        let ints: Vec<i64> = Tensor::cat(parts, 0).into_data().iter::<i64>().collect();
        self.loss_sum += loss.into_scalar().elem::<f64>();
        let labels = &ints[..n];
        let argmax = &ints[n..2 * n];
        let shifted = ints
            .get(2 * n..)
            .filter(|s| !s.is_empty())
            .unwrap_or(argmax);
        for ((&l, &p), &q) in labels.iter().zip(argmax).zip(shifted) {
            let l = usize::try_from(l).unwrap_or(0);
            if self.per_label.len() <= l {
                self.per_label.resize(l + 1, (0, 0, 0));
            }
            let c = &mut self.per_label[l];
            c.0 += 1;
            c.1 += u64::from(l as i64 == p);
            c.2 += u64::from(l as i64 == q);
        }
    }

    /// The mean loss, the accuracy, the balanced accuracy and, where a shift was given, the
    /// prior-shifted accuracy (all 0 for no samples).
    pub fn finish(&self) -> Eval {
        let n: u64 = self.per_label.iter().map(|c| c.0).sum();
        let argmax: u64 = self.per_label.iter().map(|c| c.1).sum();
        let shifted: u64 = self.per_label.iter().map(|c| c.2).sum();
        let present: Vec<f64> = self
            .per_label
            .iter()
            .filter(|c| c.0 > 0)
            .map(|&(k, h, _)| h as f64 / k as f64)
            .collect();
        let d = n.max(1) as f64;
        Eval {
            samples: n as usize,
            loss: self.loss_sum / d,
            accuracy: argmax as f64 / d,
            balanced_accuracy: present.iter().sum::<f64>() / present.len().max(1) as f64,
            prior_accuracy: self.shift.is_some().then_some(shifted as f64 / d),
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

/// Evaluates `model` on every sample of `split`, in order, in batches of `batch_size`, into
/// `tally` (`Tally::default()`, or [`Tally::with_prior_shift`] where the prior-shifted
/// decisions are asked for too): mean cross-entropy and accuracies.
///
/// Call it with an inference model (`model.valid()` of an autodiff model) so that
/// BatchNorm uses its running statistics. An empty split gives `samples = 0`, loss and
/// accuracy 0. Errors: `batch_size` 0, or a label the network has no output for.
pub fn evaluate<B: Backend>(
    model: &ZooModel<B>,
    split: &TaskSplit,
    batch_size: usize,
    tally: Tally,
    device: &B::Device,
) -> Result<Eval> {
    evaluate_with_progress(
        model,
        split,
        batch_size,
        tally,
        device,
        &ProgressBar::hidden(),
    )
}

/// [`evaluate`] into `tally` (e.g. [`Tally::with_prior_shift`]), advancing `bar` by the
/// number of samples of each batch.
pub fn evaluate_with_progress<B: Backend>(
    model: &ZooModel<B>,
    split: &TaskSplit,
    batch_size: usize,
    tally: Tally,
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
    evaluate_batches(
        split.len(),
        batch_size,
        |chunk| Ok(batch_of::<B>(split, chunk, device)),
        |x| model.forward(x),
        tally,
        bar,
    )
}

/// The one evaluation loop of tanas (epsilon-networks here; search candidates and final
/// networks in tanas-search): samples `0..len` in order, batches of `batch_size` built by
/// `batch`, `forward`'s logits added to `tally`.
pub fn evaluate_batches<B: Backend, E>(
    len: usize,
    batch_size: usize,
    mut batch: impl FnMut(&[usize]) -> std::result::Result<TaskBatch<B>, E>,
    forward: impl Fn(Tensor<B, 4>) -> Tensor<B, 2>,
    mut tally: Tally,
    bar: &ProgressBar,
) -> std::result::Result<Eval, E> {
    let order: Vec<usize> = (0..len).collect();
    for chunk in order.chunks(batch_size.max(1)) {
        let batch = batch(chunk)?;
        tally.add(forward(batch.images), batch.labels);
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
        assert_eq!(e.prior_accuracy, None);
    }

    #[test]
    fn the_headline_accuracy_is_the_arg_max_and_a_prior_shift_only_adds_its_own_number() {
        let device = Default::default();
        // Logits favour label 0 by 0.5; a shift of +1 on label 1 (label 1 e times as
        // frequent in the evaluated population) turns every decision to label 1.
        let logits = Tensor::<B, 2>::from_floats([[0.5, 0.0]; 4], &device);
        let labels = Tensor::<B, 1, Int>::from_ints([1, 1, 1, 0], &device);
        let mut tally = Tally::with_prior_shift(&[0.0, 1.0]);
        tally.add(logits.clone(), labels.clone());
        let e = tally.finish();
        // The headline is the arg-max (1 of 4 right) whatever the shift would decide.
        assert_eq!(e.accuracy, 0.25);
        assert_eq!(e.prior_accuracy, Some(0.75));
        // Balanced accuracy and loss are those of the plain logits.
        let mut plain = Tally::default();
        plain.add(logits.clone(), labels.clone());
        let p = plain.finish();
        assert_eq!(
            (e.accuracy, e.balanced_accuracy, e.loss),
            (p.accuracy, p.balanced_accuracy, p.loss)
        );
        assert_eq!(p.prior_accuracy, None);
        // A constant shift (the training frequencies were the population's) changes nothing;
        // a shift shorter than the logits leaves the other labels alone.
        for shift in [&[0.7, 0.7][..], &[][..]] {
            let mut t = Tally::with_prior_shift(shift);
            t.add(logits.clone(), labels.clone());
            assert_eq!(t.finish().prior_accuracy, Some(0.25));
        }
    }
}
