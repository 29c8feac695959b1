//! The final step shared by every search ([`retrain_and_test`]) and the result of a search
//! ([`SearchResult`]).

use std::path::Path;
use std::time::Instant;

use burn::data::dataset::Dataset;
use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};
pub use tanas_core::report::TestScore;
use tanas_data::{Split, TaskItem};
use tanas_train::{Eval, Tally, epoch_order};
use tanas_zoo::cell::{CellSkeleton, Genotype};
use tanas_zoo::{Arch, ModelSpec, save_pytorch};

use crate::algorithm::Algorithm;
use crate::data::{SearchData, Splits};
use crate::error::{Result, SearchError};
use crate::fit::{
    BnMode, Fit, Pass, bars_hidden, calibrate_batch_norm, derive_seed, evaluate, fit_from_scratch,
    progress_bar,
};
use crate::space::SearchSpace;

/// Seed-path tags of the final step (see `derive_seed`).
const TAG_FINAL_INIT: u64 = 0xF1;
const TAG_FINAL_ORDER: u64 = 0xF2;

/// How the chosen cell is retrained before its one test evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinalConfig {
    /// Epochs of training from scratch (at least 1).
    pub epochs: usize,
    /// Train on train + val (true) or on train alone.
    pub with_val: bool,
    /// Adam's learning rate.
    pub lr: f64,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Batch size of the test evaluation.
    pub eval_batch_size: usize,
    /// Seed of the weight initialisation and the epoch orders (derived from the search seed).
    pub seed: u64,
    /// Only the first `n` train samples.
    pub train_limit: Option<usize>,
    /// Only the first `n` val samples (when `with_val`).
    pub val_limit: Option<usize>,
    /// Only the first `n` test samples.
    #[serde(default)]
    pub test_limit: Option<usize>,
    /// Anneal the learning rate to 0 on a cosine over the epochs ([`cosine_lr`]).
    #[serde(default)]
    pub cosine: bool,
    /// Hide the progress bars.
    #[serde(skip)]
    pub quiet: bool,
}

/// What the final step measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalOutcome {
    /// Trainable parameters of the network (PyTorch count).
    pub params: usize,
    /// The one test evaluation.
    pub test: Eval,
    /// Samples the network was trained on (per epoch).
    pub train_samples: usize,
    /// Mean training loss of the last epoch.
    pub train_loss: f64,
    /// Wall-clock seconds of training and testing.
    pub seconds: f64,
}

/// The learning rate of epoch `epoch` (1-based) of `epochs` on a cosine from `lr` to 0:
/// `lr * (1 + cos(pi * (epoch - 1) / epochs)) / 2`, so the first epoch trains at `lr`.
pub fn cosine_lr(lr: f64, epoch: usize, epochs: usize) -> f64 {
    let t = (epoch.saturating_sub(1)) as f64 / epochs.max(1) as f64;
    lr * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
}

