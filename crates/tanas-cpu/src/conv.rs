//! 2-D convolution on contiguous NCHW f32 data: forward, input gradient, weight gradient,
//! bias gradient.
//!
//! General convolutions go through im2col per image (or per block of output rows, or per
//! few images for small maps), written straight into the gemm layout
//! (`K = Cin/groups * kh * kw` rows, `L = Ho * Wo` columns), and gemm. The input gradient
//! of a stride-1 layer is the convolution of `dy` with the flipped kernel; otherwise gemm
//! and col2im. Depthwise
//! convolutions (groups = in = out channels) use direct loops over channel planes
//! ([`depthwise`]).
//! Work is split over images (forward, input gradient) or over channels (depthwise, bias),
//! so no sum crosses threads; the weight gradient sums a fixed number of parts of the batch,
//! each on one thread, and adds the parts in order.

mod depthwise;

use rayon::prelude::*;

use crate::buffer::with_scratch;
use crate::gemm::{MatMut, MatRef, Threads, matmul};
use crate::simd::vectorized;

/// The sizes of one convolution.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConvGeom {
    pub n: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
    pub ho: usize,
    pub wo: usize,
}

impl ConvGeom {
    /// The geometry of `x [n, cin, h, w]` convolved with `weight [cout, cin/groups, kh, kw]`.
    pub(crate) fn new(
        x: [usize; 4],
        weight: [usize; 4],
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
        groups: usize,
    ) -> Self {
        let [n, cin, h, w] = x;
        let [cout, cin_g, kh, kw] = weight;
        assert!(
            groups > 0 && cin == cin_g * groups && cout % groups == 0,
            "conv2d: channels"
        );
        let out = |len: usize, k: usize, i: usize| {
            let span = dilation[i] * (k - 1) + 1;
            assert!(
                len + 2 * padding[i] >= span,
                "conv2d: kernel larger than padded input"
            );
            (len + 2 * padding[i] - span) / stride[i] + 1
        };
        let (ho, wo) = (out(h, kh, 0), out(w, kw, 1));
        Self {
            n,
            cin,
            h,
            w,
            cout,
            kh,
            kw,
            stride,
            padding,
            dilation,
            groups,
            ho,
            wo,
        }
    }

    fn cin_g(&self) -> usize {
        self.cin / self.groups
    }
    fn cout_g(&self) -> usize {
        self.cout / self.groups
    }
    /// Rows of the im2col matrix of one group.
    fn k(&self) -> usize {
        self.cin_g() * self.kh * self.kw
    }
    /// Output pixels per channel.
    fn l(&self) -> usize {
        self.ho * self.wo
    }
    fn plane(&self) -> usize {
        self.h * self.w
    }
    /// A 1x1 convolution with stride 1 and no padding: the image is its own im2col matrix.
    fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == [1, 1] && self.padding == [0, 0]
    }
    /// One input and one output channel per group.
    pub(crate) fn depthwise(&self) -> bool {
        self.groups == self.cin && self.cout == self.cin
    }
    /// The output positions `o` whose input position `o * stride + offset - pad` lies in
    /// `[0, len)`, for kernel tap offset `offset` along axis `i`.
    fn valid(&self, i: usize, offset: usize, len: usize) -> (usize, usize) {
        let (s, p) = (self.stride[i], self.padding[i]);
        let out = if i == 0 { self.ho } else { self.wo };
        let lo = if p > offset {
            (p - offset).div_ceil(s)
        } else {
            0
        };
        let hi = if len + p > offset {
            ((len + p - offset - 1) / s + 1).min(out)
        } else {
            0
        };
        (lo.min(hi), hi)
    }

    /// Calls `f` with every [`Run`] of the kernel taps over output rows `ohs`: tap by tap
    /// (row-major over the kernel), rows in order, runs that read no input left out.
    #[inline(always)]
    fn for_each_run(&self, ohs: std::ops::Range<usize>, mut f: impl FnMut(Run)) {
        for ki in 0..self.kh {
            let (oh0, oh1) = self.valid(0, ki * self.dilation[0], self.h);
            for kj in 0..self.kw {
                let (ow0, ow1) = self.valid(1, kj * self.dilation[1], self.w);
                if ow1 <= ow0 {
                    continue;
                }
                let iw0 = ow0 * self.stride[1] + kj * self.dilation[1] - self.padding[1];
                for oh in ohs.start.max(oh0)..ohs.end.min(oh1) {
                    let ih = oh * self.stride[0] + ki * self.dilation[0] - self.padding[0];
                    f(Run {
                        t: ki * self.kw + kj,
                        oh,
                        ih,
                        ow0,
                        ow1,
                        iw0,
                    });
                }
            }
        }
    }
}

