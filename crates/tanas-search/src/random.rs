//! The random-search baseline ([`RandomSearch`]): `samples` candidates drawn from the space,
//! each trained alone for `epochs` epochs on the train split, ranked by val accuracy; the
//! best is retrained from scratch and tested once, as FUSE's incumbent is.
//!
//! Its budget is counted in FUSE's units: a candidate trained for one epoch over the train
//! split is one candidate-epoch, so a random search spends `samples * epochs`
//! ([`RandomSearchConfig::budget`]). [`RandomSearchConfig::equal_budget`] and
//! [`RandomSearchConfig::for_budget`] turn a FUSE budget into a random search of the same
//! number of candidate-epochs; `search_seconds` of both results compares wall-clock time.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::data::dataset::Dataset;
use burn::module::AutodiffModule;
use burn::optim::AdamConfig;
use burn::tensor::backend::AutodiffBackend;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tanas_data::{Split, TaskData, TaskItem, TaskSplit};
use tanas_train::{ADAM_EPSILON, Tally, epoch_order, seeded};
use tanas_zoo::cell::Genotype;
use tanas_zoo::{Arch, ModelSpec, ZooModel};

use crate::data::{DataIdentity, SearchData, Splits};
use crate::error::{Result, SearchError};
use crate::fit::{
    BnMode, bars_hidden, derive_seed, draw_seed, evaluate, progress_bar, train_epoch,
};
use crate::fuse::{FuseConfig, read_checkpoint};
use crate::result::{Algorithm, FinalConfig, SearchResult, cell_spec, retrain_and_test};
use crate::space::SearchSpace;
use crate::store::{
    CHECKPOINT_FILE, RESULT_FILE, TRACE_FILE, WEIGHTS_FILE, check_same, read_json, write_json,
    write_trace,
};

/// Format tag of a random-search checkpoint.
pub const RANDOM_CHECKPOINT_FORMAT: &str = "tanas-random-checkpoint/1";

/// Seed-path tags (see `derive_seed`).
const TAG_SAMPLE: u64 = 11;
const TAG_INIT: u64 = 12;
const TAG_TRAIN: u64 = 13;
const TAG_FINAL: u64 = 15;

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
            final_cosine: true,
            quiet: false,
        }
    }
}

impl RandomSearchConfig {
    /// Checks every value's range.
    pub fn validate(&self) -> Result<()> {
        let at_least_1 = [
            ("samples", self.samples),
            ("epochs", self.epochs),
            ("batch_size", self.batch_size),
            ("eval_batch_size", self.eval_batch_size),
            ("final_epochs", self.final_epochs),
        ];
        for (field, v) in at_least_1 {
            if v == 0 {
                return Err(SearchError::config(field, "must be at least 1"));
            }
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(SearchError::config(
                "lr",
                format!("must be a positive number, got {}", self.lr),
            ));
        }
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
    /// spent, [`SearchResult::candidate_epochs`]) with `epochs` per candidate:
    /// `samples = max(1, candidate_epochs / epochs)`; the rest copied from `fuse`.
    pub fn for_budget(candidate_epochs: usize, epochs: usize, fuse: &FuseConfig) -> Self {
        let epochs = epochs.max(1);
        RandomSearchConfig {
            samples: (candidate_epochs / epochs).max(1),
            epochs,
            ..Self::like(fuse)
        }
    }

    /// The settings shared with a FUSE config.
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
        FinalConfig {
            epochs: self.final_epochs,
            with_val: self.final_with_val,
            lr: self.lr,
            batch_size: self.final_batch_size.unwrap_or(self.batch_size),
            eval_batch_size: self.eval_batch_size,
            seed: derive_seed(self.seed, &[TAG_FINAL]),
            train_limit: self.final_train_limit,
            val_limit: self.final_val_limit,
            test_limit: self.test_limit,
            cosine: self.final_cosine,
            quiet: self.quiet,
        }
    }
}

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

/// The checkpoint of a random search.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RandomCheckpoint {
    format: String,
    config: RandomSearchConfig,
    space: SearchSpace,
    data: DataIdentity,
    candidates: Vec<CandidateRecord>,
}

