//! The random-search baseline ([`RandomSearch`]): `samples` candidates drawn from the space,
//! each trained alone for `epochs` epochs on the train split, ranked by val accuracy; the
//! best is retrained from scratch and tested once, as FUSE's incumbent is. Its budget is
//! `samples * epochs` candidate-epochs, FUSE's unit ([`RandomSearchConfig::budget`],
//! [`RandomSearchConfig::equal_budget`]); `search_seconds` of both results compares time.

use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tanas_zoo::cell::Genotype;
use tanas_zoo::{Arch, ModelSpec};

use crate::algorithm::Algorithm;
use crate::config::RandomSearchConfig;
use crate::data::Splits;
use crate::driver::{SearchStep, SearchStrategy, Searcher, argmax_first};
use crate::error::Result;
use crate::fit::{Fit, derive_seed, draw_seed, train_alone};
use crate::space::SearchSpace;

/// Seed-path tags (see `derive_seed`).
const TAG_SAMPLE: u64 = 11;
const TAG_INIT: u64 = 12;
const TAG_TRAIN: u64 = 13;

/// One candidate of a random search: a line of its trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateRecord {
    /// Candidate number (1-based).
    pub index: usize,
    /// Its genotype.
    pub genotype: Genotype,
    /// Mean training loss of its last epoch.
    pub train_loss: f64,
    /// Its val accuracy after training.
    pub val_accuracy: f64,
    /// Its val cross-entropy after training.
    pub val_loss: f64,
    /// Wall-clock seconds of its training and evaluation.
    pub seconds: f64,
    /// Candidate-epochs of the search so far, this candidate included.
    pub candidate_epochs: usize,
}

impl SearchStep for CandidateRecord {
    fn seconds(&self) -> f64 {
        self.seconds
    }

    fn candidate_epochs(&self) -> usize {
        self.candidate_epochs
    }
}

/// The random-search baseline, run by the [`Searcher`] (see the module docs).
pub type RandomSearch = Searcher<RandomStrategy>;

/// Random search as a [`SearchStrategy`]: one step is one candidate, trained alone.
#[derive(Debug, Clone)]
pub struct RandomStrategy {
    config: RandomSearchConfig,
    space: SearchSpace,
}

impl SearchStrategy for RandomStrategy {
    type Config = RandomSearchConfig;
    type Step = CandidateRecord;
    const ALGORITHM: Algorithm = Algorithm::Random;
    const FORMAT: &'static str = "tanas-random-checkpoint/2";
    const NAME: &'static str = "random search";
    const STEPS: &'static str = "candidates";

    fn new(config: RandomSearchConfig, space: SearchSpace) -> Result<Self> {
        config.validate()?;
        Ok(RandomStrategy { config, space })
    }

    fn config(&self) -> &RandomSearchConfig {
        &self.config
    }

    fn space(&self) -> &SearchSpace {
        &self.space
    }

    fn steps(&self) -> usize {
        self.config.samples
    }

    /// The next candidate (`start` first, where given), trained for `epochs` and scored on val.
    fn step<B: AutodiffBackend>(
        &self,
        done: &[CandidateRecord],
        start: Option<&Genotype>,
        splits: &Splits,
        hidden: bool,
        device: &B::Device,
    ) -> Result<CandidateRecord> {
        let (cfg, index, t0) = (&self.config, done.len() + 1, Instant::now());
        let genotype = match start {
            Some(g) if index == 1 => g.clone(),
            _ => self.candidate(&splits.task, index),
        };
        let spec = ModelSpec::new(Arch::CellNet, splits.classes)
            .with_genotype(genotype.clone())
            .with_skeleton(self.space.skeleton());
        let fit = Fit {
            init_seed: derive_seed(cfg.common.seed, &[TAG_INIT, index as u64]),
            order_seed: derive_seed(cfg.common.seed, &[TAG_TRAIN, index as u64]),
            epochs: cfg.epochs,
            lr: &|_| cfg.common.lr,
            batch_size: cfg.common.batch_size,
            label: &format!("candidate {index}"),
            hidden,
        };
        let (train_loss, val) =
            train_alone::<B>(&spec, splits, &fit, cfg.common.eval_batch_size, device)?;
        Ok(CandidateRecord {
            index,
            genotype,
            train_loss,
            val_accuracy: val.accuracy,
            val_loss: val.loss,
            seconds: t0.elapsed().as_secs_f64(),
            candidate_epochs: done.last().map_or(0, |c| c.candidate_epochs) + cfg.epochs,
        })
    }

    /// The best on val, the first on ties.
    fn best(candidates: &[CandidateRecord]) -> Option<(Genotype, f64)> {
        let accuracies: Vec<f64> = candidates.iter().map(|c| c.val_accuracy).collect();
        let best = candidates.get(argmax_first(&accuracies))?;
        Some((best.genotype.clone(), best.val_accuracy))
    }
}

impl RandomStrategy {
    /// Candidate `index` (1-based) for `task`: drawn with ChaCha8 seeded from (seed, task,
    /// index).
    pub fn candidate(&self, task: &str, index: usize) -> Genotype {
        let seed = draw_seed(self.config.common.seed, TAG_SAMPLE, task);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(index as u64);
        self.space.sample(&mut rng)
    }
}