/// Where one kernel tap meets one output row: output columns `ow0..ow1` of row `oh` read
/// input row `ih` at columns `iw0, iw0 + stride, ...`; `t = ki * kw + kj`.
#[derive(Clone, Copy)]
struct Run {
    t: usize,
    oh: usize,
    ih: usize,
    ow0: usize,
    ow1: usize,
    iw0: usize,
}

impl Run {
    fn len(&self) -> usize {
        self.ow1 - self.ow0
    }
}

/// The `n` elements `src[0], src[stride], ...` of a strided run.
#[inline(always)]
fn strided(src: &[f32], stride: usize, n: usize) -> impl Iterator<Item = &f32> {
    src.iter().step_by(stride).take(n)
}

/// Floats of im2col columns one gemm works on (1 MiB, about one core's L2 cache: resnet18
/// trains 9 % faster than with a quarter of it, which made many narrow gemm calls).
const BLOCK_FLOATS: usize = 256 * 1024;

/// The output rows per im2col block: as many as keep `K x rows * wo` within
/// [`BLOCK_FLOATS`], but enough for [`SMALL_MAP`] columns.
fn block_rows(g: &ConvGeom) -> usize {
    (BLOCK_FLOATS / (g.k() * g.wo).max(1))
        .max(SMALL_MAP.div_ceil(g.wo.max(1)))
        .clamp(1, g.ho.max(1))
}

/// Writes the im2col matrix of output rows `ohs` of one image group (`x`: `cin_g` planes)
/// into `cols`: row `(ci, ki, kj)`, column `(oh - ohs.start) * wo + ow`, rows `ld` apart.
/// Every element of those rows is written, so `cols` may hold anything before.
///
/// Each channel's input rows that the block reads are first copied into a zero-padded
/// buffer; every output row of every tap is then one copy of `wo` elements from it, with
/// no bounds to check and no zeros to write.
fn im2col(g: &ConvGeom, x: &[f32], ohs: std::ops::Range<usize>, cols: &mut [f32], ld: usize) {
    vectorized(
        #[inline(always)]
        || {
            if ohs.is_empty() || g.wo == 0 {
                return;
            }
            let (s, d, p) = (g.stride, g.dilation, g.padding);
            let taps = g.kh * g.kw;
            let width = ohs.len() * g.wo;
            // Padded row r holds input row `first + r - p[0]`, padded column c input column
            // `c - p[1]`; zero where those lie outside the input.
            let rows = (ohs.len() - 1) * s[0] + (g.kh - 1) * d[0] + 1;
            let wp = (g.wo - 1) * s[1] + (g.kw - 1) * d[1] + 1;
            let first = ohs.start * s[0];
            let (lo, hi) = (p[1].min(wp), (p[1] + g.w).min(wp));
            let inside = |r: usize| (first + r).checked_sub(p[0]).filter(|&ih| ih < g.h);
            let mut padded = vec![0.0f32; rows * wp];
            for ci in 0..g.cin_g() {
                let plane = &x[ci * g.plane()..(ci + 1) * g.plane()];
                for r in 0..rows {
                    if let Some(ih) = inside(r) {
                        padded[r * wp + lo..r * wp + hi]
                            .copy_from_slice(&plane[ih * g.w..ih * g.w + hi - lo]);
                    }
                }
                for ki in 0..g.kh {
                    for kj in 0..g.kw {
                        let row = (ci * taps + ki * g.kw + kj) * ld;
                        let row = &mut cols[row..row + width];
                        for (j, dst) in row.chunks_exact_mut(g.wo).enumerate() {
                            let src = &padded[(j * s[0] + ki * d[0]) * wp + kj * d[1]..];
                            if s[1] == 1 {
                                copy_run(dst, &src[..g.wo]);
                            } else {
                                dst.iter_mut()
                                    .zip(strided(src, s[1], g.wo))
                                    .for_each(|(d, s)| *d = *s);
                            }
                        }
                    }
                }
            }
        },
    )
}

