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
//! a tie) and becomes the incumbent of the next stage. [`Fuse::search`] runs `stages` stages
//! and checkpoints after each; [`Fuse::run`] then retrains the incumbent from scratch and
//! tests it once ([`crate::retrain_and_test`]).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::data::dataset::Dataset;
use burn::module::{AutodiffModule, Module, Param};
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::activation::softmax;
use burn::tensor::backend::AutodiffBackend;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tanas_data::{Split, TaskData, TaskItem, TaskSplit};
use tanas_train::eval::cross_entropy;
use tanas_train::{ADAM_EPSILON, epoch_order, seeded};
use tanas_zoo::cell::Genotype;
use tanas_zoo::{Arch, ModelSpec, ZooError, ZooModel};

use crate::data::{DataIdentity, SearchData, Splits};
use crate::error::{Result, SearchError};
use crate::fit::{
    BnMode, all_logits, bars_hidden, derive_seed, draw_seed, labels_of, progress_bar, score,
    train_epoch,
};
use crate::result::{Algorithm, FinalConfig, SearchResult, cell_spec, retrain_and_test};
use crate::space::SearchSpace;
use crate::store::{
    CHECKPOINT_FILE, RESULT_FILE, TRACE_FILE, WEIGHTS_FILE, check_same, read_json, write_json,
    write_trace,
};

/// Format tag of a FUSE checkpoint.
pub const FUSE_CHECKPOINT_FORMAT: &str = "tanas-fuse-checkpoint/1";

/// How often a stage redraws a sample that repeats a candidate it already has, before it
/// accepts the repeat (a space may hold fewer distinct genotypes than candidates).
const MAX_REDRAWS: usize = 64;

