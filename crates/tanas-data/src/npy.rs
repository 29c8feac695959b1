//! NumPy `.npy` arrays and `.npz` archives of them: the header format alone, never pickle.
//! Images are uint8 (`N x D` with `D` a square, `N x H x W`, or `N x H x W x C` with C 1 or
//! 3); labels any little-endian integer type. Every size is checked against the file before
//! anything is allocated, and at most [`MAX_ARRAY_BYTES`] are read from one array.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use rayon::prelude::*;

use crate::decode::{Collected, Picture, from_dynamic, from_grey};
use crate::error::{DataError, Result};

/// Most bytes of one array (1 GiB after decompression).
pub const MAX_ARRAY_BYTES: u64 = 1 << 30;

/// The element types read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dtype {
    /// `|u1`.
    U8,
    /// A little-endian integer of this many bytes, signed or not.
    Int { bytes: usize, signed: bool },
}

/// An array read from a `.npy`.
#[derive(Debug, Clone)]
pub(crate) struct Array {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

/// Parses the header of `input`; returns dtype and shape.
fn header(input: &mut impl Read, path: &Path) -> Result<(Dtype, Vec<usize>)> {
    let bad = |p: &str| DataError::format(path, p.to_string());
    let mut magic = [0u8; 8];
    input
        .read_exact(&mut magic)
        .map_err(|_| bad("not a .npy file (shorter than its magic)"))?;
    if &magic[..6] != b"\x93NUMPY" {
        return Err(bad("not a .npy file (no \\x93NUMPY magic)"));
    }
    let len = match magic[6] {
        1 => {
            let mut b = [0u8; 2];
            input
                .read_exact(&mut b)
                .map_err(|_| bad("truncated header"))?;
            usize::from(u16::from_le_bytes(b))
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            input
                .read_exact(&mut b)
                .map_err(|_| bad("truncated header"))?;
            u32::from_le_bytes(b) as usize
        }
        v => return Err(bad(&format!("unknown .npy version {v}"))),
    };
    if len > 1 << 16 {
        return Err(bad(&format!(
            "header of {len} bytes (at most 65536 are read)"
        )));
    }
    let mut text = vec![0u8; len];
    input
        .read_exact(&mut text)
        .map_err(|_| bad("truncated header"))?;
    let text = String::from_utf8(text).map_err(|_| bad("header is not text"))?;
    let field = |key: &str| -> Result<&str> {
        let at = text
            .find(&format!("'{key}'"))
            .ok_or_else(|| bad(&format!("header has no '{key}'")))?;
        let rest = text[at + key.len() + 2..].trim_start();
        let rest = rest
            .strip_prefix(':')
            .ok_or_else(|| bad("header is not a dict"))?;
        Ok(rest.trim_start())
    };
    let descr = field("descr")?;
    let descr = descr
        .strip_prefix('\'')
        .and_then(|d| d.split('\'').next())
        .ok_or_else(|| bad("header's 'descr' is not a string (a structured dtype?)"))?;
    let dtype = match descr {
        "|u1" | "<u1" | ">u1" | "u1" => Dtype::U8,
        d if d.starts_with('|') && d.contains('O') => {
            return Err(bad(
                "holds Python objects (dtype object): they are pickled, and tanas never reads pickle",
            ));
        }
        d => {
            let b = d.as_bytes();
            if b.len() == 3
                && matches!(b[0], b'<' | b'|')
                && matches!(b[1], b'i' | b'u')
                && matches!(b[2], b'1' | b'2' | b'4' | b'8')
            {
                Dtype::Int {
                    bytes: usize::from(b[2] - b'0'),
                    signed: b[1] == b'i',
                }
            } else {
                return Err(bad(&format!(
                    "dtype `{d}`: images must be uint8 (`|u1`), labels little-endian integers"
                )));
            }
        }
    };
    if field("fortran_order")?.starts_with("True") {
        return Err(bad(
            "Fortran-ordered array (save it C-ordered: np.ascontiguousarray)",
        ));
    }
    let shape = field("shape")?;
    let shape = shape
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("header's 'shape' is not a tuple"))?;
    let shape = shape
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| bad(&format!("shape entry `{s}`")))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((dtype, shape))
}

impl Dtype {
    fn size(self) -> usize {
        match self {
            Self::U8 => 1,
            Self::Int { bytes, .. } => bytes,
        }
    }
}

