//! The settings of the two searches: [`FuseConfig`] and [`RandomSearchConfig`], each the
//! algorithm's own fields plus [`SearchCommon`] (learning rate, batch sizes, seed, sample
//! limits, the final step), which is checked and turned into a [`FinalConfig`] once. Both
//! are flat TOML / JSON tables in which every field has a default, so a config file names
//! only what it changes; an unknown field is an error.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tanas_core::limits::{MAX_BATCH_SIZE, MAX_COUNT};

use crate::error::{Result, SearchError};
use crate::fit::derive_seed;
use crate::result::FinalConfig;

/// Seed-path tags of the final step of each search (see `derive_seed`).
const TAG_FUSE_FINAL: u64 = 5;
const TAG_RANDOM_FINAL: u64 = 15;

/// What the search driver reads of an algorithm's config.
pub trait SearchConfig: Clone + Serialize + serde::de::DeserializeOwned {
    /// The settings every search has.
    fn common(&self) -> &SearchCommon;
    /// The final step's settings.
    fn final_config(&self) -> FinalConfig;
}

impl SearchConfig for FuseConfig {
    fn common(&self) -> &SearchCommon {
        &self.common
    }
    fn final_config(&self) -> FinalConfig {
        self.common.final_config(TAG_FUSE_FINAL)
    }
}

impl SearchConfig for RandomSearchConfig {
    fn common(&self) -> &SearchCommon {
        &self.common
    }
    fn final_config(&self) -> FinalConfig {
        self.common.final_config(TAG_RANDOM_FINAL)
    }
}

/// The settings every search has: learning rate, batch sizes, seed, sample limits and the
/// final step. Flattened into [`FuseConfig`] and [`RandomSearchConfig`], so a config file
/// names them beside the algorithm's own fields, in one flat table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SearchCommon {
    /// Adam's learning rate for the candidates' weights (default 1e-3; FUSE files may call
    /// it `lr_w`).
    #[serde(alias = "lr_w")]
    pub lr: f64,
    /// Training mini-batch size (default 64).
    pub batch_size: usize,
    /// Batch size of the val and test evaluations (default 256).
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
    /// Adam's learning rate of the final retraining (default: `lr`, the candidates').
    #[serde(skip_serializing_if = "Option::is_none")]
    pub final_lr: Option<f64>,
    /// Anneal the final retraining's learning rate to 0 on a cosine, epoch by epoch
    /// (default true, as DARTS trains its final networks); false keeps it constant.
    pub final_cosine: bool,
    /// Hide the progress bars (also hidden when stderr is not a terminal). Not stored, not
    /// compared on resume.
    #[serde(skip)]
    pub quiet: bool,
    /// Refuses a field neither the algorithm nor this table knows (serde's
    /// `deny_unknown_fields` does not work with flattened tables).
    #[serde(flatten, skip_serializing)]
    pub unknown: NoOtherFields,
}

impl Default for SearchCommon {
    fn default() -> Self {
        SearchCommon {
            lr: 1e-3,
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
            final_lr: None,
            final_cosine: true,
            quiet: false,
            unknown: NoOtherFields,
        }
    }
}

impl SearchCommon {
    /// Checks every value's range.
    pub fn validate(&self) -> Result<()> {
        at_least_1(&[
            ("batch_size", self.batch_size),
            ("eval_batch_size", self.eval_batch_size),
            ("final_epochs", self.final_epochs),
        ])?;
        positive(&[
            ("lr", self.lr),
            ("final_lr", self.final_lr.unwrap_or(self.lr)),
        ])?;
        let given: Vec<(&'static str, usize)> = [
            ("train_limit", self.train_limit),
            ("val_limit", self.val_limit),
            ("test_limit", self.test_limit),
            ("final_train_limit", self.final_train_limit),
            ("final_val_limit", self.final_val_limit),
            ("final_batch_size", self.final_batch_size),
        ]
        .into_iter()
        .filter_map(|(field, v)| Some((field, v?)))
        .collect();
        at_least_1(&given)
    }