/// `dst.copy_from_slice(src)` for im2col's short runs, in fixed 8-float pieces the compiler
/// turns into vector moves (a `memcpy` call costs as much as the copy itself here).
#[inline(always)]
fn copy_run(dst: &mut [f32], src: &[f32]) {
    let (mut d, mut s) = (dst.chunks_exact_mut(8), src.chunks_exact(8));
    for (d, s) in (&mut d).zip(&mut s) {
        let d: &mut [f32; 8] = d.try_into().expect("8 floats");
        *d = s.try_into().expect("8 floats");
    }
    for (d, s) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *d = *s;
    }
}

/// Adds the im2col-shaped gradient `cols` of output rows `ohs` (laid out as [`im2col`]
/// writes them) back onto the image group `dx`.
fn col2im(g: &ConvGeom, cols: &[f32], ld: usize, ohs: std::ops::Range<usize>, dx: &mut [f32]) {
    vectorized(
        #[inline(always)]
        || {
            let taps = g.kh * g.kw;
            for ci in 0..g.cin_g() {
                let plane = &mut dx[ci * g.plane()..(ci + 1) * g.plane()];
                g.for_each_run(ohs.clone(), |r| {
                    let at = (ci * taps + r.t) * ld + (r.oh - ohs.start) * g.wo + r.ow0;
                    let (src, dst) = (&cols[at..at + r.len()], &mut plane[r.ih * g.w + r.iw0..]);
                    if g.stride[1] == 1 {
                        dst[..r.len()]
                            .iter_mut()
                            .zip(src)
                            .for_each(|(d, v)| *d += v);
                    } else {
                        dst.iter_mut()
                            .step_by(g.stride[1])
                            .zip(src)
                            .for_each(|(d, v)| *d += v);
                    }
                });
            }
        },
    )
}

/// The im2col matrices of every image, `[n, cin * kh * kw, ho * wo]` (burn's `unfold4d`;
/// `g` describes a convolution with one group).
pub(crate) fn unfold(g: &ConvGeom, x: &[f32]) -> Vec<f32> {
    let (k, l) = (g.k(), g.l());
    let mut cols = vec![0.0f32; g.n * k * l];
    if k * l == 0 {
        return cols;
    }
    cols.par_chunks_mut(k * l).enumerate().for_each(|(n, c)| {
        im2col(g, image_group(g, x, n, 0), 0..g.ho, c, l);
    });
    cols
}

/// The output-row blocks of one image, each with its column range in a `[_, L]` matrix.
fn blocks(g: &ConvGeom) -> impl Iterator<Item = std::ops::Range<usize>> {
    let step = block_rows(g);
    (0..g.ho)
        .step_by(step)
        .map(move |oh| oh..(oh + step).min(g.ho))
}

/// Images per task of the forward and input-gradient passes: one for large feature maps
/// (split further into row blocks), several for small ones so each gemm stays wide.
fn images_per_task(g: &ConvGeom) -> usize {
    if g.l() >= SMALL_MAP {
        1
    } else {
        SMALL_MAP.div_ceil(g.l()).min(g.n.div_ceil(4)).max(1)
    }
}

/// Output pixels below which several images share one gemm.
const SMALL_MAP: usize = 256;

/// The image group `grp` of image `n` of `x`.
fn image_group<'a>(g: &ConvGeom, x: &'a [f32], n: usize, grp: usize) -> &'a [f32] {
    let size = g.cin_g() * g.plane();
    let off = n * g.cin * g.plane() + grp * size;
    &x[off..off + size]
}

