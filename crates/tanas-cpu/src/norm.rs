//! BatchNorm over `[n, c, l]` contiguous data (`l` = height x width) with the batch's own
//! statistics: one pass for the statistics, one for the output; backward one pass for the
//! per-channel sums, one for the input gradient. burn-nn composes it from some twenty
//! element-wise ops and reductions, forward and backward, each a full pass over the tensor.
//!
//! Statistics are summed per channel in a fixed order (plane by plane, 16 lanes within a
//! plane, planes added in f64), so they do not depend on the number of threads.

use rayon::prelude::*;

use crate::reduce::lanes;
use crate::simd::vectorized;

/// The sum of `f(a[i], b[i])`, its lanes added in f64.
#[inline(always)]
fn lanes_sum(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f64 {
    let (lanes, tail) = lanes(a, b, f);
    lanes.iter().map(|&v| v as f64).sum::<f64>() + tail as f64
}

/// The shape of the data: `n` images of `c` channel planes of `l` elements.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Planes {
    pub n: usize,
    pub c: usize,
    pub l: usize,
}

impl Planes {
    /// The planes of channel `ch`, image by image.
    #[inline(always)]
    fn of_channel<'a>(&self, data: &'a [f32], ch: usize) -> impl Iterator<Item = &'a [f32]> {
        let (c, l) = (self.c, self.l);
        (0..self.n).map(move |i| &data[(i * c + ch) * l..(i * c + ch + 1) * l])
    }

    fn count(&self) -> f64 {
        (self.n * self.l).max(1) as f64
    }
}

/// Per channel: the mean and the biased variance (what BatchNorm normalises with).
pub(crate) fn stats(p: Planes, x: &[f32]) -> (Vec<f32>, Vec<f32>) {
    (0..p.c)
        .into_par_iter()
        .map(|ch| {
            vectorized(
                #[inline(always)]
                || {
                    let mean = p
                        .of_channel(x, ch)
                        .map(|s| lanes_sum(s, s, |v, _| v))
                        .sum::<f64>()
                        / p.count();
                    let m = mean as f32;
                    let var = p
                        .of_channel(x, ch)
                        .map(|s| lanes_sum(s, s, |v, _| (v - m) * (v - m)))
                        .sum::<f64>()
                        / p.count();
                    (m, var as f32)
                },
            )
        })
        .unzip()
}

/// `1 / sqrt(var + eps)` per channel.
pub(crate) fn inv_std(var: &[f32], eps: f64) -> Vec<f32> {
    var.iter()
        .map(|&v| (1.0 / (v as f64 + eps).sqrt()) as f32)
        .collect()
}

/// `y = (x - mean) * inv_std * gamma + beta`, per channel.
pub(crate) fn normalize(
    p: Planes,
    x: &[f32],
    mean: &[f32],
    inv_std: &[f32],
    gamma: &[f32],
    beta: &[f32],
) -> Vec<f32> {
    let mut y = vec![0.0f32; x.len()];
    if p.l == 0 {
        return y;
    }
    y.par_chunks_mut(p.l)
        .zip(x.par_chunks(p.l))
        .enumerate()
        .for_each(|(nc, (out, src))| {
            let ch = nc % p.c;
            let scale = inv_std[ch] * gamma[ch];
            let shift = beta[ch] - mean[ch] * scale;
            vectorized(
                #[inline(always)]
                || {
                    out.iter_mut()
                        .zip(src)
                        .for_each(|(o, &v)| *o = v * scale + shift)
                },
            );
        });
    y
}

