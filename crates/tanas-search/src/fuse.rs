//! FUSE, the fusion search of paper 000 (appendix B, eq. (7)-(10)) and paper 003 (Algorithm 2,
//! section IV-B), with resumable stages.
//!
//! One stage ([`Fuse::stage`]): candidates `C` (the incumbent and fresh samples), each a cell
//! network, joined into the relaxed output `c̄(X) = Σ_c softmax(α)_c · c(X)` (eq. (7), `c(X)`
//! the candidate's logits), α initialised equal (1/|C|, as in Algorithm 2). Rounds alternate
//! until the largest change of `softmax(α)` over a round is below the tolerance, or the round
//! limit:
//! 1. α frozen (a constant, no graph): all candidates' weights are trained jointly on the
//!    relaxed output's cross-entropy on the **train** split for `epochs_w` epochs (eq. (8));
//! 2. weights frozen: each candidate's logits on the **val** split are computed once with
//!    BatchNorm in inference mode (no graph through the networks, no running statistic
//!    touched), then α is trained on the relaxed cross-entropy of those logits for
//!    `epochs_alpha` epochs (eq. (9)).
//!
//! The winner is `argmax α` (eq. (10); the first on ties, so the incumbent keeps its place on
//! a tie) and becomes the incumbent of the next stage. [`Fuse`] is the [`Searcher`] of this
//! strategy: it runs `stages` stages and checkpoints after each, then retrains the last
//! incumbent from scratch and tests it once ([`crate::retrain_and_test`]).

use std::time::Instant;

use burn::module::{AutodiffModule, Module, Param};
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::activation::softmax;
use burn::tensor::backend::AutodiffBackend;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tanas_data::Split;
use tanas_train::eval::cross_entropy;
use tanas_train::{ADAM_EPSILON, epoch_order, seeded};
use tanas_zoo::cell::Genotype;
use tanas_zoo::{Arch, ModelSpec, ZooError, ZooModel};

use crate::algorithm::Algorithm;
use crate::config::FuseConfig;
use crate::data::{SearchData, Splits};
use crate::driver::{SearchStep, SearchStrategy, Searcher, argmax_first};
use crate::error::{Result, SearchError};
use crate::fit::{
    BnMode, Pass, all_logits, derive_seed, draw_seed, labels_of, progress_bar, score, train_epoch,
};
use crate::space::SearchSpace;

/// Format tag of a FUSE checkpoint.
pub const FUSE_CHECKPOINT_FORMAT: &str = "tanas-fuse-checkpoint/2";

/// How often a stage redraws a sample that repeats a candidate it already has, before it
/// accepts the repeat (a space may hold fewer distinct genotypes than candidates).
const MAX_REDRAWS: usize = 64;

/// Seed-path tags (see `derive_seed`).
const TAG_SAMPLE: u64 = 1;
const TAG_INIT: u64 = 2;
const TAG_TRAIN: u64 = 3;
const TAG_ALPHA: u64 = 4;

/// One round of a stage: the weight phase, then the alpha phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundRecord {
    /// Round number (1-based).
    pub round: usize,
    /// Mean relaxed-output training loss of the round's last weight epoch.
    pub train_loss: f64,
    /// Each candidate's own val accuracy after the weight phase.
    pub val_accuracy: Vec<f64>,
    /// Each candidate's own val cross-entropy after the weight phase.
    pub val_loss: Vec<f64>,
    /// Alpha after the alpha phase.
    pub alpha: Vec<f64>,
    /// `softmax(alpha)` after the alpha phase: the relaxation weights (a distribution).
    pub weights: Vec<f64>,
    /// Val accuracy of the relaxed output with these weights.
    pub relaxed_val_accuracy: f64,
    /// Largest change of `softmax(alpha)` over the round.
    pub max_change: f64,
}

/// One stage of FUSE: a line of the trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageRecord {
    /// Stage number (1-based).
    pub stage: usize,
    /// Whether candidate 0 is the incumbent carried over from the previous stage.
    pub incumbent: bool,
    /// The candidates' genotypes.
    pub candidates: Vec<Genotype>,
    /// Alpha at the end of the stage.
    pub alpha: Vec<f64>,
    /// `softmax(alpha)` at the end of the stage.
    pub weights: Vec<f64>,
    /// Each candidate's own val accuracy after the last round's weight phase.
    pub val_accuracy: Vec<f64>,
    /// Index of `argmax alpha` (first on ties): the next incumbent.
    pub winner: usize,
    /// Whether alpha converged (else the round limit ended the stage).
    pub converged: bool,
    /// The rounds.
    pub rounds: Vec<RoundRecord>,
    /// Wall-clock seconds of the stage.
    pub seconds: f64,
    /// Candidate-epochs of the search so far, this stage included.
    pub candidate_epochs: usize,
}

