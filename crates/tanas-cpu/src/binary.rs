//! Element-wise float arithmetic where an operand is broadcast or strided (BatchNorm's
//! per-channel `[1, C, 1, 1]` statistics against `[N, C, H, W]` activations, in the forward
//! and the backward pass): contiguous runs of the innermost dimension, vectorisable, split
//! over threads by run. Flex walks such operands one element at a time on one thread; its
//! same-shape contiguous path is kept.

use burn_backend::ops::FloatTensorOps;
use burn_backend::tensor::FloatTensor;
use burn_backend::{DType, Shape};
use burn_flex::{Flex, FlexTensor};
use rayon::prelude::*;

use crate::Cpu;
use crate::copy::tensor;
use crate::simd::vectorized;

/// Output elements below which the work stays on the calling thread.
const PARALLEL_MIN: usize = 1 << 15;

pub(crate) fn float_add(lhs: FloatTensor<Cpu>, rhs: FloatTensor<Cpu>) -> FloatTensor<Cpu> {
    binary(lhs, rhs, |a, b| a + b, Flex::float_add)
}

pub(crate) fn float_sub(lhs: FloatTensor<Cpu>, rhs: FloatTensor<Cpu>) -> FloatTensor<Cpu> {
    binary(lhs, rhs, |a, b| a - b, Flex::float_sub)
}

pub(crate) fn float_mul(lhs: FloatTensor<Cpu>, rhs: FloatTensor<Cpu>) -> FloatTensor<Cpu> {
    binary(lhs, rhs, |a, b| a * b, Flex::float_mul)
}

pub(crate) fn float_div(lhs: FloatTensor<Cpu>, rhs: FloatTensor<Cpu>) -> FloatTensor<Cpu> {
    binary(lhs, rhs, |a, b| a / b, Flex::float_div)
}

/// One operand: its elements and, per (collapsed) output dimension, its stride (0 where
/// it is broadcast).
struct Operand<'a> {
    data: &'a [f32],
    offset: usize,
    strides: Vec<usize>,
}

/// `f` element-wise over the broadcast of `lhs` and `rhs`; `flex` (Flex's op) where this
/// path does not apply (same-shape contiguous operands, other float types, negative
/// strides, mismatched shapes: Flex handles or reports those).
fn binary(
    lhs: FlexTensor,
    rhs: FlexTensor,
    f: impl Fn(f32, f32) -> f32 + Sync,
    flex: fn(FlexTensor, FlexTensor) -> FlexTensor,
) -> FlexTensor {
    let (ls, rs) = (lhs.layout().shape().to_vec(), rhs.layout().shape().to_vec());
    let plain = ls == rs && lhs.is_contiguous() && rhs.is_contiguous();
    if plain || lhs.dtype() != DType::F32 || rhs.dtype() != DType::F32 || ls.len() != rs.len() {
        return flex(lhs, rhs);
    }
    let Some(shape) = ls
        .iter()
        .zip(&rs)
        .map(|(&a, &b)| broadcast_dim(a, b))
        .collect::<Option<Vec<_>>>()
    else {
        return flex(lhs, rhs);
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
        return flex(lhs, rhs);
    };
    let (shape, [lst, rst]) = collapse(&shape, [lst, rst]);
    let inner = |s: &[usize]| s.last().copied().unwrap_or(0);
    if inner(&lst) > 1 || inner(&rst) > 1 {
        return flex(lhs, rhs);
    }
    let full: Vec<usize> = ls.iter().zip(&rs).map(|(&a, &b)| a.max(b)).collect();
    let mut lhs = lhs;
    let mut rhs = rhs;
    // An operand that is the whole output, contiguous and not shared elsewhere takes the
    // result in place (as Flex does), which saves a buffer per op.
    let reusable = |t: &FlexTensor, s: &[usize]| {
        s == full.as_slice() && t.layout().contiguous_offsets() == Some((0, full.iter().product()))
    };
    let side = if reusable(&lhs, &ls) && lhs.try_storage_mut::<f32>().is_some() {
        Side::Lhs
    } else if reusable(&rhs, &rs) && rhs.try_storage_mut::<f32>().is_some() {
        Side::Rhs
    } else {
        Side::New
    };
    let n: usize = shape.iter().product();
    match side {
        Side::Lhs => {
            let b = operand(&rhs, rst);
            let out = lhs.try_storage_mut::<f32>().expect("unique");
            run_all(&shape, &mut out[..n], None, Some(&b), &f);
            lhs
        }
        Side::Rhs => {
            let a = operand(&lhs, lst);
            let out = rhs.try_storage_mut::<f32>().expect("unique");
            run_all(&shape, &mut out[..n], Some(&a), None, &f);
            rhs
        }
        Side::New => {
            let mut out = vec![0.0f32; n];
            run_all(
                &shape,
                &mut out,
                Some(&operand(&lhs, lst)),
                Some(&operand(&rhs, rst)),
                &f,
            );
            tensor(Shape::from(full), out)
        }
    }
}

