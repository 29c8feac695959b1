//! The settings of the two searches: [`FuseConfig`] and [`RandomSearchConfig`]. Both are
//! flat TOML / JSON tables in which every field has a default, so a config file names only
//! what it changes; their shared fields (learning rate, batch sizes, seed, sample limits, the
//! final step) are checked and turned into a [`FinalConfig`] by the same code.

use serde::{Deserialize, Serialize};

use crate::error::{Result, SearchError};
use crate::fit::derive_seed;
use crate::result::FinalConfig;

/// Seed-path tags of the final step of each search (see `derive_seed`).
const TAG_FUSE_FINAL: u64 = 5;
const TAG_RANDOM_FINAL: u64 = 15;

/// The settings of a FUSE search. Every field has a default, so a config file may name only
/// what it changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FuseConfig {
    /// Candidates per stage, the incumbent included (default 3; the first stage draws all).
    pub candidates: usize,
    /// Stages: FUSE calls, each with fresh samples (default 5).
    pub stages: usize,
    /// Epochs of joint weight training per round (default 1).
    pub epochs_w: usize,
    /// Epochs of alpha training on val per round (default 1).
    pub epochs_alpha: usize,
    /// Adam's learning rate for the candidates' weights (default 1e-3).
    pub lr_w: f64,
    /// Adam's learning rate for alpha (default 0.05).
    pub lr_alpha: f64,
    /// Alpha has converged when no entry of `softmax(alpha)` moved by this much or more over
    /// a round (default 1e-3).
    pub alpha_tolerance: f64,
    /// Largest number of rounds per stage (default 5).
    pub max_rounds: usize,
    /// Training mini-batch size, weights and alpha (default 64).
    pub batch_size: usize,
    /// Batch size of the val logits and of the test evaluation (default 256).
    pub eval_batch_size: usize,
    /// Seed of every random choice: samples, initial weights, epoch orders (default 0).
    pub seed: u64,
    /// Search on only the first `n` train samples (default: all).
    pub train_limit: Option<usize>,
    /// Search on only the first `n` val samples (default: all).
    pub val_limit: Option<usize>,
    /// Test the final network on only the first `n` test samples (default: all).
    pub test_limit: Option<usize>,
    /// Epochs of the final retraining from scratch (default 10).
    pub final_epochs: usize,
    /// Retrain the final network on train + val (default true) or on train alone.
    pub final_with_val: bool,
    /// Retrain the final network on only the first `n` train samples (default: all; the
    /// search's `train_limit` does not apply).
    pub final_train_limit: Option<usize>,
    /// Retrain the final network on only the first `n` val samples (default: all).
    pub final_val_limit: Option<usize>,
    /// Mini-batch size of the final retraining (default: `batch_size`).
    pub final_batch_size: Option<usize>,
    /// Anneal the final retraining's learning rate to 0 on a cosine, epoch by epoch
    /// (default true, as DARTS trains its final networks); false keeps it constant.
    pub final_cosine: bool,
    /// Hide the progress bars (also hidden when stderr is not a terminal). Not stored, not
    /// compared on resume.
    #[serde(skip)]
    pub quiet: bool,
}

impl Default for FuseConfig {
    fn default() -> Self {
        FuseConfig {
            candidates: 3,
            stages: 5,
            epochs_w: 1,
            epochs_alpha: 1,
            lr_w: 1e-3,
            lr_alpha: 0.05,
            alpha_tolerance: 1e-3,
            max_rounds: 5,
            batch_size: 64,
            eval_batch_size: 256,
            seed: 0,
            train_limit: None,
            val_limit: None,
            test_limit: None,
            final_epochs: 10,
            final_with_val: true,
            final_train_limit: None,
            final_val_limit: None,
            final_batch_size: None,
            final_cosine: true,
            quiet: false,
        }
    }
}

impl FuseConfig {
    /// Checks every value's range.
    pub fn validate(&self) -> Result<()> {
        at_least_1(&[
            ("candidates", self.candidates),
            ("stages", self.stages),
            ("epochs_w", self.epochs_w),
            ("epochs_alpha", self.epochs_alpha),
            ("max_rounds", self.max_rounds),
        ])?;
        positive(&[("lr_alpha", self.lr_alpha)])?;
        if !(self.alpha_tolerance.is_finite() && self.alpha_tolerance >= 0.0) {
            return Err(SearchError::config(
                "alpha_tolerance",
                format!("must be a number >= 0, got {}", self.alpha_tolerance),
            ));
        }
        self.shared("lr_w").validate()
    }

