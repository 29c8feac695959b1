//! Images in CSV, as Kaggle's mnist-in-csv: a header row, then one image per row, the label in
//! the first column and the grey pixels (0-255, row-major) after it; the image side follows
//! from the column count.

use std::path::{Path, PathBuf};

use crate::declared::{OnError, Skipped};
use crate::decode::{Collected, from_grey};
use crate::error::{DataError, Result};

/// Reads `path`: labels below `num_classes`, images under the rule at `side`.
pub(crate) fn read_csv(
    path: &Path,
    side: usize,
    num_classes: usize,
    on_error: OnError,
    skipped: &mut Vec<Skipped>,
) -> Result<Collected> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_path(path)
        .map_err(|e| DataError::format(path, e.to_string()))?;
    let columns = reader
        .headers()
        .map_err(|e| DataError::format(path, e.to_string()))?
        .len();
    let pixels = columns.saturating_sub(1);
    let s = (pixels as f64).sqrt().round() as usize;
    if pixels == 0 || s * s != pixels {
        return Err(DataError::format(
            path,
            format!(
                "the header has {columns} columns: a label and a square number of pixels (785 for 28x28) expected"
            ),
        ));
    }
    let mut out = Collected::default();
    let mut row = Vec::with_capacity(pixels);
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let parsed = record
            .map_err(|e| e.to_string())
            .and_then(|r| parse_row(&r, columns, num_classes, &mut row));
        match parsed {
            Ok(label) => out.push(from_grey(s, s, &row, side), label, (s as u32, s as u32)),
            Err(problem) => {
                let file = PathBuf::from(format!("{}:{line}", path.display()));
                match on_error {
                    OnError::Fail => return Err(DataError::format(file, problem)),
                    OnError::Skip => skipped.push(Skipped { file, problem }),
                }
            }
        }
    }
    Ok(out)
}

/// The label of one record, its pixels into `row`.
fn parse_row(
    r: &csv::StringRecord,
    columns: usize,
    num_classes: usize,
    row: &mut Vec<u8>,
) -> std::result::Result<u16, String> {
    if r.len() != columns {
        return Err(format!("{} columns, the header has {columns}", r.len()));
    }
    let label: usize = r[0]
        .trim()
        .parse()
        .map_err(|_| format!("label `{}` is not a class number", &r[0]))?;
    if label >= num_classes {
        return Err(format!("label {label} is not below {num_classes}"));
    }
    row.clear();
    for (c, v) in r.iter().enumerate().skip(1) {
        row.push(
            v.trim()
                .parse::<u8>()
                .map_err(|_| format!("column {}: `{v}` is not a pixel value 0-255", c + 1))?,
        );
    }
    Ok(label as u16)
}
