//! Training and evaluation loops shared by FUSE, random search and the final step: generic
//! over the dataset (so the final step's test set may be any `Dataset<TaskItem>`), seeded,
//! with progress bars.

use std::io::IsTerminal;

use burn::data::dataset::Dataset;
use burn::module::AutodiffModule;
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, Linear};
use burn::optim::AdamConfig;
use burn::optim::Optimizer;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tanas_data::{Split, TaskBatch, TaskItem};
use tanas_train::eval::Tally;
use tanas_train::{ADAM_EPSILON, Eval, epoch_order, seeded};
use tanas_zoo::hooks::{LayerHooks, batch_statistics};
use tanas_zoo::{ModelSpec, ZooModel};

use crate::data::{Splits, batch_of};
use crate::error::{Result, SearchError};

/// Whether progress bars are hidden: asked to, or stderr is not a terminal.
pub(crate) fn bars_hidden(quiet: bool) -> bool {
    quiet || !std::io::stderr().is_terminal()
}

/// A progress bar over `len` items of `unit`, hidden when `hidden`.
pub(crate) fn progress_bar(len: usize, unit: &str, prefix: String, hidden: bool) -> ProgressBar {
    if hidden {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr());
    let template = format!(
        "{{prefix}} [{{bar:30}}] {{pos}}/{{len}} {unit}, {{msg}} ({{elapsed}}, eta {{eta}})"
    );
    let style = ProgressStyle::with_template(&template)
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_prefix(prefix);
    bar
}

/// Derives a seed from a base seed and a path of integers (splitmix64 steps), so that every
/// random choice of a search (stage, candidate, epoch) has its own reproducible seed.
pub fn derive_seed(seed: u64, path: &[u64]) -> u64 {
    let mix = |mut z: u64| {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    path.iter().fold(mix(seed), |h, &p| mix(h ^ mix(p)))
}

/// The seed of a search's candidate draws: `(seed, tag)`, then the task id's hash where there
/// is one, so that tasks searched with one config draw different candidates.
pub(crate) fn draw_seed(seed: u64, tag: u64, task: &str) -> u64 {
    if task.is_empty() {
        derive_seed(seed, &[tag])
    } else {
        derive_seed(
            seed,
            &[
                tag,
                tanas_core::Fnv1a::new().bytes(task.as_bytes()).finish(),
            ],
        )
    }
}

/// Forward passes (train mode, no backward) that bring BatchNorm's running statistics to
/// the final weights: burn updates them with momentum 0.1, so after a short training run
/// they still carry much of their initial (0, 1); [`BN_CALIBRATION_BATCHES`] passes leave
/// 0.9^30 < 5 % of the stale value. The passes use small batches
/// ([`BN_CALIBRATION_BATCH`]): the running average over the passes smooths their noise, and
/// the cost stays a fraction of an epoch even for large networks.
pub(crate) fn calibrate_batch_norm<B: AutodiffBackend, D: Dataset<TaskItem> + ?Sized>(
    model: &ZooModel<B>,
    ds: &D,
    order: &[usize],
    classes: usize,
    device: &B::Device,
) -> Result<()> {
    let batches = order
        .chunks(BN_CALIBRATION_BATCH)
        .cycle()
        .take(BN_CALIBRATION_BATCHES);
    for chunk in batches {
        let batch = batch_of::<B, D>(ds, chunk, classes, Split::Train, device)?;
        drop(model.forward(batch.images).detach());
    }
    Ok(())
}

/// Train-mode passes of [`calibrate_batch_norm`].
pub(crate) const BN_CALIBRATION_BATCHES: usize = 30;

/// Samples per pass of [`calibrate_batch_norm`].
pub(crate) const BN_CALIBRATION_BATCH: usize = 16;

/// One training epoch of a search ([`tanas_train::fit_epoch`]): the samples of `ds` in
/// `order`, mini-batches of `batch_size`, `forward`'s logits. Returns the module and the
/// epoch's mean loss; a non-finite loss is an error naming `during`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn train_epoch<B, M, O, D, F>(
    module: M,
    optim: &mut O,
    lr: f64,
    ds: &D,
    order: &[usize],
    batch_size: usize,
    classes: usize,
    during: &str,
    bar: &ProgressBar,
    device: &B::Device,
    forward: F,
) -> Result<(M, f64)>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    O: Optimizer<M, B>,
    D: Dataset<TaskItem> + ?Sized,
    F: Fn(&M, Tensor<B, 4>) -> Tensor<B, 2>,
{
    let (module, loss, _) = tanas_train::fit_epoch(
        module,
        optim,
        lr,
        order,
        batch_size,
        |chunk| batch_of::<B, D>(ds, chunk, classes, Split::Train, device),
        forward,
        |_| SearchError::NonFinite {
            during: during.to_string(),
        },
        bar,
    )?;
    Ok((module, loss))
}