/// Reads an array from `input` (`available`: the bytes the file or entry holds, for the
/// length check). With `max_rows`, at most that many rows (first axis) are read.
fn read_array(
    mut input: impl Read,
    available: u64,
    path: &Path,
    max_rows: Option<usize>,
) -> Result<Array> {
    let mut counted = CountingReader {
        inner: &mut input,
        n: 0,
    };
    let (dtype, mut shape) = header(&mut counted, path)?;
    let header_len = counted.n;
    let row = shape
        .iter()
        .skip(1)
        .try_fold(dtype.size() as u64, |acc, &d| acc.checked_mul(d as u64));
    let rows = shape.first().copied().unwrap_or(1) as u64;
    let total = row.and_then(|r| rows.checked_mul(r));
    if total.and_then(|t| t.checked_add(header_len)) != Some(available) {
        return Err(DataError::format(
            path,
            format!(
                "the header declares {} bytes of data ({shape:?}) but the file holds {}",
                total.map_or_else(|| "more than 2^64".to_string(), |t| t.to_string()),
                available.saturating_sub(header_len)
            ),
        ));
    }
    let row = row.unwrap_or(0);
    let keep = max_rows.map_or(rows, |m| rows.min(m as u64));
    let bytes = keep * row;
    if bytes > MAX_ARRAY_BYTES {
        return Err(DataError::format(
            path,
            format!(
                "{bytes} bytes of data, more than the limit of {} MiB per array (max_per_class reads fewer)",
                MAX_ARRAY_BYTES >> 20
            ),
        ));
    }
    let mut data = vec![0; bytes as usize];
    input
        .read_exact(&mut data)
        .map_err(|e| DataError::io(path, e))?;
    if let Some(first) = shape.first_mut() {
        *first = keep as usize;
    }
    Ok(Array { dtype, shape, data })
}

struct CountingReader<'a, R> {
    inner: &'a mut R,
    n: u64,
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

/// Reads the `.npy` file at `path` (at most `max_rows` rows).
pub(crate) fn read_npy(path: &Path, max_rows: Option<usize>) -> Result<Array> {
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let len = file.metadata().map_err(|e| DataError::io(path, e))?.len();
    read_array(BufReader::new(file), len, path, max_rows)
}

/// Reads arrays `names` (`images`, `labels`) of the `.npz` archive at `path`.
pub(crate) fn read_npz(path: &Path, names: &[&str]) -> Result<Vec<Array>> {
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut zip = zip::ZipArchive::new(BufReader::new(file))
        .map_err(|e| DataError::format(path, format!("not a .npz (zip) archive: {e}")))?;
    names
        .iter()
        .map(|name| {
            let entry_name = format!("{name}.npy");
            let inner = path.join(&entry_name);
            let entry = zip.by_name(&entry_name).map_err(|_| {
                DataError::format(path, format!("the archive holds no `{entry_name}`"))
            })?;
            let size = entry.size();
            if size > MAX_ARRAY_BYTES + (1 << 16) {
                return Err(DataError::format(
                    &inner,
                    format!(
                        "declares {size} bytes, more than the limit of {} MiB per array",
                        MAX_ARRAY_BYTES >> 20
                    ),
                ));
            }
            // The declared size bounds what is read, whatever the compressed stream holds.
            read_array(entry.take(size), size, &inner, None)
        })
        .collect()
}

/// The labels of a 1-D integer array, each below `limit`.
pub(crate) fn labels(a: &Array, path: &Path, limit: usize) -> Result<Vec<u16>> {
    if a.shape.len() != 1 {
        return Err(DataError::format(
            path,
            format!("labels must be 1-D, found shape {:?}", a.shape),
        ));
    }
    let size = a.dtype.size();
    let signed = matches!(a.dtype, Dtype::Int { signed: true, .. });
    a.data
        .chunks_exact(size)
        .enumerate()
        .map(|(i, b)| {
            let mut le = [0u8; 8];
            le[..size].copy_from_slice(b);
            if signed && b[size - 1] & 0x80 != 0 {
                return Err(DataError::format(
                    path,
                    format!("label at index {i} is negative"),
                ));
            }
            let v = u64::from_le_bytes(le);
            if v >= limit as u64 {
                return Err(DataError::format(
                    path,
                    format!("label {v} at index {i} is not below {limit}"),
                ));
            }
            Ok(v as u16)
        })
        .collect()
}