/// The gradients of [`normalize`] with batch statistics: `(dx, dgamma, dbeta)` from the
/// output gradient `dy`, with `dbeta = sum dy`, `dgamma = sum dy * xhat` and
/// `dx = gamma * inv_std * (dy - dbeta / m - xhat * dgamma / m)` (`m = n * l`).
pub(crate) fn backward(
    p: Planes,
    x: &[f32],
    dy: &[f32],
    mean: &[f32],
    inv_std: &[f32],
    gamma: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (dgamma, dbeta): (Vec<f32>, Vec<f32>) = (0..p.c)
        .into_par_iter()
        .map(|ch| {
            let (m, s) = (mean[ch], inv_std[ch]);
            let mut dg = 0.0f64;
            let mut db = 0.0f64;
            vectorized(
                #[inline(always)]
                || {
                    for (xs, ds) in p.of_channel(x, ch).zip(p.of_channel(dy, ch)) {
                        db += lanes_sum(ds, ds, |d, _| d);
                        dg += lanes_sum(ds, xs, |d, v| d * (v - m));
                    }
                },
            );
            ((dg * s as f64) as f32, db as f32)
        })
        .unzip();
    let mut dx = vec![0.0f32; x.len()];
    if p.l > 0 {
        let count = p.count() as f32;
        dx.par_chunks_mut(p.l)
            .zip(x.par_chunks(p.l).zip(dy.par_chunks(p.l)))
            .enumerate()
            .for_each(|(nc, (out, (xs, ds)))| {
                let ch = nc % p.c;
                let (m, s) = (mean[ch], inv_std[ch]);
                let k = gamma[ch] * s;
                let mean_dy = dbeta[ch] / count;
                let mean_dg = dgamma[ch] / count;
                vectorized(
                    #[inline(always)]
                    || {
                        for ((o, &xv), &d) in out.iter_mut().zip(xs).zip(ds) {
                            *o = k * (d - mean_dy - (xv - m) * s * mean_dg);
                        }
                    },
                );
            });
    }
    (dx, dgamma, dbeta)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The formulas computed naively in f64.
    fn naive(p: Planes, x: &[f32], dy: &[f32], gamma: &[f32]) -> (Vec<f64>, Vec<f64>) {
        let m = p.count();
        let mut dx = vec![0.0; x.len()];
        let mut dg = vec![0.0; p.c];
        for ch in 0..p.c {
            let idx: Vec<usize> = (0..p.n)
                .flat_map(|i| (0..p.l).map(move |j| (i * p.c + ch) * p.l + j))
                .collect();
            let mean = idx.iter().map(|&i| x[i] as f64).sum::<f64>() / m;
            let var = idx
                .iter()
                .map(|&i| (x[i] as f64 - mean).powi(2))
                .sum::<f64>()
                / m;
            let s = 1.0 / (var + 1e-5).sqrt();
            let db: f64 = idx.iter().map(|&i| dy[i] as f64).sum();
            let g: f64 = idx
                .iter()
                .map(|&i| dy[i] as f64 * (x[i] as f64 - mean) * s)
                .sum();
            dg[ch] = g;
            for &i in &idx {
                let xhat = (x[i] as f64 - mean) * s;
                dx[i] = gamma[ch] as f64 * s * (dy[i] as f64 - db / m - xhat * g / m);
            }
        }
        (dx, dg)
    }

    #[test]
    fn backward_matches_the_formula() {
        let p = Planes { n: 3, c: 2, l: 37 };
        let len = p.n * p.c * p.l;
        let x: Vec<f32> = (0..len)
            .map(|i| ((i * 7919) % 101) as f32 / 10.0 - 3.0)
            .collect();
        let dy: Vec<f32> = (0..len)
            .map(|i| ((i * 104729) % 53) as f32 / 20.0 - 1.0)
            .collect();
        let gamma = [0.5f32, -1.5];
        let (mean, var) = stats(p, &x);
        let s = inv_std(&var, 1e-5);
        let (dx, dg, _) = backward(p, &x, &dy, &mean, &s, &gamma);
        let (want_dx, want_dg) = naive(p, &x, &dy, &gamma);
        for (a, b) in dx.iter().zip(&want_dx).chain(dg.iter().zip(&want_dg)) {
            assert!(
                (*a as f64 - b).abs() <= 1e-4 * b.abs().max(1.0),
                "{a} vs {b}"
            );
        }
    }
}