/// How [`fit_from_scratch`] trains a network.
pub(crate) struct Fit<'a> {
    /// Seed of the initial weights.
    pub init_seed: u64,
    /// Seed of the epoch orders.
    pub order_seed: u64,
    /// Epochs.
    pub epochs: usize,
    /// The learning rate of each epoch (1-based).
    pub lr: &'a dyn Fn(usize) -> f64,
    /// Mini-batch size.
    pub batch_size: usize,
    /// What is trained, for progress bars and errors (`candidate 3`, `final`).
    pub label: &'a str,
    /// Hide the progress bars.
    pub hidden: bool,
}

/// Trains the network `spec` names from scratch on `train`: initial weights seeded, Adam,
/// `fit.epochs` epochs in seeded orders. Returns the network and the mean loss of its last
/// epoch. Every network a search trains alone (a random-search candidate, the final
/// network) goes through here.
pub(crate) fn fit_from_scratch<B: AutodiffBackend, D: Dataset<TaskItem> + ?Sized>(
    spec: &ModelSpec,
    train: &D,
    fit: &Fit<'_>,
    device: &B::Device,
) -> Result<(ZooModel<B>, f64)> {
    let mut model = seeded::<B, _>(device, fit.init_seed, || ZooModel::<B>::new(spec, device))?;
    let mut optim = AdamConfig::new()
        .with_epsilon(ADAM_EPSILON)
        .init::<B, ZooModel<B>>();
    let mut train_loss = f64::NAN;
    for epoch in 1..=fit.epochs {
        let order = epoch_order(train.len(), fit.order_seed, epoch);
        let prefix = format!("{} epoch {epoch}/{}", fit.label, fit.epochs);
        let bar = progress_bar(train.len(), "images", prefix, fit.hidden);
        let during = format!("{} training, epoch {epoch}", fit.label);
        let (m, loss) = train_epoch(
            model,
            &mut optim,
            (fit.lr)(epoch),
            train,
            &order,
            fit.batch_size,
            spec.num_classes,
            &during,
            &bar,
            device,
            |m: &ZooModel<B>, x| m.forward(x),
        )?;
        bar.finish_and_clear();
        model = m;
        train_loss = loss;
        tracing::debug!(
            label = fit.label,
            epoch,
            epochs = fit.epochs,
            train_loss,
            "epoch finished"
        );
    }
    Ok((model, train_loss))
}

/// Trains a candidate alone from scratch on `splits.train` and scores it on `splits.val` with
/// batch statistics (as FUSE scores its candidates): the step of every search that trains
/// its candidates one by one. Returns the last epoch's mean train loss and the val score.
pub(crate) fn train_alone<B: AutodiffBackend>(
    spec: &ModelSpec,
    splits: &Splits,
    fit: &Fit<'_>,
    eval_batch_size: usize,
    device: &B::Device,
) -> Result<(f64, Eval)> {
    let (model, train_loss) = fit_from_scratch::<B, _>(spec, &splits.train, fit, device)?;
    let prefix = format!("{} val", fit.label);
    let bar = progress_bar(splits.val.len(), "images", prefix, fit.hidden);
    let pass = Pass {
        ds: &splits.val,
        classes: splits.classes,
        split: Split::Val,
        batch_size: eval_batch_size,
        mode: BnMode::Batch,
        device,
    };
    let val = evaluate(&model.valid(), &pass, Tally::default(), &bar)?;
    bar.finish_and_clear();
    Ok((train_loss, val))
}

/// A forward pass without gradients over every sample of a split, in order and in batches.
pub(crate) struct Pass<'a, B: Backend, D: ?Sized> {
    /// The samples.
    pub ds: &'a D,
    /// The networks' output count (every label is below it).
    pub classes: usize,
    /// Which split they are, for errors.
    pub split: Split,
    /// Samples per batch.
    pub batch_size: usize,
    /// How BatchNorm normalises.
    pub mode: BnMode,
    /// The device.
    pub device: &'a B::Device,
}

