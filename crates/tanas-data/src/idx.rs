//! The IDX file format of MNIST and Fashion-MNIST, plain or gzip-compressed.
//!
//! An IDX file is a 4-byte magic (`0, 0, type, ndims`), `ndims` big-endian u32 dimensions,
//! then the data. Only unsigned-byte data (type `0x08`) is used by the datasets here.

use std::io::{Read, Write};
use std::path::Path;

use crate::error::{DataError, Result};
use crate::image_set::ImageSet;

/// Type code of unsigned-byte data in the IDX magic.
const UBYTE: u8 = 0x08;

/// An IDX array of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// The dimensions, outermost first.
    pub dims: Vec<usize>,
    /// The data, row-major.
    pub data: Vec<u8>,
}

/// Reads a whole file, transparently un-gzipping it when it starts with the gzip magic.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 4);
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| DataError::format(path, format!("corrupt gzip data: {e}")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parses IDX bytes; `path` is only used in error messages.
pub fn parse_idx(bytes: &[u8], path: &Path) -> Result<IdxArray> {
    if bytes.len() < 4 {
        return Err(DataError::format(
            path,
            format!("file is {} bytes, too short for an IDX header", bytes.len()),
        ));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(DataError::format(
            path,
            format!(
                "bad IDX magic {:02x}{:02x}{:02x}{:02x} (expected 0000 08 ndims)",
                bytes[0], bytes[1], bytes[2], bytes[3]
            ),
        ));
    }
    if bytes[2] != UBYTE {
        return Err(DataError::format(
            path,
            format!(
                "IDX data type 0x{:02x} is not unsigned byte (0x08)",
                bytes[2]
            ),
        ));
    }
    let ndims = bytes[3] as usize;
    let header = 4 + 4 * ndims;
    if ndims == 0 || bytes.len() < header {
        return Err(DataError::format(
            path,
            format!(
                "truncated IDX header ({ndims} dimensions, {} bytes)",
                bytes.len()
            ),
        ));
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let expected = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let found = bytes.len() - header;
    match expected {
        Some(n) if n == found => Ok(IdxArray {
            dims,
            data: bytes[header..].to_vec(),
        }),
        Some(n) if n > found => Err(DataError::format(
            path,
            format!("truncated: dimensions {dims:?} need {n} data bytes, file has {found}"),
        )),
        Some(n) => Err(DataError::format(
            path,
            format!(
                "{} trailing bytes after the {n} data bytes of dimensions {dims:?}",
                found - n
            ),
        )),
        None => Err(DataError::format(
            path,
            format!("dimensions {dims:?} overflow"),
        )),
    }
}

/// Reads an IDX file (plain or `.gz`).
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    parse_idx(&read_maybe_gz(path)?, path)
}

/// Serialises an IDX array of unsigned bytes.
pub fn encode_idx(array: &IdxArray) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + 4 * array.dims.len() + array.data.len());
    out.extend_from_slice(&[0, 0, UBYTE, array.dims.len() as u8]);
    for &d in &array.dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(&array.data);
    out
}

/// Writes an IDX file, gzip-compressed when `path` ends in `.gz`.
pub fn write_idx(path: &Path, array: &IdxArray) -> Result<()> {
    let bytes = encode_idx(array);
    let bytes = if path.extension().is_some_and(|e| e == "gz") {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&bytes).map_err(|e| DataError::io(path, e))?;
        enc.finish().map_err(|e| DataError::io(path, e))?
    } else {
        bytes
    };
    crate::write_atomic(path, &bytes)
}