    /// The final step's settings, seeded from [`seed`](Self::seed) on the path `tag` (one per
    /// algorithm, so two algorithms' final networks differ).
    pub fn final_config(&self, tag: u64) -> FinalConfig {
        FinalConfig {
            epochs: self.final_epochs,
            with_val: self.final_with_val,
            lr: self.final_lr.unwrap_or(self.lr),
            batch_size: self.final_batch_size.unwrap_or(self.batch_size),
            eval_batch_size: self.eval_batch_size,
            seed: derive_seed(self.seed, &[tag]),
            train_limit: self.final_train_limit,
            val_limit: self.final_val_limit,
            test_limit: self.test_limit,
            cosine: self.final_cosine,
            quiet: self.quiet,
        }
    }
}

/// The rest of a flattened config table, which must be empty: any field there is an
/// "unknown field" error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoOtherFields;

impl<'de> Deserialize<'de> for NoOtherFields {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let rest = BTreeMap::<String, serde::de::IgnoredAny>::deserialize(d)?;
        match rest.keys().next() {
            None => Ok(NoOtherFields),
            Some(field) => Err(serde::de::Error::custom(format!("unknown field `{field}`"))),
        }
    }
}

/// The settings of a FUSE search. Every field has a default, so a config file may name only
/// what it changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FuseConfig {
    /// Candidates per stage, the incumbent included (default 3; the first stage draws all).
    pub candidates: usize,
    /// Stages: FUSE calls, each with fresh samples (default 5).
    pub stages: usize,
    /// Epochs of joint weight training per round (default 1).
    pub epochs_w: usize,
    /// Epochs of alpha training on val per round (default 1).
    pub epochs_alpha: usize,
    /// Adam's learning rate for alpha (default 0.05).
    pub lr_alpha: f64,
    /// Alpha has converged when no entry of `softmax(alpha)` moved by this much or more over
    /// a round (default 1e-3).
    pub alpha_tolerance: f64,
    /// Largest number of rounds per stage (default 5).
    pub max_rounds: usize,
    /// What every search has.
    #[serde(flatten)]
    pub common: SearchCommon,
}

impl Default for FuseConfig {
    fn default() -> Self {
        FuseConfig {
            candidates: 3,
            stages: 5,
            epochs_w: 1,
            epochs_alpha: 1,
            lr_alpha: 0.05,
            alpha_tolerance: 1e-3,
            max_rounds: 5,
            common: SearchCommon::default(),
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
        self.common.validate()
    }

    /// The largest search budget in candidate-epochs: every stage runs all its rounds,
    /// `stages * max_rounds * candidates * epochs_w`.
    pub fn max_candidate_epochs(&self) -> usize {
        self.stages * self.max_rounds * self.candidates * self.epochs_w
    }
}

/// The settings of a random search. Every field has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RandomSearchConfig {
    /// Candidates drawn (default 15).
    pub samples: usize,
    /// Training epochs per candidate (default 5).
    pub epochs: usize,
    /// What every search has.
    #[serde(flatten)]
    pub common: SearchCommon,
}

impl Default for RandomSearchConfig {
    fn default() -> Self {
        RandomSearchConfig {
            samples: 15,
            epochs: 5,
            common: SearchCommon::default(),
        }
    }
}

impl RandomSearchConfig {
    /// Checks every value's range.
    pub fn validate(&self) -> Result<()> {
        at_least_1(&[("samples", self.samples), ("epochs", self.epochs)])?;
        self.common.validate()
    }

    /// The search budget in candidate-epochs: `samples * epochs`.
    pub fn budget(&self) -> usize {
        self.samples * self.epochs
    }

    /// A random search with FUSE's largest budget ([`FuseConfig::max_candidate_epochs`]):
    /// as many candidates as FUSE trains in all (`stages * candidates`), each for as many
    /// epochs as a FUSE candidate gets in a full stage (`max_rounds * epochs_w`); the common
    /// settings are `fuse`'s.
    pub fn equal_budget(fuse: &FuseConfig) -> Self {
        RandomSearchConfig {
            samples: fuse.stages * fuse.candidates,
            epochs: fuse.max_rounds * fuse.epochs_w,
            common: fuse.common.clone(),
        }
    }

