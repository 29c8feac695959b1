//! The Fisher estimators: `exact` (true per-sample gradients, batched), `mc` (labels drawn
//! from the network's own predictive distribution), `batch` (the squared mini-batch
//! gradient of the authors' research code, for comparison only), and the naive one-backward-
//! per-sample loop that the exact estimator is tested against.

use std::fmt;
use std::str::FromStr;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::module::{AutodiffModule, Module, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tanas_data::{TaskBatch, TaskBatcher, TaskItem, TaskSplit};
use tanas_zoo::ZooModel;
use tanas_zoo::hooks::{EvalMode, LayerHooks};

use crate::diag::{FisherDiag, FisherError, FisherMeta, FisherTensor};
use crate::tap::{SquaredSums, SumTensor, Tap, accumulate};

/// Errors of the Fisher estimators.
#[derive(Debug, thiserror::Error)]
pub enum EstimatorError {
    /// The split has no samples.
    #[error("no samples to take the Fisher information on")]
    Empty,
    /// A label is not below the number of logits after padding.
    #[error("task label {label} is out of range for {logits} logits")]
    LabelOutOfRange {
        /// The label.
        label: usize,
        /// Logits after padding.
        logits: usize,
    },
    /// A setting is out of range.
    #[error("Fisher setting `{field}`: {problem}")]
    InvalidConfig {
        /// The setting.
        field: &'static str,
        /// What is wrong.
        problem: &'static str,
    },
    /// A layer the estimator cannot handle.
    #[error("unsupported layer: {0}")]
    Unsupported(String),
    /// A tapped layer got no gradient (it does not influence the loss).
    #[error("a tapped layer received no gradient")]
    MissingGradient,
    /// The loss or a Fisher value is NaN or infinite.
    #[error("non-finite Fisher information (NaN or infinite loss or gradient)")]
    NonFinite,
    /// Building the diagonal failed.
    #[error(transparent)]
    Diag(#[from] FisherError),
}

/// Which Fisher estimator to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Estimator {
    /// Empirical Fisher from true per-sample gradients (true labels).
    Exact,
    /// True Fisher: labels sampled from the network's predictive distribution.
    Mc,
    /// Square of each mini-batch gradient, averaged over batches (the authors' code).
    Batch,
    /// One backward pass per sample: slow, the reference the others are checked against.
    Naive,
}

impl FromStr for Estimator {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "exact" => Ok(Self::Exact),
            "mc" => Ok(Self::Mc),
            "batch" => Ok(Self::Batch),
            "naive" => Ok(Self::Naive),
            _ => Err(format!("unknown estimator `{s}` (exact, mc, batch, naive)")),
        }
    }
}

impl fmt::Display for Estimator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Exact => "exact",
            Self::Mc => "mc",
            Self::Batch => "batch",
            Self::Naive => "naive",
        })
    }
}

/// Settings of a Fisher computation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FisherConfig {
    /// The estimator.
    pub estimator: Estimator,
    /// Samples per forward / backward pass.
    pub batch_size: usize,
    /// Label samples per input for `mc`.
    pub mc_samples: usize,
    /// Seed of the `mc` label draws.
    pub seed: u64,
}

impl Default for FisherConfig {
    fn default() -> Self {
        Self {
            estimator: Estimator::Exact,
            batch_size: 128,
            mc_samples: 1,
            seed: 0,
        }
    }
}

