//! Timing of the Fisher estimators against one batched forward + backward pass over the same
//! samples (`cargo xtask bench fisher`, `tanas bench fisher`).

use std::sync::Arc;
use std::time::Instant;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use tanas_data::{ImageSet, TaskBatch, TaskBatcher, TaskSplit};
use tanas_zoo::ZooModel;

use crate::diag::FisherMeta;
use crate::estimator::{Estimator, EstimatorError, FisherConfig, fisher_diag};

/// Seconds of each method on the same samples.
#[derive(Debug, Clone, Serialize)]
pub struct FisherTiming {
    /// Samples the Fisher is taken on.
    pub samples: usize,
    /// Samples per pass.
    pub batch_size: usize,
    /// One forward + backward (parameter gradients) over all samples, in batches.
    pub forward_backward_s: f64,
    /// The exact estimator (per-sample gradients from one backward per batch).
    pub exact_s: f64,
    /// The naive loop (one backward per sample), extrapolated from `naive_samples`.
    pub naive_s: f64,
    /// Samples the naive loop was timed on.
    pub naive_samples: usize,
    /// `exact_s / forward_backward_s` (the target is at most 1.5).
    pub exact_ratio: f64,
    /// `naive_s / forward_backward_s`.
    pub naive_ratio: f64,
}

/// `n` random 28x28 grey images with random labels below `k` (seeded): timing needs no real data.
pub fn synthetic_split(n: usize, k: usize, seed: u64) -> TaskSplit {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let pixels = (0..n * 784).map(|_| rng.random::<u8>()).collect();
    let labels: Vec<u16> = (0..n).map(|_| rng.random_range(0..k as u16)).collect();
    let items = labels
        .iter()
        .enumerate()
        .map(|(i, &l)| (i, l as usize))
        .collect();
    let set = ImageSet {
        channels: 1,
        height: 28,
        width: 28,
        pixels,
        labels,
        coarse_labels: None,
    };
    TaskSplit::new(Arc::new(set), items)
}

/// Times `model`'s exact Fisher, the naive loop and a batched forward + backward on `split`.
/// Each is run once untimed first (warm-up), then timed once.
pub fn time_fisher<B: AutodiffBackend>(
    model: &ZooModel<B>,
    split: &TaskSplit,
    batch_size: usize,
    naive_samples: usize,
    device: &B::Device,
) -> Result<FisherTiming, EstimatorError> {
    let k = model.num_classes();
    let run = |estimator, split: &TaskSplit| {
        let cfg = FisherConfig {
            estimator,
            batch_size,
            ..FisherConfig::default()
        };
        fisher_diag(model, split, k, &cfg, FisherMeta::default(), device).map(|_| ())
    };
    let warm = split.truncated(batch_size);
    forward_backward(model, &warm, batch_size, device);
    run(Estimator::Exact, &warm)?;
    let t = Instant::now();
    forward_backward(model, split, batch_size, device);
    let forward_backward_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    run(Estimator::Exact, split)?;
    let exact_s = t.elapsed().as_secs_f64();
    let naive_split = split.truncated(naive_samples.max(1));
    let t = Instant::now();
    run(Estimator::Naive, &naive_split)?;
    let naive_s = t.elapsed().as_secs_f64() * split.len() as f64 / naive_split.len() as f64;
    Ok(FisherTiming {
        samples: split.len(),
        batch_size,
        forward_backward_s,
        exact_s,
        naive_s,
        naive_samples: naive_split.len(),
        exact_ratio: exact_s / forward_backward_s,
        naive_ratio: naive_s / forward_backward_s,
    })
}

/// Forward + backward of the mean cross-entropy with parameter gradients, batch by batch.
fn forward_backward<B: AutodiffBackend>(
    model: &ZooModel<B>,
    split: &TaskSplit,
    batch_size: usize,
    device: &B::Device,
) {
    for start in (0..split.len()).step_by(batch_size.max(1)) {
        let end = (start + batch_size.max(1)).min(split.len());
        let batch: TaskBatch<B> =
            TaskBatcher.batch((start..end).filter_map(|i| split.get(i)).collect(), device);
        let logits = model.forward(batch.images);
        let loss = burn::nn::loss::CrossEntropyLossConfig::new()
            .init(device)
            .forward(logits, batch.labels);
        let grads = GradientsParams::from_grads(loss.backward(), model);
        drop(grads);
    }
}
