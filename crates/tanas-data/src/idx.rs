//! The IDX file format of MNIST and Fashion-MNIST, plain or gzip-compressed.
//!
//! An IDX file is a 4-byte magic (`0, 0, type, ndims`), `ndims` big-endian u32 dimensions,
//! then the data. Only unsigned-byte data (type `0x08`) is used by the datasets here.

use std::io::{BufRead, Read, Write};
use std::path::Path;

use crate::batch::INPUT_SIDE;
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

/// The most bytes a dataset file may hold once un-gzipped (1 GiB): a compressed file that
/// inflates past it, or an IDX header that declares more, is an error before the memory is used.
/// The largest file of the known datasets (CIFAR-100's `train.bin`) is 154 MB.
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// A dataset file opened for reading, un-gzipped on the fly when it starts with the gzip magic
/// (every member of a multi-member gzip file, as `cat a.gz b.gz` makes, is read in turn).
struct Input<'a> {
    reader: Box<dyn Read + 'a>,
    path: &'a Path,
    gz: bool,
}

impl<'a> Input<'a> {
    fn open(path: &'a Path) -> Result<Self> {
        let mut file =
            std::io::BufReader::new(std::fs::File::open(path).map_err(|e| DataError::io(path, e))?);
        let head = file.fill_buf().map_err(|e| DataError::io(path, e))?;
        Ok(Self::new(file_is_gz(head), file, path))
    }

    fn from_bytes(bytes: &'a [u8], path: &'a Path) -> Self {
        Self::new(file_is_gz(bytes), bytes, path)
    }

    fn new(gz: bool, raw: impl BufRead + 'a, path: &'a Path) -> Self {
        let reader: Box<dyn Read + 'a> = if gz {
            Box::new(flate2::bufread::MultiGzDecoder::new(raw))
        } else {
            Box::new(raw)
        };
        Self { reader, path, gz }
    }

    fn error(&self, e: std::io::Error) -> DataError {
        if self.gz {
            DataError::format(self.path, format!("corrupt gzip data: {e}"))
        } else {
            DataError::io(self.path, e)
        }
    }

    /// Appends up to `n` more bytes to `buf` (fewer only at the end of the data).
    fn read_up_to(&mut self, buf: &mut Vec<u8>, n: u64) -> Result<usize> {
        (&mut self.reader)
            .take(n)
            .read_to_end(buf)
            .map_err(|e| self.error(e))
    }

    /// Whether any data follows what was read so far.
    fn has_more(&mut self) -> Result<bool> {
        Ok(self.read_up_to(&mut Vec::new(), 1)? > 0)
    }
}

fn file_is_gz(head: &[u8]) -> bool {
    head.starts_with(&[0x1f, 0x8b])
}

/// Reads a whole file, transparently un-gzipping it when it starts with the gzip magic; more
/// than [`MAX_FILE_BYTES`] of (inflated) data is an error.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let mut input = Input::open(path)?;
    let mut out = Vec::new();
    input.read_up_to(&mut out, MAX_FILE_BYTES)?;
    if input.has_more()? {
        return Err(too_large(path));
    }
    Ok(out)
}

fn too_large(path: &Path) -> DataError {
    DataError::format(
        path,
        format!(
            "holds more than {} MiB of data, the limit for a dataset file",
            MAX_FILE_BYTES >> 20
        ),
    )
}

/// Parses IDX bytes (plain or gzip-compressed); `path` is only used in error messages.
pub fn parse_idx(bytes: &[u8], path: &Path) -> Result<IdxArray> {
    read_input(Input::from_bytes(bytes, path))
}

/// Reads an IDX file (plain or `.gz`). Memory is bounded by what the header declares (at most
/// [`MAX_FILE_BYTES`]): a file with more data is rejected without reading the rest.
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    read_input(Input::open(path)?)
}