/// The diagonal of the Fisher information of `model` (in eval mode: BatchNorm with running
/// statistics) on the samples of `split`, one tensor per parameter, PyTorch names and
/// layouts, unnormalised.
///
/// `num_labels` is the label count of the task the data comes from. When the network has
/// fewer outputs than that (a network of another task), its logits are padded with zeros up
/// to `num_labels` before the softmax, the authors' rule (docs/fisher.md).
pub fn fisher_diag<B: AutodiffBackend>(
    model: &ZooModel<B>,
    split: &TaskSplit,
    num_labels: usize,
    cfg: &FisherConfig,
    meta: FisherMeta,
    device: &B::Device,
) -> Result<FisherDiag, EstimatorError> {
    if split.is_empty() {
        return Err(EstimatorError::Empty);
    }
    for (field, value) in [
        ("batch_size", cfg.batch_size),
        ("mc_samples", cfg.mc_samples),
    ] {
        if value == 0 {
            return Err(EstimatorError::InvalidConfig {
                field,
                problem: "must be at least 1",
            });
        }
    }
    let logits_n = num_labels.max(model.num_classes());
    if let Some(&label) = split.labels().iter().find(|&&l| l >= logits_n) {
        return Err(EstimatorError::LabelOutOfRange {
            label,
            logits: logits_n,
        });
    }
    let mut sums: SquaredSums<B::InnerBackend> = SquaredSums::new();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut batches = 0usize;
    let detached = model.clone().no_grad();
    for start in (0..split.len()).step_by(cfg.batch_size) {
        let end = (start + cfg.batch_size).min(split.len());
        let batch: TaskBatch<B> = TaskBatcher.batch(
            (start..end)
                .filter_map(|i| split.get(i))
                .collect::<Vec<TaskItem>>(),
            device,
        );
        match cfg.estimator {
            Estimator::Exact => {
                tapped_pass(&detached, batch.images, batch.labels, logits_n, &mut sums)?
            }
            Estimator::Mc => {
                for _ in 0..cfg.mc_samples {
                    let labels =
                        sample_labels(&detached, batch.images.clone(), logits_n, &mut rng, device);
                    tapped_pass(&detached, batch.images.clone(), labels, logits_n, &mut sums)?;
                }
            }
            Estimator::Batch => {
                let loss =
                    per_sample_loss(model, batch.images, batch.labels, logits_n, &mut EvalMode)
                        .mean();
                add_param_grads(model, &loss, &mut sums)?;
            }
            Estimator::Naive => {
                for i in 0..end - start {
                    let x = batch.images.clone().narrow(0, i, 1);
                    let y = batch.labels.clone().narrow(0, i, 1);
                    let loss = per_sample_loss(model, x, y, logits_n, &mut EvalMode).sum();
                    add_param_grads(model, &loss, &mut sums)?;
                }
            }
        }
        batches += 1;
    }
    let divisor = match cfg.estimator {
        Estimator::Batch => batches as f64,
        Estimator::Mc => (split.len() * cfg.mc_samples) as f64,
        Estimator::Exact | Estimator::Naive => split.len() as f64,
    };
    let mut meta = meta;
    meta.samples = split.len();
    meta.estimator = cfg.estimator.to_string();
    to_diag(model, sums, divisor, meta)
}

/// Cross-entropy of every sample, logits zero-padded to `logits_n`.
fn per_sample_loss<B: Backend, H: LayerHooks<B>>(
    model: &ZooModel<B>,
    images: Tensor<B, 4>,
    labels: Tensor<B, 1, Int>,
    logits_n: usize,
    hooks: &mut H,
) -> Tensor<B, 1> {
    let logits = pad_logits(model.forward_hooked(images, hooks), logits_n);
    let n = logits.dims()[0];
    let logp = log_softmax(logits, 1);
    logp.gather(1, labels.reshape([n, 1])).reshape([n]).neg()
}

/// Zero-pads `[N, k]` logits to `[N, n]` (no-op when `k >= n`).
fn pad_logits<B: Backend>(logits: Tensor<B, 2>, n: usize) -> Tensor<B, 2> {
    let [rows, k] = logits.dims();
    if k >= n {
        return logits;
    }
    let zeros = Tensor::zeros([rows, n - k], &logits.device());
    Tensor::cat(vec![logits, zeros], 1)
}

/// One forward with taps, one backward of the summed per-sample losses, per-sample squares.
fn tapped_pass<B: AutodiffBackend>(
    model: &ZooModel<B>,
    images: Tensor<B, 4>,
    labels: Tensor<B, 1, Int>,
    logits_n: usize,
    sums: &mut SquaredSums<B::InnerBackend>,
) -> Result<(), EstimatorError> {
    let mut tap = Tap::default();
    let loss = per_sample_loss(model, images, labels, logits_n, &mut tap).sum();
    check_finite(&loss)?;
    let grads = loss.backward();
    tap.accumulate(&grads, sums)
}