/// Group `grp` of the output of images `n0 .. n0 + c` into `out` (those images' outputs).
#[allow(clippy::too_many_arguments)]
fn forward_group(
    g: &ConvGeom,
    x: &[f32],
    w: &[f32],
    n0: usize,
    c: usize,
    grp: usize,
    out: &mut [f32],
    threads: Threads,
) {
    let (l, k, cout_g) = (g.l(), g.k(), g.cout_g());
    let wg = MatRef::rows(&w[grp * cout_g * k..], cout_g, k, k);
    if c == 1 {
        let og = &mut out[grp * cout_g * l..(grp + 1) * cout_g * l];
        if g.pointwise() {
            let xg = MatRef::rows(image_group(g, x, n0, grp), k, l, l);
            matmul(MatMut::rows(og, cout_g, l, l), wg, xg, false, threads);
            return;
        }
        for ohs in blocks(g) {
            let (c0, lb) = (ohs.start * g.wo, ohs.len() * g.wo);
            with_scratch(k * lb, |cols| {
                im2col(g, image_group(g, x, n0, grp), ohs.clone(), cols, lb);
                let dst = MatMut::rows(&mut og[c0..], cout_g, lb, l);
                matmul(dst, wg, MatRef::rows(cols, k, lb, lb), false, threads);
            });
        }
        return;
    }
    // Image j in columns [j * l, (j + 1) * l) of the im2col matrix and of the product.
    let ld = c * l;
    with_scratch((k + cout_g) * ld, |buf| {
        let (cols, prod) = buf.split_at_mut(k * ld);
        for j in 0..c {
            im2col(
                g,
                image_group(g, x, n0 + j, grp),
                0..g.ho,
                &mut cols[j * l..],
                ld,
            );
        }
        matmul(
            MatMut::rows(prod, cout_g, ld, ld),
            wg,
            MatRef::rows(cols, k, ld, ld),
            false,
            threads,
        );
        for j in 0..c {
            for co in 0..cout_g {
                let dst = (j * g.cout + grp * cout_g + co) * l;
                out[dst..dst + l].copy_from_slice(&prod[co * ld + j * l..co * ld + (j + 1) * l]);
            }
        }
    });
}

/// `y = conv(x, w) + bias`, `y: [n, cout, ho, wo]`.
pub(crate) fn forward(g: &ConvGeom, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let l = g.l();
    let mut y = vec![0.0f32; g.n * g.cout * l];
    if g.n == 0 || l == 0 {
        return y;
    }
    if g.depthwise() {
        depthwise::forward(g, x, w, &mut y);
    } else {
        let c = images_per_task(g);
        let threads = if g.n <= c { Threads::All } else { Threads::One };
        y.par_chunks_mut(c * g.cout * l)
            .enumerate()
            .for_each(|(t, out)| {
                let n0 = t * c;
                let c = out.len() / (g.cout * l);
                for grp in 0..g.groups {
                    forward_group(g, x, w, n0, c, grp, out, threads);
                }
            });
    }
    if let Some(b) = bias {
        y.par_chunks_mut(l).enumerate().for_each(|(nc, out)| {
            let v = b[nc % g.cout];
            out.iter_mut().for_each(|o| *o += v);
        });
    }
    y
}

/// `dL/dx` from `dy: [n, cout, ho, wo]`.
pub(crate) fn x_backward(g: &ConvGeom, w: &[f32], dy: &[f32]) -> Vec<f32> {
    let (l, plane) = (g.l(), g.plane());
    let mut dx = vec![0.0f32; g.n * g.cin * plane];
    if g.n == 0 || l == 0 {
        return dx;
    }
    if g.depthwise() {
        depthwise::x_backward(g, w, dy, &mut dx);
        return dx;
    }
    if let Some((gt, wt)) = transposed(g, w) {
        return forward(&gt, dy, &wt, None);
    }
    let c = images_per_task(g);
    let threads = if g.n <= c { Threads::All } else { Threads::One };
    dx.par_chunks_mut(c * g.cin * plane)
        .enumerate()
        .for_each(|(t, dxc)| {
            let n0 = t * c;
            let c = dxc.len() / (g.cin * plane);
            for grp in 0..g.groups {
                x_backward_group(g, w, dy, n0, c, grp, dxc, threads);
            }
        });
    dx
}

