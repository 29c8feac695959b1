//! The training loop ([`train`]): Adam on the train split, model selection and early stop
//! on the val split, one test evaluation at the end, a checkpoint after every epoch.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{Adam, AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use tanas_core::SettingsMismatch;
use tanas_data::{Split, TaskBatch, TaskData, TaskSplit};
use tanas_zoo::{ModelSpec, ZooModel, save_pytorch};

use crate::checkpoint::{
    Checkpoint, CheckpointState, read_json, remove_if_exists, write_json_atomic,
};
use crate::config::{ADAM_EPSILON, TrainConfig};
use crate::error::{Result, TrainError};
use crate::eval::{Tally, batch_of, correct, cross_entropy, evaluate_with_progress};
use crate::metrics::{EpochMetrics, FORMAT, RunInfo, StopReason, TrainMetrics, weights_hash};

/// The selected weights, PyTorch names and layouts.
pub const WEIGHTS_FILE: &str = "weights.safetensors";
/// The run's metrics ([`TrainMetrics`]); its presence marks a finished run.
pub const METRICS_FILE: &str = "metrics.json";
/// The checkpoint directory.
pub const CHECKPOINT_DIR: &str = "checkpoint";

/// The optimiser: burn's Adam with [`ADAM_EPSILON`].
pub(crate) type Optim<B> = OptimizerAdaptor<Adam, ZooModel<B>, B>;
type OptimRecord<B> = <Optim<B> as Optimizer<ZooModel<B>, B>>::Record;
type ModelRecord<B> = <ZooModel<B> as burn::module::Module<B>>::Record;

/// How [`train`] got its outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Trained from scratch.
    Trained,
    /// Went on from the checkpoint written after `after_epoch`.
    Resumed {
        /// The last epoch that had been finished before this call.
        after_epoch: usize,
    },
    /// The directory already held the finished run; nothing was computed.
    AlreadyFinished,
}

/// The result of [`train`].
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOutcome {
    /// The output directory.
    pub dir: PathBuf,
    /// The selected weights (`DIR/weights.safetensors`).
    pub weights: PathBuf,
    /// Everything `DIR/metrics.json` holds.
    pub metrics: TrainMetrics,
    /// Whether this call trained, resumed or found the run finished.
    pub status: RunStatus,
}

