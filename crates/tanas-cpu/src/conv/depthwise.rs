//! Depthwise convolutions (groups = in = out channels), one channel plane at a time.
//!
//! Stride 1 (the DARTS cells' separable and dilated convolutions) runs on a zero-padded copy
//! of the plane: in a plane of padded width `wp`, every kernel tap reads the input at one
//! fixed offset from the output position, so each tap is one long contiguous multiply-add
//! over all output rows at once (computed at width `wp`, then cropped), not one short run
//! per row. The input gradient of a stride-1 layer is the same kernel on `dy` with the
//! flipped taps; the weight gradient is one long dot product per tap. Other strides walk
//! the kernel taps row run by row run ([`ConvGeom::for_each_run`]).
//!
//! Work is split over planes (forward, input gradient) or channels (weight gradient, which
//! sums the images of a channel in order on one thread).

use rayon::prelude::*;

use super::{ConvGeom, strided};
use crate::reduce::lanes;
use crate::simd::vectorized;

/// A stride-1 depthwise kernel on zero-padded planes: input `h x w`, padded `hp x wp`,
/// output `ho x wo`, computed at width `wp` over `len` positions.
struct Padded {
    h: usize,
    w: usize,
    pad: [usize; 2],
    wp: usize,
    ho: usize,
    wo: usize,
    /// The offset in the padded plane of each tap, row-major over the kernel.
    offsets: Vec<usize>,
    /// Positions of the wide output: `(ho - 1) * wp + wo`.
    len: usize,
    /// Floats of the padded plane.
    plane: usize,
}

impl Padded {
    /// `None` where the output is empty.
    fn new(h: usize, w: usize, pad: [usize; 2], k: [usize; 2], d: [usize; 2]) -> Option<Self> {
        let (hp, wp) = (h + 2 * pad[0], w + 2 * pad[1]);
        let span = |i: usize| d[i] * (k[i] - 1);
        let (ho, wo) = (hp.checked_sub(span(0))?, wp.checked_sub(span(1))?);
        if ho == 0 || wo == 0 || h == 0 || w == 0 {
            return None;
        }
        let offsets = (0..k[0])
            .flat_map(|ki| (0..k[1]).map(move |kj| ki * d[0] * wp + kj * d[1]))
            .collect();
        Some(Self {
            h,
            w,
            pad,
            wp,
            ho,
            wo,
            offsets,
            len: (ho - 1) * wp + wo,
            plane: hp * wp,
        })
    }

    /// The geometry of the forward pass of `g`, if it has stride 1.
    fn forward(g: &ConvGeom) -> Option<Self> {
        if g.stride != [1, 1] {
            return None;
        }
        Self::new(g.h, g.w, g.padding, [g.kh, g.kw], g.dilation)
    }

    /// The geometry of the input gradient of `g` (`dy` padded by `dilation * (k - 1) -
    /// padding`), if it has stride 1 and that padding is not negative.
    fn x_backward(g: &ConvGeom) -> Option<Self> {
        if g.stride != [1, 1] {
            return None;
        }
        let pad = |i: usize, k: usize| (g.dilation[i] * (k - 1)).checked_sub(g.padding[i]);
        let p = Self::new(
            g.ho,
            g.wo,
            [pad(0, g.kh)?, pad(1, g.kw)?],
            [g.kh, g.kw],
            g.dilation,
        )?;
        (p.ho == g.h && p.wo == g.w).then_some(p)
    }

    /// Scratch floats of one task: the padded plane and the wide output.
    fn scratch(&self) -> Vec<f32> {
        vec![0.0; self.plane + self.len]
    }

    /// Copies `x` (`h x w`) into the interior of the padded plane (its border stays zero).
    #[inline(always)]
    fn fill(&self, x: &[f32], padded: &mut [f32]) {
        for (r, row) in x.chunks_exact(self.w).enumerate() {
            let o = (r + self.pad[0]) * self.wp + self.pad[1];
            padded[o..o + self.w].copy_from_slice(row);
        }
    }

