//! The bounds of every count and size tanas accepts, from a flag or from a file alike: the
//! command line's parsers (tanas-cli) and the readers of configs, experiments, dictionaries
//! and profiles check the same numbers, so that `epochs = 1000000000` in a file is refused as
//! `--epochs 1000000000` is, before anything is allocated.

/// Largest mini-batch.
pub const MAX_BATCH_SIZE: usize = 65_536;
/// Largest number of network outputs.
pub const MAX_CLASSES: usize = 10_000;
/// Largest initial channel count C of a cell network (DARTS uses 16 to 36).
pub const MAX_CHANNELS: usize = 256;
/// Largest number of cells L of a cell network (DARTS uses 8 to 20).
pub const MAX_LAYERS: usize = 100;
/// Largest number of seeds of one experiment, dictionary or profile study (each seed is a
/// set of networks; the papers use 10).
pub const MAX_SEEDS: usize = 10_000;
/// Largest epoch, step, sample, candidate, stage or label-draw count.
pub const MAX_COUNT: usize = 100_000_000;

/// `value` must be in `1..=max`: otherwise a message naming `field`.
pub fn count(field: &str, value: usize, max: usize) -> Result<(), String> {
    if (1..=max).contains(&value) {
        Ok(())
    } else {
        Err(format!("{field} = {value}: must be from 1 to {max}"))
    }
}

/// [`count`] of every `(field, value)` against `max`.
pub fn counts(fields: &[(&str, usize)], max: usize) -> Result<(), String> {
    fields.iter().try_for_each(|&(f, v)| count(f, v, max))
}

/// `value` must be a finite number above zero: otherwise a message naming `field`.
pub fn positive_real(field: &str, value: f64) -> Result<(), String> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(format!(
            "{field} = {value}: must be a finite number above 0"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_name_the_field() {
        assert!(count("epochs", 1, MAX_COUNT).is_ok());
        assert!(count("epochs", MAX_COUNT, MAX_COUNT).is_ok());
        for bad in [0, MAX_COUNT + 1] {
            let e = count("epochs", bad, MAX_COUNT).unwrap_err();
            assert!(e.starts_with(&format!("epochs = {bad}:")), "{e}");
        }
        assert!(
            counts(&[("a", 1), ("b", 0)], 5)
                .unwrap_err()
                .starts_with("b = 0")
        );
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(positive_real("lr", bad).is_err());
        }
        assert!(positive_real("lr", 1e-3).is_ok());
    }
}
