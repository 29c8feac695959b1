//! 2-D max, average and adaptive average pooling on contiguous NCHW f32 data, forward and
//! backward, one channel plane per task (no sum crosses planes, so no order depends on
//! threads). Padding never wins a max; `ceil_mode` is left to Flex.

use rayon::prelude::*;

/// The sizes of one pooling window sweep over `planes` planes of `h x w`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PoolGeom {
    pub planes: usize,
    pub h: usize,
    pub w: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub ho: usize,
    pub wo: usize,
}

impl PoolGeom {
    /// The geometry without ceil mode (floor of the window count, as PyTorch's default).
    pub(crate) fn new(
        planes: usize,
        [h, w]: [usize; 2],
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
    ) -> Self {
        let out = |len: usize, i: usize| {
            let span = dilation[i] * (kernel[i] - 1) + 1;
            assert!(
                len + 2 * padding[i] >= span,
                "pool2d: window larger than padded input"
            );
            (len + 2 * padding[i] - span) / stride[i] + 1
        };
        Self {
            planes,
            h,
            w,
            kernel,
            stride,
            padding,
            dilation,
            ho: out(h, 0),
            wo: out(w, 1),
        }
    }

    fn plane(&self) -> usize {
        self.h * self.w
    }
    fn l(&self) -> usize {
        self.ho * self.wo
    }
    /// The window taps `t` of output position `o` along axis `i` (0 rows, 1 columns)
    /// whose input position `o * stride + t * dilation - padding` lies inside the input.
    fn taps(&self, i: usize, o: usize) -> std::ops::Range<usize> {
        let len = if i == 0 { self.h } else { self.w };
        let (k, p, d) = (self.kernel[i], self.padding[i], self.dilation[i]);
        let start = o * self.stride[i];
        let lo = if p > start {
            (p - start).div_ceil(d)
        } else {
            0
        };
        let hi = if len + p > start {
            ((len + p - start - 1) / d + 1).min(k)
        } else {
            0
        };
        lo.min(hi)..hi
    }

    /// The input position of tap `t` of output position `o` along axis `i`.
    fn at(&self, i: usize, o: usize, t: usize) -> usize {
        o * self.stride[i] + t * self.dilation[i] - self.padding[i]
    }
}

/// The valid taps of one window along one axis: input positions `first + t * step` for
/// `t < taps`, and the window's size with padding counted (PyTorch's divisor).
#[derive(Clone, Copy)]
struct Window {
    first: usize,
    taps: usize,
    step: usize,
    padded: usize,
}

impl Window {
    fn positions(self) -> impl Iterator<Item = usize> {
        (0..self.taps).map(move |t| self.first + t * self.step)
    }
}

impl PoolGeom {
    /// The windows of every output position along axis `i`.
    fn windows(&self, i: usize) -> Vec<Window> {
        let (out, len) = if i == 0 {
            (self.ho, self.h)
        } else {
            (self.wo, self.w)
        };
        (0..out)
            .map(|o| {
                let taps = self.taps(i, o);
                let start = o * self.stride[i];
                Window {
                    first: if taps.is_empty() {
                        0
                    } else {
                        self.at(i, o, taps.start)
                    },
                    taps: taps.len(),
                    step: self.dilation[i],
                    padded: (start + self.kernel[i]).min(len + 2 * self.padding[i]) - start,
                }
            })
            .collect()
    }

    /// Planes per parallel task: enough elements that a task outweighs its scheduling.
    fn planes_per_task(&self) -> usize {
        (16 * 1024 / (self.plane() + self.l()).max(1)).max(1)
    }

    /// `size` zeros per plane, filled in parallel by `f(plane, its part)`.
    fn per_plane(&self, size: usize, f: impl Fn(usize, &mut [f32]) + Sync) -> Vec<f32> {
        let per = self.planes_per_task();
        let mut out = vec![0.0f32; self.planes * size];
        out.par_chunks_mut((per * size).max(1))
            .enumerate()
            .for_each(|(t, o)| {
                for (j, o) in o.chunks_mut(size.max(1)).enumerate() {
                    f(t * per + j, o);
                }
            });
        out
    }
}