impl StageRecord {
    /// The winning genotype.
    pub fn winner_genotype(&self) -> Option<&Genotype> {
        self.candidates.get(self.winner)
    }
}

/// The candidates of a stage, trained jointly: one module so that one optimiser updates
/// them all. Built one by one (never cloned), so their parameter ids and BatchNorm
/// statistics are their own.
#[derive(Module, Debug)]
struct Candidates<B: Backend> {
    nets: Vec<ZooModel<B>>,
}

/// FUSE's architecture weights, in their own module (and optimiser).
#[derive(Module, Debug)]
struct Alpha<B: Backend> {
    logits: Param<Tensor<B, 1>>,
}

/// The relaxed output `Σ_c w_c · logits_c` of `[N, K]` logits and weights `w` `[C]`.
fn relax<B: Backend>(logits: Tensor<B, 3>, w: Tensor<B, 1>) -> Tensor<B, 2> {
    let [c, n, k] = logits.dims();
    (logits * w.reshape([c, 1, 1])).sum_dim(0).reshape([n, k])
}

/// A tensor's values as f64.
fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
    t.into_data().iter::<f64>().collect()
}

/// The FUSE search over a space, run by the [`Searcher`] (see the module docs).
pub type Fuse = Searcher<FuseStrategy>;

impl SearchStep for StageRecord {
    fn seconds(&self) -> f64 {
        self.seconds
    }

    fn candidate_epochs(&self) -> usize {
        self.candidate_epochs
    }
}

/// FUSE as a [`SearchStrategy`]: one step is one stage.
#[derive(Debug, Clone)]
pub struct FuseStrategy {
    config: FuseConfig,
    space: SearchSpace,
}

impl SearchStrategy for FuseStrategy {
    type Config = FuseConfig;
    type Step = StageRecord;
    const ALGORITHM: Algorithm = Algorithm::Fuse;
    const FORMAT: &'static str = FUSE_CHECKPOINT_FORMAT;
    const NAME: &'static str = "FUSE";
    const STEPS: &'static str = "stages";

    fn new(config: FuseConfig, space: SearchSpace) -> Result<Self> {
        config.validate()?;
        Ok(FuseStrategy { config, space })
    }

    fn config(&self) -> &FuseConfig {
        &self.config
    }

    fn space(&self) -> &SearchSpace {
        &self.space
    }

    fn steps(&self) -> usize {
        self.config.stages
    }

    /// The next stage: its incumbent is the last stage's winner (or `start`), the rest of
    /// its candidates fresh samples.
    fn step<B: AutodiffBackend>(
        &self,
        done: &[StageRecord],
        start: Option<&Genotype>,
        splits: &Splits,
        hidden: bool,
        device: &B::Device,
    ) -> Result<StageRecord> {
        let stage = done.len() + 1;
        let last = done.last();
        let incumbent = last.map_or(start, StageRecord::winner_genotype);
        let candidates = self.stage_candidates(&splits.task, stage, incumbent);
        let epochs_before = last.map_or(0, |s| s.candidate_epochs);
        let record = self.run_stage::<B>(
            &candidates,
            incumbent.is_some(),
            splits,
            stage,
            epochs_before,
            hidden,
            device,
        )?;
        tracing::info!(
            stage, winner = record.winner, converged = record.converged,
            weights = ?record.weights, val_accuracy = ?record.val_accuracy,
            "FUSE stage finished"
        );
        Ok(record)
    }

    /// The last stage's winner.
    fn best(stages: &[StageRecord]) -> Option<(Genotype, f64)> {
        let last = stages.last()?;
        let genotype = last.winner_genotype()?.clone();
        Some((
            genotype,
            last.val_accuracy.get(last.winner).copied().unwrap_or(0.0),
        ))
    }
}

