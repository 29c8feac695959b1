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
//!   one op that squares each sample's gradient as it makes it; on tanas-cuda's cuDNN
//!   backend one grouped weight gradient per chunk, the samples folded into the groups); the
//!   bias gradient is `g_i` summed over positions.
//! - BatchNorm (running statistics) `h = xhat * gamma + beta`: `dL_i/dgamma = sum_hw g_i xhat_i`,
//!   `dL_i/dbeta = sum_hw g_i`.
//!
//! The model's parameters are detached for this pass, so the backward computes no
//! parameter gradients at all: only the activation gradients down to the taps.

use std::collections::HashMap;

use burn::module::ParamId;
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, Linear, PaddingConfig2d};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::module::unfold4d;
use burn::tensor::ops::{ConvOptions, UnfoldOptions};
use burn::tensor::{Tensor, TensorPrimitive};
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

/// The same bound for [`folded`], on a GPU (256 Mi f32 = 1 GiB): larger chunks, fewer calls.
const FOLDED_CHUNK_ELEMS: usize = 256 << 20;

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
                    if let Some(b) = bias {
                        let per = g
                            .clone()
                            .reshape([n, cout, ho * wo])
                            .sum_dim(2)
                            .reshape([n, cout]);
                        accumulate(
                            sums,
                            b,
                            SumTensor::R1(per.square().sum_dim(0).reshape([cout])),
                        );
                    }
                    let cin = input.dims()[1];
                    let shape = [cout, cin / groups, kernel[0], kernel[1]];
                    let options = ConvOptions::new(stride, padding, dilation, groups);
                    let sq = conv_weight_sq_sum(input, g, shape, &options);
                    accumulate(sums, weight, SumTensor::R4(sq));
                }
            }
        }
        Ok(())
    }
}

/// `sum_i (dL_i/dW)^2` of a convolution with weight shape `weight`, from its input `x: [n,
/// cin, h, w]` and output gradients `dy: [n, cout, ho, wo]`, by the fastest way `B` has:
/// tanas-cpu's one op, the batch folded into the group count on the cuDNN backend
/// ([`folded`]), per-sample matmuls of unfolded inputs elsewhere ([`unfolded`]).
fn conv_weight_sq_sum<B: Backend>(
    x: Tensor<B, 4>,
    dy: Tensor<B, 4>,
    weight: [usize; 4],
    options: &ConvOptions<2>,
) -> Tensor<B, 4> {
    if let Some(t) = conv2d_weight_grad_sq_sum(&x, &dy, weight, options) {
        return t;
    }
    if tanas_cuda::is_cudnn::<B>() {
        return folded(x, dy, weight, options, FOLDED_CHUNK_ELEMS);
    }
    unfolded(x, dy, weight, options, CHUNK_ELEMS)
}

/// Per-sample weight gradients as one grouped weight gradient: the `m` samples of a chunk
/// side by side as channels of one sample (`[1, m * cin, h, w]`, `[1, m * cout, ho, wo]`)
/// and `m * groups` groups give `[m * cout, cin / groups, kh, kw]`, sample `i`'s gradient in
/// rows `i * cout ..`. One cuDNN call per chunk on the cuDNN backend (the batching rule of
/// PyTorch's `torch.func` for convolutions). At most `chunk_elems` gradient elements at once.
fn folded<B: Backend>(
    x: Tensor<B, 4>,
    dy: Tensor<B, 4>,
    weight: [usize; 4],
    options: &ConvOptions<2>,
    chunk_elems: usize,
) -> Tensor<B, 4> {
    let ([n, cin, h, w], [_, cout, ho, wo]) = (x.dims(), dy.dims());
    let per: usize = weight.iter().product();
    let chunk = (chunk_elems / per.max(1)).clamp(1, n.max(1));
    let device = x.device();
    let mut total = Tensor::<B, 2>::zeros([1, per], &device);
    for start in (0..n).step_by(chunk) {
        let m = chunk.min(n - start);
        let xs = x.clone().narrow(0, start, m).reshape([1, m * cin, h, w]);
        let dys = dy
            .clone()
            .narrow(0, start, m)
            .reshape([1, m * cout, ho, wo]);
        // Only the filter's shape is read: a broadcast zero, nothing allocated.
        let filter = Tensor::<B, 4>::zeros([1, 1, 1, 1], &device).expand([
            m * weight[0],
            weight[1],
            weight[2],
            weight[3],
        ]);
        let grouped = ConvOptions::new(
            options.stride,
            options.padding,
            options.dilation,
            options.groups * m,
        );
        let dw = B::conv2d_weight_backward(
            xs.into_primitive().tensor(),
            filter.into_primitive().tensor(),
            dys.into_primitive().tensor(),
            grouped,
        );
        let dw = Tensor::<B, 4>::from_primitive(TensorPrimitive::Float(dw)).reshape([m, per]);
        total = total + dw.square().sum_dim(0);
    }
    total.reshape(weight)
}

