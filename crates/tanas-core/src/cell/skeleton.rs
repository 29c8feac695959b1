//! The skeleton a genotype is stacked into: initial channels and number of cells.

use serde::{Deserialize, Serialize};

use super::error::CellError;

/// The DARTS CIFAR skeleton's size: `channels` (C, the first cells' channel count; the stem has
/// 3C) and `layers` (L cells, reduction cells at `L / 3` and `2L / 3` with channels doubled).
///
/// JSON: `{"channels": 36, "layers": 20}`; a missing field takes its default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CellSkeleton {
    /// Initial channels C.
    pub channels: usize,
    /// Number of cells L.
    pub layers: usize,
}

impl Default for CellSkeleton {
    /// DARTS's CIFAR-10 evaluation network: C = 36, L = 20.
    fn default() -> Self {
        CellSkeleton {
            channels: 36,
            layers: 20,
        }
    }
}

impl CellSkeleton {
    /// Channel multiplier of the stem (DARTS: 3).
    pub const STEM_MULTIPLIER: usize = 3;

    /// A skeleton of `channels` and `layers`.
    pub fn new(channels: usize, layers: usize) -> Self {
        CellSkeleton { channels, layers }
    }

    /// Whether cell `i` (0-based) is a reduction cell: `i` is `L / 3` or `2L / 3`.
    pub fn is_reduction(&self, i: usize) -> bool {
        i == self.layers / 3 || i == 2 * self.layers / 3
    }

    /// Checks that the skeleton can build a network.
    pub fn validate(&self) -> Result<(), CellError> {
        use crate::limits::{MAX_CHANNELS, MAX_LAYERS, count};
        count("skeleton channels", self.channels, MAX_CHANNELS)
            .and_then(|()| count("skeleton layers", self.layers, MAX_LAYERS))
            .map_err(CellError::Config)
    }
}