impl FuseStrategy {
    /// The candidates of `stage` (1-based): the incumbent (if any) then fresh samples up to
    /// `candidates`, drawn with ChaCha8 seeded from (seed, task, stage), so a resumed search
    /// draws the same and another task other candidates. A sample equal to a candidate already
    /// chosen is redrawn (up to 64 times; a space with fewer genotypes than candidates then
    /// repeats one).
    pub fn stage_candidates(
        &self,
        task: &str,
        stage: usize,
        incumbent: Option<&Genotype>,
    ) -> Vec<Genotype> {
        let seed = draw_seed(self.config.common.seed, TAG_SAMPLE, task);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stage as u64);
        let mut chosen: Vec<Genotype> = incumbent.cloned().into_iter().collect();
        while chosen.len() < self.config.candidates {
            let mut g = self.space.sample(&mut rng);
            for _ in 0..MAX_REDRAWS {
                if !chosen.contains(&g) {
                    break;
                }
                g = self.space.sample(&mut rng);
            }
            chosen.push(g);
        }
        chosen
    }

    /// Runs one FUSE call (one stage) on the given candidates and returns its record
    /// (`candidate_epochs` counts this stage only). Writes nothing. `stage` seeds the
    /// candidates' weights and the epoch orders; `incumbent` is recorded only.
    pub fn stage<B: AutodiffBackend>(
        &self,
        candidates: &[Genotype],
        incumbent: bool,
        data: SearchData<'_>,
        stage: usize,
        device: &B::Device,
    ) -> Result<StageRecord> {
        let splits = Splits::new(
            &data,
            self.config.common.train_limit,
            self.config.common.val_limit,
        )?;
        let hidden = crate::fit::bars_hidden(self.config.common.quiet);
        self.run_stage::<B>(candidates, incumbent, &splits, stage, 0, hidden, device)
    }

    #[allow(clippy::too_many_arguments)]
    fn run_stage<B: AutodiffBackend>(
        &self,
        genotypes: &[Genotype],
        incumbent: bool,
        splits: &Splits,
        stage: usize,
        epochs_before: usize,
        hidden: bool,
        device: &B::Device,
    ) -> Result<StageRecord> {
        let cfg = &self.config;
        let t0 = Instant::now();
        let c = genotypes.len();
        if c == 0 {
            return Err(SearchError::config(
                "candidates",
                "a stage needs at least 1",
            ));
        }
        let classes = splits.classes;
        let nets = genotypes
            .iter()
            .enumerate()
            .map(|(i, g)| {
                let spec = ModelSpec::new(Arch::CellNet, classes)
                    .with_genotype(g.clone())
                    .with_skeleton(self.space.skeleton());
                let seed = derive_seed(cfg.common.seed, &[TAG_INIT, stage as u64, i as u64]);
                seeded::<B, _>(device, seed, || ZooModel::<B>::new(&spec, device))
            })
            .collect::<Result<Vec<_>, ZooError>>()?;
        let mut cands = Candidates { nets };
        let mut alpha = Alpha {
            logits: Param::from_tensor(Tensor::full([c], 1.0 / c as f64, device)),
        };
        let mut opt_w = AdamConfig::new()
            .with_epsilon(ADAM_EPSILON)
            .init::<B, Candidates<B>>();
        let mut opt_a = AdamConfig::new()
            .with_epsilon(ADAM_EPSILON)
            .init::<B, Alpha<B>>();
        let val_labels = labels_of::<B::InnerBackend, _>(&splits.val, device);
        let (n_train, n_val) = (splits.train.len(), splits.val.len());
        let train_seed = derive_seed(cfg.common.seed, &[TAG_TRAIN, stage as u64]);
        let alpha_seed = derive_seed(cfg.common.seed, &[TAG_ALPHA, stage as u64]);

        let mut prev = values(softmax(alpha.logits.val().inner(), 0));
        let mut rounds: Vec<RoundRecord> = Vec::new();
        let (mut w_epoch, mut a_epoch, mut converged) = (0usize, 0usize, false);
        let mut candidate_epochs = epochs_before;
        for round in 1..=cfg.max_rounds {
            // (i) alpha frozen: a constant of the autodiff backend, outside the graph.
            let w = Tensor::<B, 1>::from_inner(softmax(alpha.logits.val().inner(), 0));
            let mut train_loss = f64::NAN;
            for _ in 0..cfg.epochs_w {
                w_epoch += 1;
                let order = epoch_order(n_train, train_seed, w_epoch);
                let prefix = format!("stage {stage} round {round} weights");
                let bar = progress_bar(n_train, "images", prefix, hidden);
                let during = format!("stage {stage}, round {round}, weight epoch {w_epoch}");
                let (trained, loss) = train_epoch(
                    cands,
                    &mut opt_w,
                    cfg.common.lr,
                    &splits.train,
                    &order,
                    cfg.common.batch_size,
                    classes,
                    &during,
                    &bar,
                    device,
                    |m: &Candidates<B>, x| {
                        let logits = m.nets.iter().map(|n| n.forward(x.clone())).collect();
                        relax(Tensor::stack(logits, 0), w.clone())
                    },
                )?;
                bar.finish_and_clear();
                cands = trained;
                train_loss = loss;
                candidate_epochs += c;
            }

            // (ii) weights frozen: the val logits of every candidate, once, no graph.
            let bar = progress_bar(
                n_val,
                "images",
                format!("stage {stage} round {round} val"),
                hidden,
            );
            let pass = Pass {
                ds: &splits.val,
                classes,
                split: Split::Val,
                batch_size: cfg.common.eval_batch_size,
                mode: BnMode::Batch,
                device,
            };
            let logits = all_logits(&cands.valid().nets, &pass, &bar)?;
            bar.finish_and_clear();
            let [_, _, k] = logits.dims();
            let evals: Vec<_> = (0..c)
                .map(|i| {
                    let li = logits.clone().narrow(0, i, 1).reshape([n_val, k]);
                    score(li, val_labels.clone())
                })
                .collect();
            for _ in 0..cfg.epochs_alpha {
                a_epoch += 1;
                let order = epoch_order(n_val, alpha_seed, a_epoch);
                for chunk in order.chunks(cfg.common.batch_size) {
                    let idx: Vec<i64> = chunk.iter().map(|&i| i as i64).collect();
                    let idx = Tensor::<B::InnerBackend, 1, Int>::from_data(
                        TensorData::new(idx, [chunk.len()]),
                        device,
                    );
                    let l = Tensor::<B, 3>::from_inner(logits.clone().select(1, idx.clone()));
                    let y = Tensor::<B, 1, Int>::from_inner(val_labels.clone().select(0, idx));
                    let loss = cross_entropy(relax(l, softmax(alpha.logits.val(), 0)), y).mean();
                    let value: f64 = loss.clone().into_scalar().elem();
                    if !value.is_finite() {
                        return Err(SearchError::NonFinite {
                            during: format!("stage {stage}, round {round}, alpha epoch {a_epoch}"),
                        });
                    }
                    let grads = GradientsParams::from_grads(loss.backward(), &alpha);
                    alpha = opt_a.step(cfg.lr_alpha, alpha, grads);
                }
            }
            let a = alpha.logits.val().inner();
            let weights = values(softmax(a.clone(), 0));
            let relaxed = score(relax(logits, softmax(a.clone(), 0)), val_labels.clone());
            let max_change = weights
                .iter()
                .zip(&prev)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f64, f64::max);
            let record = RoundRecord {
                round,
                train_loss,
                val_accuracy: evals.iter().map(|e| e.accuracy).collect(),
                val_loss: evals.iter().map(|e| e.loss).collect(),
                alpha: values(a),
                weights: weights.clone(),
                relaxed_val_accuracy: relaxed.accuracy,
                max_change,
            };
            tracing::info!(
                stage, round, train_loss, max_change,
                weights = ?record.weights, val_accuracy = ?record.val_accuracy,
                "FUSE round finished"
            );
            rounds.push(record);
            prev = weights;
            if max_change < cfg.alpha_tolerance {
                converged = true;
                break;
            }
        }
        // max_rounds >= 1 is validated, so there is a last round.
        let last = rounds
            .last()
            .cloned()
            .ok_or_else(|| SearchError::config("max_rounds", "must be at least 1"))?;
        let winner = argmax_first(&last.alpha);
        Ok(StageRecord {
            stage,
            incumbent,
            candidates: genotypes.to_vec(),
            alpha: last.alpha,
            weights: last.weights,
            val_accuracy: last.val_accuracy,
            winner,
            converged,
            rounds,
            seconds: t0.elapsed().as_secs_f64(),
            candidate_epochs,
        })
    }
}