/// The random-search baseline (see the module docs). Files, resume and interruption work
/// as for [`crate::Fuse`], with one trace line and one checkpoint per candidate.
#[derive(Debug, Clone)]
pub struct RandomSearch {
    config: RandomSearchConfig,
    space: SearchSpace,
    interrupt: Option<Arc<AtomicBool>>,
}

impl RandomSearch {
    /// A search with a validated config.
    pub fn new(config: RandomSearchConfig, space: SearchSpace) -> Result<Self> {
        config.validate()?;
        Ok(RandomSearch {
            config,
            space,
            interrupt: None,
        })
    }

    /// Stops after the candidate that is running when `flag` becomes true (see
    /// [`crate::Fuse::with_interrupt`]).
    pub fn with_interrupt(mut self, flag: Arc<AtomicBool>) -> Self {
        self.interrupt = Some(flag);
        self
    }

    /// The config.
    pub fn config(&self) -> &RandomSearchConfig {
        &self.config
    }

    /// Candidate `index` (1-based) for `task`: drawn with ChaCha8 seeded from (seed, task,
    /// index).
    pub fn candidate(&self, task: &str, index: usize) -> Genotype {
        let seed = draw_seed(self.config.seed, TAG_SAMPLE, task);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(index as u64);
        self.space.sample(&mut rng)
    }

    /// Runs (or resumes) the search phase in `out`; returns every candidate's record.
    pub fn search<B: AutodiffBackend>(
        &self,
        data: SearchData<'_>,
        out: &Path,
        device: &B::Device,
    ) -> Result<Vec<CandidateRecord>> {
        let cfg = &self.config;
        let splits = Splits::new(&data, cfg.train_limit, cfg.val_limit)?;
        std::fs::create_dir_all(out).map_err(|e| SearchError::io(out, e))?;
        let ckpt_path = out.join(CHECKPOINT_FILE);
        let trace_path = out.join(TRACE_FILE);
        let requested = RandomCheckpoint {
            format: RANDOM_CHECKPOINT_FORMAT.to_string(),
            config: cfg.clone(),
            space: self.space.clone(),
            data: splits.identity(),
            candidates: Vec::new(),
        };
        let mut ckpt =
            match read_checkpoint::<RandomCheckpoint>(&ckpt_path, RANDOM_CHECKPOINT_FORMAT)? {
                Some(stored) => {
                    check_same(out, "config", &stored.config, &requested.config)?;
                    check_same(out, "space", &stored.space, &requested.space)?;
                    check_same(out, "data", &stored.data, &requested.data)?;
                    stored
                }
                None => requested,
            };
        write_trace(&trace_path, &ckpt.candidates)?;
        let hidden = bars_hidden(cfg.quiet);
        let bar = progress_bar(cfg.samples, "candidates", "random search".into(), hidden);
        bar.set_position(ckpt.candidates.len() as u64);
        for index in ckpt.candidates.len() + 1..=cfg.samples {
            let before = ckpt.candidates.last().map_or(0, |c| c.candidate_epochs);
            let record = self.train_candidate::<B>(index, &splits, before, hidden, device)?;
            tracing::info!(
                index,
                samples = cfg.samples,
                val_accuracy = record.val_accuracy,
                seconds = record.seconds,
                "random-search candidate finished"
            );
            ckpt.candidates.push(record);
            write_json(&ckpt_path, &ckpt)?;
            write_trace(&trace_path, &ckpt.candidates)?;
            bar.inc(1);
            if index < cfg.samples {
                self.check_interrupt(out, index)?;
            }
        }
        bar.finish_and_clear();
        Ok(ckpt.candidates)
    }