/// Max pooling: the output and, per output, the flat index `ih * w + iw` of the first
/// maximum in its plane.
pub(crate) fn max_forward(g: &PoolGeom, x: &[f32]) -> (Vec<f32>, Vec<i64>) {
    let (l, plane, per) = (g.l(), g.plane(), g.planes_per_task());
    let (rows, cols) = (g.windows(0), g.windows(1));
    let mut out = vec![0.0f32; g.planes * l];
    let mut idx = vec![0i64; g.planes * l];
    out.par_chunks_mut((per * l).max(1))
        .zip(idx.par_chunks_mut((per * l).max(1)))
        .enumerate()
        .for_each(|(t, (o, ix))| {
            for (j, (o, ix)) in o.chunks_mut(l).zip(ix.chunks_mut(l)).enumerate() {
                let p = t * per + j;
                let x = &x[p * plane..(p + 1) * plane];
                if g.kernel == [2, 2]
                    && g.stride == [2, 2]
                    && g.padding == [0, 0]
                    && g.dilation == [1, 1]
                {
                    max_plane_2x2(g, x, o, ix);
                } else {
                    max_plane(g, &rows, &cols, x, o, ix);
                }
            }
        });
    (out, idx)
}

/// One plane of max pooling, any window: the first maximum in row-major window order
/// (the first tap is taken whatever it holds, so a NaN there stays).
fn max_plane(
    g: &PoolGeom,
    rows: &[Window],
    cols: &[Window],
    x: &[f32],
    o: &mut [f32],
    ix: &mut [i64],
) {
    for (oh, wh) in rows.iter().enumerate() {
        let (o, ix) = (
            &mut o[oh * g.wo..(oh + 1) * g.wo],
            &mut ix[oh * g.wo..(oh + 1) * g.wo],
        );
        for ((o, ix), ww) in o.iter_mut().zip(ix.iter_mut()).zip(cols) {
            let (mut best, mut at) = (f32::NEG_INFINITY, -1i64);
            for ih in wh.positions() {
                let row = ih * g.w;
                for iw in ww.positions() {
                    let v = x[row + iw];
                    if at < 0 || v > best {
                        best = v;
                        at = (row + iw) as i64;
                    }
                }
            }
            *o = best;
            *ix = at;
        }
    }
}

/// One plane of 2x2 max pooling with stride 2 and no padding (small-cnn, VGG), in the
/// same order as [`max_plane`].
fn max_plane_2x2(g: &PoolGeom, x: &[f32], o: &mut [f32], ix: &mut [i64]) {
    for oh in 0..g.ho {
        let (i0, i1) = (2 * oh * g.w, (2 * oh + 1) * g.w);
        let (r0, r1) = (&x[i0..i0 + 2 * g.wo], &x[i1..i1 + 2 * g.wo]);
        let (o, ix) = (
            &mut o[oh * g.wo..(oh + 1) * g.wo],
            &mut ix[oh * g.wo..(oh + 1) * g.wo],
        );
        for (ow, (o, ix)) in o.iter_mut().zip(ix.iter_mut()).enumerate() {
            let j = 2 * ow;
            let (mut best, mut at) = (r0[j], i0 + j);
            for (v, i) in [
                (r0[j + 1], i0 + j + 1),
                (r1[j], i1 + j),
                (r1[j + 1], i1 + j + 1),
            ] {
                if v > best {
                    best = v;
                    at = i;
                }
            }
            *o = best;
            *ix = at as i64;
        }
    }
}

/// The gradient of max pooling: each output's gradient goes to its recorded input.
pub(crate) fn max_backward(g: &PoolGeom, dy: &[f32], idx: &[i64]) -> Vec<f32> {
    let l = g.l();
    g.per_plane(g.plane(), |p, d| {
        for (v, &i) in dy[p * l..(p + 1) * l].iter().zip(&idx[p * l..(p + 1) * l]) {
            if let Ok(i) = usize::try_from(i) {
                d[i] += v;
            }
        }
    })
}

