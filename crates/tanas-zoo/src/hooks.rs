//! [`LayerHooks`]: a way into the parameterised layers of a forward pass.
//!
//! Every zoo model routes its `Conv2d`, `Linear` and `BatchNorm` applications through a
//! `LayerHooks` value (`forward_hooked`). The plain forward uses [`Plain`], which just applies
//! the layer; the Fisher estimators use hooks that keep each layer's input and tap the
//! gradient at its output, which gives true per-sample gradients from one backward pass.

use burn::module::RunningState;
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, Linear};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
pub use tanas_cpu::BatchNormed;

/// Called for every parameterised layer of a forward pass, in execution order.
pub trait LayerHooks<B: Backend> {
    /// Applies a 2-D convolution to `x` (`[N, C, H, W]`).
    fn conv2d(&mut self, layer: &Conv2d<B>, x: Tensor<B, 4>) -> Tensor<B, 4>;
    /// Applies a linear layer to `x` (`[N, D]`).
    fn linear(&mut self, layer: &Linear<B>, x: Tensor<B, 2>) -> Tensor<B, 2>;
    /// Applies a 2-D batch normalisation to `x` (`[N, C, H, W]`).
    fn batch_norm(&mut self, layer: &BatchNorm<B>, x: Tensor<B, 4>) -> Tensor<B, 4>;
}

/// The ordinary forward pass: each layer applied as burn defines it (BatchNorm uses batch
/// statistics on an autodiff backend and updates its running statistics, running statistics
/// on an inner backend).
#[derive(Debug, Clone, Copy, Default)]
pub struct Plain;

impl<B: Backend> LayerHooks<B> for Plain {
    fn conv2d(&mut self, layer: &Conv2d<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
        layer.forward(x)
    }

    fn linear(&mut self, layer: &Linear<B>, x: Tensor<B, 2>) -> Tensor<B, 2> {
        layer.forward(x)
    }

    fn batch_norm(&mut self, layer: &BatchNorm<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
        if !B::ad_enabled(&x.device()) {
            return layer.forward(x);
        }
        // burn-nn's training path, with the normalisation as one op where the backend has it.
        let stats = batch_statistics(layer, x);
        let m = layer.momentum;
        let update = |state: &RunningState<Tensor<B, 1>>, batch: Tensor<B, 1>| {
            let device = batch.device();
            let old = state.value_sync().to_device(&device);
            state.update(old.mul_scalar(1.0 - m).add(batch.mul_scalar(m)).detach());
        };
        update(&layer.running_mean, stats.mean.detach());
        update(&layer.running_var, stats.var.detach());
        stats.output
    }
}

/// BatchNorm of `x` with the batch's own mean and biased variance (running statistics
/// neither used nor updated): as one op on tanas-cpu's backends and on tanas-cuda's cuDNN
/// backend, composed of tensor ops on any other.
pub fn batch_statistics<B: Backend>(layer: &BatchNorm<B>, x: Tensor<B, 4>) -> BatchNormed<B> {
    let (gamma, beta) = (layer.gamma.val(), layer.beta.val());
    if let Some(fused) = tanas_cpu::batch_norm(&x, &gamma, &beta, layer.epsilon) {
        return fused;
    }
    if let Some((output, mean, var)) = tanas_cuda::batch_norm(&x, &gamma, &beta, layer.epsilon) {
        return BatchNormed { output, mean, var };
    }
    let [n, c, h, w] = x.dims();
    let per_channel = |t: Tensor<B, 4>| {
        t.swap_dims(0, 1)
            .reshape([c, n * h * w])
            .mean_dim(1)
            .reshape([1, c, 1, 1])
    };
    let mean = per_channel(x.clone());
    let centered = x.sub(mean.clone());
    let var = per_channel(centered.clone().powi_scalar(2));
    let r = |t: Tensor<B, 1>| t.reshape([1, c, 1, 1]);
    let output = centered
        .div(var.clone().add_scalar(layer.epsilon).sqrt())
        .mul(r(gamma))
        .add(r(beta));
    BatchNormed {
        output,
        mean: mean.reshape([c]).detach(),
        var: var.reshape([c]).detach(),
    }
}

/// Eval-mode forward on any backend, an autodiff one included: BatchNorm normalises with its
/// running statistics (and leaves them untouched), so gradients flow to gamma and beta while
/// samples do not interact. This is the network the Fisher information is taken of.
#[derive(Debug, Clone, Copy, Default)]
pub struct EvalMode;

impl<B: Backend> LayerHooks<B> for EvalMode {
    fn conv2d(&mut self, layer: &Conv2d<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
        layer.forward(x)
    }

    fn linear(&mut self, layer: &Linear<B>, x: Tensor<B, 2>) -> Tensor<B, 2> {
        layer.forward(x)
    }

    fn batch_norm(&mut self, layer: &BatchNorm<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let (xhat, gamma, beta) = normalize_running(layer, x);
        xhat.mul(gamma).add(beta)
    }
}

/// `(x - running_mean) / sqrt(running_var + eps)` and gamma, beta, each reshaped to
/// broadcast over `[N, C, H, W]`.
pub fn normalize_running<B: Backend>(
    layer: &BatchNorm<B>,
    x: Tensor<B, 4>,
) -> (Tensor<B, 4>, Tensor<B, 4>, Tensor<B, 4>) {
    let c = x.dims()[1];
    let r = |t: Tensor<B, 1>| t.reshape([1, c, 1, 1]);
    let mean = r(layer.running_mean.value_sync());
    let std = r(layer.running_var.value_sync())
        .add_scalar(layer.epsilon)
        .sqrt();
    (
        x.sub(mean).div(std),
        r(layer.gamma.val()),
        r(layer.beta.val()),
    )
}