/// Trains the network `spec` names (a searched cell, or a hand-designed network trained the
/// same way for comparison) from scratch on the train split (plus val when `cfg.with_val`)
/// for `cfg.epochs`, writes its weights to `weights` (if given), and only then evaluates it
/// once on `test`: every sample, in order, BatchNorm in inference mode. The spec's class
/// count is replaced by the data's.
///
/// This is the only function of the crate that receives a test split.
pub fn retrain_and_test<B: AutodiffBackend, D: Dataset<TaskItem> + ?Sized>(
    spec: &ModelSpec,
    data: SearchData<'_>,
    test: &D,
    cfg: &FinalConfig,
    weights: Option<&Path>,
    device: &B::Device,
) -> Result<FinalOutcome> {
    if cfg.epochs == 0 {
        return Err(SearchError::config("final_epochs", "must be at least 1"));
    }
    if cfg.batch_size == 0 || cfg.eval_batch_size == 0 {
        return Err(SearchError::config("batch_size", "must be at least 1"));
    }
    if test.is_empty() {
        return Err(SearchError::EmptySplit { split: Split::Test });
    }
    let splits = Splits::new(&data, cfg.train_limit, cfg.val_limit)?;
    let train = splits.final_train(cfg.with_val);
    let classes = splits.classes;
    let hidden = bars_hidden(cfg.quiet);
    let t0 = Instant::now();
    let spec = ModelSpec {
        num_classes: classes,
        ..spec.clone()
    };
    let order_seed = derive_seed(cfg.seed, &[TAG_FINAL_ORDER]);
    let lr = |epoch| {
        if cfg.cosine {
            cosine_lr(cfg.lr, epoch, cfg.epochs)
        } else {
            cfg.lr
        }
    };
    let fit = Fit {
        init_seed: derive_seed(cfg.seed, &[TAG_FINAL_INIT]),
        order_seed,
        epochs: cfg.epochs,
        lr: &lr,
        batch_size: cfg.batch_size,
        label: "final",
        hidden,
    };
    let (model, train_loss) = fit_from_scratch::<B, _>(&spec, &train, &fit, device)?;
    let params = model.num_params();
    // Short final runs leave BatchNorm's running statistics far from the data's: refresh
    // them before the running-statistics test (docs/search.md).
    let order = epoch_order(train.len(), order_seed, cfg.epochs + 1);
    calibrate_batch_norm(&model, &train, &order, classes, device)?;
    let model = model.valid();
    if let Some(path) = weights {
        save_pytorch(&model, path)?;
    }
    let test = Prefix {
        dataset: test,
        len: cfg.test_limit.map_or(test.len(), |n| n.min(test.len())),
    };
    let bar = progress_bar(test.len(), "images", "test".into(), hidden);
    let pass = Pass {
        ds: &test,
        classes,
        split: Split::Test,
        batch_size: cfg.eval_batch_size,
        mode: BnMode::Running,
        device,
    };
    let test = evaluate(&model, &pass, Tally::default(), &bar)?;
    bar.finish_and_clear();
    if !test.loss.is_finite() {
        return Err(SearchError::NonFinite {
            during: "the test evaluation".into(),
        });
    }
    tracing::info!(
        params,
        test_accuracy = test.accuracy,
        test_loss = test.loss,
        "final network tested"
    );
    Ok(FinalOutcome {
        params,
        test,
        train_samples: train.len(),
        train_loss,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// The cell network of `genotype` on `skeleton` with `classes` outputs.
pub fn cell_spec(genotype: &Genotype, skeleton: CellSkeleton, classes: usize) -> ModelSpec {
    ModelSpec::new(Arch::CellNet, classes)
        .with_genotype(genotype.clone())
        .with_skeleton(skeleton)
}

/// The first `len` samples of a dataset.
struct Prefix<'a, D: ?Sized> {
    dataset: &'a D,
    len: usize,
}

impl<D: Dataset<TaskItem> + ?Sized> Dataset<TaskItem> for Prefix<'_, D> {
    fn get(&self, index: usize) -> Option<TaskItem> {
        (index < self.len)
            .then(|| self.dataset.get(index))
            .flatten()
    }

    fn len(&self) -> usize {
        self.len
    }
}

/// The result of a search (`result.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchResult {
    /// The search that produced it.
    pub algorithm: Algorithm,
    /// The chosen cell.
    pub genotype: Genotype,
    /// Trainable parameters of the final network (PyTorch count).
    pub params: usize,
    /// Val accuracy of the chosen cell during the search (FUSE: its own accuracy after the
    /// last stage's weight training; random search: after its training budget). The final
    /// network may be trained on val, so it is not re-measured there.
    pub val_accuracy: f64,
    /// The final network's one evaluation on the test split, deciding with the dataset's
    /// label prior where the search data has one ([`SearchData::prior`]).
    #[serde(flatten)]
    pub score: TestScore,
    /// Mean cross-entropy of the final network on the test split.
    pub test_loss: f64,
    /// Wall-clock seconds of the search phase (summed over resumed runs).
    pub search_seconds: f64,
    /// Wall-clock seconds of the final retraining and test.
    pub final_seconds: f64,
    /// The search budget spent: candidate-epochs (one candidate trained for one epoch over
    /// the train split) of the search phase; the final retraining is not counted.
    pub candidate_epochs: usize,
    /// Epochs of the final retraining.
    pub final_epochs: usize,
    /// Samples per epoch of the final retraining.
    pub final_train_samples: usize,
    /// The search's seed.
    pub seed: u64,
    /// The space searched.
    pub space: SearchSpace,
}

impl SearchResult {
    /// Reads a `result.json`.
    pub fn load(path: &Path) -> Result<Self> {
        crate::store::read_json(path)?.ok_or_else(|| {
            SearchError::io(
                path,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::cosine_lr;

    #[test]
    fn cosine_starts_at_lr_and_decreases_towards_zero() {
        let lrs: Vec<f64> = (1..=4).map(|e| cosine_lr(0.1, e, 4)).collect();
        assert_eq!(lrs[0], 0.1);
        assert!((lrs[2] - 0.05).abs() < 1e-12, "half-way: {lrs:?}");
        assert!(lrs.windows(2).all(|w| w[1] < w[0]), "{lrs:?}");
        assert!(lrs[3] > 0.0 && lrs[3] < 0.02, "{lrs:?}");
        assert_eq!(cosine_lr(0.1, 1, 1), 0.1);
    }
}