/// Seed-path tags (see `derive_seed`).
const TAG_SAMPLE: u64 = 1;
const TAG_INIT: u64 = 2;
const TAG_TRAIN: u64 = 3;
const TAG_ALPHA: u64 = 4;
const TAG_FINAL: u64 = 5;

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
        let at_least_1 = [
            ("candidates", self.candidates),
            ("stages", self.stages),
            ("epochs_w", self.epochs_w),
            ("epochs_alpha", self.epochs_alpha),
            ("max_rounds", self.max_rounds),
            ("batch_size", self.batch_size),
            ("eval_batch_size", self.eval_batch_size),
            ("final_epochs", self.final_epochs),
        ];
        for (field, v) in at_least_1 {
            if v == 0 {
                return Err(SearchError::config(field, "must be at least 1"));
            }
        }
        for (field, v) in [("lr_w", self.lr_w), ("lr_alpha", self.lr_alpha)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(SearchError::config(
                    field,
                    format!("must be a positive number, got {v}"),
                ));
            }
        }
        if !(self.alpha_tolerance.is_finite() && self.alpha_tolerance >= 0.0) {
            return Err(SearchError::config(
                "alpha_tolerance",
                format!("must be a number >= 0, got {}", self.alpha_tolerance),
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

    /// The largest search budget in candidate-epochs: every stage runs all its rounds,
    /// `stages * max_rounds * candidates * epochs_w`.
    pub fn max_candidate_epochs(&self) -> usize {
        self.stages * self.max_rounds * self.candidates * self.epochs_w
    }

    /// The final step's settings.
    pub fn final_config(&self) -> FinalConfig {
        FinalConfig {
            epochs: self.final_epochs,
            with_val: self.final_with_val,
            lr: self.lr_w,
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

/// What the search phase found (before the final step).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchOutcome {
    /// The incumbent after the last stage.
    pub genotype: Genotype,
    /// Its own val accuracy in the last stage.
    pub val_accuracy: f64,
    /// Candidate-epochs spent.
    pub candidate_epochs: usize,
    /// Wall-clock seconds of the stages (summed over resumed runs).
    pub search_seconds: f64,
    /// Every stage, in order (the trace).
    pub stages: Vec<StageRecord>,
}

/// The checkpoint (`checkpoint.json`): what identifies the search and the completed stages.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FuseCheckpoint {
    format: String,
    config: FuseConfig,
    space: SearchSpace,
    data: DataIdentity,
    /// The first stage's incumbent ([`Fuse::with_warm_start`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    warm_start: Option<Genotype>,
    stages: Vec<StageRecord>,
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

/// The FUSE search over a space (see the module docs).
#[derive(Debug, Clone)]
pub struct Fuse {
    config: FuseConfig,
    space: SearchSpace,
    warm_start: Option<Genotype>,
    interrupt: Option<Arc<AtomicBool>>,
}

impl Fuse {
    /// A search with a validated config.
    pub fn new(config: FuseConfig, space: SearchSpace) -> Result<Self> {
        config.validate()?;
        Ok(Fuse {
            config,
            space,
            warm_start: None,
            interrupt: None,
        })
    }

    /// Starts the first stage with `incumbent` as candidate 0 (Algorithm 2's `c*`: TA-NAS
    /// starts from the closest task's best cell), instead of drawing every candidate. The
    /// incumbent need not lie in the space; a checkpoint made with another start (or none) is
    /// not resumed ([`SearchError::ConfigMismatch`] on `warm_start`).
    pub fn with_warm_start(mut self, incumbent: Genotype) -> Self {
        self.warm_start = Some(incumbent);
        self
    }

    /// Stops the search after the stage that is running when `flag` becomes true (checked
    /// after each stage's checkpoint and before the final step): the call returns
    /// [`SearchError::Interrupted`] and a later call goes on from there. For Ctrl-C
    /// handlers, and for tests of resume.
    pub fn with_interrupt(mut self, flag: Arc<AtomicBool>) -> Self {
        self.interrupt = Some(flag);
        self
    }

    /// The config.
    pub fn config(&self) -> &FuseConfig {
        &self.config
    }

    /// The space.
    pub fn space(&self) -> &SearchSpace {
        &self.space
    }

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
        let seed = draw_seed(self.config.seed, TAG_SAMPLE, task);
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
        let splits = Splits::new(&data, self.config.train_limit, self.config.val_limit)?;
        self.run_stage::<B>(candidates, incumbent, &splits, stage, 0, device)
    }

    fn run_stage<B: AutodiffBackend>(
        &self,
        genotypes: &[Genotype],
        incumbent: bool,
        splits: &Splits,
        stage: usize,
        epochs_before: usize,
        device: &B::Device,
    ) -> Result<StageRecord> {
        let cfg = &self.config;
        let hidden = bars_hidden(cfg.quiet);
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
                let seed = derive_seed(cfg.seed, &[TAG_INIT, stage as u64, i as u64]);
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
        let train_seed = derive_seed(cfg.seed, &[TAG_TRAIN, stage as u64]);
        let alpha_seed = derive_seed(cfg.seed, &[TAG_ALPHA, stage as u64]);

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
                    cfg.lr_w,
                    &splits.train,
                    &order,
                    cfg.batch_size,
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
            let logits = all_logits(
                &cands.valid().nets,
                &splits.val,
                classes,
                Split::Val,
                cfg.eval_batch_size,
                BnMode::Batch,
                device,
                &bar,
            )?;
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
                for chunk in order.chunks(cfg.batch_size) {
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

    /// Runs (or resumes) the search phase in `out`: the stages, a checkpoint and the trace
    /// after each. Reads only the train and val splits.
    ///
    /// If `out` holds a checkpoint, its config (all but `quiet`), space and data must be the
    /// requested ones ([`SearchError::ConfigMismatch`] names the first difference), and the
    /// search goes on after its last completed stage; a search whose stages are all done
    /// returns at once.
    pub fn search<B: AutodiffBackend>(
        &self,
        data: SearchData<'_>,
        out: &Path,
        device: &B::Device,
    ) -> Result<SearchOutcome> {
        let cfg = &self.config;
        let splits = Splits::new(&data, cfg.train_limit, cfg.val_limit)?;
        std::fs::create_dir_all(out).map_err(|e| SearchError::io(out, e))?;
        let ckpt_path = out.join(CHECKPOINT_FILE);
        let trace_path = out.join(TRACE_FILE);
        let requested = FuseCheckpoint {
            format: FUSE_CHECKPOINT_FORMAT.to_string(),
            config: cfg.clone(),
            space: self.space.clone(),
            data: splits.identity(),
            warm_start: self.warm_start.clone(),
            stages: Vec::new(),
        };
        let mut ckpt = match read_checkpoint::<FuseCheckpoint>(&ckpt_path, FUSE_CHECKPOINT_FORMAT)?
        {
            Some(stored) => {
                check_same(out, "config", &stored.config, &requested.config)?;
                check_same(out, "space", &stored.space, &requested.space)?;
                check_same(out, "data", &stored.data, &requested.data)?;
                check_same(out, "warm_start", &stored.warm_start, &requested.warm_start)?;
                if !stored.stages.is_empty() {
                    tracing::info!(dir = %out.display(), completed = stored.stages.len(), "resuming FUSE");
                }
                stored
            }
            None => requested,
        };
        // The checkpoint is the source of truth: the trace always matches it.
        write_trace(&trace_path, &ckpt.stages)?;

        let done = ckpt.stages.len();
        let hidden = bars_hidden(cfg.quiet);
        let bar = progress_bar(cfg.stages, "stages", "FUSE".into(), hidden);
        bar.set_position(done as u64);
        for stage in done + 1..=cfg.stages {
            let last = ckpt.stages.last();
            let incumbent = match last {
                Some(last) => last.winner_genotype(),
                None => self.warm_start.as_ref(),
            };
            let candidates = self.stage_candidates(&splits.task, stage, incumbent);
            let epochs_before = last.map_or(0, |s| s.candidate_epochs);
            let record = self.run_stage::<B>(
                &candidates,
                incumbent.is_some(),
                &splits,
                stage,
                epochs_before,
                device,
            )?;
            tracing::info!(
                stage, stages = cfg.stages, winner = record.winner, converged = record.converged,
                weights = ?record.weights, val_accuracy = ?record.val_accuracy,
                seconds = record.seconds, candidate_epochs = record.candidate_epochs,
                "FUSE stage finished"
            );
            ckpt.stages.push(record);
            write_json(&ckpt_path, &ckpt)?;
            write_trace(&trace_path, &ckpt.stages)?;
            bar.inc(1);
            if stage < cfg.stages {
                self.check_interrupt(out, stage)?;
            }
        }
        bar.finish_and_clear();
        outcome(ckpt.stages)
    }

    /// Runs (or resumes) the whole search in `out`: the stages ([`search`](Self::search)),
    /// then the incumbent retrained from scratch and tested once
    /// ([`crate::retrain_and_test`]); writes `weights.safetensors` and `result.json`. A
    /// directory whose `result.json` is there returns it as stored.
    ///
    /// `test` is read only by the final evaluation, after everything else is done.
    pub fn run<B: AutodiffBackend, D: Dataset<TaskItem> + ?Sized>(
        &self,
        data: SearchData<'_>,
        test: &D,
        out: &Path,
        device: &B::Device,
    ) -> Result<SearchResult> {
        let outcome = self.search::<B>(data, out, device)?;
        let result_path = out.join(RESULT_FILE);
        if let Some(done) = read_json::<SearchResult>(&result_path)? {
            tracing::info!(dir = %out.display(), "FUSE search already finished");
            return Ok(done);
        }
        self.check_interrupt(out, outcome.stages.len())?;
        let fin = retrain_and_test::<B, D>(
            &cell_spec(&outcome.genotype, self.space.skeleton(), data.num_classes),
            data,
            test,
            &self.config.final_config(),
            Some(&out.join(WEIGHTS_FILE)),
            device,
        )?;
        let result = SearchResult {
            algorithm: Algorithm::Fuse,
            genotype: outcome.genotype,
            params: fin.params,
            val_accuracy: outcome.val_accuracy,
            test_accuracy: fin.test.accuracy,
            balanced_accuracy: fin.test.balanced_accuracy,
            argmax_accuracy: fin.test.argmax_accuracy,
            test_loss: fin.test.loss,
            test_samples: fin.test.samples,
            search_seconds: outcome.search_seconds,
            final_seconds: fin.seconds,
            candidate_epochs: outcome.candidate_epochs,
            final_epochs: self.config.final_epochs,
            final_train_samples: fin.train_samples,
            seed: self.config.seed,
            space: self.space.clone(),
        };
        write_json(&result_path, &result)?;
        Ok(result)
    }

    /// [`run`](Self::run) on a task's splits: train and val for the search, test for the
    /// final evaluation only.
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

/// The search outcome of completed stages.
fn outcome(stages: Vec<StageRecord>) -> Result<SearchOutcome> {
    let last = stages
        .last()
        .ok_or_else(|| SearchError::config("stages", "must be at least 1"))?;
    let genotype = last
        .winner_genotype()
        .cloned()
        .ok_or_else(|| SearchError::config("candidates", "a stage needs at least 1"))?;
    Ok(SearchOutcome {
        genotype,
        val_accuracy: last.val_accuracy.get(last.winner).copied().unwrap_or(0.0),
        candidate_epochs: last.candidate_epochs,
        search_seconds: stages.iter().map(|s| s.seconds).sum(),
        stages,
    })
}

/// Index of the first largest value.
pub(crate) fn argmax_first(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// Reads a checkpoint, first checking its format tag (a directory of another search is a
/// [`SearchError::ConfigMismatch`] on `format`, not a parse error).
pub(crate) fn read_checkpoint<T: serde::de::DeserializeOwned>(
    path: &Path,
    format: &str,
) -> Result<Option<T>> {
    let Some(value) = read_json::<serde_json::Value>(path)? else {
        return Ok(None);
    };
    let stored = value
        .get("format")
        .and_then(|f| f.as_str())
        .unwrap_or("(none)");
    if stored != format {
        return Err(SearchError::ConfigMismatch {
            dir: path.parent().unwrap_or(Path::new(".")).to_path_buf(),
            field: "format".into(),
            stored: stored.to_string(),
            requested: format.to_string(),
        });
    }
    serde_json::from_value(value)
        .map(Some)
        .map_err(|e| SearchError::json(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_the_first_maximum() {
        assert_eq!(argmax_first(&[0.2, 0.5, 0.5]), 1);
        assert_eq!(argmax_first(&[0.5, 0.5]), 0);
    }

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
        let bad = FuseConfig {
            candidates: 0,
            ..Default::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("candidates")
        );
        let bad = FuseConfig {
            lr_alpha: -1.0,
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().to_string().contains("lr_alpha"));
        FuseConfig::default().validate().unwrap();
        let partial: FuseConfig = serde_json::from_str(r#"{"stages": 2}"#).unwrap();
        assert_eq!(partial.stages, 2);
        assert!(serde_json::from_str::<FuseConfig>(r#"{"stage": 2}"#).is_err());
    }
}