/// The operand view of `t` with the given (broadcast, collapsed) strides.
fn operand(t: &FlexTensor, strides: Vec<usize>) -> Operand<'_> {
    Operand {
        data: t.storage::<f32>(),
        offset: t.layout().start_offset(),
        strides,
    }
}

/// Where the result goes: a new buffer, or one operand's own.
enum Side {
    New,
    Lhs,
    Rhs,
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

/// Fills `out` run by run (the innermost dimension), in parallel for large outputs. An
/// operand given as `None` is `out` itself (the in-place case).
fn run_all(
    shape: &[usize],
    out: &mut [f32],
    a: Option<&Operand<'_>>,
    b: Option<&Operand<'_>>,
    f: &(impl Fn(f32, f32) -> f32 + Sync),
) {
    let d = shape.len();
    let len = shape[d - 1];
    let n = out.len();
    if len == 0 {
        return;
    }
    // The offset of an operand at the start of run `r` (row-major over the outer dims).
    let start = |op: &Operand<'_>, mut r: usize| {
        let mut off = op.offset;
        for i in (0..d - 1).rev() {
            off += (r % shape[i]) * op.strides[i];
            r /= shape[i];
        }
        off
    };
    let inner = |op: Option<&Operand<'_>>| op.map_or(1, |op| op.strides[d - 1]);
    let (sa, sb) = (inner(a), inner(b));
    let fill = |(r, o): (usize, &mut [f32])| match (a, b) {
        (None, Some(b)) => {
            let ob = start(b, r);
            if sb == 1 {
                o.iter_mut()
                    .zip(&b.data[ob..ob + len])
                    .for_each(|(o, y)| *o = f(*o, *y));
            } else {
                let y = b.data[ob];
                o.iter_mut().for_each(|o| *o = f(*o, y));
            }
        }
        (Some(a), None) => {
            let oa = start(a, r);
            if sa == 1 {
                o.iter_mut()
                    .zip(&a.data[oa..oa + len])
                    .for_each(|(o, x)| *o = f(*x, *o));
            } else {
                let x = a.data[oa];
                o.iter_mut().for_each(|o| *o = f(x, *o));
            }
        }
        (Some(a), Some(b)) => {
            let (oa, ob) = (start(a, r), start(b, r));
            let (xa, xb) = (&a.data[oa..], &b.data[ob..]);
            match (sa, sb) {
                (1, 1) => {
                    for ((o, x), y) in o.iter_mut().zip(&xa[..len]).zip(&xb[..len]) {
                        *o = f(*x, *y);
                    }
                }
                (1, _) => o
                    .iter_mut()
                    .zip(&xa[..len])
                    .for_each(|(o, x)| *o = f(*x, xb[0])),
                (_, 1) => o
                    .iter_mut()
                    .zip(&xb[..len])
                    .for_each(|(o, y)| *o = f(xa[0], *y)),
                _ => o.fill(f(xa[0], xb[0])),
            }
        }
        (None, None) => unreachable!("at most one operand is the output"),
    };
    if n >= PARALLEL_MIN {
        // Several runs per task when runs are short.
        let per = (4096 / len).max(1);
        out.par_chunks_mut(per * len)
            .enumerate()
            .for_each(|(t, chunk)| {
                vectorized(
                    #[inline(always)]
                    || {
                        chunk
                            .chunks_mut(len)
                            .enumerate()
                            .for_each(|(j, o)| fill((t * per + j, o)))
                    },
                )
            });
    } else {
        vectorized(
            #[inline(always)]
            || out.chunks_mut(len).enumerate().for_each(fill),
        );
    }
}
