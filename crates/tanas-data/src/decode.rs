//! The rule that turns a decoded image of any size and channel count into a dataset image:
//! resized (stretched) to `side x side` with a bilinear filter (`image`'s `Triangle`, the
//! filter of torchvision's `Resize((side, side))` on tensors), grey kept grey, colour as RGB,
//! alpha dropped (not composited), 16-bit samples scaled to 8 bits. A set with any colour image
//! stores every image as RGB (grey copied to three channels) (docs/decisions.md).

use std::collections::BTreeMap;
use std::path::Path;

use image::imageops::{FilterType, resize};
use image::{DynamicImage, GrayImage, ImageReader, Limits};

use crate::image_set::ImageSet;

/// Largest width or height of an image file that is decoded; a larger one (a decompression
/// bomb, or a photo far beyond what a 32-128 pixel network input needs) is an error.
pub const MAX_IMAGE_SIDE: u32 = 16_384;

/// Most bytes one image may take once decoded.
const MAX_IMAGE_BYTES: u64 = 256 << 20;

/// Largest network input side a dataset may declare (`input_side`).
pub const MAX_INPUT_SIDE: usize = 128;

/// Smallest `input_side` (smaller images are centred in the 32-pixel input unchanged).
pub const MIN_INPUT_SIDE: usize = 8;

/// One image at the dataset's side: 1 (grey) or 3 (RGB) channels, `C x side x side`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Picture {
    /// Whether it has colour (3 channels).
    pub colour: bool,
    /// Channel-major pixels.
    pub pixels: Vec<u8>,
}

/// Images of one split with their class labels and the sizes they had before resizing.
#[derive(Debug, Clone, Default)]
pub(crate) struct Collected {
    /// The images, in order.
    pub pictures: Vec<Picture>,
    /// Class label of each image.
    pub labels: Vec<u16>,
    /// `"WxH"` (and `" rgb"` for colour) -> number of images of that original size.
    pub sizes: BTreeMap<String, usize>,
}

impl Collected {
    /// Adds one image of original size `w x h`.
    pub fn push(&mut self, picture: Picture, label: u16, (w, h): (u32, u32)) {
        let key = format!("{w}x{h}{}", if picture.colour { " rgb" } else { "" });
        *self.sizes.entry(key).or_default() += 1;
        self.pictures.push(picture);
        self.labels.push(label);
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Appends `other`'s images.
    pub fn extend(&mut self, other: Collected) {
        self.pictures.extend(other.pictures);
        self.labels.extend(other.labels);
        for (k, v) in other.sizes {
            *self.sizes.entry(k).or_default() += v;
        }
    }

    /// The first `n` images of each class, in order (sizes count what was read).
    pub fn first_per_class(self, n: usize) -> Collected {
        let mut seen: BTreeMap<u16, usize> = BTreeMap::new();
        let keep: Vec<bool> = self
            .labels
            .iter()
            .map(|&l| {
                let c = seen.entry(l).or_default();
                *c += 1;
                *c > n
            })
            .collect();
        self.partition(&keep).0
    }

    /// (images where `mask` is false, images where it is true), each in order; the sizes
    /// stay with the first.
    pub fn partition(self, mask: &[bool]) -> (Collected, Collected) {
        let (mut a, mut b) = (Collected::default(), Collected::default());
        a.sizes = self.sizes;
        for ((p, l), &m) in self.pictures.into_iter().zip(self.labels).zip(mask) {
            let part = if m { &mut b } else { &mut a };
            part.pictures.push(p);
            part.labels.push(l);
        }
        (a, b)
    }

    /// Whether any image has colour.
    pub fn any_colour(&self) -> bool {
        self.pictures.iter().any(|p| p.colour)
    }

    /// The images as an [`ImageSet`] of `channels` (1, or 3: grey images copied to each).
    pub fn into_set(self, side: usize, channels: usize) -> ImageSet {
        let plane = side * side;
        let mut pixels = Vec::with_capacity(self.pictures.len() * channels * plane);
        for p in &self.pictures {
            if p.colour || channels == 1 {
                pixels.extend_from_slice(&p.pixels);
            } else {
                for _ in 0..channels {
                    pixels.extend_from_slice(&p.pixels);
                }
            }
        }
        ImageSet {
            channels,
            height: side,
            width: side,
            pixels,
            labels: self.labels,
            coarse_labels: None,
        }
    }
}

/// Decodes an image file (PNG, JPEG or BMP, recognised by content) within the size limits,
/// and applies the rule at `side`. Returns the picture and the file's original size.
pub(crate) fn decode_file(path: &Path, side: usize) -> Result<(Picture, (u32, u32)), String> {
    // The limits refuse a bomb from its header, before any allocation; only then is the
    // header read again, for the dimensions it declares.
    let image = reader(path)?.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => {
            let declared = reader(path).and_then(|mut r| {
                r.no_limits();
                r.into_dimensions().map_err(|e| e.to_string())
            });
            match declared {
                Ok((w, h)) if w > MAX_IMAGE_SIDE || h > MAX_IMAGE_SIDE => format!(
                    "declares {w}x{h} pixels, more than the limit of {MAX_IMAGE_SIDE} a side"
                ),
                _ => format!("unreadable image: {e}"),
            }
        }
        e => format!("unreadable image: {e}"),
    })?;
    let size = (image.width(), image.height());
    Ok((from_dynamic(image, side), size))
}