    /// `out (ho x wo) = sum over taps t of taps[t] * x shifted by tap t`, on one plane.
    fn plane(&self, x: &[f32], taps: &[f32], out: &mut [f32], scratch: &mut [f32]) {
        vectorized(
            #[inline(always)]
            || {
                let (padded, wide) = scratch.split_at_mut(self.plane);
                self.fill(x, padded);
                let wide = &mut wide[..self.len];
                for (t, (&off, &wv)) in self.offsets.iter().zip(taps).enumerate() {
                    let src = &padded[off..off + self.len];
                    if t == 0 {
                        wide.iter_mut().zip(src).for_each(|(o, &s)| *o = wv * s);
                    } else {
                        wide.iter_mut().zip(src).for_each(|(o, &s)| *o += wv * s);
                    }
                }
                for (r, row) in out.chunks_exact_mut(self.wo).enumerate() {
                    row.copy_from_slice(&wide[r * self.wp..r * self.wp + self.wo]);
                }
            },
        )
    }
}

/// `y = conv(x, w)` without bias, `y: [n, c, ho, wo]`, into `y` (zeroed).
pub(super) fn forward(g: &ConvGeom, x: &[f32], w: &[f32], y: &mut [f32]) {
    let (l, taps) = (g.l(), g.kh * g.kw);
    let weights = |nc: usize| &w[(nc % g.cin) * taps..(nc % g.cin + 1) * taps];
    if let Some(p) = Padded::forward(g) {
        y.par_chunks_mut(l).enumerate().for_each_init(
            || p.scratch(),
            |s, (nc, out)| {
                p.plane(
                    &x[nc * p.h * p.w..(nc + 1) * p.h * p.w],
                    weights(nc),
                    out,
                    s,
                )
            },
        );
        return;
    }
    y.par_chunks_mut(l).enumerate().for_each(|(nc, out)| {
        plane_forward(
            g,
            &x[nc * g.plane()..(nc + 1) * g.plane()],
            weights(nc),
            out,
        );
    });
}

/// `dL/dx: [n, c, h, w]` from `dy: [n, c, ho, wo]`, into `dx` (zeroed).
pub(super) fn x_backward(g: &ConvGeom, w: &[f32], dy: &[f32], dx: &mut [f32]) {
    let (l, plane, taps) = (g.l(), g.plane(), g.kh * g.kw);
    let weights = |nc: usize| &w[(nc % g.cin) * taps..(nc % g.cin + 1) * taps];
    if let Some(p) = Padded::x_backward(g) {
        dx.par_chunks_mut(plane).enumerate().for_each_init(
            || (p.scratch(), vec![0.0f32; taps]),
            |(s, flipped), (nc, out)| {
                flipped
                    .iter_mut()
                    .zip(weights(nc).iter().rev())
                    .for_each(|(f, &v)| *f = v);
                p.plane(&dy[nc * l..(nc + 1) * l], flipped, out, s);
            },
        );
        return;
    }
    dx.par_chunks_mut(plane).enumerate().for_each(|(nc, out)| {
        plane_x_backward(g, weights(nc), &dy[nc * l..(nc + 1) * l], out);
    });
}

