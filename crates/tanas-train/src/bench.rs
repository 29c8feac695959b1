//! Training throughput on synthetic data ([`throughput`]), for `cargo xtask bench train`.

use std::time::Instant;

use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::backend::AutodiffBackend;
use tanas_data::batch::{INPUT_CHANNELS, INPUT_SIDE};
use tanas_zoo::{ModelSpec, ZooModel};

use crate::config::ADAM_EPSILON;
use crate::error::{Result, TrainError};
use crate::eval::cross_entropy;
use crate::train::seeded;

/// Untimed steps before the measurement (allocator, kernel caches, autotuning).
pub const WARMUP_STEPS: usize = 2;

/// Images per second of training steps (forward, mean cross-entropy, backward, Adam with
/// lr 1e-3) of a fresh `spec` network on one fixed synthetic batch of `batch_size` uniform
/// images: [`WARMUP_STEPS`] untimed steps, then `steps` timed ones, ending with a device
/// sync. Batch assembly is not included (it is in the per-epoch images/s of [`crate::train()`]).
pub fn throughput<B: AutodiffBackend>(
    spec: &ModelSpec,
    batch_size: usize,
    steps: usize,
    device: &B::Device,
) -> Result<f64> {
    if batch_size == 0 || steps == 0 {
        return Err(TrainError::InvalidConfig {
            field: "batch_size/steps",
            problem: "must be at least 1".into(),
        });
    }
    let (mut model, images) = seeded::<B, _>(device, 0, || {
        let model = ZooModel::<B>::new(spec, device)?;
        let shape = [batch_size, INPUT_CHANNELS, INPUT_SIDE, INPUT_SIDE];
        Ok::<_, TrainError>((
            model,
            Tensor::<B, 4>::random(shape, Distribution::Uniform(0.0, 1.0), device),
        ))
    })?;
    let mut optim = AdamConfig::new()
        .with_epsilon(ADAM_EPSILON)
        .init::<B, ZooModel<B>>();
    let labels: Vec<i64> = (0..batch_size)
        .map(|i| (i % spec.num_classes) as i64)
        .collect();
    let labels = Tensor::<B, 1, Int>::from_data(TensorData::new(labels, [batch_size]), device);
    let mut step = |model: ZooModel<B>| -> (ZooModel<B>, Tensor<B::InnerBackend, 1>) {
        let loss = cross_entropy(model.forward(images.clone()), labels.clone()).mean();
        let value = loss.clone().inner();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        (optim.step(1e-3, model, grads), value)
    };
    for _ in 0..WARMUP_STEPS {
        let (m, loss) = step(model);
        model = m;
        let _ = loss.into_data();
    }
    let t0 = Instant::now();
    let mut last = None;
    for _ in 0..steps {
        let (m, loss) = step(model);
        model = m;
        last = Some(loss);
    }
    if let Some(loss) = last {
        let _ = loss.into_data();
    }
    let _ = B::sync(device);
    Ok((batch_size * steps) as f64 / t0.elapsed().as_secs_f64().max(1e-9))
}