/// Per-sample weight gradients as batched matmuls of the unfolded input (im2col) with the
/// output gradients, at most `chunk_elems` gradient elements at once.
fn unfolded<B: Backend>(
    x: Tensor<B, 4>,
    dy: Tensor<B, 4>,
    weight: [usize; 4],
    options: &ConvOptions<2>,
    chunk_elems: usize,
) -> Tensor<B, 4> {
    let ([n, _, _, _], [_, cout, ho, wo]) = (x.dims(), dy.dims());
    let [_, cin_group, kh, kw] = weight;
    let groups = options.groups;
    let k = cin_group * kh * kw;
    let g = dy.reshape([n, cout, ho * wo]);
    let chunk = (chunk_elems / (cout * k).max(1)).clamp(1, n.max(1));
    let mut total = Tensor::<B, 3>::zeros([groups, cout / groups, k], &x.device());
    for start in (0..n).step_by(chunk) {
        let m = chunk.min(n - start);
        let a = x.clone().narrow(0, start, m);
        let cols = unfold4d(
            a,
            [kh, kw],
            UnfoldOptions::new(options.stride, options.padding, options.dilation),
        )
        .reshape([m, groups, k, ho * wo]);
        let gs = g
            .clone()
            .narrow(0, start, m)
            .reshape([m, groups, cout / groups, ho * wo]);
        total = total
            + gs.matmul(cols.swap_dims(2, 3))
                .square()
                .sum_dim(0)
                .reshape([groups, cout / groups, k]);
    }
    total.reshape(weight)
}

#[cfg(test)]
mod tests {
    use burn::tensor::ops::ModuleOps;
    use burn::tensor::{Distribution, Tensor, TensorPrimitive};
    use tanas_cpu::Cpu;

    use super::*;

    /// Each sample's weight gradient on its own (burn's conv2d weight gradient of a batch
    /// of one), squared and summed: the definition.
    fn naive(
        x: &Tensor<Cpu, 4>,
        dy: &Tensor<Cpu, 4>,
        weight: [usize; 4],
        o: &ConvOptions<2>,
    ) -> Tensor<Cpu, 4> {
        let n = x.dims()[0];
        let mut total = Tensor::<Cpu, 4>::zeros(weight, &x.device());
        for i in 0..n {
            let dw = Cpu::conv2d_weight_backward(
                x.clone().narrow(0, i, 1).into_primitive().tensor(),
                Tensor::<Cpu, 4>::zeros(weight, &x.device())
                    .into_primitive()
                    .tensor(),
                dy.clone().narrow(0, i, 1).into_primitive().tensor(),
                o.clone(),
            );
            total = total + Tensor::<Cpu, 4>::from_primitive(TensorPrimitive::Float(dw)).square();
        }
        total
    }

    /// The batch folded into the group count, the unfolded matmuls and tanas-cpu's op give
    /// the naive sums, in one chunk and in chunks of one to three samples, for strides,
    /// padding, dilation, groups and depthwise convolutions.
    #[test]
    fn every_way_to_per_sample_weight_gradients_agrees_with_the_definition() {
        let device = Default::default();
        // (input [n, cin, h, w], cout, kernel, stride, padding, dilation, groups)
        let cases = [
            ([5, 3, 9, 9], 4, [3, 3], [1, 1], [1, 1], [1, 1], 1),
            ([4, 6, 10, 8], 6, [3, 2], [2, 1], [1, 0], [1, 2], 3),
            ([3, 8, 7, 7], 8, [5, 5], [1, 1], [2, 2], [1, 1], 8),
            ([6, 4, 8, 8], 2, [1, 1], [2, 2], [0, 0], [1, 1], 2),
        ];
        for (xs, cout, kernel, stride, padding, dilation, groups) in cases {
            let o = ConvOptions::new(stride, padding, dilation, groups);
            let weight = [cout, xs[1] / groups, kernel[0], kernel[1]];
            let x = Tensor::<Cpu, 4>::random(xs, Distribution::Normal(0.0, 1.0), &device);
            let w = Tensor::<Cpu, 4>::zeros(weight, &device);
            let y = burn::tensor::module::conv2d(x.clone(), w, None, o.clone());
            let dy = Tensor::<Cpu, 4>::random(y.dims(), Distribution::Normal(0.0, 1.0), &device);
            let want = naive(&x, &dy, weight, &o);
            let per: usize = weight.iter().product();
            let k = per / cout;
            let mut got = vec![(
                "tanas-cpu",
                conv2d_weight_grad_sq_sum(&x, &dy, weight, &o).expect("f32 on Cpu"),
            )];
            for samples in [xs[0], 3, 1] {
                got.push((
                    "folded",
                    folded(x.clone(), dy.clone(), weight, &o, samples * per),
                ));
                got.push((
                    "unfolded",
                    unfolded(x.clone(), dy.clone(), weight, &o, samples * cout * k),
                ));
            }
            for (how, t) in got {
                assert_eq!(t.dims(), weight, "{how}");
                t.into_data().assert_approx_eq::<f32>(
                    &want.clone().into_data(),
                    burn::tensor::Tolerance::relative(1e-4),
                );
            }
        }
    }
}