/// `dL/dw: [c, 1, kh, kw]` from `x` and `dy`.
pub(super) fn weight_backward(g: &ConvGeom, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let (l, plane, taps) = (g.l(), g.plane(), g.kh * g.kw);
    let mut dw = vec![0.0f32; g.cout * taps];
    let planes = |c: usize| (0..g.n).map(move |n| n * g.cin + c);
    if let Some(p) = Padded::forward(g) {
        dw.par_chunks_mut(taps).enumerate().for_each_init(
            || p.scratch(),
            |s, (c, dwc)| {
                vectorized(
                    #[inline(always)]
                    || {
                        let (padded, wide) = s.split_at_mut(p.plane);
                        let wide = &mut wide[..p.len];
                        for nc in planes(c) {
                            // `dy` at width `wp`: the columns past `wo` stay zero.
                            let dy = &dy[nc * l..(nc + 1) * l];
                            for (r, row) in dy.chunks_exact(p.wo).enumerate() {
                                wide[r * p.wp..r * p.wp + p.wo].copy_from_slice(row);
                            }
                            p.fill(&x[nc * plane..(nc + 1) * plane], padded);
                            for (d, &off) in dwc.iter_mut().zip(&p.offsets) {
                                *d += dot(wide, &padded[off..off + p.len]);
                            }
                        }
                    },
                )
            },
        );
        return dw;
    }
    dw.par_chunks_mut(taps).enumerate().for_each(|(c, dwc)| {
        for nc in planes(c) {
            plane_weight_backward(
                g,
                &x[nc * plane..(nc + 1) * plane],
                &dy[nc * l..(nc + 1) * l],
                dwc,
            );
        }
    });
    dw
}

/// One output plane (`out` starts zeroed), any stride.
fn plane_forward(g: &ConvGeom, x: &[f32], w: &[f32], out: &mut [f32]) {
    vectorized(
        #[inline(always)]
        || {
            g.for_each_run(0..g.ho, |r| {
                let (wv, src) = (w[r.t], &x[r.ih * g.w + r.iw0..]);
                let dst = &mut out[r.oh * g.wo + r.ow0..r.oh * g.wo + r.ow1];
                if g.stride[1] == 1 {
                    dst.iter_mut()
                        .zip(&src[..r.len()])
                        .for_each(|(d, s)| *d += wv * s);
                } else {
                    dst.iter_mut()
                        .zip(strided(src, g.stride[1], r.len()))
                        .for_each(|(d, s)| *d += wv * s);
                }
            });
        },
    )
}

/// One input-gradient plane (`dx` starts zeroed), any stride.
fn plane_x_backward(g: &ConvGeom, w: &[f32], dy: &[f32], dx: &mut [f32]) {
    vectorized(
        #[inline(always)]
        || {
            g.for_each_run(0..g.ho, |r| {
                let (wv, dst) = (w[r.t], &mut dx[r.ih * g.w + r.iw0..]);
                let src = &dy[r.oh * g.wo + r.ow0..r.oh * g.wo + r.ow1];
                if g.stride[1] == 1 {
                    dst[..r.len()]
                        .iter_mut()
                        .zip(src)
                        .for_each(|(d, s)| *d += wv * s);
                } else {
                    dst.iter_mut()
                        .step_by(g.stride[1])
                        .zip(src)
                        .for_each(|(d, s)| *d += wv * s);
                }
            });
        },
    )
}

/// Adds one image's contribution to a channel's weight gradient `dw` (`kh * kw`), any
/// stride: per tap, the sum over its rows, then added to `dw`.
fn plane_weight_backward(g: &ConvGeom, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    vectorized(
        #[inline(always)]
        || {
            let mut acc = vec![0.0f32; dw.len()];
            g.for_each_run(0..g.ho, |r| {
                let src = &x[r.ih * g.w + r.iw0..];
                let d = &dy[r.oh * g.wo + r.ow0..r.oh * g.wo + r.ow1];
                if g.stride[1] == 1 {
                    acc[r.t] += dot(d, &src[..d.len()]);
                } else {
                    for (v, s) in d.iter().zip(strided(src, g.stride[1], d.len())) {
                        acc[r.t] += v * s;
                    }
                }
            });
            dw.iter_mut().zip(&acc).for_each(|(w, a)| *w += a);
        },
    )
}

/// A dot product in fixed order (vectorisable).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (lanes, tail) = lanes(a, b, |x, y| x * y);
    lanes.iter().sum::<f32>() + tail
}