/// A reader of the image file at `path`, its format recognised by content, within the limits.
fn reader(path: &Path) -> Result<ImageReader<std::io::BufReader<std::fs::File>>, String> {
    let mut reader = ImageReader::open(path)
        .map_err(|e| e.to_string())?
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    if reader.format().is_none() {
        return Err("not a PNG, JPEG or BMP image".into());
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_IMAGE_BYTES);
    reader.limits(limits);
    Ok(reader)
}

/// The rule applied to a decoded image.
pub(crate) fn from_dynamic(image: DynamicImage, side: usize) -> Picture {
    let s = side as u32;
    if image.color().has_color() {
        let rgb = image.into_rgb8();
        let rgb = if rgb.dimensions() == (s, s) {
            rgb
        } else {
            resize(&rgb, s, s, FilterType::Triangle)
        };
        let plane = side * side;
        let mut pixels = vec![0; 3 * plane];
        for (i, px) in rgb.pixels().enumerate() {
            for c in 0..3 {
                pixels[c * plane + i] = px.0[c];
            }
        }
        Picture {
            colour: true,
            pixels,
        }
    } else {
        grey(image.into_luma8(), side)
    }
}

/// A grey image of `w x h` row-major pixels, under the rule.
pub(crate) fn from_grey(w: usize, h: usize, pixels: &[u8], side: usize) -> Picture {
    let image = GrayImage::from_raw(w as u32, h as u32, pixels.to_vec())
        .expect("w * h pixels make a w x h image");
    grey(image, side)
}

fn grey(image: GrayImage, side: usize) -> Picture {
    let s = side as u32;
    let image = if image.dimensions() == (s, s) {
        image
    } else {
        resize(&image, s, s, FilterType::Triangle)
    };
    Picture {
        colour: false,
        pixels: image.into_raw(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgba, RgbaImage};

    #[test]
    fn grey_at_its_side_is_unchanged_and_colour_is_planar() {
        let px: Vec<u8> = (0..16).collect();
        assert_eq!(from_grey(4, 4, &px, 4).pixels, px);
        let img = RgbaImage::from_fn(2, 2, |x, y| Rgba([x as u8, y as u8, 7, 0]));
        let p = from_dynamic(DynamicImage::ImageRgba8(img), 2);
        assert!(p.colour);
        // R plane, G plane, B plane; alpha (0 here) dropped, not composited.
        assert_eq!(p.pixels, vec![0, 1, 0, 1, 0, 0, 1, 1, 7, 7, 7, 7]);
    }

    #[test]
    fn resizing_keeps_a_flat_image_flat_and_mixed_sets_become_rgb() {
        let p = from_grey(10, 6, &[200; 60], 4);
        assert_eq!(p.pixels, vec![200; 16]);
        let mut c = Collected::default();
        c.push(p, 0, (10, 6));
        c.push(
            Picture {
                colour: true,
                pixels: vec![1; 48],
            },
            1,
            (4, 4),
        );
        assert!(c.any_colour());
        assert_eq!(c.sizes.keys().collect::<Vec<_>>(), ["10x6", "4x4 rgb"]);
        let set = c.into_set(4, 3);
        assert_eq!(set.pixels.len(), 2 * 48);
        assert!(set.image(0).iter().all(|&v| v == 200));
    }
}