/// Reads an IDX image file (`n x rows x cols`) and its label file (`n`) into an [`ImageSet`],
/// checking that the counts agree and that every label is below `num_classes`.
pub fn read_idx_pair(images: &Path, labels: &Path, num_classes: usize) -> Result<ImageSet> {
    let img = read_idx(images)?;
    if img.dims.len() != 3 {
        return Err(DataError::format(
            images,
            format!(
                "expected 3 dimensions (n, rows, cols), found {:?}",
                img.dims
            ),
        ));
    }
    let lab = read_idx(labels)?;
    if lab.dims.len() != 1 {
        return Err(DataError::format(
            labels,
            format!("expected 1 dimension (n), found {:?}", lab.dims),
        ));
    }
    if img.dims[0] != lab.dims[0] {
        return Err(DataError::Mismatch {
            a: images.into(),
            b: labels.into(),
            problem: format!("{} images but {} labels", img.dims[0], lab.dims[0]),
        });
    }
    if let Some((i, &l)) = lab
        .data
        .iter()
        .enumerate()
        .find(|(_, l)| **l as usize >= num_classes)
    {
        return Err(DataError::format(
            labels,
            format!("label {l} at index {i} is not below {num_classes}"),
        ));
    }
    Ok(ImageSet {
        channels: 1,
        height: img.dims[1],
        width: img.dims[2],
        pixels: img.data,
        labels: lab.data.iter().map(|&l| l as u16).collect(),
        coarse_labels: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images(n: usize) -> IdxArray {
        IdxArray {
            dims: vec![n, 28, 28],
            data: (0..n * 784).map(|i| (i % 251) as u8).collect(),
        }
    }

    fn labels(n: usize) -> IdxArray {
        IdxArray {
            dims: vec![n],
            data: (0..n).map(|i| (i % 10) as u8).collect(),
        }
    }

    #[test]
    fn round_trip_plain_and_gz() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["a-idx3-ubyte", "a-idx3-ubyte.gz"] {
            let p = dir.path().join(name);
            write_idx(&p, &images(7)).unwrap();
            assert_eq!(read_idx(&p).unwrap(), images(7));
        }
        // The gz file really is compressed.
        let raw = std::fs::read(dir.path().join("a-idx3-ubyte.gz")).unwrap();
        assert_eq!(&raw[..2], &[0x1f, 0x8b]);
    }

    #[test]
    fn pair_reads_images_and_labels() {
        let dir = tempfile::tempdir().unwrap();
        let (i, l) = (dir.path().join("i.gz"), dir.path().join("l"));
        write_idx(&i, &images(5)).unwrap();
        write_idx(&l, &labels(5)).unwrap();
        let set = read_idx_pair(&i, &l, 10).unwrap();
        assert_eq!(
            (set.len(), set.channels, set.height, set.width),
            (5, 1, 28, 28)
        );
        assert_eq!(set.labels, vec![0, 1, 2, 3, 4]);
        assert_eq!(set.image(1), &images(5).data[784..1568]);
    }

    fn err_of(bytes: &[u8]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad");
        std::fs::write(&p, bytes).unwrap();
        let e = read_idx(&p).unwrap_err().to_string();
        assert!(e.contains("bad"), "error names the file: {e}");
        e
    }

    #[test]
    fn truncated_file_is_an_error() {
        let mut b = encode_idx(&images(3));
        b.truncate(b.len() - 10);
        assert!(err_of(&b).contains("truncated"));
        assert!(err_of(&b[..6]).contains("truncated IDX header"));
        assert!(err_of(&[0, 0]).contains("too short"));
    }

    #[test]
    fn wrong_magic_is_an_error() {
        let mut b = encode_idx(&images(3));
        b[0] = 0x50;
        assert!(err_of(&b).contains("bad IDX magic"));
        let mut b = encode_idx(&images(3));
        b[2] = 0x0d;
        assert!(err_of(&b).contains("not unsigned byte"));
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        let mut b = encode_idx(&labels(3));
        b.push(1);
        assert!(err_of(&b).contains("trailing"));
    }

    #[test]
    fn corrupt_gzip_is_an_error() {
        let mut b = vec![0x1f, 0x8b, 8, 0];
        b.extend_from_slice(&[0xff; 20]);
        assert!(err_of(&b).contains("corrupt gzip"));
    }

    #[test]
    fn mismatched_counts_and_bad_labels_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let (i, l) = (dir.path().join("imgs"), dir.path().join("labs"));
        write_idx(&i, &images(5)).unwrap();
        write_idx(&l, &labels(4)).unwrap();
        let e = read_idx_pair(&i, &l, 10).unwrap_err().to_string();
        assert!(
            e.contains("imgs") && e.contains("labs") && e.contains("5 images but 4 labels"),
            "{e}"
        );
        write_idx(&l, &labels(5)).unwrap();
        let e = read_idx_pair(&i, &l, 3).unwrap_err().to_string();
        assert!(e.contains("label 3 at index 3 is not below 3"), "{e}");
        // Images and labels swapped: wrong number of dimensions.
        let e = read_idx_pair(&l, &i, 10).unwrap_err().to_string();
        assert!(e.contains("expected 3 dimensions"), "{e}");
    }
}
