//! [`TrainConfig`]: the settings of one training run.

use serde::{Deserialize, Serialize};

use tanas_core::limits::{MAX_BATCH_SIZE, MAX_COUNT};

use crate::error::{Result, TrainError};

/// Adam's epsilon. burn's default is `1e-5`; PyTorch's (and so the papers') is `1e-8`.
pub const ADAM_EPSILON: f32 = 1e-8;

/// The settings of one training run. Every field has a default (see [`Default`]), so a
/// config file may name only what it changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// The largest number of epochs the run trains in total (default 30). Rerunning in the
    /// same directory with a larger value continues a run that stopped at its epoch budget
    /// (see the crate docs, "Resume").
    pub epochs: usize,
    /// Training mini-batch size (default 128). The last batch of an epoch may be smaller.
    pub batch_size: usize,
    /// Adam's learning rate (default 1e-3).
    pub lr: f64,
    /// Stop as soon as the validation accuracy reaches this value, in [0, 1]: the network is
    /// then an epsilon-approximation with epsilon = 1 - A (default: none, train all epochs).
    pub target_accuracy: Option<f64>,
    /// Early stopping: stop after this many epochs in a row without a new best validation
    /// accuracy (the best epoch's weights are kept either way; default: none, train all
    /// epochs).
    pub patience: Option<usize>,
    /// A budget in optimiser steps: the run trains at most the epochs that take it to this
    /// many steps (the first epoch that reaches it is the last; `epochs` still caps it), so
    /// that tasks of different sizes get about the same number of updates (default: none).
    /// Like `epochs`, a budget: a larger value continues a finished run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_steps: Option<usize>,
    /// Seed of the weight initialisation, and of the per-epoch shuffles unless `order_seed`
    /// is given (default 0).
    pub seed: u64,
    /// Seed of the per-epoch shuffles (the data order) alone (default: `seed`). Two runs
    /// with one `seed` and different order seeds start from the same initial network and
    /// see the data in different orders: the pair of paper 003's null hypothesis (the same
    /// task, the same initial network, another data order).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_seed: Option<u64>,
    /// Weights to fine-tune from (a PyTorch weights file, e.g. another task's
    /// `weights.safetensors`): every tensor of the network but its classification head
    /// ([`Arch::head`](tanas_zoo::Arch::head)) is loaded from it, the head keeps its seeded
    /// initialisation, whatever the file's head holds (default: none, the seeded
    /// initialisation throughout).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<std::path::PathBuf>,
    /// Batch size of the validation and test evaluations (default 512); it changes no
    /// result beyond floating-point rounding of the reported losses.
    pub eval_batch_size: usize,
    /// Hide the progress bars (they are also hidden when stderr is not a terminal). Not part
    /// of the run's identity: not stored, not compared on resume.
    #[serde(skip)]
    pub quiet: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 30,
            batch_size: 128,
            lr: 1e-3,
            target_accuracy: None,
            patience: None,
            max_steps: None,
            seed: 0,
            order_seed: None,
            init: None,
            eval_batch_size: 512,
            quiet: false,
        }
    }
}

impl TrainConfig {
    /// The same settings with `seed` (one per network of an experiment).
    pub fn with_seed(&self, seed: u64) -> Self {
        TrainConfig {
            seed,
            ..self.clone()
        }
    }

    /// The epochs a run on `train_samples` samples may train: `epochs`, or fewer where
    /// `max_steps` is reached first (each epoch takes `ceil(train_samples / batch_size)`
    /// steps).
    pub fn epoch_budget(&self, train_samples: usize) -> usize {
        let per_epoch = train_samples.div_ceil(self.batch_size.max(1)).max(1);
        self.max_steps.map_or(self.epochs, |s| {
            self.epochs.min(s.div_ceil(per_epoch).max(1))
        })
    }

    /// The seed of the data order: `order_seed`, or `seed`.
    pub fn data_order_seed(&self) -> u64 {
        self.order_seed.unwrap_or(self.seed)
    }