fn read_input(mut input: Input<'_>) -> Result<IdxArray> {
    let path = input.path;
    let mut bytes = Vec::new();
    input.read_up_to(&mut bytes, 4)?;
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
    input.read_up_to(&mut bytes, 4 * ndims as u64)?;
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
    let n = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .filter(|&n| n <= MAX_FILE_BYTES)
        .ok_or_else(|| {
            DataError::format(
                path,
                format!(
                    "dimensions {dims:?} declare more than the {} MiB limit of a dataset file",
                    MAX_FILE_BYTES >> 20
                ),
            )
        })?;
    let mut data = Vec::new();
    let found = input.read_up_to(&mut data, n)?;
    if (found as u64) < n {
        return Err(DataError::format(
            path,
            format!("truncated: dimensions {dims:?} need {n} data bytes, file has {found}"),
        ));
    }
    if input.has_more()? {
        return Err(DataError::format(
            path,
            format!("trailing bytes after the {n} data bytes of dimensions {dims:?}"),
        ));
    }
    Ok(IdxArray { dims, data })
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
    tanas_core::write_atomic(path, &bytes).map_err(|e| DataError::io(e.path, e.source))
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
    let (rows, cols) = (img.dims[1], img.dims[2]);
    if !(1..=INPUT_SIDE).contains(&rows) || !(1..=INPUT_SIDE).contains(&cols) {
        return Err(DataError::format(
            images,
            format!(
                "images are {rows}x{cols}; the network input takes 1x1 to {INPUT_SIDE}x{INPUT_SIDE}"
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

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn multi_member_gzip_is_read_whole() {
        // `cat a.gz b.gz`: a valid gzip file whose data is both members' data.
        let b = encode_idx(&images(3));
        let (head, tail) = b.split_at(1000);
        let two = [gz(head), gz(tail)].concat();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("two.gz");
        std::fs::write(&p, two).unwrap();
        assert_eq!(read_idx(&p).unwrap(), images(3));
        assert_eq!(read_maybe_gz(&p).unwrap(), b);
    }

    #[test]
    fn garbage_after_a_gzip_stream_is_an_error() {
        for garbage in [&[0u8][..], b"trailing garbage", &[0x1f, 0x8b, 8]] {
            let b = [gz(&encode_idx(&labels(3))), garbage.to_vec()].concat();
            let e = err_of(&b);
            assert!(e.contains("corrupt gzip"), "{garbage:?}: {e}");
        }
    }

    #[test]
    fn gzip_inflating_past_the_header_stops_at_the_declared_size() {
        // The header declares 3 bytes; 256 MiB of zeros follow (a 256 KiB gzip). Reading stops
        // one byte past the declared data: the error comes before the bomb is inflated.
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&encode_idx(&labels(3))).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..256 {
            enc.write_all(&zeros).unwrap();
        }
        let bomb = enc.finish().unwrap();
        assert!(bomb.len() < 1 << 20);
        let consumed = std::rc::Rc::new(std::cell::Cell::new(0));
        let raw = Counting {
            inner: &bomb[..],
            consumed: consumed.clone(),
        };
        let input = Input::new(true, std::io::BufReader::new(raw), Path::new("bomb.gz"));
        let e = read_input(input).unwrap_err().to_string();
        assert!(
            consumed.get() < bomb.len() / 4,
            "{} of {} compressed bytes read",
            consumed.get(),
            bomb.len()
        );
        assert!(e.contains("bomb.gz") && e.contains("trailing bytes"), "{e}");
    }

    /// A reader that counts the bytes taken from it.
    struct Counting<'a> {
        inner: &'a [u8],
        consumed: std::rc::Rc<std::cell::Cell<usize>>,
    }

    impl Read for Counting<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.consumed.set(self.consumed.get() + n);
            Ok(n)
        }
    }

    #[test]
    fn huge_declared_dimensions_are_refused_before_reading() {
        let mut b = vec![0, 0, UBYTE, 3];
        for d in [60_000u32, 1 << 12, 1 << 12] {
            b.extend_from_slice(&d.to_be_bytes());
        }
        let e = err_of(&b);
        assert!(e.contains("1024 MiB limit"), "{e}");
    }

    #[test]
    fn corrupt_gzip_is_an_error() {
        let mut b = vec![0x1f, 0x8b, 8, 0];
        b.extend_from_slice(&[0xff; 20]);
        assert!(err_of(&b).contains("corrupt gzip"));
    }

    #[test]
    fn image_sizes_the_network_input_cannot_take_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let (i, l) = (dir.path().join("imgs"), dir.path().join("labs"));
        write_idx(&l, &labels(2)).unwrap();
        for (rows, cols) in [(64, 64), (0, 0), (28, 33), (0, 28)] {
            let set = IdxArray {
                dims: vec![2, rows, cols],
                data: vec![1; 2 * rows * cols],
            };
            write_idx(&i, &set).unwrap();
            let e = read_idx_pair(&i, &l, 10).unwrap_err().to_string();
            assert!(
                e.contains("imgs") && e.contains(&format!("images are {rows}x{cols}")),
                "{e}"
            );
        }
        for (rows, cols) in [(1, 1), (14, 14), (32, 32)] {
            let set = IdxArray {
                dims: vec![2, rows, cols],
                data: vec![1; 2 * rows * cols],
            };
            write_idx(&i, &set).unwrap();
            assert_eq!(read_idx_pair(&i, &l, 10).unwrap().height, rows);
        }
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