/// For stride 1, the input gradient is itself a convolution: of `dy` with the flipped,
/// transposed kernel, padded by `dilation * (k - 1) - padding` (which must not be negative).
/// Its gemm sums over `cout * kh * kw` instead of `cout`, which keeps it as fast as the
/// forward pass. Returns that convolution's geometry and kernel, where this pays.
fn transposed(g: &ConvGeom, w: &[f32]) -> Option<(ConvGeom, Vec<f32>)> {
    // Few input channels make a thin gemm, and a 1x1 kernel sums over `cout` already.
    if g.stride != [1, 1] || g.cin_g() < 16 || g.pointwise() {
        return None;
    }
    let pad = |i: usize, k: usize| (g.dilation[i] * (k - 1)).checked_sub(g.padding[i]);
    let padding = [pad(0, g.kh)?, pad(1, g.kw)?];
    let (cin_g, cout_g, taps) = (g.cin_g(), g.cout_g(), g.kh * g.kw);
    // wt[ci, co_local, kh - 1 - ki, kw - 1 - kj] = w[grp * cout_g + co_local, ci_local, ki, kj]
    let mut wt = vec![0.0f32; g.cin * cout_g * taps];
    for grp in 0..g.groups {
        for col in 0..cout_g {
            for cil in 0..cin_g {
                let src = &w[((grp * cout_g + col) * cin_g + cil) * taps..][..taps];
                let dst = &mut wt[((grp * cin_g + cil) * cout_g + col) * taps..][..taps];
                for (d, s) in dst.iter_mut().zip(src.iter().rev()) {
                    *d = *s;
                }
            }
        }
    }
    let gt = ConvGeom::new(
        [g.n, g.cout, g.ho, g.wo],
        [g.cin, cout_g, g.kh, g.kw],
        [1, 1],
        padding,
        g.dilation,
        g.groups,
    );
    debug_assert_eq!((gt.ho, gt.wo), (g.h, g.w));
    Some((gt, wt))
}

/// Group `grp` of the input gradient of images `n0 .. n0 + c` into `dx` (those images').
#[allow(clippy::too_many_arguments)]
fn x_backward_group(
    g: &ConvGeom,
    w: &[f32],
    dy: &[f32],
    n0: usize,
    c: usize,
    grp: usize,
    dx: &mut [f32],
    threads: Threads,
) {
    let (l, k, cout_g, plane) = (g.l(), g.k(), g.cout_g(), g.plane());
    // w_g^T: K x cout_g
    let wg = MatRef::rows(&w[grp * cout_g * k..], cout_g, k, k).t();
    let group = (grp * g.cin_g() * plane, g.cin_g() * plane);
    fn dx_of(dx: &mut [f32], j: usize, per_image: usize, (off, len): (usize, usize)) -> &mut [f32] {
        &mut dx[j * per_image + off..j * per_image + off + len]
    }
    let dy_of = |j: usize| {
        let off = ((n0 + j) * g.cout + grp * cout_g) * l;
        &dy[off..off + cout_g * l]
    };
    if c == 1 {
        let dxg = dx_of(dx, 0, g.cin * plane, group);
        if g.pointwise() {
            let dyg = MatRef::rows(dy_of(0), cout_g, l, l);
            matmul(MatMut::rows(dxg, k, l, l), wg, dyg, false, threads);
            return;
        }
        for ohs in blocks(g) {
            let (c0, lb) = (ohs.start * g.wo, ohs.len() * g.wo);
            with_scratch(k * lb, |cols| {
                let dyb = MatRef::rows(&dy_of(0)[c0..], cout_g, lb, l);
                matmul(MatMut::rows(cols, k, lb, lb), wg, dyb, false, threads);
                col2im(g, cols, lb, ohs.clone(), dxg);
            });
        }
        return;
    }
    let ld = c * l;
    with_scratch((k + cout_g) * ld, |buf| {
        let (cols, dyc) = buf.split_at_mut(k * ld);
        for j in 0..c {
            for co in 0..cout_g {
                dyc[co * ld + j * l..co * ld + (j + 1) * l]
                    .copy_from_slice(&dy_of(j)[co * l..(co + 1) * l]);
            }
        }
        let dyc = MatRef::rows(dyc, cout_g, ld, ld);
        matmul(MatMut::rows(cols, k, ld, ld), wg, dyc, false, threads);
        for j in 0..c {
            col2im(
                g,
                &cols[j * l..],
                ld,
                0..g.ho,
                dx_of(dx, j, g.cin * plane, group),
            );
        }
    });
}

/// The number of partial weight gradients: the batch is split into this many parts (fewer
/// for smaller batches), each summed on one thread, and the parts are added in order. Fixed
/// so that the sums do not depend on the number of threads.
const WEIGHT_GRAD_PARTS: usize = 4;

