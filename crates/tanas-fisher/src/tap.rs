//! Per-sample gradients from one backward pass: layer hooks that keep each layer's input
//! and tap the gradient at its output.
//!
//! For every parameterised layer the forward pass records the layer input `a` and adds a
//! zero leaf `z` (marked `require_grad`) to the layer output. Backpropagating the *sum* of
//! the per-sample losses through a network whose samples do not interact (BatchNorm with
//! running statistics) gives `z.grad[i] = dL_i / dh_i`, the gradient of sample i's loss at
//! the layer output. The per-sample parameter gradients follow in closed form:
//!
//! - Linear `h = a W^T + b`: `dL_i/dW = g_i a_i^T`, so `sum_i (dL_i/dW)^2 = (g^2)^T (a^2)`;
//!   `dL_i/db = g_i`.
//! - Conv2d: with `cols_i = unfold(a_i)` (im2col), `dL_i/dW = g_i cols_i^T` per group,
//!   computed as a batched matmul over samples, in chunks that bound memory (on tanas-cpu
//!   one op that squares each sample's gradient as it makes it); the bias gradient is `g_i`
//!   summed over positions.
//! - BatchNorm (running statistics) `h = xhat * gamma + beta`: `dL_i/dgamma = sum_hw g_i xhat_i`,
//!   `dL_i/dbeta = sum_hw g_i`.
//!
//! The model's parameters are detached for this pass, so the backward computes no
//! parameter gradients at all: only the activation gradients down to the taps.

use std::collections::HashMap;

use burn::module::ParamId;
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, Linear, PaddingConfig2d};
use burn::tensor::Tensor;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::module::unfold4d;
use burn::tensor::ops::{ConvOptions, UnfoldOptions};
use tanas_cpu::conv2d_weight_grad_sq_sum;
use tanas_zoo::hooks::{LayerHooks, normalize_running};

use crate::estimator::EstimatorError;

/// Inner (non-autodiff) backend of `B`.
type Inner<B> = <B as AutodiffBackend>::InnerBackend;

/// What a tapped layer kept from the forward pass.
enum Kept<B: AutodiffBackend> {
    Conv {
        weight: ParamId,
        bias: Option<ParamId>,
        input: Tensor<Inner<B>, 4>,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
        groups: usize,
        leaf: Tensor<B, 4>,
    },
    Linear {
        weight: ParamId,
        bias: Option<ParamId>,
        input: Tensor<Inner<B>, 2>,
        leaf: Tensor<B, 2>,
    },
    BatchNorm {
        gamma: ParamId,
        beta: ParamId,
        xhat: Tensor<Inner<B>, 4>,
        leaf: Tensor<B, 4>,
    },
}

/// Layer hooks that record what the per-sample gradients need. BatchNorm runs in eval mode.
pub struct Tap<B: AutodiffBackend> {
    kept: Vec<Kept<B>>,
    error: Option<EstimatorError>,
}

impl<B: AutodiffBackend> Default for Tap<B> {
    fn default() -> Self {
        Self {
            kept: Vec::new(),
            error: None,
        }
    }
}

fn leaf<B: AutodiffBackend, const D: usize>(like: &Tensor<B, D>) -> Tensor<B, D> {
    Tensor::zeros(like.dims(), &like.device()).require_grad()
}

/// Symmetric `[height, width]` padding of a convolution, if it has one.
fn symmetric_padding(p: &PaddingConfig2d) -> Option<[usize; 2]> {
    match *p {
        PaddingConfig2d::Valid => Some([0, 0]),
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => {
            Some([top, left])
        }
        _ => None,
    }
}

impl<B: AutodiffBackend> LayerHooks<B> for Tap<B> {
    fn conv2d(&mut self, layer: &Conv2d<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let out = layer.forward(x.clone());
        let Some(padding) = symmetric_padding(&layer.padding) else {
            self.error
                .get_or_insert(EstimatorError::Unsupported(format!(
                    "convolution with asymmetric or `Same` padding {:?}",
                    layer.padding
                )));
            return out;
        };
        let z = leaf(&out);
        self.kept.push(Kept::Conv {
            weight: layer.weight.id,
            bias: layer.bias.as_ref().map(|b| b.id),
            input: x.inner(),
            kernel: layer.kernel_size,
            stride: layer.stride,
            padding,
            dilation: layer.dilation,
            groups: layer.groups,
            leaf: z.clone(),
        });
        out + z
    }

    fn linear(&mut self, layer: &Linear<B>, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let out = layer.forward(x.clone());
        let z = leaf(&out);
        self.kept.push(Kept::Linear {
            weight: layer.weight.id,
            bias: layer.bias.as_ref().map(|b| b.id),
            input: x.inner(),
            leaf: z.clone(),
        });
        out + z
    }

    fn batch_norm(&mut self, layer: &BatchNorm<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let (xhat, gamma, beta) = normalize_running(layer, x);
        let out = xhat.clone().mul(gamma).add(beta);
        let z = leaf(&out);
        self.kept.push(Kept::BatchNorm {
            gamma: layer.gamma.id,
            beta: layer.beta.id,
            xhat: xhat.inner(),
            leaf: z.clone(),
        });
        out + z
    }
}

/// Sums of squared per-sample gradients, per parameter, in burn's layout.
pub type SquaredSums<B> = HashMap<ParamId, SumTensor<B>>;

