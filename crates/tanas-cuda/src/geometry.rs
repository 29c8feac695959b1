//! The shapes and parameters of a 2-D convolution as cuDNN takes them: NCHW input, KCRS
//! filter (`C` the channels of one group), NCHW output, pads, strides, dilations, group count,
//! checked and converted to cuDNN's `int`s.

use burn_backend::ops::ConvOptions;
use burn_backend::ops::conv::calculate_conv_output_size;

/// One convolution's geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Conv2dGeometry {
    /// Input `[N, C_in, H, W]`.
    pub x: [i32; 4],
    /// Filter `[C_out, C_in / groups, KH, KW]`.
    pub w: [i32; 4],
    /// Output `[N, C_out, OH, OW]`.
    pub y: [i32; 4],
    /// Zero padding (height, width).
    pub pad: [i32; 2],
    /// Strides (height, width).
    pub stride: [i32; 2],
    /// Dilations (height, width).
    pub dilation: [i32; 2],
    /// Groups.
    pub groups: i32,
}

impl Conv2dGeometry {
    /// The geometry of a convolution of `x` (shape `[N, C_in, H, W]`) with `w` (`[C_out,
    /// C_in / groups, KH, KW]`) under `options`; an error in words where they do not fit.
    pub fn new(x: &[usize], w: &[usize], options: &ConvOptions<2>) -> Result<Self, String> {
        let (&[n, c_in, h, wd], &[c_out, c_group, kh, kw]) = (x, w) else {
            return Err(format!(
                "conv2d of a {x:?} input and a {w:?} filter: 4-D expected"
            ));
        };
        let groups = options.groups;
        if groups == 0 || c_in != c_group * groups || c_out % groups != 0 {
            return Err(format!(
                "conv2d: {c_in} input channels, filter {w:?}, {groups} groups do not fit"
            ));
        }
        if options.stride.contains(&0) || options.dilation.contains(&0) {
            return Err(format!(
                "conv2d: stride {:?}, dilation {:?}",
                options.stride, options.dilation
            ));
        }
        let out = |i: usize, k: usize, size: usize| {
            let reach = options.dilation[i] * (k.max(1) - 1) + 1;
            (size + 2 * options.padding[i] >= reach).then(|| {
                calculate_conv_output_size(
                    k,
                    options.stride[i],
                    options.padding[i],
                    options.dilation[i],
                    size,
                )
            })
        };
        let (Some(oh), Some(ow)) = (out(0, kh, h), out(1, kw, wd)) else {
            return Err(format!(
                "conv2d: a {kh}x{kw} filter does not fit a padded {h}x{wd} input"
            ));
        };
        let int = |v: usize| {
            i32::try_from(v).map_err(|_| format!("conv2d: {v} does not fit cuDNN's int"))
        };
        let four = |a: [usize; 4]| -> Result<[i32; 4], String> {
            Ok([int(a[0])?, int(a[1])?, int(a[2])?, int(a[3])?])
        };
        let two = |a: [usize; 2]| -> Result<[i32; 2], String> { Ok([int(a[0])?, int(a[1])?]) };
        Ok(Self {
            x: four([n, c_in, h, wd])?,
            w: four([c_out, c_group, kh, kw])?,
            y: four([n, c_out, oh, ow])?,
            pad: two(options.padding)?,
            stride: two(options.stride)?,
            dilation: two(options.dilation)?,
            groups: int(groups)?,
        })
    }

    /// The output shape as burn's `usize`s.
    pub fn output_shape(&self) -> [usize; 4] {
        self.y.map(|v| v as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(stride: usize, padding: usize, dilation: usize, groups: usize) -> ConvOptions<2> {
        ConvOptions::new([stride; 2], [padding; 2], [dilation; 2], groups)
    }

    #[test]
    fn shapes_of_the_zoo_s_convolutions() {
        // small-cnn conv1, a ResNet stride-2 3x3, a DARTS depthwise dilated 5x5 (groups = C).
        let g = Conv2dGeometry::new(&[128, 3, 32, 32], &[32, 3, 3, 3], &options(1, 1, 1, 1))
            .expect("fits");
        assert_eq!(g.output_shape(), [128, 32, 32, 32]);
        let g = Conv2dGeometry::new(&[8, 64, 32, 32], &[128, 64, 3, 3], &options(2, 1, 1, 1))
            .expect("fits");
        assert_eq!(g.output_shape(), [8, 128, 16, 16]);
        let g = Conv2dGeometry::new(&[4, 16, 15, 15], &[16, 1, 5, 5], &options(1, 4, 2, 16))
            .expect("fits");
        assert_eq!(
            (g.output_shape(), g.groups, g.w),
            ([4, 16, 15, 15], 16, [16, 1, 5, 5])
        );
        // The exact Fisher's per-sample weight gradients of ResNet-18's layer4 conv, 113
        // samples folded into the group count (tanas-fisher's `folded`).
        let g = Conv2dGeometry::new(
            &[1, 113 * 512, 4, 4],
            &[113 * 512, 512, 3, 3],
            &options(1, 1, 1, 113),
        )
        .expect("fits");
        assert_eq!((g.output_shape(), g.groups), ([1, 113 * 512, 4, 4], 113));
        // A stride that leaves the last input row out: burn's formula (floor).
        let g =
            Conv2dGeometry::new(&[1, 1, 8, 7], &[1, 1, 3, 3], &options(2, 0, 1, 1)).expect("fits");
        assert_eq!(g.output_shape(), [1, 1, 3, 3]);
    }

    #[test]
    fn what_does_not_fit_is_an_error() {
        let e = |x: &[usize], w: &[usize], o: ConvOptions<2>| {
            Conv2dGeometry::new(x, w, &o).expect_err("does not fit")
        };
        assert!(e(&[1, 4, 8, 8], &[8, 3, 3, 3], options(1, 0, 1, 1)).contains("do not fit"));
        assert!(e(&[1, 4, 8, 8], &[6, 1, 3, 3], options(1, 0, 1, 4)).contains("do not fit"));
        assert!(
            e(&[1, 4, 2, 2], &[4, 4, 5, 5], options(1, 0, 1, 1)).contains("does not fit a padded")
        );
        assert!(e(&[1, 4, 8], &[4, 4, 3, 3], options(1, 0, 1, 1)).contains("4-D"));
        assert!(e(&[1 << 32, 4, 8, 8], &[4, 4, 3, 3], options(1, 0, 1, 1)).contains("int"));
    }
}