/// Floats all partial weight gradients of one call may take (16 MiB).
const PARTIALS_MAX: usize = 4 << 20;

/// Columns (images x output pixels) of one weight-gradient gemm, at least: small feature
/// maps are batched so the gemm's inner dimension stays long.
const WEIGHT_GRAD_COLUMNS: usize = 1024;

/// `dL/dw: [cout, cin/groups, kh, kw]` from `x` and `dy`.
pub(crate) fn weight_backward(g: &ConvGeom, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let (l, k) = (g.l(), g.k());
    if g.n == 0 || l == 0 {
        return vec![0.0f32; g.cout * k];
    }
    if g.depthwise() {
        return depthwise::weight_backward(g, x, dy);
    }
    // Large kernels take one part (the gemm itself splits them among threads): their
    // partial sums would cost more memory than they save time.
    let parts = WEIGHT_GRAD_PARTS
        .min(g.n)
        .min((PARTIALS_MAX / (g.cout * k).max(1)).max(1));
    let threads = if parts == 1 {
        Threads::All
    } else {
        Threads::One
    };
    let partials: Vec<Vec<f32>> = (0..parts)
        .into_par_iter()
        .map(|p| {
            let mut dw = vec![0.0f32; g.cout * k];
            weight_backward_images(
                g,
                x,
                dy,
                p * g.n / parts..(p + 1) * g.n / parts,
                &mut dw,
                threads,
            );
            dw
        })
        .collect();
    add_in_order(partials)
}

/// The element-wise sum of `parts` (one or more of equal length), added part after part so
/// the result does not depend on the number of threads.
fn add_in_order(parts: Vec<Vec<f32>>) -> Vec<f32> {
    let mut iter = parts.into_iter();
    let mut sum = iter.next().unwrap_or_default();
    for part in iter {
        sum.par_chunks_mut(4096)
            .zip(part.par_chunks(4096))
            .for_each(|(d, s)| {
                d.iter_mut().zip(s).for_each(|(d, s)| *d += s);
            });
    }
    sum
}

/// Adds the weight gradient of images `range` to `dw`, a few images per gemm.
fn weight_backward_images(
    g: &ConvGeom,
    x: &[f32],
    dy: &[f32],
    range: std::ops::Range<usize>,
    dw: &mut [f32],
    threads: Threads,
) {
    let (l, plane, k) = (g.l(), g.plane(), g.k());
    let (cin_g, cout_g) = (g.cin_g(), g.cout_g());
    let chunk = WEIGHT_GRAD_COLUMNS.div_ceil(l).max(1);
    for start in range.clone().step_by(chunk) {
        let c = chunk.min(range.end - start);
        let ld = c * l;
        for grp in 0..g.groups {
            let image = |j: usize| {
                let off = ((start + j) * g.cin + grp * cin_g) * plane;
                &x[off..off + cin_g * plane]
            };
            let dwg = MatMut::rows(&mut dw[grp * cout_g * k..], cout_g, k, k);
            let dy_of = |j: usize| &dy[((start + j) * g.cout + grp * cout_g) * l..];
            if c == 1 && g.pointwise() {
                let dyg = MatRef::rows(dy_of(0), cout_g, l, l);
                matmul(dwg, dyg, MatRef::rows(image(0), k, l, l).t(), true, threads);
                continue;
            }
            // The chunk's im2col matrix transposed (`c * l` rows of `k` taps: gemm reads it
            // without repacking) and its output gradient as `cout_g x (c * l)`.
            with_scratch((k + cout_g) * ld + k * l, |buf| {
                let (rows, rest) = buf.split_at_mut(k * ld);
                let (dyc, cols) = rest.split_at_mut(cout_g * ld);
                if threads == Threads::All {
                    // One part for the whole batch: its images' matrices in parallel.
                    rows.par_chunks_mut(l * k).enumerate().for_each(|(j, r)| {
                        with_scratch(k * l, |cols| im2row(g, image(j), cols, r));
                    });
                } else {
                    for j in 0..c {
                        im2row(g, image(j), cols, &mut rows[j * l * k..(j + 1) * l * k]);
                    }
                }
                let lhs = if c == 1 {
                    MatRef::rows(dy_of(0), cout_g, l, l)
                } else {
                    for j in 0..c {
                        for co in 0..cout_g {
                            dyc[co * ld + j * l..co * ld + (j + 1) * l]
                                .copy_from_slice(&dy_of(j)[co * l..(co + 1) * l]);
                        }
                    }
                    MatRef::rows(dyc, cout_g, ld, ld)
                };
                matmul(dwg, lhs, MatRef::rows(rows, ld, k, k), true, threads);
            });
        }
    }
}