    /// The largest search budget in candidate-epochs: every stage runs all its rounds,
    /// `stages * max_rounds * candidates * epochs_w`.
    pub fn max_candidate_epochs(&self) -> usize {
        self.stages * self.max_rounds * self.candidates * self.epochs_w
    }

    /// The final step's settings.
    pub fn final_config(&self) -> FinalConfig {
        self.shared("lr_w")
            .final_config(derive_seed(self.seed, &[TAG_FUSE_FINAL]))
    }

    /// The shared fields; `lr_field` is the learning rate's name in errors.
    fn shared(&self, lr_field: &'static str) -> Shared {
        Shared {
            lr_field,
            lr: self.lr_w,
            batch_size: self.batch_size,
            eval_batch_size: self.eval_batch_size,
            train_limit: self.train_limit,
            val_limit: self.val_limit,
            test_limit: self.test_limit,
            final_epochs: self.final_epochs,
            final_with_val: self.final_with_val,
            final_train_limit: self.final_train_limit,
            final_val_limit: self.final_val_limit,
            final_batch_size: self.final_batch_size,
            final_cosine: self.final_cosine,
            quiet: self.quiet,
        }
    }
}

/// The settings of a random search. Every field has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RandomSearchConfig {
    /// Candidates drawn (default 15).
    pub samples: usize,
    /// Training epochs per candidate (default 5).
    pub epochs: usize,
    /// Adam's learning rate (default 1e-3).
    pub lr: f64,
    /// Training mini-batch size (default 64).
    pub batch_size: usize,
    /// Batch size of the val and test evaluations (default 256).
    pub eval_batch_size: usize,
    /// Seed of every random choice (default 0).
    pub seed: u64,
    /// Search on only the first `n` train samples (default: all).
    pub train_limit: Option<usize>,
    /// Search on only the first `n` val samples (default: all).
    pub val_limit: Option<usize>,
    /// Test the final network on only the first `n` test samples (default: all).
    pub test_limit: Option<usize>,
    /// Epochs of the final retraining from scratch (default 10).
    pub final_epochs: usize,
    /// Retrain the final network on train + val (default true) or on train alone.
    pub final_with_val: bool,
    /// Retrain the final network on only the first `n` train samples (default: all; the
    /// search's `train_limit` does not apply).
    pub final_train_limit: Option<usize>,
    /// Retrain the final network on only the first `n` val samples (default: all).
    pub final_val_limit: Option<usize>,
    /// Mini-batch size of the final retraining (default: `batch_size`).
    pub final_batch_size: Option<usize>,
    /// Anneal the final retraining's learning rate to 0 on a cosine, epoch by epoch
    /// (default true, as DARTS trains its final networks); false keeps it constant.
    pub final_cosine: bool,
    /// Hide the progress bars. Not stored, not compared on resume.
    #[serde(skip)]
    pub quiet: bool,
}

impl Default for RandomSearchConfig {
    fn default() -> Self {
        RandomSearchConfig {
            samples: 15,
            epochs: 5,
            ..Self::like(&FuseConfig::default())
        }
    }
}

impl RandomSearchConfig {
    /// Checks every value's range.
    pub fn validate(&self) -> Result<()> {
        at_least_1(&[("samples", self.samples), ("epochs", self.epochs)])?;
        self.shared().validate()
    }

    /// The search budget in candidate-epochs: `samples * epochs`.
    pub fn budget(&self) -> usize {
        self.samples * self.epochs
    }

    /// A random search with FUSE's largest budget ([`FuseConfig::max_candidate_epochs`]):
    /// as many candidates as FUSE trains in all (`stages * candidates`), each for as many
    /// epochs as a FUSE candidate gets in a full stage (`max_rounds * epochs_w`); learning
    /// rate, batch sizes, seed, limits and final step copied from `fuse`.
    pub fn equal_budget(fuse: &FuseConfig) -> Self {
        RandomSearchConfig {
            samples: fuse.stages * fuse.candidates,
            epochs: fuse.max_rounds * fuse.epochs_w,
            ..Self::like(fuse)
        }
    }