/// Labels drawn from the network's predictive distribution, one per input.
fn sample_labels<B: AutodiffBackend>(
    model: &ZooModel<B>,
    images: Tensor<B, 4>,
    logits_n: usize,
    rng: &mut ChaCha8Rng,
    device: &B::Device,
) -> Tensor<B, 1, Int> {
    let inner = model.valid();
    let logits = pad_logits(
        inner.forward_hooked(images.inner(), &mut EvalMode),
        logits_n,
    );
    let [n, k] = logits.dims();
    let probs: Vec<f32> = softmax(logits, 1).into_data().iter::<f32>().collect();
    let labels: Vec<i64> = probs
        .chunks(k)
        .map(|p| {
            let u: f32 = rng.random();
            let mut acc = 0.0;
            p.iter()
                .position(|&q| {
                    acc += q;
                    u < acc
                })
                .unwrap_or(k - 1) as i64
        })
        .collect();
    Tensor::from_data(TensorData::new(labels, [n]), device)
}

/// Backpropagates `loss` to the parameters and adds their squared gradients to `sums`.
fn add_param_grads<B: AutodiffBackend>(
    model: &ZooModel<B>,
    loss: &Tensor<B, 1>,
    sums: &mut SquaredSums<B::InnerBackend>,
) -> Result<(), EstimatorError> {
    check_finite(loss)?;
    let grads = GradientsParams::from_grads(loss.backward(), model);
    for (id, rank) in param_ranks(model) {
        let value = match rank {
            1 => grads
                .get::<B::InnerBackend, 1>(id)
                .map(|g| SumTensor::R1(g.square())),
            2 => grads
                .get::<B::InnerBackend, 2>(id)
                .map(|g| SumTensor::R2(g.square())),
            4 => grads
                .get::<B::InnerBackend, 4>(id)
                .map(|g| SumTensor::R4(g.square())),
            r => {
                return Err(EstimatorError::Unsupported(format!(
                    "parameter of rank {r}"
                )));
            }
        };
        if let Some(v) = value {
            accumulate(sums, id, v);
        }
    }
    Ok(())
}

fn check_finite<B: Backend>(loss: &Tensor<B, 1>) -> Result<(), EstimatorError> {
    let v: f32 = loss.clone().sum().into_scalar().elem::<f32>();
    if v.is_finite() {
        Ok(())
    } else {
        Err(EstimatorError::NonFinite)
    }
}

fn param_ranks<B: Backend>(model: &ZooModel<B>) -> Vec<(ParamId, usize)> {
    tanas_zoo::weights::parameters(model)
        .into_iter()
        .map(|(id, _, shape)| (id, shape.len()))
        .collect()
}

/// Turns the sums into a [`FisherDiag`] in PyTorch names and layouts, divided by `divisor`.
fn to_diag<B: Backend, I: Backend>(
    model: &ZooModel<B>,
    mut sums: SquaredSums<I>,
    divisor: f64,
    meta: FisherMeta,
) -> Result<FisherDiag, EstimatorError> {
    let mut diag = FisherDiag::new(meta);
    for (id, name, shape) in tanas_zoo::weights::parameters(model) {
        let values: Vec<f32> = match sums.remove(&id) {
            None => vec![0.0; shape.iter().product()],
            Some(SumTensor::R1(t)) => t.into_data().iter::<f32>().collect(),
            // burn stores Linear weights [in, out]; PyTorch [out, in].
            Some(SumTensor::R2(t)) => t.transpose().into_data().iter::<f32>().collect(),
            Some(SumTensor::R4(t)) => t.into_data().iter::<f32>().collect(),
        };
        let values: Vec<f32> = values
            .into_iter()
            .map(|v| (f64::from(v) / divisor) as f32)
            .collect();
        if values.iter().any(|v| !v.is_finite()) {
            return Err(EstimatorError::NonFinite);
        }
        diag.push(FisherTensor::new(name, shape, values)?)?;
    }
    Ok(diag)
}