/// The transposed im2col matrix of one image group: row `oh * wo + ow` holds the `K` taps
/// `(ci, ki, kj)` of that output pixel. Written as im2col (contiguous runs) into `cols`
/// (`K x L`), then transposed in 8 x 8 blocks (rows of 8 floats in, rows of 8 out).
fn im2row(g: &ConvGeom, x: &[f32], cols: &mut [f32], rows: &mut [f32]) {
    vectorized(
        #[inline(always)]
        || {
            let (k, l) = (g.k(), g.l());
            im2col(g, x, 0..g.ho, cols, l);
            let (k8, l8) = (k / 8 * 8, l / 8 * 8);
            for k0 in (0..k8).step_by(8) {
                for l0 in (0..l8).step_by(8) {
                    let mut block = [[0.0f32; 8]; 8];
                    for (i, b) in block.iter_mut().enumerate() {
                        let at = (k0 + i) * l + l0;
                        b.copy_from_slice(&cols[at..at + 8]);
                    }
                    for j in 0..8 {
                        let at = (l0 + j) * k + k0;
                        let out: &mut [f32; 8] =
                            (&mut rows[at..at + 8]).try_into().expect("8 floats");
                        for (o, b) in out.iter_mut().zip(&block) {
                            *o = b[j];
                        }
                    }
                }
            }
            // The edges: rows past the last full block of 8, then columns past it.
            for r in (k8..k).chain(0..k8) {
                let cs = if r < k8 { l8..l } else { 0..l };
                for c in cs {
                    rows[c * k + r] = cols[r * l + c];
                }
            }
        },
    )
}

/// `sum_i (dL_i/dw)^2`, elementwise, `[cout, cin/groups, kh, kw]`: the squared weight
/// gradients of the images one by one (as [`weight_backward`] computes them for a batch of
/// one), summed over images in at most [`WEIGHT_GRAD_PARTS`] fixed parts added in order.
/// The per-image products are never stored together.
pub(crate) fn weight_grad_sq_sum(g: &ConvGeom, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let one = ConvGeom { n: 1, ..*g };
    let (xs, ys, size) = (g.cin * g.plane(), g.cout * g.l(), g.cout * g.k());
    let parts = WEIGHT_GRAD_PARTS
        .min(g.n)
        .min((PARTIALS_MAX / size.max(1)).max(1))
        .max(1);
    let partials: Vec<Vec<f32>> = (0..parts)
        .into_par_iter()
        .map(|p| {
            let mut acc = vec![0.0f32; size];
            for i in p * g.n / parts..(p + 1) * g.n / parts {
                let d = weight_backward(&one, &x[i * xs..(i + 1) * xs], &dy[i * ys..(i + 1) * ys]);
                acc.iter_mut().zip(&d).for_each(|(a, v)| *a += v * v);
            }
            acc
        })
        .collect();
    add_in_order(partials)
}

/// `dL/dbias: [cout]`: the sum of `dy: [n, cout, l]` over images and pixels, per channel in
/// eight lanes (vectorisable, fixed order).
pub(crate) fn bias_backward(n: usize, cout: usize, l: usize, dy: &[f32]) -> Vec<f32> {
    (0..cout)
        .into_par_iter()
        .map(|c| {
            vectorized(
                #[inline(always)]
                || {
                    let mut lanes = [0.0f32; 8];
                    let mut s = 0.0f32;
                    for i in 0..n {
                        let p = &dy[(i * cout + c) * l..(i * cout + c + 1) * l];
                        let chunks = p.chunks_exact(8);
                        s += chunks.remainder().iter().sum::<f32>();
                        for ch in chunks {
                            for (lane, v) in lanes.iter_mut().zip(ch) {
                                *lane += v;
                            }
                        }
                    }
                    s + lanes.iter().sum::<f32>()
                },
            )
        })
        .collect()
}