/// The windows of every output of a plane (row-major) with its divisor: the window size
/// with padding counted (but not what lies past it, as PyTorch), or the taps inside the
/// input.
fn avg_windows(g: &PoolGeom, count_include_pad: bool) -> Vec<(Window, Window, f32)> {
    let (rows, cols) = (g.windows(0), g.windows(1));
    let size = |w: &Window| if count_include_pad { w.padded } else { w.taps };
    rows.iter()
        .flat_map(|r| {
            cols.iter()
                .map(move |c| (*r, *c, (size(r) * size(c)) as f32))
        })
        .collect()
}

/// Average pooling (dilation 1).
pub(crate) fn avg_forward(g: &PoolGeom, x: &[f32], count_include_pad: bool) -> Vec<f32> {
    let plane = g.plane();
    let windows = avg_windows(g, count_include_pad);
    g.per_plane(g.l(), |p, o| {
        let x = &x[p * plane..(p + 1) * plane];
        for (o, (wh, ww, div)) in o.iter_mut().zip(&windows) {
            let mut s = 0.0f32;
            for ih in wh.positions() {
                for iw in ww.positions() {
                    s += x[ih * g.w + iw];
                }
            }
            *o = s / div;
        }
    })
}

/// The gradient of average pooling.
pub(crate) fn avg_backward(g: &PoolGeom, dy: &[f32], count_include_pad: bool) -> Vec<f32> {
    let l = g.l();
    let windows = avg_windows(g, count_include_pad);
    g.per_plane(g.plane(), |p, d| {
        for (dy, (wh, ww, div)) in dy[p * l..(p + 1) * l].iter().zip(&windows) {
            let v = dy / div;
            for ih in wh.positions() {
                for iw in ww.positions() {
                    d[ih * g.w + iw] += v;
                }
            }
        }
    })
}

/// The input range `[start, end)` of adaptive-pooling output `o` of `out` over `len`.
fn adaptive_range(o: usize, out: usize, len: usize) -> (usize, usize) {
    (o * len / out, ((o + 1) * len).div_ceil(out))
}

/// Adaptive average pooling of `planes` planes of `[h, w]` to `[oh, ow]`.
pub(crate) fn adaptive_avg_forward(
    planes: usize,
    hw: [usize; 2],
    out: [usize; 2],
    x: &[f32],
) -> Vec<f32> {
    let ([h, w], l) = (hw, out[0] * out[1]);
    let mut y = vec![0.0f32; planes * l];
    y.par_chunks_mut(l.max(1)).enumerate().for_each(|(p, o)| {
        let plane = &x[p * h * w..(p + 1) * h * w];
        for oh in 0..out[0] {
            let (h0, h1) = adaptive_range(oh, out[0], h);
            for ow in 0..out[1] {
                let (w0, w1) = adaptive_range(ow, out[1], w);
                let mut s = 0.0f32;
                for ih in h0..h1 {
                    s += plane[ih * w + w0..ih * w + w1].iter().sum::<f32>();
                }
                o[oh * out[1] + ow] = s / ((h1 - h0) * (w1 - w0)) as f32;
            }
        }
    });
    y
}

/// The gradient of adaptive average pooling.
pub(crate) fn adaptive_avg_backward(
    planes: usize,
    hw: [usize; 2],
    out: [usize; 2],
    dy: &[f32],
) -> Vec<f32> {
    let ([h, w], l) = (hw, out[0] * out[1]);
    let mut dx = vec![0.0f32; planes * h * w];
    dx.par_chunks_mut((h * w).max(1))
        .enumerate()
        .for_each(|(p, d)| {
            for oh in 0..out[0] {
                let (h0, h1) = adaptive_range(oh, out[0], h);
                for ow in 0..out[1] {
                    let (w0, w1) = adaptive_range(ow, out[1], w);
                    let v = dy[p * l + oh * out[1] + ow] / ((h1 - h0) * (w1 - w0)) as f32;
                    for ih in h0..h1 {
                        d[ih * w + w0..ih * w + w1].iter_mut().for_each(|x| *x += v);
                    }
                }
            }
        });
    dx
}
