//! Element-wise float arithmetic where an operand is broadcast or strided (BatchNorm's
//! per-channel `[1, C, 1, 1]` statistics against `[N, C, H, W]` activations, in the forward
//! and the backward pass): contiguous runs of the innermost dimension, vectorisable, split
//! over threads by run. Flex walks such operands one element at a time on one thread; its
//! same-shape contiguous path is kept.

use burn_backend::ops::FloatTensorOps;
use burn_backend::tensor::FloatTensor;
use burn_backend::{Bytes, DType, Shape};
use burn_flex::{Flex, FlexTensor, Layout};
use rayon::prelude::*;

use crate::Cpu;

/// Output elements below which the work stays on the calling thread.
const PARALLEL_MIN: usize = 1 << 15;

pub(crate) fn float_add(lhs: FloatTensor<Cpu>, rhs: FloatTensor<Cpu>) -> FloatTensor<Cpu> {
    binary(lhs, rhs, |a, b| a + b).unwrap_or_else(|(l, r)| Flex::float_add(l, r))
}

pub(crate) fn float_sub(lhs: FloatTensor<Cpu>, rhs: FloatTensor<Cpu>) -> FloatTensor<Cpu> {
    binary(lhs, rhs, |a, b| a - b).unwrap_or_else(|(l, r)| Flex::float_sub(l, r))
}

pub(crate) fn float_mul(lhs: FloatTensor<Cpu>, rhs: FloatTensor<Cpu>) -> FloatTensor<Cpu> {
    binary(lhs, rhs, |a, b| a * b).unwrap_or_else(|(l, r)| Flex::float_mul(l, r))
}

pub(crate) fn float_div(lhs: FloatTensor<Cpu>, rhs: FloatTensor<Cpu>) -> FloatTensor<Cpu> {
    binary(lhs, rhs, |a, b| a / b).unwrap_or_else(|(l, r)| Flex::float_div(l, r))
}

/// One operand: its elements and, per (collapsed) output dimension, its stride (0 where
/// it is broadcast).
struct Operand<'a> {
    data: &'a [f32],
    offset: usize,
    strides: Vec<usize>,
}

/// `f` element-wise over the broadcast of `lhs` and `rhs`, or the two tensors back when
/// this path does not apply (same-shape contiguous operands, other float types, negative
/// strides, mismatched shapes: Flex handles or reports those).
fn binary(
    lhs: FlexTensor,
    rhs: FlexTensor,
    f: impl Fn(f32, f32) -> f32 + Sync,
) -> Result<FlexTensor, (FlexTensor, FlexTensor)> {
    let (ls, rs) = (lhs.layout().shape().to_vec(), rhs.layout().shape().to_vec());
    let plain = ls == rs && lhs.is_contiguous() && rhs.is_contiguous();
    if plain || lhs.dtype() != DType::F32 || rhs.dtype() != DType::F32 || ls.len() != rs.len() {
        return Err((lhs, rhs));
    }
    let Some(shape) = ls
        .iter()
        .zip(&rs)
        .map(|(&a, &b)| broadcast_dim(a, b))
        .collect::<Option<Vec<_>>>()
    else {
        return Err((lhs, rhs));
    };
    let strides = |t: &FlexTensor, s: &[usize]| -> Option<Vec<usize>> {
        let st = t.layout().strides();
        s.iter()
            .zip(st)
            .map(|(&n, &st)| {
                if n == 1 {
                    Some(0)
                } else {
                    usize::try_from(st).ok()
                }
            })
            .collect()
    };
    let (Some(lst), Some(rst)) = (strides(&lhs, &ls), strides(&rhs, &rs)) else {
        return Err((lhs, rhs));
    };
    let (shape, [lst, rst]) = collapse(&shape, [lst, rst]);
    let inner = |s: &[usize]| s.last().copied().unwrap_or(0);
    if inner(&lst) > 1 || inner(&rst) > 1 {
        return Err((lhs, rhs));
    }
    let n: usize = shape.iter().product();
    let out = {
        let a = Operand {
            data: lhs.storage::<f32>(),
            offset: lhs.layout().start_offset(),
            strides: lst,
        };
        let b = Operand {
            data: rhs.storage::<f32>(),
            offset: rhs.layout().start_offset(),
            strides: rst,
        };
        run_all(&shape, n, &a, &b, &f)
    };
    let full: Vec<usize> = ls.iter().zip(&rs).map(|(&a, &b)| a.max(b)).collect();
    Ok(FlexTensor::new(
        Bytes::from_elems(out),
        Layout::contiguous(Shape::from(full)),
        DType::F32,
    ))
}

