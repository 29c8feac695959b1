//! [`fine_tune`]: the training of the transfer measurement. A network (the body of given
//! weights under a fresh head, or the seeded initialisation itself) trains a fixed budget
//! on a task's train split and is tested once with its last weights: no validation, no model
//! selection, no checkpoint, so that a fine-tuned network and its control differ in their
//! start only.

use burn::module::AutodiffModule;
use burn::optim::AdamConfig;
use burn::tensor::backend::AutodiffBackend;
use tanas_data::{Split, TaskData};
use tanas_zoo::{ModelSpec, ZooModel};

use crate::config::{ADAM_EPSILON, TrainConfig};
use crate::error::{Result, TrainError};
use crate::eval::{Eval, Tally, evaluate};
use crate::train::{check_inputs, seeded, train_epoch};

/// Trains `spec` on `data`'s train split with `cfg` (Adam, `cfg.epoch_budget` epochs in
/// `cfg`'s data order; its `init` weights, if any, are loaded under the seeded head exactly
/// as [`train`](crate::train()) does) and returns the evaluation of the last weights on
/// `data`'s test split. Deterministic like [`train`](crate::train()): the same inputs give
/// the same bits.
pub fn fine_tune<B: AutodiffBackend>(
    spec: &ModelSpec,
    data: &TaskData,
    cfg: &TrainConfig,
    device: &B::Device,
) -> Result<Eval> {
    check_inputs(spec, data, cfg, &[Split::Train, Split::Test])?;
    let mut model = seeded::<B, _>(device, cfg.seed, || ZooModel::<B>::new(spec, device))?;
    if let Some(init) = &cfg.init {
        model = tanas_zoo::load_pytorch_body(model, init, spec.arch.head())?;
    }
    let mut optim = AdamConfig::new().with_epsilon(ADAM_EPSILON).init();
    for epoch in 1..=cfg.epoch_budget(data.train.len()) {
        model = train_epoch(model, &mut optim, &data.train, cfg, epoch, device, true)?.0;
    }
    let test = evaluate(
        &model.valid(),
        &data.test,
        cfg.eval_batch_size,
        Tally::default(),
        device,
    )?;
    if !test.loss.is_finite() {
        return Err(TrainError::NonFiniteEval {
            epoch: cfg.epoch_budget(data.train.len()),
            split: Split::Test,
        });
    }
    Ok(test)
}