/// Trains the network `spec` on `data` with `cfg`, writing into `out` (see the crate docs
/// for the files, the resume rule and determinism).
///
/// `spec.num_classes` must equal `data.num_labels`; train, val and test must be non-empty.
/// A run that diverges (non-finite loss) returns [`TrainError::NonFinite`] and leaves no
/// `weights.safetensors` / `metrics.json` in `out`.
pub fn train<B: AutodiffBackend>(
    spec: &ModelSpec,
    data: &TaskData,
    cfg: &TrainConfig,
    out: &Path,
    device: &B::Device,
) -> Result<TrainOutcome> {
    check_inputs(spec, data, cfg, &[Split::Train, Split::Val, Split::Test])?;
    let run = RunInfo::new(spec, data);
    let epochs = cfg.epoch_budget(data.train.len());
    // What is stored: the settings of the run, not how it is displayed.
    let stored_cfg = TrainConfig {
        quiet: false,
        ..cfg.clone()
    };
    std::fs::create_dir_all(out).map_err(|e| TrainError::io(out, e))?;
    let metrics_path = out.join(METRICS_FILE);
    let weights_path = out.join(WEIGHTS_FILE);
    for own in [
        out.join(CHECKPOINT_DIR),
        out.join(METRICS_FILE),
        out.join(WEIGHTS_FILE),
    ] {
        tanas_core::refuse_symlink(&own).map_err(|e| TrainError::io(&own, e))?;
    }
    let ckpt = Checkpoint::new(out.join(CHECKPOINT_DIR));

    if let Some(done) = read_json::<TrainMetrics>(&metrics_path)? {
        check_resumable(out, cfg, &run, &done.config, &done.run)?;
        let n = done.epochs.len();
        let finished = match done.stop_reason {
            StopReason::TargetReached | StopReason::NoImprovement => n <= epochs,
            StopReason::MaxEpochs => n == epochs,
        };
        // A run of another format (e.g. /1, whose test accuracy was prior-shifted) keeps
        // its training and redoes the test; so does a run whose weights file is not the one
        // it wrote (truncated, replaced).
        // (A run written before weights hashes were recorded has none to compare.)
        let intact = weights_hash(&weights_path)
            .is_some_and(|h| done.weights_hash.is_empty() || h == done.weights_hash);
        if finished && done.format == FORMAT && !intact {
            tracing::warn!(file = %weights_path.display(), "the weights file is not the one this run wrote: redoing the run's final step");
        }
        if finished && done.format == FORMAT && intact {
            tracing::info!(dir = %out.display(), "run already finished");
            return Ok(TrainOutcome {
                dir: out.to_path_buf(),
                weights: weights_path,
                metrics: done,
                status: RunStatus::AlreadyFinished,
            });
        }
        check_epochs(out, n, epochs)?;
        if !ckpt.state_path().is_file() {
            // Training is deterministic: without a checkpoint the run is redone from scratch.
            tracing::warn!(dir = %out.display(), "no checkpoint to extend the finished run from: training from scratch");
        }
        // Extending a finished run (or redoing its final files): they no longer describe it.
        remove_if_exists(&metrics_path)?;
        remove_if_exists(&weights_path)?;
    }

    let hidden = cfg.quiet || !std::io::stderr().is_terminal();
    let mut state = match ckpt.read_state()? {
        Some(state) => {
            check_resumable(out, cfg, &run, &state.config, &state.run)?;
            check_epochs(out, state.epochs.len(), epochs)?;
            ckpt.clean(&[&state.model_file, &state.optim_file, &state.best_file])?;
            Some(state)
        }
        None => None,
    };
    let status = match &state {
        Some(s) => RunStatus::Resumed {
            after_epoch: s.epochs.len(),
        },
        None => RunStatus::Trained,
    };

    // Build (and initialise) the network from the seed; a resumed run then overwrites it.
    let mut model = seeded::<B, _>(device, cfg.seed, || ZooModel::<B>::new(spec, device))?;
    if let (Some(init), None) = (&cfg.init, &state) {
        model = tanas_zoo::load_pytorch_body(model, init, spec.arch.head())?;
    }
    let num_params = model.num_params();
    let mut optim: Optim<B> = AdamConfig::new().with_epsilon(ADAM_EPSILON).init();
    let mut best: Option<ZooModel<B::InnerBackend>> = None;
    if let Some(s) = &state {
        model = model.load_record(ckpt.load::<B, ModelRecord<B>>(&s.model_file, device)?);
        optim = optim.load_record(ckpt.load::<B, OptimRecord<B>>(&s.optim_file, device)?);
        // Its initial values are overwritten; the draws still go through the lock so that
        // they cannot disturb another run's seeded draws.
        let inner = seeded::<B, _>(device, cfg.seed, || {
            ZooModel::<B::InnerBackend>::new(spec, device)
        })?;
        best = Some(inner.load_record(
            ckpt.load::<B::InnerBackend, ModelRecord<B::InnerBackend>>(&s.best_file, device)?,
        ));
        tracing::info!(dir = %out.display(), epoch = s.epochs.len(), "resuming from checkpoint");
    }

    let mut stop = state.as_ref().and_then(|s| early_stop(cfg, s));
    let first = state.as_ref().map_or(0, |s| s.epochs.len()) + 1;
    if stop.is_none() {
        for epoch in first..=epochs {
            let t0 = Instant::now();
            let (trained, train_loss, train_accuracy) =
                train_epoch(model, &mut optim, &data.train, cfg, epoch, device, hidden)?;
            model = trained;
            let train_seconds = t0.elapsed().as_secs_f64();
            let valid = model.valid();
            let bar = progress_bar(data.val.len(), format!("epoch {epoch} val"), hidden);
            let val = evaluate_with_progress(
                &valid,
                &data.val,
                cfg.eval_batch_size,
                Tally::default(),
                device,
                &bar,
            )?;
            bar.finish_and_clear();
            if !val.loss.is_finite() {
                return Err(TrainError::NonFiniteEval {
                    epoch,
                    split: Split::Val,
                });
            }
            let m = EpochMetrics {
                epoch,
                train_loss,
                train_accuracy,
                val_loss: val.loss,
                val_accuracy: val.accuracy,
                seconds: t0.elapsed().as_secs_f64(),
                images_per_second: data.train.len() as f64 / train_seconds.max(1e-9),
            };
            tracing::info!(
                task = %data.spec.id, arch = %spec.arch, epoch, epochs,
                train_loss = m.train_loss, train_accuracy = m.train_accuracy,
                val_loss = m.val_loss, val_accuracy = m.val_accuracy,
                seconds = m.seconds, images_per_second = m.images_per_second,
                "epoch finished"
            );
            let improved = state
                .as_ref()
                .is_none_or(|s| m.val_accuracy > s.best_val_accuracy);
            let stem = |what: &str| format!("{what}-e{epoch:04}");
            let model_file = ckpt.save::<B, _>(&stem("model"), model.clone().into_record())?;
            let optim_file = ckpt.save::<B, _>(&stem("optim"), optim.to_record())?;
            let mut epochs = state.as_ref().map(|s| s.epochs.clone()).unwrap_or_default();
            epochs.push(m.clone());
            let (best_epoch, best_val_accuracy, best_file) = match &state {
                Some(s) if !improved => (s.best_epoch, s.best_val_accuracy, s.best_file.clone()),
                _ => {
                    let file = ckpt
                        .save::<B::InnerBackend, _>(&stem("best"), valid.clone().into_record())?;
                    best = Some(valid);
                    (epoch, m.val_accuracy, file)
                }
            };
            let next = CheckpointState {
                format: FORMAT.to_string(),
                config: stored_cfg.clone(),
                run: run.clone(),
                epochs,
                best_epoch,
                best_val_accuracy,
                model_file,
                optim_file,
                best_file,
            };
            ckpt.write_state(&next)?;
            ckpt.clean(&[&next.model_file, &next.optim_file, &next.best_file])?;
            stop = early_stop(cfg, &next);
            state = Some(next);
            if stop.is_some() {
                break;
            }
        }
    }
    let stop = stop.unwrap_or(StopReason::MaxEpochs);
    let (Some(state), Some(best)) = (state, best) else {
        // Unreachable: epochs >= 1 is validated, so at least one epoch ran or was loaded.
        return Err(TrainError::InvalidConfig {
            field: "epochs",
            problem: "no epoch was trained".into(),
        });
    };

    let bar = progress_bar(data.test.len(), "test".to_string(), hidden);
    let test = evaluate_with_progress(
        &best,
        &data.test,
        cfg.eval_batch_size,
        Tally::default(),
        device,
        &bar,
    )?;
    bar.finish_and_clear();
    if !test.loss.is_finite() {
        return Err(TrainError::NonFiniteEval {
            epoch: state.best_epoch,
            split: Split::Test,
        });
    }
    let metrics = TrainMetrics {
        format: FORMAT.to_string(),
        arch: spec.arch,
        task: data.spec.id.clone(),
        num_labels: data.num_labels,
        num_params,
        seed: cfg.seed,
        config: stored_cfg.clone(),
        run,
        train_seconds: state.epochs.iter().map(|e| e.seconds).sum(),
        epochs: state.epochs,
        best_epoch: state.best_epoch,
        best_val_accuracy: state.best_val_accuracy,
        stop_reason: stop,
        test,
        weights_hash: String::new(),
    };
    save_pytorch(&best, &weights_path)?;
    let metrics = TrainMetrics {
        weights_hash: weights_hash(&weights_path).unwrap_or_default(),
        ..metrics
    };
    if let Err(e) = write_json_atomic(&metrics_path, &metrics) {
        let _ = std::fs::remove_file(&weights_path);
        return Err(e);
    }
    tracing::info!(
        task = %metrics.task, arch = %spec.arch, best_epoch = metrics.best_epoch,
        val_accuracy = metrics.best_val_accuracy, test_accuracy = metrics.test.accuracy,
        stop = %stop, "training finished"
    );
    Ok(TrainOutcome {
        dir: out.to_path_buf(),
        weights: weights_path,
        metrics,
        status,
    })
}