impl<B: Backend, D: Dataset<TaskItem> + ?Sized> Pass<'_, B, D> {
    /// The batch of the samples `chunk`.
    fn batch(&self, chunk: &[usize]) -> Result<TaskBatch<B>> {
        batch_of::<B, D>(self.ds, chunk, self.classes, self.split, self.device)
    }
}

/// The logits of every model on every sample of the pass, in order: `[models, N, classes]`.
/// Each batch is built once and fed to every model. Use inference models (`valid()`), so
/// that BatchNorm uses its running statistics and nothing is updated.
pub(crate) fn all_logits<B: Backend, D: Dataset<TaskItem> + ?Sized>(
    models: &[ZooModel<B>],
    pass: &Pass<'_, B, D>,
    bar: &ProgressBar,
) -> Result<Tensor<B, 3>> {
    let order: Vec<usize> = (0..pass.ds.len()).collect();
    let mut per_model: Vec<Vec<Tensor<B, 2>>> = models.iter().map(|_| Vec::new()).collect();
    for chunk in order.chunks(pass.batch_size.max(1)) {
        let batch = pass.batch(chunk)?;
        for (model, out) in models.iter().zip(per_model.iter_mut()) {
            out.push(forward_in(model, batch.images.clone(), pass.mode));
        }
        bar.inc(chunk.len() as u64);
    }
    let per_model: Vec<Tensor<B, 2>> = per_model
        .into_iter()
        .map(|parts| Tensor::cat(parts, 0))
        .collect();
    Ok(Tensor::stack(per_model, 0))
}

/// The labels of every sample of `ds`, in order, as a tensor.
pub(crate) fn labels_of<B: Backend, D: Dataset<TaskItem> + ?Sized>(
    ds: &D,
    device: &B::Device,
) -> Tensor<B, 1, Int> {
    let labels: Vec<i64> = (0..ds.len())
        .filter_map(|i| ds.get(i))
        .map(|item| item.label as i64)
        .collect();
    let n = labels.len();
    Tensor::from_data(TensorData::new(labels, [n]), device)
}

/// Mean cross-entropy, accuracy and balanced accuracy of `logits` `[N, K]` against
/// `labels` `[N]`.
pub(crate) fn score<B: Backend>(logits: Tensor<B, 2>, labels: Tensor<B, 1, Int>) -> Eval {
    let mut tally = Tally::default();
    tally.add(logits, labels);
    tally.finish()
}

/// Evaluates one inference model on every sample of the pass into `tally`.
pub(crate) fn evaluate<B: Backend, D: Dataset<TaskItem> + ?Sized>(
    model: &ZooModel<B>,
    pass: &Pass<'_, B, D>,
    tally: Tally,
    bar: &ProgressBar,
) -> Result<Eval> {
    tanas_train::eval::evaluate_batches(
        pass.ds.len(),
        pass.batch_size,
        |chunk| pass.batch(chunk),
        |x| forward_in(model, x, pass.mode),
        tally,
        bar,
    )
}

/// How BatchNorm normalises in a forward pass without gradients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BnMode {
    /// With the statistics of the batch itself (as in training; the running statistics are
    /// neither used nor updated). Scores candidates during a search.
    Batch,
    /// With the running statistics (inference). The final test evaluation.
    Running,
}

/// BatchNorm with the batch's own statistics, leaving the running statistics untouched
/// (burn's own batch-statistics path, on an autodiff backend, updates them).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BatchStats;

impl<B: Backend> LayerHooks<B> for BatchStats {
    fn conv2d(&mut self, layer: &Conv2d<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
        layer.forward(x)
    }

    fn linear(&mut self, layer: &Linear<B>, x: Tensor<B, 2>) -> Tensor<B, 2> {
        layer.forward(x)
    }

    fn batch_norm(&mut self, layer: &BatchNorm<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
        batch_statistics(layer, x).output
    }
}

/// A forward pass without gradients in the given BatchNorm mode.
pub(crate) fn forward_in<B: Backend>(
    model: &ZooModel<B>,
    x: Tensor<B, 4>,
    mode: BnMode,
) -> Tensor<B, 2> {
    match mode {
        BnMode::Batch => model.forward_hooked(x, &mut BatchStats),
        BnMode::Running => model.forward(x),
    }
}
