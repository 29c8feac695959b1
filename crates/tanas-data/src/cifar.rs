//! The CIFAR-10 and CIFAR-100 binary formats.
//!
//! CIFAR-10: records of 1 label byte + 3072 pixel bytes (R, G, B planes of 32x32).
//! CIFAR-100: records of 1 coarse label byte, 1 fine label byte + 3072 pixel bytes.

use std::path::Path;

use crate::error::{DataError, Result};
use crate::idx::read_maybe_gz;
use crate::image_set::ImageSet;

/// Pixel bytes per CIFAR image.
const PIXELS: usize = 3 * 32 * 32;

/// The two CIFAR binary layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CifarKind {
    /// One label byte (10 classes).
    Cifar10,
    /// Coarse (20) then fine (100) label bytes.
    Cifar100,
}

impl CifarKind {
    fn label_bytes(self) -> usize {
        match self {
            Self::Cifar10 => 1,
            Self::Cifar100 => 2,
        }
    }
}

/// Reads one or more CIFAR binary files (concatenated in the given order) into an [`ImageSet`].
pub fn read_cifar(paths: &[impl AsRef<Path>], kind: CifarKind) -> Result<ImageSet> {
    let record = kind.label_bytes() + PIXELS;
    let mut set = ImageSet {
        channels: 3,
        height: 32,
        width: 32,
        pixels: Vec::new(),
        labels: Vec::new(),
        coarse_labels: (kind == CifarKind::Cifar100).then(Vec::new),
    };
    for path in paths {
        let path = path.as_ref();
        let bytes = read_maybe_gz(path)?;
        if bytes.is_empty() || bytes.len() % record != 0 {
            return Err(DataError::format(
                path,
                format!(
                    "size {} bytes is not a positive multiple of the {record}-byte CIFAR record (truncated or wrong file?)",
                    bytes.len()
                ),
            ));
        }
        for (i, rec) in bytes.chunks_exact(record).enumerate() {
            match (kind, set.coarse_labels.as_mut()) {
                (CifarKind::Cifar100, Some(coarse)) => {
                    check_label(path, i, "coarse label", rec[0], 20)?;
                    check_label(path, i, "fine label", rec[1], 100)?;
                    coarse.push(rec[0] as u16);
                    set.labels.push(rec[1] as u16);
                }
                _ => {
                    check_label(path, i, "label", rec[0], 10)?;
                    set.labels.push(rec[0] as u16);
                }
            }
            set.pixels.extend_from_slice(&rec[kind.label_bytes()..]);
        }
    }
    Ok(set)
}

fn check_label(path: &Path, record: usize, what: &str, value: u8, bound: u8) -> Result<()> {
    if value < bound {
        Ok(())
    } else {
        Err(DataError::format(
            path,
            format!("{what} {value} of record {record} is not below {bound}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(labels: &[u8], seed: u8) -> Vec<u8> {
        let mut r = labels.to_vec();
        r.extend((0..PIXELS).map(|i| (i as u8).wrapping_mul(seed)));
        r
    }

    #[test]
    fn reads_cifar10_files_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("data_batch_1.bin");
        let b = dir.path().join("data_batch_2.bin");
        std::fs::write(&a, [record(&[3], 1), record(&[9], 2)].concat()).unwrap();
        std::fs::write(&b, record(&[0], 3)).unwrap();
        let set = read_cifar(&[&a, &b], CifarKind::Cifar10).unwrap();
        assert_eq!(set.labels, vec![3, 9, 0]);
        assert_eq!((set.channels, set.height, set.width), (3, 32, 32));
        assert_eq!(set.image(2), &record(&[0], 3)[1..]);
        assert!(set.coarse_labels.is_none());
    }

    #[test]
    fn reads_cifar100_coarse_and_fine() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("train.bin");
        std::fs::write(&p, [record(&[19, 89], 1), record(&[6, 5], 2)].concat()).unwrap();
        let set = read_cifar(&[&p], CifarKind::Cifar100).unwrap();
        assert_eq!(set.labels, vec![89, 5]);
        assert_eq!(set.coarse_labels, Some(vec![19, 6]));
    }

    #[test]
    fn truncated_and_bad_labels_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("test_batch.bin");
        std::fs::write(&p, &record(&[1], 1)[..3000]).unwrap();
        let e = read_cifar(&[&p], CifarKind::Cifar10)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("test_batch.bin") && e.contains("not a positive multiple"),
            "{e}"
        );
        std::fs::write(&p, record(&[10], 1)).unwrap();
        let e = read_cifar(&[&p], CifarKind::Cifar10)
            .unwrap_err()
            .to_string();
        assert!(e.contains("label 10 of record 0"), "{e}");
        std::fs::write(&p, record(&[20, 1], 1)).unwrap();
        let e = read_cifar(&[&p], CifarKind::Cifar100)
            .unwrap_err()
            .to_string();
        assert!(e.contains("coarse label 20"), "{e}");
        std::fs::write(&p, b"").unwrap();
        assert!(read_cifar(&[&p], CifarKind::Cifar10).is_err());
        let missing = dir.path().join("nope.bin");
        let e = read_cifar(&[&missing], CifarKind::Cifar10)
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope.bin"), "{e}");
    }
}