/// Checks a run's inputs before anything is built: `cfg`'s values, the network's outputs
/// against the task's labels, and that each of `splits` has samples.
pub(crate) fn check_inputs(
    spec: &ModelSpec,
    data: &TaskData,
    cfg: &TrainConfig,
    splits: &[Split],
) -> Result<()> {
    cfg.validate()?;
    let task = data.spec.id.clone();
    if spec.num_classes != data.num_labels {
        return Err(TrainError::LabelMismatch {
            task,
            labels: data.num_labels,
            classes: spec.num_classes,
        });
    }
    for &split in splits {
        if data.split(split).is_empty() {
            let fraction = data.spec.val_fraction;
            let hint = match split {
                Split::Val if fraction == 0.0 => {
                    " (val_fraction = 0 leaves nothing for model selection)".to_string()
                }
                Split::Val => format!(
                    " (val_fraction = {fraction} of the task's {} training images rounds to no sample: too few images per label, or too small a val_fraction)",
                    data.train.len()
                ),
                _ => String::new(),
            };
            return Err(TrainError::EmptySplit { task, split, hint });
        }
    }
    Ok(())
}

/// One pass over the train split in the epoch's order; returns the model with the mean
/// loss and accuracy of the epoch's forward passes.
pub(crate) fn train_epoch<B: AutodiffBackend>(
    model: ZooModel<B>,
    optim: &mut Optim<B>,
    split: &TaskSplit,
    cfg: &TrainConfig,
    epoch: usize,
    device: &B::Device,
    hidden: bool,
) -> Result<(ZooModel<B>, f64, f64)> {
    // Any random draw of the backend inside the epoch (none today: the zoo has no dropout)
    // depends on (order seed, epoch) only, so resumed epochs draw the same.
    let seed = cfg.data_order_seed();
    seeded::<B, _>(device, epoch_seed(seed, epoch), || ());
    let order = epoch_order(split.len(), seed, epoch);
    let bar = progress_bar(split.len(), format!("epoch {epoch}/{}", cfg.epochs), hidden);
    let out = fit_epoch(
        model,
        optim,
        cfg.lr,
        &order,
        cfg.batch_size,
        |chunk| Ok(batch_of::<B>(split, chunk, device)),
        |m: &ZooModel<B>, x| m.forward(x),
        |batch| TrainError::NonFinite { epoch, batch },
        &bar,
    )?;
    bar.finish_and_clear();
    Ok(out)
}

