//! The bounds of every numeric command-line argument, checked by the parser before anything
//! is read or allocated: a zero batch size or sample count, or a network too large to build in
//! memory, is a one-line usage error instead of a silent `max(1)` or an aborted allocation.
//! The numbers are `tanas_core::limits`', which the file readers check too.
//!
//! | argument | range |
//! |---|---|
//! | `--batch-size` | 1 to [`MAX_BATCH_SIZE`] |
//! | `--num-classes` | 1 to [`MAX_CLASSES`] |
//! | `--channels` (cell networks) | 1 to [`MAX_CHANNELS`] |
//! | `--layers` (cell networks) | 1 to [`MAX_LAYERS`] |
//! | `--seeds` | 1 to [`MAX_SEEDS`] |
//! | `--epochs`, `--steps`, `--mc-samples`, `--samples`, `--limit` | 1 to [`MAX_COUNT`] |
//! | `--lr`, `--sigma2` | finite and > 0 |
//! | `--target-accuracy` | in (0, 1] |

use clap::builder::{RangedU64ValueParser, TypedValueParser};

pub use tanas_core::limits::{
    MAX_BATCH_SIZE, MAX_CHANNELS, MAX_CLASSES, MAX_COUNT, MAX_LAYERS, MAX_SEEDS,
};

/// A count in `1..=max`.
fn count(max: usize) -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::new().range(1..=max as u64)
}

/// `--batch-size`.
pub fn batch_size() -> RangedU64ValueParser<usize> {
    count(MAX_BATCH_SIZE)
}

/// `--num-classes`.
pub fn num_classes() -> RangedU64ValueParser<usize> {
    count(MAX_CLASSES)
}

/// `--channels`.
pub fn channels() -> RangedU64ValueParser<usize> {
    count(MAX_CHANNELS)
}

/// `--layers`.
pub fn layers() -> RangedU64ValueParser<usize> {
    count(MAX_LAYERS)
}

/// `--epochs`, `--steps`, `--samples`, `--mc-samples`, `--limit`.
pub fn positive() -> RangedU64ValueParser<usize> {
    count(MAX_COUNT)
}

/// `--seeds` (seeds `0..N`).
pub fn seeds() -> RangedU64ValueParser<u64> {
    RangedU64ValueParser::new().range(1..=MAX_SEEDS as u64)
}

/// `--lr`, `--sigma2`: a finite number above zero.
pub fn positive_real() -> impl TypedValueParser<Value = f64> {
    clap::builder::StringValueParser::new().try_map(|s: String| match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("`{s}` is not a finite number above 0")),
    })
}

/// `--target-accuracy`: in (0, 1].
pub fn accuracy() -> impl TypedValueParser<Value = f64> {
    clap::builder::StringValueParser::new().try_map(|s: String| match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
        _ => Err(format!("`{s}` is not an accuracy in (0, 1]")),
    })
}