/// A running sum of squared gradients of one parameter (rank 1, 2 or 4).
#[derive(Debug, Clone)]
pub enum SumTensor<B: burn::tensor::backend::Backend> {
    /// Biases, BatchNorm gamma / beta.
    R1(Tensor<B, 1>),
    /// Linear weights (`[d_in, d_out]`, burn's layout).
    R2(Tensor<B, 2>),
    /// Convolution weights.
    R4(Tensor<B, 4>),
}

impl<B: burn::tensor::backend::Backend> SumTensor<B> {
    fn add(self, other: Self) -> Self {
        match (self, other) {
            (Self::R1(a), Self::R1(b)) => Self::R1(a + b),
            (Self::R2(a), Self::R2(b)) => Self::R2(a + b),
            (Self::R4(a), Self::R4(b)) => Self::R4(a + b),
            (a, _) => a,
        }
    }
}

/// Adds `value` to the sum of `id`.
pub fn accumulate<B: burn::tensor::backend::Backend>(
    sums: &mut SquaredSums<B>,
    id: ParamId,
    value: SumTensor<B>,
) {
    let entry = match sums.remove(&id) {
        Some(prev) => prev.add(value),
        None => value,
    };
    sums.insert(id, entry);
}

/// Elements of per-sample gradient materialised at once in a convolution (bounds memory:
/// 32 Mi f32 = 128 MiB).
const CHUNK_ELEMS: usize = 32 << 20;

impl<B: AutodiffBackend> Tap<B> {
    /// Reads the taps' gradients from `grads` and adds the squared per-sample parameter
    /// gradients to `sums`.
    pub fn accumulate(
        self,
        grads: &B::Gradients,
        sums: &mut SquaredSums<Inner<B>>,
    ) -> Result<(), EstimatorError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        for kept in self.kept {
            match kept {
                Kept::Linear {
                    weight,
                    bias,
                    input,
                    leaf,
                } => {
                    let g = leaf.grad(grads).ok_or(EstimatorError::MissingGradient)?;
                    let g2 = g.square();
                    if let Some(b) = bias {
                        accumulate(sums, b, SumTensor::R1(g2.clone().sum_dim(0).squeeze_dim(0)));
                    }
                    accumulate(
                        sums,
                        weight,
                        SumTensor::R2(input.square().transpose().matmul(g2)),
                    );
                }
                Kept::BatchNorm {
                    gamma,
                    beta,
                    xhat,
                    leaf,
                } => {
                    let g = leaf.grad(grads).ok_or(EstimatorError::MissingGradient)?;
                    let [n, c, _, _] = g.dims();
                    let dgamma = (g.clone() * xhat)
                        .reshape([n as i32, c as i32, -1])
                        .sum_dim(2)
                        .reshape([n, c]);
                    let dbeta = g
                        .reshape([n as i32, c as i32, -1])
                        .sum_dim(2)
                        .reshape([n, c]);
                    accumulate(
                        sums,
                        gamma,
                        SumTensor::R1(dgamma.square().sum_dim(0).reshape([c])),
                    );
                    accumulate(
                        sums,
                        beta,
                        SumTensor::R1(dbeta.square().sum_dim(0).reshape([c])),
                    );
                }
                Kept::Conv {
                    weight,
                    bias,
                    input,
                    kernel,
                    stride,
                    padding,
                    dilation,
                    groups,
                    leaf,
                } => {
                    let g = leaf.grad(grads).ok_or(EstimatorError::MissingGradient)?;
                    let [n, cout, ho, wo] = g.dims();
                    let g = g.reshape([n, cout, ho * wo]);
                    if let Some(b) = bias {
                        let per = g.clone().sum_dim(2).reshape([n, cout]);
                        accumulate(
                            sums,
                            b,
                            SumTensor::R1(per.square().sum_dim(0).reshape([cout])),
                        );
                    }
                    let cin = input.dims()[1];
                    let shape = [cout, cin / groups, kernel[0], kernel[1]];
                    let options = ConvOptions::new(stride, padding, dilation, groups);
                    let g4 = g.clone().reshape([n, cout, ho, wo]);
                    if let Some(t) = conv2d_weight_grad_sq_sum(&input, &g4, shape, &options) {
                        accumulate(sums, weight, SumTensor::R4(t));
                        continue;
                    }
                    let k = cin / groups * kernel[0] * kernel[1];
                    let per_sample = cout * k;
                    let chunk = (CHUNK_ELEMS / per_sample.max(1)).clamp(1, n);
                    let mut total: Option<Tensor<Inner<B>, 3>> = None;
                    let mut start = 0;
                    while start < n {
                        let end = (start + chunk).min(n);
                        let m = end - start;
                        let a = input.clone().narrow(0, start, m);
                        let cols =
                            unfold4d(a, kernel, UnfoldOptions::new(stride, padding, dilation))
                                .reshape([m, groups, k, ho * wo]);
                        let gs = g.clone().narrow(0, start, m).reshape([
                            m,
                            groups,
                            cout / groups,
                            ho * wo,
                        ]);
                        let sq = gs
                            .matmul(cols.swap_dims(2, 3))
                            .square()
                            .sum_dim(0)
                            .reshape([groups, cout / groups, k]);
                        total = Some(match total {
                            Some(t) => t + sq,
                            None => sq,
                        });
                        start = end;
                    }
                    if let Some(t) = total {
                        accumulate(
                            sums,
                            weight,
                            SumTensor::R4(t.reshape([cout, cin / groups, kernel[0], kernel[1]])),
                        );
                    }
                }
            }
        }
        Ok(())
    }
}
