//! [`ImageSet`]: the images and labels of one split of a dataset, as stored on disk (u8 pixels).

/// The images and labels of one split (train or test) of a dataset.
///
/// Pixels are kept as the u8 values of the files, channel-major per image (`C x H x W`),
/// so that a whole dataset stays compact in memory; conversion to network input happens
/// per item (see [`crate::batch`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSet {
    /// Channels per image (1 for MNIST-like, 3 for CIFAR).
    pub channels: usize,
    /// Image height in pixels.
    pub height: usize,
    /// Image width in pixels.
    pub width: usize,
    /// All pixels, `len() * channels * height * width` bytes.
    pub pixels: Vec<u8>,
    /// The (fine) class label of each image.
    pub labels: Vec<u16>,
    /// The coarse (superclass) label of each image, where the dataset has them (CIFAR-100).
    pub coarse_labels: Option<Vec<u16>>,
}

impl ImageSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Bytes per image.
    pub fn image_size(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// The pixels of image `index` (`C x H x W`). Panics if `index >= len()`.
    pub fn image(&self, index: usize) -> &[u8] {
        let s = self.image_size();
        &self.pixels[index * s..(index + 1) * s]
    }

    /// The labels of the given kind: fine labels, or coarse labels where present.
    pub fn labels_of(&self, kind: crate::task::LabelKind) -> Option<&[u16]> {
        match kind {
            crate::task::LabelKind::Fine => Some(&self.labels),
            crate::task::LabelKind::Coarse => self.coarse_labels.as_deref(),
        }
    }

    /// Number of images per class for `num_classes` classes of the given label kind.
    pub fn class_counts(&self, kind: crate::task::LabelKind, num_classes: usize) -> Vec<usize> {
        let mut counts = vec![0; num_classes];
        for &l in self.labels_of(kind).unwrap_or(&[]) {
            if let Some(c) = counts.get_mut(l as usize) {
                *c += 1;
            }
        }
        counts
    }
}