/// The images of a uint8 array under the rule at `side`, each labelled by `label(i)`.
pub(crate) fn images(
    a: &Array,
    path: &Path,
    side: usize,
    label: impl Fn(usize) -> u16,
) -> Result<Collected> {
    if a.dtype != Dtype::U8 {
        return Err(DataError::format(
            path,
            "images must be uint8 (`|u1`): convert with .astype(np.uint8)",
        ));
    }
    let (n, h, w, c) = match a.shape[..] {
        [n, d] => {
            let s = (d as f64).sqrt().round() as usize;
            if s * s != d || d == 0 {
                return Err(DataError::format(
                    path,
                    format!("rows of {d} values are not square images (N x 784 for 28x28)"),
                ));
            }
            (n, s, s, 1)
        }
        [n, h, w] => (n, h, w, 1),
        [n, h, w, c @ (1 | 3)] => (n, h, w, c),
        _ => {
            return Err(DataError::format(
                path,
                format!(
                    "image array of shape {:?} (N x D, N x H x W or N x H x W x C)",
                    a.shape
                ),
            ));
        }
    };
    if h == 0
        || w == 0
        || h > crate::decode::MAX_IMAGE_SIDE as usize
        || w > crate::decode::MAX_IMAGE_SIDE as usize
    {
        return Err(DataError::format(path, format!("images of {h}x{w} pixels")));
    }
    let len = h * w * c;
    let pictures: Vec<Picture> = a.data[..n * len]
        .par_chunks_exact(len)
        .map(|px| {
            if c == 1 {
                from_grey(w, h, px, side)
            } else {
                let rgb = image::RgbImage::from_raw(w as u32, h as u32, px.to_vec())
                    .expect("h * w * 3 bytes make an h x w RGB image");
                from_dynamic(image::DynamicImage::ImageRgb8(rgb), side)
            }
        })
        .collect();
    let mut out = Collected::default();
    for (i, p) in pictures.into_iter().enumerate() {
        out.push(p, label(i), (w as u32, h as u32));
    }
    Ok(out)
}

/// The bytes of a version-1 `.npy` of dtype `descr` (`|u1`, `<i8`, ...) and `shape` holding
/// `data` (what tests and sample generators write).
pub fn encode(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(h.len() as u16).to_le_bytes());
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8], rows: Option<usize>) -> Result<Array> {
        read_array(bytes, bytes.len() as u64, Path::new("a.npy"), rows)
    }

    #[test]
    fn uint8_images_and_integer_labels_are_read() {
        let a = read(&encode("|u1", &[3, 4], &[1; 12]), None).unwrap();
        assert_eq!((a.dtype, a.shape.clone()), (Dtype::U8, vec![3, 4]));
        let c = images(&a, Path::new("a.npy"), 2, |i| i as u16).unwrap();
        assert_eq!((c.len(), c.labels.clone()), (3, vec![0, 1, 2]));
        let first = read(&encode("|u1", &[3, 4], &[1; 12]), Some(2)).unwrap();
        assert_eq!((first.shape.clone(), first.data.len()), (vec![2, 4], 8));
        let l = read(
            &encode(
                "<i8",
                &[2],
                &[3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0],
            ),
            None,
        )
        .unwrap();
        assert_eq!(labels(&l, Path::new("l"), 10).unwrap(), vec![3, 1]);
        assert!(
            labels(&l, Path::new("l"), 2)
                .unwrap_err()
                .to_string()
                .contains("label 3 at index 0")
        );
    }

    #[test]
    fn bad_arrays_are_named_errors() {
        let e = |b: &[u8]| read(b, None).unwrap_err().to_string();
        assert!(e(&encode("|O", &[2], &[0; 16])).contains("never reads pickle"));
        assert!(e(&encode("<f4", &[2], &[0; 8])).contains("dtype `<f4`"));
        assert!(e(&encode("|u1", &[3, 4], &[1; 11])).contains("declares 12 bytes"));
        assert!(e(&encode("|u1", &[3, 4], &[1; 13])).contains("declares 12 bytes"));
        assert!(e(b"PK\x03\x04 not numpy").contains("no \\x93NUMPY magic"));
        assert!(e(&encode("|u1", &[usize::MAX / 2, 4], &[])).contains("declares"));
        let a = read(&encode("|u1", &[2, 5], &[0; 10]), None).unwrap();
        assert!(
            images(&a, Path::new("a.npy"), 4, |_| 0)
                .unwrap_err()
                .to_string()
                .contains("not square")
        );
        let l = read(&encode("<i4", &[1], &[255, 255, 255, 255]), None).unwrap();
        assert!(
            labels(&l, Path::new("l"), 9)
                .unwrap_err()
                .to_string()
                .contains("negative")
        );
    }
}
