//! Network input: every image becomes a `3 x S x S` f32 tensor in [0, 1], batched for burn,
//! where `S` is the larger of 32 and the dataset's image side ([`input_side`]).
//!
//! Images smaller than 32x32 (28x28 MNIST-like) are zero-padded to 32 around the centre and
//! grey images are copied to the three channels (the papers' convention, so one network fits
//! every dataset); CIFAR images and declared datasets at their `input_side` (at least 32) are
//! used as they are.

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::prelude::*;

use crate::image_set::ImageSet;
use crate::split::TaskSplit;

/// The smallest side of the network input (and the side of every built-in dataset's input).
pub const INPUT_SIDE: usize = 32;
/// Channels of the network input.
pub const INPUT_CHANNELS: usize = 3;
/// Values per network input of the smallest side (`3 * 32 * 32`).
pub const INPUT_LEN: usize = INPUT_CHANNELS * INPUT_SIDE * INPUT_SIDE;

/// The side of the network input for images of `set`: the larger of [`INPUT_SIDE`] and the
/// images' height and width.
pub fn input_side(set: &ImageSet) -> usize {
    INPUT_SIDE.max(set.height).max(set.width)
}

/// Converts image `index` of `set` to the `3 x S x S` network input (values in [0, 1]),
/// `S = input_side(set)`.
///
/// Smaller images are centred with zero padding; single-channel images are copied to all
/// three channels. Other channel counts are not made by any reader and give an all-zero
/// input in release builds (a debug assertion catches them).
pub fn to_input(set: &ImageSet, index: usize) -> Vec<f32> {
    debug_assert!(set.channels == 1 || set.channels == INPUT_CHANNELS);
    let side = input_side(set);
    let mut out = vec![0.0; INPUT_CHANNELS * side * side];
    let (top, left) = ((side - set.height) / 2, (side - set.width) / 2);
    let image = set.image(index);
    for c in 0..INPUT_CHANNELS {
        let src_c = if set.channels == 1 { 0 } else { c };
        for y in 0..set.height {
            for x in 0..set.width {
                let v = image[(src_c * set.height + y) * set.width + x];
                out[(c * side + top + y) * side + left + x] = f32::from(v) / 255.0;
            }
        }
    }
    out
}

/// One sample of a task: network input and task label.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskItem {
    /// `3 * S * S` values in [0, 1], channel-major.
    pub image: Vec<f32>,
    /// The side `S` of the image.
    pub side: usize,
    /// The task label.
    pub label: usize,
}

impl Dataset<TaskItem> for TaskSplit {
    fn get(&self, index: usize) -> Option<TaskItem> {
        let &i = self.indices().get(index)?;
        Some(TaskItem {
            image: to_input(self.images(), i),
            side: input_side(self.images()),
            label: self.labels()[index],
        })
    }

    fn len(&self) -> usize {
        TaskSplit::len(self)
    }
}

/// A batch of task samples.
#[derive(Debug, Clone)]
pub struct TaskBatch<B: Backend> {
    /// Images `[N, 3, S, S]`.
    pub images: Tensor<B, 4>,
    /// Task labels `[N]`.
    pub labels: Tensor<B, 1, Int>,
}

/// Stacks [`TaskItem`]s (of one side) into a [`TaskBatch`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TaskBatcher;

impl<B: Backend> Batcher<B, TaskItem, TaskBatch<B>> for TaskBatcher {
    fn batch(&self, items: Vec<TaskItem>, device: &B::Device) -> TaskBatch<B> {
        let n = items.len();
        let side = items.first().map_or(INPUT_SIDE, |i| i.side);
        let mut pixels = Vec::with_capacity(n * INPUT_CHANNELS * side * side);
        let mut labels = Vec::with_capacity(n);
        for item in items {
            assert_eq!(item.side, side, "a batch mixes input sides");
            pixels.extend_from_slice(&item.image);
            labels.push(item.label as i64);
        }
        TaskBatch {
            images: Tensor::from_data(
                TensorData::new(pixels, [n, INPUT_CHANNELS, side, side]),
                device,
            ),
            labels: Tensor::from_data(TensorData::new(labels, [n]), device),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    type B = tanas_cpu::Cpu;

    #[test]
    fn grey_28_is_padded_and_replicated() {
        let set = ImageSet {
            channels: 1,
            height: 28,
            width: 28,
            pixels: (0..784).map(|i| (i % 255) as u8 + 1).collect(),
            labels: vec![0],
            coarse_labels: None,
        };
        let x = to_input(&set, 0);
        assert_eq!(x.len(), INPUT_LEN);
        for c in 0..3 {
            for y in 0..32 {
                for xx in 0..32 {
                    let v = x[(c * 32 + y) * 32 + xx];
                    if (2..30).contains(&y) && (2..30).contains(&xx) {
                        let src = set.pixels[(y - 2) * 28 + xx - 2];
                        assert_eq!(v, f32::from(src) / 255.0);
                    } else {
                        assert_eq!(v, 0.0, "padding at c={c} y={y} x={xx}");
                    }
                }
            }
        }
    }

    #[test]
    fn colour_32_is_kept() {
        let set = ImageSet {
            channels: 3,
            height: 32,
            width: 32,
            pixels: (0..INPUT_LEN).map(|i| (i % 256) as u8).collect(),
            labels: vec![0],
            coarse_labels: None,
        };
        let x = to_input(&set, 0);
        assert!(
            x.iter()
                .zip(&set.pixels)
                .all(|(&v, &p)| v == f32::from(p) / 255.0)
        );
    }

    #[test]
    fn batcher_stacks_items() {
        let set = Arc::new(ImageSet {
            channels: 1,
            height: 28,
            width: 28,
            pixels: vec![255; 3 * 784],
            labels: vec![4, 5, 6],
            coarse_labels: None,
        });
        let split = TaskSplit::new(set, vec![(2, 1), (0, 0)]);
        assert_eq!(Dataset::len(&split), 2);
        assert!(split.get(2).is_none());
        let items: Vec<_> = (0..2).filter_map(|i| split.get(i)).collect();
        let batch: TaskBatch<B> = TaskBatcher.batch(items, &Default::default());
        assert_eq!(batch.images.dims(), [2, 3, 32, 32]);
        assert_eq!(
            batch.labels.into_data().iter::<i64>().collect::<Vec<_>>(),
            vec![1, 0]
        );
        let sum: f32 = batch.images.sum().into_scalar();
        assert_eq!(sum, (2 * 3 * 784) as f32);
    }
}