    fn train_candidate<B: AutodiffBackend>(
        &self,
        index: usize,
        splits: &Splits,
        before: usize,
        hidden: bool,
        device: &B::Device,
    ) -> Result<CandidateRecord> {
        let cfg = &self.config;
        let t0 = Instant::now();
        let genotype = self.candidate(&splits.task, index);
        let spec = ModelSpec::new(Arch::CellNet, splits.classes)
            .with_genotype(genotype.clone())
            .with_skeleton(self.space.skeleton());
        let init = derive_seed(cfg.seed, &[TAG_INIT, index as u64]);
        let mut model = seeded::<B, _>(device, init, || ZooModel::<B>::new(&spec, device))?;
        let mut optim = AdamConfig::new()
            .with_epsilon(ADAM_EPSILON)
            .init::<B, ZooModel<B>>();
        let order_seed = derive_seed(cfg.seed, &[TAG_TRAIN, index as u64]);
        let mut train_loss = f64::NAN;
        for epoch in 1..=cfg.epochs {
            let order = epoch_order(splits.train.len(), order_seed, epoch);
            let prefix = format!("candidate {index} epoch {epoch}/{}", cfg.epochs);
            let bar = progress_bar(splits.train.len(), "images", prefix, hidden);
            let during = format!("candidate {index}, epoch {epoch}");
            let (m, loss) = train_epoch(
                model,
                &mut optim,
                cfg.lr,
                &splits.train,
                &order,
                cfg.batch_size,
                splits.classes,
                &during,
                &bar,
                device,
                |m: &ZooModel<B>, x| m.forward(x),
            )?;
            bar.finish_and_clear();
            model = m;
            train_loss = loss;
        }
        let bar = progress_bar(
            splits.val.len(),
            "images",
            format!("candidate {index} val"),
            hidden,
        );
        let val = evaluate(
            &model.valid(),
            &splits.val,
            splits.classes,
            Split::Val,
            cfg.eval_batch_size,
            BnMode::Batch,
            device,
            Tally::default(),
            &bar,
        )?;
        bar.finish_and_clear();
        Ok(CandidateRecord {
            index,
            genotype,
            train_loss,
            val_accuracy: val.accuracy,
            val_loss: val.loss,
            seconds: t0.elapsed().as_secs_f64(),
            candidate_epochs: before + cfg.epochs,
        })
    }

    /// Runs (or resumes) the whole random search in `out`: the candidates, then the best on
    /// val (the first on ties) retrained from scratch and tested once. Files as for
    /// [`crate::Fuse::run`].
    pub fn run<B: AutodiffBackend, D: Dataset<TaskItem> + ?Sized>(
        &self,
        data: SearchData<'_>,
        test: &D,
        out: &Path,
        device: &B::Device,
    ) -> Result<SearchResult> {
        let records = self.search::<B>(data, out, device)?;
        let result_path = out.join(RESULT_FILE);
        if let Some(done) = read_json::<SearchResult>(&result_path)? {
            tracing::info!(dir = %out.display(), "random search already finished");
            return Ok(done);
        }
        self.check_interrupt(out, records.len())?;
        let accuracies: Vec<f64> = records.iter().map(|r| r.val_accuracy).collect();
        let best = records
            .get(crate::fuse::argmax_first(&accuracies))
            .ok_or_else(|| SearchError::config("samples", "must be at least 1"))?;
        let fin = retrain_and_test::<B, D>(
            &cell_spec(&best.genotype, self.space.skeleton(), data.num_classes),
            data,
            test,
            &self.config.final_config(),
            Some(&out.join(WEIGHTS_FILE)),
            device,
        )?;
        let result = SearchResult {
            algorithm: Algorithm::Random,
            genotype: best.genotype.clone(),
            params: fin.params,
            val_accuracy: best.val_accuracy,
            test_accuracy: fin.test.accuracy,
            balanced_accuracy: fin.test.balanced_accuracy,
            argmax_accuracy: fin.test.argmax_accuracy,
            test_loss: fin.test.loss,
            test_samples: fin.test.samples,
            search_seconds: records.iter().map(|r| r.seconds).sum(),
            final_seconds: fin.seconds,
            candidate_epochs: records.last().map_or(0, |r| r.candidate_epochs),
            final_epochs: self.config.final_epochs,
            final_train_samples: fin.train_samples,
            seed: self.config.seed,
            space: self.space.clone(),
        };
        write_json(&result_path, &result)?;
        Ok(result)
    }

    /// [`run`](Self::run) on a task's splits.
    pub fn run_task<B: AutodiffBackend>(
        &self,
        data: &TaskData,
        out: &Path,
        device: &B::Device,
    ) -> Result<SearchResult> {
        self.run::<B, TaskSplit>(SearchData::from_task(data), &data.test, out, device)
    }

    fn check_interrupt(&self, out: &Path, completed: usize) -> Result<()> {
        match &self.interrupt {
            Some(flag) if flag.load(Ordering::SeqCst) => Err(SearchError::Interrupted {
                dir: out.to_path_buf(),
                completed,
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_budget_matches_fuse() {
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
    }
}
