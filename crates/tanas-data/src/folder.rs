//! torchvision's ImageFolder layout: `root/<class>/...` or, with splits,
//! `root/train/<class>/...` and `root/test/<class>/...`. Class names are the folder names,
//! sorted; every file below a class folder (hidden files aside, sub-folders followed up to
//! [`MAX_DEPTH`] deep) is an image of that class.

use std::fs;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::declared::{OnError, Skipped};
use crate::decode::{Collected, decode_file};
use crate::error::{DataError, Result};

/// How deep sub-folders of a class folder are followed (a symlink loop ends here).
pub const MAX_DEPTH: usize = 8;

/// The files of an image folder: per split, (file, class) in sorted order.
pub(crate) struct FolderFiles {
    pub classes: Vec<String>,
    pub train: Vec<(PathBuf, u16)>,
    pub test: Option<Vec<(PathBuf, u16)>>,
}

/// Lists an image folder; `wanted` restricts and orders the classes.
pub(crate) fn list(root: &Path, wanted: Option<&[String]>) -> Result<FolderFiles> {
    let (train_dir, test_dir) = (root.join("train"), root.join("test"));
    let split = train_dir.is_dir() && test_dir.is_dir();
    let base = if split { &train_dir } else { root };
    let classes = match wanted {
        Some(w) => w.to_vec(),
        None => sub_dirs(base)?,
    };
    if classes.is_empty() || classes.len() > tanas_core::limits::MAX_CLASSES {
        return Err(DataError::format(
            base,
            format!(
                "{} class folders (1 to {} are read)",
                classes.len(),
                tanas_core::limits::MAX_CLASSES
            ),
        ));
    }
    if split && wanted.is_none() {
        let test_classes = sub_dirs(&test_dir)?;
        if let Some(c) = test_classes.iter().find(|c| !classes.contains(c)) {
            return Err(DataError::format(
                test_dir.join(c),
                "a test class with no folder in train/",
            ));
        }
    }
    let files_of = |dir: &Path| -> Result<Vec<(PathBuf, u16)>> {
        let mut out = Vec::new();
        for (label, class) in classes.iter().enumerate() {
            let class_dir = dir.join(class);
            if !class_dir.is_dir() {
                return Err(DataError::format(&class_dir, "class folder not found"));
            }
            let before = out.len();
            let mut files = Vec::new();
            walk(&class_dir, 0, &mut files)?;
            files.sort_unstable_by(|a, b| a.as_os_str().cmp(b.as_os_str()));
            out.extend(files.into_iter().map(|f| (f, label as u16)));
            if out.len() == before {
                return Err(DataError::format(&class_dir, "empty class folder"));
            }
        }
        Ok(out)
    };
    Ok(FolderFiles {
        train: files_of(base)?,
        test: if split {
            Some(files_of(&test_dir)?)
        } else {
            None
        },
        classes,
    })
}

/// The sorted names of the (non-hidden) sub-directories of `dir`.
fn sub_dirs(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
        let entry = entry.map_err(|e| DataError::io(dir, e))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if fs::metadata(&path)
            .map_err(|e| DataError::io(&path, e))?
            .is_dir()
        {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Every non-hidden file below `dir`, following sub-folders up to [`MAX_DEPTH`].
fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(DataError::format(
            dir,
            format!(
                "folders nested more than {MAX_DEPTH} deep below a class folder (a symlink loop?)"
            ),
        ));
    }
    for entry in fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
        let entry = entry.map_err(|e| DataError::io(dir, e))?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        // The entry's own type needs no system call; a link is followed (to a folder or a file).
        let kind = entry.file_type().map_err(|e| DataError::io(&path, e))?;
        let is_dir = if kind.is_symlink() {
            fs::metadata(&path)
                .map_err(|e| DataError::io(&path, e))?
                .is_dir()
        } else {
            kind.is_dir()
        };
        if is_dir {
            walk(&path, depth + 1, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// Decodes `files` in parallel, in order; a file that fails is an error naming it, or with
/// [`OnError::Skip`] left out and recorded.
pub(crate) fn decode(
    files: &[(PathBuf, u16)],
    side: usize,
    on_error: OnError,
    skipped: &mut Vec<Skipped>,
) -> Result<Collected> {
    let decoded: Vec<_> = files
        .par_iter()
        .map(|(path, _)| decode_file(path, side))
        .collect();
    let mut out = Collected::default();
    for ((path, label), result) in files.iter().zip(decoded) {
        match result {
            Ok((picture, size)) => out.push(picture, *label, size),
            Err(problem) => match on_error {
                OnError::Fail => return Err(DataError::format(path, problem)),
                OnError::Skip => skipped.push(Skipped {
                    file: path.clone(),
                    problem,
                }),
            },
        }
    }
    Ok(out)
}
