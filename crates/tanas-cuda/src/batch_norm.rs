//! BatchNorm with the batch's own statistics as one cuDNN call forward and one backward, on
//! [`CudnnCuda`] and `Autodiff<CudnnCuda>` (recognised by type, as tanas-cpu's
//! `batch_norm` recognises its backends; every other backend gets `None`).

use std::any::{Any, TypeId};
use std::sync::atomic::{AtomicBool, Ordering};

use burn_autodiff::Autodiff;
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_tensor::backend::Backend;
use burn_tensor::{Tensor, TensorPrimitive};

use crate::Normed;
use crate::backend::CudnnCuda;
use crate::cudnn::{NormPointers, norm_backward, norm_forward};
use crate::device::{Cube, address, contiguous, empty, finished};

type Ad = Autodiff<CudnnCuda>;

/// `t` as type `U`, where it is one (`None` otherwise).
pub(crate) fn cast<T: 'static, U: 'static>(t: T) -> Option<U> {
    let b: Box<dyn Any> = Box::new(t);
    b.downcast::<U>().ok().map(|b| *b)
}

/// See [`crate::batch_norm`].
pub(crate) fn batch_norm<B: Backend>(
    x: &Tensor<B, 4>,
    gamma: &Tensor<B, 1>,
    beta: &Tensor<B, 1>,
    epsilon: f64,
) -> Option<Normed<B>> {
    if TypeId::of::<B>() == TypeId::of::<CudnnCuda>() {
        let prim = |t: Tensor<CudnnCuda, 1>| t.into_primitive().tensor();
        let x = cast::<_, Tensor<CudnnCuda, 4>>(x.clone())?
            .into_primitive()
            .tensor();
        let (y, saved) = tried(forward(
            x,
            prim(cast(gamma.clone())?),
            prim(cast(beta.clone())?),
            epsilon,
        ))?;
        let (mean, var) = saved.statistics();
        let normed: Normed<CudnnCuda> = (float(y), mean, var);
        return cast(normed);
    }
    if TypeId::of::<B>() == TypeId::of::<Ad>() {
        let ad = |t: Tensor<Ad, 1>| t.into_primitive().tensor();
        let x = cast::<_, Tensor<Ad, 4>>(x.clone())?
            .into_primitive()
            .tensor();
        let (gamma, beta) = (ad(cast(gamma.clone())?), ad(cast(beta.clone())?));
        let (y, saved) = tried(forward(
            x.primitive.clone(),
            gamma.primitive.clone(),
            beta.primitive.clone(),
            epsilon,
        ))?;
        let (mean, var) = saved.statistics();
        let nodes = [x.node.clone(), gamma.node.clone(), beta.node.clone()];
        let out = match BatchNormBackward
            .prepare::<NoCheckpointing>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(saved, y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        };
        let output = Tensor::<Ad, 4>::from_primitive(TensorPrimitive::Float(out));
        let normed: Normed<Ad> = (output, Tensor::from_inner(mean), Tensor::from_inner(var));
        return cast(normed);
    }
    None
}

/// A CubeCL tensor as a burn tensor of [`CudnnCuda`].
fn float<const D: usize>(t: Cube) -> Tensor<CudnnCuda, D> {
    Tensor::from_primitive(TensorPrimitive::Float(t))
}

/// `result`'s value; on an error, `None` and a warning the first time (the caller then
/// composes BatchNorm from tensor ops).
fn tried<T>(result: Result<T, String>) -> Option<T> {
    static WARNED: AtomicBool = AtomicBool::new(false);
    result
        .map_err(|why| {
            if !WARNED.swap(true, Ordering::Relaxed) {
                tracing::warn!("BatchNorm runs as burn-cuda's tensor ops, not cuDNN: {why}");
            }
        })
        .ok()
}

/// What the backward pass needs: the forward pass's operands and what cuDNN saved.
#[derive(Debug, Clone)]
struct Saved {
    x: Cube,
    gamma: Cube,
    mean: Cube,
    inv_std: Cube,
    shape: [i32; 4],
    epsilon: f64,
}

impl Saved {
    /// The batch mean and biased variance (`1 / inv_std^2 - epsilon`), `[c]`.
    fn statistics(&self) -> (Tensor<CudnnCuda, 1>, Tensor<CudnnCuda, 1>) {
        let inv_std = float::<1>(self.inv_std.clone());
        let var = inv_std.square().recip().sub_scalar(self.epsilon);
        (float(self.mean.clone()), var)
    }

    fn pointers(&self) -> Result<NormPointers, String> {
        Ok(NormPointers {
            x: address(&self.x)?,
            gamma: address(&self.gamma)?,
            mean: address(&self.mean)?,
            inv_std: address(&self.inv_std)?,
        })
    }
}

/// The forward pass: the output and what the backward pass needs.
fn forward(x: Cube, gamma: Cube, beta: Cube, epsilon: f64) -> Result<(Cube, Saved), String> {
    let f32 = |t: Cube| contiguous(t).ok_or("BatchNorm of a tensor that is not f32");
    let (x, gamma, beta) = (f32(x)?, f32(gamma)?, f32(beta)?);
    let dims = x.meta.shape().dims::<4>();
    let int = |v: usize| i32::try_from(v).map_err(|_| format!("BatchNorm of {dims:?}: too large"));
    let shape = [int(dims[0])?, int(dims[1])?, int(dims[2])?, int(dims[3])?];
    let c = dims[1];
    let (y, mean, inv_std) = (empty(&x, dims), empty(&x, [c]), empty(&x, [c]));
    finished(&x)?;
    let saved = Saved {
        x,
        gamma,
        mean,
        inv_std,
        shape,
        epsilon,
    };
    let ordinal = saved.x.device.index;
    norm_forward(
        ordinal,
        shape,
        epsilon,
        &saved.pointers()?,
        address(&beta)?,
        address(&y)?,
    )?;
    Ok((y, saved))
}

#[derive(Debug)]
struct BatchNormBackward;

impl Backward<CudnnCuda, 3> for BatchNormBackward {
    type State = Saved;

    fn backward(self, ops: Ops<Saved, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let dy = grads.consume::<CudnnCuda>(&ops.node);
        let s = ops.state;
        let dims = s.x.meta.shape().dims::<4>();
        let c = dims[1];
        let (dx, dgamma, dbeta) = (empty(&s.x, dims), empty(&s.x, [c]), empty(&s.x, [c]));
        let run = || -> Result<(), String> {
            let dy = contiguous(dy).ok_or("BatchNorm gradient that is not f32")?;
            finished(&dy)?;
            let out = [address(&dx)?, address(&dgamma)?, address(&dbeta)?];
            norm_backward(
                s.x.device.index,
                s.shape,
                s.epsilon,
                &s.pointers()?,
                address(&dy)?,
                out,
            )
        };
        // The forward pass of the same shapes ran in cuDNN; a failure here is the GPU's or
        // the library's, with no gradient to fall back to.
        if let Err(e) = run() {
            panic!("{e}");
        }
        if let Some(node) = node_x {
            grads.register::<CudnnCuda>(node.id, dx);
        }
        if let Some(node) = node_gamma {
            grads.register::<CudnnCuda>(node.id, dgamma);
        }
        if let Some(node) = node_beta {
            grads.register::<CudnnCuda>(node.id, dbeta);
        }
    }
}