    /// Checks every value's range.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field, problem: String| Err(TrainError::InvalidConfig { field, problem });
        // The command line's bounds (tanas_core::limits), for settings files too.
        for (field, v, max) in [
            ("epochs", Some(self.epochs), MAX_COUNT),
            ("batch_size", Some(self.batch_size), MAX_BATCH_SIZE),
            (
                "eval_batch_size",
                Some(self.eval_batch_size),
                MAX_BATCH_SIZE,
            ),
            ("patience", self.patience, MAX_COUNT),
            ("max_steps", self.max_steps, MAX_COUNT),
        ] {
            if let Some(v) = v
                && !(1..=max).contains(&v)
            {
                return invalid(field, format!("must be from 1 to {max}, got {v}"));
            }
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return invalid("lr", format!("must be a positive number, got {}", self.lr));
        }
        match self.target_accuracy {
            Some(a) if !(0.0..=1.0).contains(&a) => {
                return invalid("target_accuracy", format!("must be in [0, 1], got {a}"));
            }
            _ => {}
        }
        Ok(())
    }

    /// The first field other than `epochs` (and `quiet`) whose value differs from
    /// `stored`, as (name, stored value, requested value). These fields decide which
    /// weights a run produces, so a run may only be resumed with the same values.
    pub fn resume_mismatch(&self, stored: &TrainConfig) -> Option<(&'static str, String, String)> {
        fn opt<T: ToString>(v: Option<T>) -> String {
            v.map_or_else(|| "none".to_string(), |v| v.to_string())
        }
        let fields = [
            (
                "batch_size",
                stored.batch_size.to_string(),
                self.batch_size.to_string(),
            ),
            ("lr", stored.lr.to_string(), self.lr.to_string()),
            (
                "target_accuracy",
                opt(stored.target_accuracy),
                opt(self.target_accuracy),
            ),
            ("patience", opt(stored.patience), opt(self.patience)),
            ("seed", stored.seed.to_string(), self.seed.to_string()),
            (
                "order_seed",
                stored.data_order_seed().to_string(),
                self.data_order_seed().to_string(),
            ),
            (
                "init",
                opt(stored.init.as_ref().map(|p| p.display())),
                opt(self.init.as_ref().map(|p| p.display())),
            ),
            (
                "eval_batch_size",
                stored.eval_batch_size.to_string(),
                self.eval_batch_size.to_string(),
            ),
        ];
        fields.into_iter().find(|(_, a, b)| a != b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_partial_json() {
        let c: TrainConfig = serde_json::from_str(r#"{"epochs": 3}"#).unwrap();
        assert_eq!(
            c,
            TrainConfig {
                epochs: 3,
                ..TrainConfig::default()
            }
        );
        assert_eq!(
            (c.batch_size, c.lr, c.seed, c.eval_batch_size),
            (128, 1e-3, 0, 512)
        );
        assert!(serde_json::from_str::<TrainConfig>(r#"{"epoch": 3}"#).is_err());
        assert!(!serde_json::to_string(&c).unwrap().contains("quiet"));
    }

    #[test]
    fn validation_names_the_field() {
        let bad = [
            TrainConfig {
                epochs: 0,
                ..Default::default()
            },
            TrainConfig {
                batch_size: 0,
                ..Default::default()
            },
            TrainConfig {
                lr: f64::NAN,
                ..Default::default()
            },
            TrainConfig {
                target_accuracy: Some(1.5),
                ..Default::default()
            },
            TrainConfig {
                patience: Some(0),
                ..Default::default()
            },
        ];
        for (c, field) in
            bad.iter()
                .zip(["epochs", "batch_size", "lr", "target_accuracy", "patience"])
        {
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(field), "{e}");
        }
        TrainConfig::default().validate().unwrap();
    }

    #[test]
    fn a_step_budget_gives_small_tasks_more_epochs_than_large_ones() {
        let c = TrainConfig {
            epochs: 15,
            batch_size: 128,
            max_steps: Some(170),
            ..TrainConfig::default()
        };
        // 2160 samples: 17 steps an epoch, 10 epochs; 7200: 57 steps, 3 epochs (171 steps);
        // 1440: 12 steps, 15 epochs (capped by `epochs`), as one sample is; a huge split
        // still trains one epoch.
        assert_eq!(
            [2160, 7200, 1440, 1, 1_000_000].map(|n| c.epoch_budget(n)),
            [10, 3, 15, 15, 1]
        );
        let plain = TrainConfig {
            max_steps: None,
            ..c.clone()
        };
        assert_eq!(plain.epoch_budget(7200), 15);
        // Not stored when unset, so configs without it keep their serialised form.
        assert!(!serde_json::to_string(&plain).unwrap().contains("max_steps"));
        let e = TrainConfig {
            max_steps: Some(0),
            ..c
        };
        assert!(e.validate().unwrap_err().to_string().contains("max_steps"));
    }

    #[test]
    fn resume_ignores_epochs_and_quiet_only() {
        let a = TrainConfig::default();
        let b = TrainConfig {
            epochs: 5,
            quiet: true,
            ..a.clone()
        };
        assert_eq!(b.resume_mismatch(&a), None);
        let c = TrainConfig {
            lr: 0.1,
            ..a.clone()
        };
        assert_eq!(c.resume_mismatch(&a).unwrap().0, "lr");
        let d = TrainConfig {
            target_accuracy: Some(0.9),
            ..a.clone()
        };
        assert_eq!(
            d.resume_mismatch(&a).unwrap(),
            ("target_accuracy", "none".into(), "0.9".into())
        );
    }
}