/// One training epoch, the one loop every network of tanas is trained with (epsilon-networks
/// here; search candidates, FUSE's candidate sets and final networks in tanas-search): the
/// samples in `order`, mini-batches of `batch_size` built by `batch`, the mean cross-entropy
/// of `forward`'s logits, one optimiser step of `lr` per batch. Returns the module with the
/// epoch's mean loss and accuracy; a batch whose loss is not finite stops the epoch with
/// `non_finite(batch)` (1-based).
#[allow(clippy::too_many_arguments)]
pub fn fit_epoch<B, M, O, E>(
    mut module: M,
    optim: &mut O,
    lr: f64,
    order: &[usize],
    batch_size: usize,
    mut batch: impl FnMut(&[usize]) -> std::result::Result<TaskBatch<B>, E>,
    forward: impl Fn(&M, Tensor<B, 4>) -> Tensor<B, 2>,
    non_finite: impl Fn(usize) -> E,
    bar: &ProgressBar,
) -> std::result::Result<(M, f64, f64), E>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    O: Optimizer<M, B>,
{
    let (mut loss_sum, mut hits, mut seen) = (0.0f64, 0.0f64, 0usize);
    for (b, chunk) in order.chunks(batch_size.max(1)).enumerate() {
        let batch = batch(chunk)?;
        let logits = forward(&module, batch.images);
        let loss = cross_entropy(logits.clone(), batch.labels.clone()).mean();
        let hit = correct(logits.inner(), batch.labels.inner()).float();
        let stats = Tensor::cat(vec![loss.clone().inner(), hit], 0);
        let grads = GradientsParams::from_grads(loss.backward(), &module);
        module = optim.step(lr, module, grads);
        // Read after queueing the step, so that an asynchronous device keeps working.
        let stats: Vec<f64> = stats.into_data().iter::<f64>().collect();
        let (loss, hit) = (stats[0], stats[1]);
        if !loss.is_finite() {
            bar.abandon();
            return Err(non_finite(b + 1));
        }
        loss_sum += loss * chunk.len() as f64;
        hits += hit;
        seen += chunk.len();
        bar.inc(chunk.len() as u64);
        bar.set_message(format!("loss {:.4}", loss_sum / seen as f64));
    }
    let n = seen.max(1) as f64;
    Ok((module, loss_sum / n, hits / n))
}