    /// A random search of at most `candidate_epochs` (e.g. what a FUSE search actually
    /// spent, [`crate::SearchResult::candidate_epochs`]) with `epochs` per candidate:
    /// `samples = max(1, candidate_epochs / epochs)`; the rest copied from `fuse`.
    pub fn for_budget(candidate_epochs: usize, epochs: usize, fuse: &FuseConfig) -> Self {
        let epochs = epochs.max(1);
        RandomSearchConfig {
            samples: (candidate_epochs / epochs).max(1),
            epochs,
            ..Self::like(fuse)
        }
    }

    /// The settings shared with a FUSE config (one candidate of one epoch).
    fn like(fuse: &FuseConfig) -> Self {
        RandomSearchConfig {
            samples: 1,
            epochs: 1,
            lr: fuse.lr_w,
            batch_size: fuse.batch_size,
            eval_batch_size: fuse.eval_batch_size,
            seed: fuse.seed,
            train_limit: fuse.train_limit,
            val_limit: fuse.val_limit,
            test_limit: fuse.test_limit,
            final_epochs: fuse.final_epochs,
            final_with_val: fuse.final_with_val,
            final_train_limit: fuse.final_train_limit,
            final_val_limit: fuse.final_val_limit,
            final_batch_size: fuse.final_batch_size,
            final_cosine: fuse.final_cosine,
            quiet: fuse.quiet,
        }
    }

    /// The final step's settings.
    pub fn final_config(&self) -> FinalConfig {
        self.shared()
            .final_config(derive_seed(self.seed, &[TAG_RANDOM_FINAL]))
    }

    fn shared(&self) -> Shared {
        FuseConfig::from(self).shared("lr")
    }
}

impl From<&RandomSearchConfig> for FuseConfig {
    /// The FUSE config with the random search's shared fields (the rest FUSE's defaults).
    fn from(r: &RandomSearchConfig) -> Self {
        FuseConfig {
            lr_w: r.lr,
            batch_size: r.batch_size,
            eval_batch_size: r.eval_batch_size,
            seed: r.seed,
            train_limit: r.train_limit,
            val_limit: r.val_limit,
            test_limit: r.test_limit,
            final_epochs: r.final_epochs,
            final_with_val: r.final_with_val,
            final_train_limit: r.final_train_limit,
            final_val_limit: r.final_val_limit,
            final_batch_size: r.final_batch_size,
            final_cosine: r.final_cosine,
            quiet: r.quiet,
            ..FuseConfig::default()
        }
    }
}

/// The fields both searches have, checked and turned into the final step's settings once.
struct Shared {
    lr_field: &'static str,
    lr: f64,
    batch_size: usize,
    eval_batch_size: usize,
    train_limit: Option<usize>,
    val_limit: Option<usize>,
    test_limit: Option<usize>,
    final_epochs: usize,
    final_with_val: bool,
    final_train_limit: Option<usize>,
    final_val_limit: Option<usize>,
    final_batch_size: Option<usize>,
    final_cosine: bool,
    quiet: bool,
}

impl Shared {
    fn validate(&self) -> Result<()> {
        at_least_1(&[
            ("batch_size", self.batch_size),
            ("eval_batch_size", self.eval_batch_size),
            ("final_epochs", self.final_epochs),
        ])?;
        positive(&[(self.lr_field, self.lr)])?;
        for (field, v) in [
            ("train_limit", self.train_limit),
            ("val_limit", self.val_limit),
            ("test_limit", self.test_limit),
            ("final_train_limit", self.final_train_limit),
            ("final_val_limit", self.final_val_limit),
            ("final_batch_size", self.final_batch_size),
        ] {
            if v == Some(0) {
                return Err(SearchError::config(field, "must be at least 1 when given"));
            }
        }
        Ok(())
    }

