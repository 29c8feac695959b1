//! `tanas bench grads`: one training step's loss and parameter gradients on the chosen
//! device against the CPU backend's, from the same weights (made on the CPU, carried over as
//! a burn record) and the same synthetic batch: what `cargo xtask gpu-smoke` checks training
//! on a GPU with (convolutions, BatchNorm with batch statistics, their gradients).

use anyhow::{Context, Result};
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tanas_data::batch::{INPUT_CHANNELS, INPUT_SIDE};
use tanas_fisher::{relative_l2, squared_distance_and_norm};
use tanas_zoo::{ModelSpec, ZooModel};

use crate::backend::{BackendJob, CpuAutodiff, dispatch};
use crate::device::DeviceArg;

/// The step's loss and every trainable parameter's gradient (PyTorch names, burn layouts).
struct Step {
    loss: f64,
    grads: Vec<(String, Vec<f32>)>,
}

/// One network's comparison.
#[derive(Debug, Serialize)]
pub struct GradsRow {
    /// The device checked.
    pub device: String,
    /// Images in the batch.
    pub batch_size: usize,
    /// Mean cross-entropy on the device and on the CPU.
    pub loss: f64,
    pub cpu_loss: f64,
    /// The relative L2 error `||g - g_cpu|| / ||g_cpu||` of all gradients as one vector.
    pub relative_error: f64,
    /// The largest relative L2 error of one parameter's gradient, and that parameter (a
    /// small gradient that is a sum of large terms of both signs can differ more).
    pub worst_tensor_error: f64,
    pub worst_tensor: String,
    /// Trainable parameter tensors compared.
    pub tensors: usize,
}

/// Runs the step of `spec` on `device` and on the CPU and compares them.
pub fn compare(spec: &ModelSpec, batch_size: usize, device: DeviceArg) -> Result<GradsRow> {
    let cpu_model = ZooModel::<CpuAutodiff>::new(spec, &Default::default())?;
    let weights = BinBytesRecorder::<FullPrecisionSettings>::default()
        .record(cpu_model.into_record(), ())
        .context("the weights as a record")?;
    let job = |weights: Vec<u8>| GradsJob {
        spec: spec.clone(),
        batch_size,
        weights,
    };
    let cpu = dispatch(DeviceArg::Cpu, job(weights.clone()))?;
    let dev = dispatch(device, job(weights))?;
    let (mut total_diff, mut total_norm) = (0.0f64, 0.0f64);
    let (mut worst_tensor_error, mut worst_tensor) = (0.0f64, String::new());
    for ((name, g), (_, r)) in dev.grads.iter().zip(&cpu.grads) {
        let (diff, norm) = squared_distance_and_norm(g, r);
        (total_diff, total_norm) = (total_diff + diff, total_norm + norm);
        let err = relative_l2(diff, norm);
        // A NaN must not hide behind `max`: the first one stays.
        if !worst_tensor_error.is_nan() && (err.is_nan() || err > worst_tensor_error) {
            (worst_tensor_error, worst_tensor) = (err, name.clone());
        }
    }
    Ok(GradsRow {
        device: device.to_string(),
        batch_size,
        loss: dev.loss,
        cpu_loss: cpu.loss,
        relative_error: relative_l2(total_diff, total_norm),
        worst_tensor_error,
        worst_tensor,
        tensors: cpu.grads.len(),
    })
}

struct GradsJob {
    spec: ModelSpec,
    batch_size: usize,
    /// The network's weights, a burn record in bytes.
    weights: Vec<u8>,
}

impl BackendJob for GradsJob {
    type Output = Step;
    fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<Step> {
        let record = BinBytesRecorder::<FullPrecisionSettings>::default()
            .load(self.weights, &device)
            .context("the weights record")?;
        let model = ZooModel::<B>::new(&self.spec, &device)?.load_record(record);
        let n = self.batch_size;
        // Uniform images and labels `i % classes`, the same numbers on every device.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let shape = [n, INPUT_CHANNELS, INPUT_SIDE, INPUT_SIDE];
        let pixels: Vec<f32> = (0..shape.iter().product::<usize>())
            .map(|_| rng.random::<f32>())
            .collect();
        let labels: Vec<i64> = (0..n).map(|i| (i % self.spec.num_classes) as i64).collect();
        let images = Tensor::<B, 4>::from_data(TensorData::new(pixels, shape), &device);
        let labels = Tensor::<B, 1, Int>::from_data(TensorData::new(labels, [n]), &device);
        let loss = tanas_train::eval::cross_entropy(model.forward(images), labels).mean();
        let value = loss.clone().into_scalar().elem::<f64>();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let mut out = Vec::new();
        for (id, name, shape) in tanas_zoo::weights::parameters(&model) {
            let data = match shape.len() {
                1 => grads.get::<B::InnerBackend, 1>(id).map(|g| g.into_data()),
                2 => grads.get::<B::InnerBackend, 2>(id).map(|g| g.into_data()),
                _ => grads.get::<B::InnerBackend, 4>(id).map(|g| g.into_data()),
            };
            let values = match data {
                Some(d) => d.iter::<f32>().collect(),
                None => vec![0.0; shape.iter().product()],
            };
            out.push((name, values));
        }
        Ok(Step {
            loss: value,
            grads: out,
        })
    }
}