/// The order of the train samples in `epoch` (1-based): a permutation drawn by ChaCha8
/// seeded with `seed`, on stream `epoch`.
pub fn epoch_order(len: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(epoch as u64);
    let mut order: Vec<usize> = (0..len).collect();
    order.shuffle(&mut rng);
    order
}

/// Serialises seeding the backend and the draws that must follow the seed: backends keep
/// one RNG per process (Flex: a global), so two runs seeding and initialising in parallel
/// threads would otherwise interleave their draws.
static RNG_LOCK: Mutex<()> = Mutex::new(());

/// Seeds the backend and runs `f` (the draws that depend on the seed) while no other caller
/// of this function touches the backend's RNG. Code that draws from the backend RNG in
/// parallel with training runs in the same process should draw through it too.
pub fn seeded<B: Backend, T>(device: &B::Device, seed: u64, f: impl FnOnce() -> T) -> T {
    let _guard = RNG_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    B::seed(device, seed);
    f()
}

/// The backend seed of an epoch (splitmix64 of seed and epoch).
fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    let mut z = seed ^ (epoch as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Why training stops after the last epoch of `state`, if it stops before the epoch
/// budget: the target validation accuracy reached, or `patience` epochs since the best one.
fn early_stop(cfg: &TrainConfig, state: &CheckpointState) -> Option<StopReason> {
    let last = state.epochs.last()?;
    if cfg.target_accuracy.is_some_and(|t| last.val_accuracy >= t) {
        Some(StopReason::TargetReached)
    } else if cfg
        .patience
        .is_some_and(|p| last.epoch >= state.best_epoch + p)
    {
        Some(StopReason::NoImprovement)
    } else {
        None
    }
}

/// Refuses to resume a run made with other settings.
fn check_resumable(
    dir: &Path,
    cfg: &TrainConfig,
    run: &RunInfo,
    stored_cfg: &TrainConfig,
    stored_run: &RunInfo,
) -> Result<()> {
    let mismatch = cfg
        .resume_mismatch(stored_cfg)
        .or_else(|| run.mismatch(stored_run));
    match mismatch {
        Some((field, stored, requested)) => Err(TrainError::ConfigMismatch(SettingsMismatch {
            what: "run",
            dir: dir.to_path_buf(),
            field: field.to_string(),
            stored,
            requested,
        })),
        None => Ok(()),
    }
}

/// A run cannot be shortened: its later epochs are already in the checkpoint.
fn check_epochs(dir: &Path, trained: usize, requested: usize) -> Result<()> {
    if trained > requested {
        return Err(TrainError::ConfigMismatch(SettingsMismatch {
            what: "run",
            dir: dir.to_path_buf(),
            field: "epochs".into(),
            stored: format!("{trained} (already trained)"),
            requested: requested.to_string(),
        }));
    }
    Ok(())
}

/// The layout of the progress bars (positions count images).
const BAR_TEMPLATE: &str =
    "{prefix} [{bar:30}] {pos}/{len} images, {per_sec}, {msg} ({elapsed}, eta {eta})";

/// A progress bar over `len` images, hidden when `hidden`.
pub(crate) fn progress_bar(len: usize, prefix: String, hidden: bool) -> ProgressBar {
    if hidden {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(BAR_TEMPLATE)
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_prefix(prefix);
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_order_is_a_seeded_permutation_per_epoch() {
        let a = epoch_order(100, 7, 1);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        assert_eq!(a, epoch_order(100, 7, 1));
        assert_ne!(a, epoch_order(100, 7, 2));
        assert_ne!(a, epoch_order(100, 8, 1));
        assert_ne!(epoch_seed(0, 1), epoch_seed(0, 2));
    }

    #[test]
    fn bar_template_parses() {
        assert!(ProgressStyle::with_template(BAR_TEMPLATE).is_ok());
    }
}