    fn final_config(&self, seed: u64) -> FinalConfig {
        FinalConfig {
            epochs: self.final_epochs,
            with_val: self.final_with_val,
            lr: self.lr,
            batch_size: self.final_batch_size.unwrap_or(self.batch_size),
            eval_batch_size: self.eval_batch_size,
            seed,
            train_limit: self.final_train_limit,
            val_limit: self.final_val_limit,
            test_limit: self.test_limit,
            cosine: self.final_cosine,
            quiet: self.quiet,
        }
    }
}

/// Every listed count must be at least 1.
fn at_least_1(fields: &[(&'static str, usize)]) -> Result<()> {
    match fields.iter().find(|(_, v)| *v == 0) {
        Some((field, _)) => Err(SearchError::config(field, "must be at least 1")),
        None => Ok(()),
    }
}

/// Every listed number must be finite and above 0.
fn positive(fields: &[(&'static str, f64)]) -> Result<()> {
    match fields.iter().find(|(_, v)| !(v.is_finite() && *v > 0.0)) {
        Some((field, v)) => Err(SearchError::config(
            field,
            format!("must be a positive number, got {v}"),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_final_step_uses_the_whole_splits_unless_told() {
        let cfg = FuseConfig {
            train_limit: Some(128),
            val_limit: Some(64),
            batch_size: 16,
            ..FuseConfig::default()
        };
        let fin = cfg.final_config();
        assert_eq!(
            (fin.train_limit, fin.val_limit, fin.batch_size),
            (None, None, 16)
        );
        assert!(fin.cosine);
        let fin = FuseConfig {
            final_train_limit: Some(500),
            final_val_limit: Some(50),
            final_batch_size: Some(64),
            final_cosine: false,
            ..cfg
        }
        .final_config();
        assert_eq!(
            (fin.train_limit, fin.val_limit, fin.batch_size, fin.cosine),
            (Some(500), Some(50), 64, false)
        );
    }

    #[test]
    fn config_validation_names_the_field() {
        let field = |e: SearchError| e.to_string();
        let bad = FuseConfig {
            candidates: 0,
            ..Default::default()
        };
        assert!(field(bad.validate().unwrap_err()).contains("candidates"));
        let bad = FuseConfig {
            lr_alpha: -1.0,
            ..Default::default()
        };
        assert!(field(bad.validate().unwrap_err()).contains("lr_alpha"));
        let bad = FuseConfig {
            lr_w: f64::NAN,
            ..Default::default()
        };
        assert!(field(bad.validate().unwrap_err()).contains("lr_w"));
        let bad = RandomSearchConfig {
            lr: 0.0,
            ..Default::default()
        };
        assert!(field(bad.validate().unwrap_err()).contains("lr:"));
        let bad = RandomSearchConfig {
            final_val_limit: Some(0),
            ..Default::default()
        };
        assert!(field(bad.validate().unwrap_err()).contains("final_val_limit"));
        FuseConfig::default().validate().unwrap();
        RandomSearchConfig::default().validate().unwrap();
        let partial: FuseConfig = serde_json::from_str(r#"{"stages": 2}"#).unwrap();
        assert_eq!(partial.stages, 2);
        assert!(serde_json::from_str::<FuseConfig>(r#"{"stage": 2}"#).is_err());
    }

    #[test]
    fn the_random_defaults_and_budgets() {
        let r = RandomSearchConfig::default();
        assert_eq!((r.samples, r.epochs, r.lr, r.batch_size), (15, 5, 1e-3, 64));
        assert_eq!((r.eval_batch_size, r.final_epochs), (256, 10));
        assert!(r.final_with_val && r.final_cosine);
        let fuse = FuseConfig {
            stages: 4,
            candidates: 3,
            max_rounds: 5,
            epochs_w: 2,
            ..Default::default()
        };
        let r = RandomSearchConfig::equal_budget(&fuse);
        assert_eq!(r.budget(), fuse.max_candidate_epochs());
        assert_eq!((r.samples, r.epochs), (12, 10));
        let r = RandomSearchConfig::for_budget(25, 4, &fuse);
        assert_eq!((r.samples, r.epochs), (6, 4));
        assert!(r.budget() <= 25);
        // The same shared settings give the same final step, but for its seed.
        let (f, r) = (fuse.final_config(), r.final_config());
        assert_eq!(FinalConfig { seed: 0, ..f }, FinalConfig { seed: 0, ..r });
    }
}