/// The output size of a dimension of sizes `a` and `b`, if they broadcast.
fn broadcast_dim(a: usize, b: usize) -> Option<usize> {
    (a == b || a == 1 || b == 1).then_some(a.max(b))
}

/// Drops size-1 dimensions and merges neighbours that every operand walks contiguously.
fn collapse(shape: &[usize], strides: [Vec<usize>; 2]) -> (Vec<usize>, [Vec<usize>; 2]) {
    let mut out: Vec<usize> = Vec::new();
    let mut st: [Vec<usize>; 2] = [Vec::new(), Vec::new()];
    for (i, &n) in shape.iter().enumerate() {
        if n == 1 {
            continue;
        }
        let merge =
            !out.is_empty() && (0..2).all(|k| st[k].last().copied() == Some(strides[k][i] * n));
        if merge {
            *out.last_mut().expect("non-empty") *= n;
            for k in 0..2 {
                *st[k].last_mut().expect("non-empty") = strides[k][i];
            }
        } else {
            out.push(n);
            for k in 0..2 {
                st[k].push(strides[k][i]);
            }
        }
    }
    if out.is_empty() {
        out.push(1);
        st = [vec![0], vec![0]];
    }
    (out, st)
}

/// Fills the output run by run (the innermost dimension), in parallel for large outputs.
fn run_all(
    shape: &[usize],
    n: usize,
    a: &Operand<'_>,
    b: &Operand<'_>,
    f: &(impl Fn(f32, f32) -> f32 + Sync),
) -> Vec<f32> {
    let d = shape.len();
    let len = shape[d - 1];
    let mut out = vec![0.0f32; n];
    if len == 0 {
        return out;
    }
    // Offsets of both operands at the start of run `r` (row-major over the outer dims).
    let start = |mut r: usize| {
        let (mut oa, mut ob) = (a.offset, b.offset);
        for i in (0..d - 1).rev() {
            let k = r % shape[i];
            r /= shape[i];
            oa += k * a.strides[i];
            ob += k * b.strides[i];
        }
        (oa, ob)
    };
    let (sa, sb) = (a.strides[d - 1], b.strides[d - 1]);
    let fill = |(r, o): (usize, &mut [f32])| {
        let (oa, ob) = start(r);
        match (sa, sb) {
            (1, 1) => {
                for ((o, x), y) in o
                    .iter_mut()
                    .zip(&a.data[oa..oa + len])
                    .zip(&b.data[ob..ob + len])
                {
                    *o = f(*x, *y);
                }
            }
            (1, _) => {
                let y = b.data[ob];
                for (o, x) in o.iter_mut().zip(&a.data[oa..oa + len]) {
                    *o = f(*x, y);
                }
            }
            (_, 1) => {
                let x = a.data[oa];
                for (o, y) in o.iter_mut().zip(&b.data[ob..ob + len]) {
                    *o = f(x, *y);
                }
            }
            _ => o.fill(f(a.data[oa], b.data[ob])),
        }
    };
    if n >= PARALLEL_MIN {
        // Several runs per task when runs are short.
        let per = (4096 / len).max(1);
        out.par_chunks_mut(per * len)
            .enumerate()
            .for_each(|(t, chunk)| {
                chunk
                    .chunks_mut(len)
                    .enumerate()
                    .for_each(|(j, o)| fill((t * per + j, o)));
            });
    } else {
        out.chunks_mut(len).enumerate().for_each(fill);
    }
    out
}
