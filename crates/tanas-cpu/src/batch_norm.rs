//! [`batch_norm`]: BatchNorm with the batch's own statistics as one op of [`Cpu`] (and one
//! backward step of `Autodiff<Cpu>`), for callers generic over any burn backend.
//!
//! A backend-extension trait would put a bound on every generic function of the crates that
//! build and train networks; instead the function recognises its own two backends by type
//! (a safe `Any` downcast) and returns `None` on every other backend, where the caller keeps
//! its composed version.

use std::any::{Any, TypeId};

use burn_autodiff::Autodiff;
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_backend::{DType, Shape, TensorMetadata};
use burn_flex::FlexTensor;
use burn_tensor::backend::Backend;
use burn_tensor::{Tensor, TensorPrimitive};

use crate::Cpu;
use crate::copy::{dense, f32s, tensor};
use crate::norm::{self, Planes};

type Ad = Autodiff<Cpu>;

/// What BatchNorm with batch statistics computes.
#[derive(Debug, Clone)]
pub struct BatchNormed<B: Backend> {
    /// `(x - mean) / sqrt(var + eps) * gamma + beta`, `[n, c, h, w]`.
    pub output: Tensor<B, 4>,
    /// The batch mean per channel, `[c]` (not tracked by autodiff).
    pub mean: Tensor<B, 1>,
    /// The biased batch variance per channel, `[c]` (not tracked by autodiff).
    pub var: Tensor<B, 1>,
}

/// BatchNorm of `x: [n, c, h, w]` with its own per-channel mean and biased variance, scaled
/// by `gamma` and shifted by `beta` (`[c]`), as one op with its own gradient. `None` unless
/// `B` is [`Cpu`] or `Autodiff<Cpu>` and the tensors are f32: the caller then composes it
/// from tensor ops. Running statistics are the caller's to update.
pub fn batch_norm<B: Backend>(
    x: &Tensor<B, 4>,
    gamma: &Tensor<B, 1>,
    beta: &Tensor<B, 1>,
    epsilon: f64,
) -> Option<BatchNormed<B>> {
    let prim = |t: Tensor<Cpu, 1>| t.into_primitive().tensor();
    if TypeId::of::<B>() == TypeId::of::<Cpu>() {
        let x = cast::<_, Tensor<Cpu, 4>>(x.clone())?
            .into_primitive()
            .tensor();
        let (y, saved) = forward(
            x,
            prim(cast(gamma.clone())?),
            prim(cast(beta.clone())?),
            epsilon,
        )?;
        return cast(saved.result(Tensor::from_primitive(TensorPrimitive::Float(y))));
    }
    if TypeId::of::<B>() == TypeId::of::<Ad>() {
        let ad = |t: Tensor<Ad, 1>| t.into_primitive().tensor();
        let x = cast::<_, Tensor<Ad, 4>>(x.clone())?
            .into_primitive()
            .tensor();
        let (gamma, beta) = (ad(cast(gamma.clone())?), ad(cast(beta.clone())?));
        let (y, saved) = forward(
            x.primitive.clone(),
            gamma.primitive.clone(),
            beta.primitive.clone(),
            epsilon,
        )?;
        let nodes = [x.node.clone(), gamma.node.clone(), beta.node.clone()];
        let result = saved.result(Tensor::<Cpu, 4>::from_primitive(TensorPrimitive::Float(
            FlexTensor::clone(&y),
        )));
        let out = match BatchNormBackward
            .prepare::<NoCheckpointing>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(saved, y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        };
        return cast(BatchNormed::<Ad> {
            output: Tensor::from_primitive(TensorPrimitive::Float(out)),
            mean: Tensor::from_inner(result.mean),
            var: Tensor::from_inner(result.var),
        });
    }
    None
}

/// `t` as type `U`, where it is one (`None` otherwise).
pub(crate) fn cast<T: 'static, U: 'static>(t: T) -> Option<U> {
    let b: Box<dyn Any> = Box::new(t);
    b.downcast::<U>().ok().map(|b| *b)
}

/// What the backward step needs, and the statistics.
#[derive(Debug, Clone)]
struct Saved {
    x: FlexTensor,
    gamma: FlexTensor,
    planes: Planes,
    mean: Vec<f32>,
    var: Vec<f32>,
    inv_std: Vec<f32>,
}

impl Saved {
    fn result(&self, output: Tensor<Cpu, 4>) -> BatchNormed<Cpu> {
        let vec = |v: &[f32]| {
            Tensor::from_primitive(TensorPrimitive::Float(tensor(
                Shape::new([v.len()]),
                v.to_vec(),
            )))
        };
        BatchNormed {
            output,
            mean: vec(&self.mean),
            var: vec(&self.var),
        }
    }
}

/// The forward pass on Flex tensors; `None` for other float types.
fn forward(
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    epsilon: f64,
) -> Option<(FlexTensor, Saved)> {
    if [&x, &gamma, &beta].iter().any(|t| t.dtype() != DType::F32) {
        return None;
    }
    let (x, gamma, beta) = (dense(x), dense(gamma), dense(beta));
    let [n, c, h, w] = x.shape().dims::<4>();
    let planes = Planes { n, c, l: h * w };
    let (mean, var) = norm::stats(planes, f32s(&x));
    let inv_std = norm::inv_std(&var, epsilon);
    let y = norm::normalize(planes, f32s(&x), &mean, &inv_std, f32s(&gamma), f32s(&beta));
    let y = tensor(x.shape(), y);
    Some((
        y,
        Saved {
            x,
            gamma,
            planes,
            mean,
            var,
            inv_std,
        },
    ))
}

#[derive(Debug)]
struct BatchNormBackward;

impl Backward<Cpu, 3> for BatchNormBackward {
    type State = Saved;

    fn backward(self, ops: Ops<Saved, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let dy = dense(grads.consume::<Cpu>(&ops.node));
        let s = ops.state;
        let (dx, dgamma, dbeta) = norm::backward(
            s.planes,
            f32s(&s.x),
            f32s(&dy),
            &s.mean,
            &s.inv_std,
            f32s(&s.gamma),
        );
        let c = s.planes.c;
        if let Some(node) = node_x {
            grads.register::<Cpu>(node.id, tensor(s.x.shape(), dx));
        }
        if let Some(node) = node_gamma {
            grads.register::<Cpu>(node.id, tensor(Shape::new([c]), dgamma));
        }
        if let Some(node) = node_beta {
            grads.register::<Cpu>(node.id, tensor(Shape::new([c]), dbeta));
        }
    }
}