    /// A random search of at most `candidate_epochs` (e.g. what a FUSE search actually
    /// spent, [`crate::SearchResult::candidate_epochs`]) with `epochs` per candidate:
    /// `samples = max(1, candidate_epochs / epochs)`; the common settings are `fuse`'s.
    pub fn for_budget(candidate_epochs: usize, epochs: usize, fuse: &FuseConfig) -> Self {
        let epochs = epochs.max(1);
        RandomSearchConfig {
            samples: (candidate_epochs / epochs).max(1),
            epochs,
            common: fuse.common.clone(),
        }
    }
}

/// Every listed count must be from 1 to [`MAX_COUNT`] (batch sizes: [`MAX_BATCH_SIZE`]),
/// the bounds of the command line's flags.
fn at_least_1(fields: &[(&'static str, usize)]) -> Result<()> {
    for &(field, v) in fields {
        let max = if field.ends_with("batch_size") {
            MAX_BATCH_SIZE
        } else {
            MAX_COUNT
        };
        if !(1..=max).contains(&v) {
            return Err(SearchError::config(
                field,
                format!("must be from 1 to {max}, got {v}"),
            ));
        }
    }
    Ok(())
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
            common: SearchCommon {
                train_limit: Some(128),
                val_limit: Some(64),
                batch_size: 16,
                ..SearchCommon::default()
            },
            ..FuseConfig::default()
        };
        let fin = cfg.final_config();
        assert_eq!(
            (fin.train_limit, fin.val_limit, fin.batch_size),
            (None, None, 16)
        );
        assert!(fin.cosine);
        let fin = FuseConfig {
            common: SearchCommon {
                final_train_limit: Some(500),
                final_val_limit: Some(50),
                final_batch_size: Some(64),
                final_cosine: false,
                ..cfg.common
            },
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
        let common = |c: SearchCommon| RandomSearchConfig {
            common: c,
            ..Default::default()
        };
        let bad = common(SearchCommon {
            lr: f64::NAN,
            ..Default::default()
        });
        assert!(field(bad.validate().unwrap_err()).contains("lr:"));
        let bad = common(SearchCommon {
            final_val_limit: Some(0),
            ..Default::default()
        });
        assert!(field(bad.validate().unwrap_err()).contains("final_val_limit"));
        FuseConfig::default().validate().unwrap();
        RandomSearchConfig::default().validate().unwrap();
        let partial: FuseConfig = serde_json::from_str(r#"{"stages": 2}"#).unwrap();
        assert_eq!(partial.stages, 2);
        // One flat table: the common fields beside FUSE's, `lr_w` read as `lr`; an unknown
        // field is refused by name.
        let flat: FuseConfig = toml::from_str("stages = 2\nlr_w = 0.01\nseed = 3\n").unwrap();
        assert_eq!(
            (flat.stages, flat.common.lr, flat.common.seed),
            (2, 0.01, 3)
        );
        let e = toml::from_str::<FuseConfig>("stages = 2\nstage = 2\n").unwrap_err();
        assert!(e.to_string().contains("unknown field `stage`"), "{e}");
        let e = serde_json::from_str::<RandomSearchConfig>(r#"{"candidates": 2}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `candidates`"), "{e}");
        let text = serde_json::to_string(&FuseConfig::default()).unwrap();
        assert_eq!(
            serde_json::from_str::<FuseConfig>(&text).unwrap(),
            FuseConfig::default()
        );
    }

    #[test]
    fn the_random_defaults_and_budgets() {
        let r = RandomSearchConfig::default();
        let c = &r.common;
        assert_eq!((r.samples, r.epochs, c.lr, c.batch_size), (15, 5, 1e-3, 64));
        assert_eq!((c.eval_batch_size, c.final_epochs), (256, 10));
        assert!(c.final_with_val && c.final_cosine);
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
