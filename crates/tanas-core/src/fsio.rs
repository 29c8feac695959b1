//! Atomic file writes: the one writer every crate uses.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Prefix of the temporary files of [`write_atomic`], followed by the writer's pid and `-`
/// (see [`crate::out_dir::is_stale_temp`]).
pub const TEMP_PREFIX: &str = ".tanas-tmp-";

/// Writes `bytes` to `path` atomically: its directory is created if needed, the bytes go to a
/// temporary file beside `path` (named `.tanas-tmp-<pid>-*`, so that only a file whose writer
/// is gone is ever swept), are synced to disk, and the file is
/// renamed into place, so `path` never holds a partial file. The result is an ordinary
/// `rw-r--r--` file (temporary files are created `rw-------`). The error names the file and
/// keeps the OS's error (a full disk is "No space left on device").
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    write(path, bytes).map_err(|source| WriteError {
        path: path.to_path_buf(),
        source,
    })
}

/// A file [`write_atomic`] could not write.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct WriteError {
    /// The file.
    pub path: PathBuf,
    /// The OS's error, its kind kept.
    pub source: std::io::Error,
}

/// A file that could not be read or written, or whose JSON could not be parsed or written:
/// the error of every crate's `Io` and `Json` cases, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS's error.
        source: std::io::Error,
    },
    /// A JSON file could not be parsed or written.
    #[error("{}: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        source: serde_json::Error,
    },
}

impl FileError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// A JSON error on `path`.
    pub fn json(path: impl Into<PathBuf>, source: serde_json::Error) -> Self {
        Self::Json {
            path: path.into(),
            source,
        }
    }
}

/// An error when `path` is a symbolic link (the caller names the path): tanas creates its
/// lock files, store entries and checkpoint folders itself and never writes through a link
/// planted in their place.
pub fn refuse_symlink(path: &Path) -> std::io::Result<()> {
    match path.symlink_metadata() {
        Ok(m) if m.file_type().is_symlink() => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "is a symbolic link (tanas does not write through links)",
        )),
        _ => Ok(()),
    }
}

/// The largest settings file (TOML, JSON) tanas reads: 16 MiB.
pub const TEXT_FILE_CAP: u64 = 16 << 20;

/// Reads the regular file `path` whole, if it holds at most `cap` bytes: a named pipe, a
/// device (`/dev/zero`) or a directory is an error at once instead of a read that blocks or
/// never ends, and a file over the cap is an error instead of an unbounded allocation. The
/// error is the OS's kind with a message that says which (the caller names the path).
pub fn read_capped(path: &Path, cap: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let invalid = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, m);
    // Look before opening: opening a named pipe for reading blocks until a writer comes.
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(invalid("is not a regular file".into()));
    }
    if meta.len() > cap {
        return Err(invalid(format!(
            "is {} bytes, more than the {cap} tanas reads",
            meta.len()
        )));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // At most one byte past the cap, should the file grow after the look.
    std::fs::File::open(path)?
        .take(cap + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(invalid(format!("grew past the {cap} bytes tanas reads")));
    }
    Ok(bytes)
}

/// [`read_capped`] at [`TEXT_FILE_CAP`], as UTF-8 text.
pub fn read_text(path: &Path) -> std::io::Result<String> {
    String::from_utf8(read_capped(path, TEXT_FILE_CAP)?)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))
}

fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut builder = tempfile::Builder::new();
    let prefix = format!("{TEMP_PREFIX}{}-", std::process::id());
    builder.prefix(&prefix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        builder.permissions(std::fs::Permissions::from_mode(0o644));
    }
    let mut tmp = builder.tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_whole_ordinary_file_and_leaves_no_temporary() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("a/b/metrics.json");
        write_atomic(&path, b"{}").unwrap();
        write_atomic(&path, b"{\"x\": 1}").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"x\": 1}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o644);
        }
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["metrics.json"]);
    }

    #[test]
    fn an_io_error_keeps_its_kind() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        // The "directory" is a file: the error is the OS's, not a wrapped string.
        let out = file.join("out.json");
        let e = write_atomic(&out, b"{}").unwrap_err();
        assert!(e.source.raw_os_error().is_some(), "{e}");
        assert_eq!(e.path, out);
        assert!(
            e.to_string().starts_with(&format!("{}: ", out.display())),
            "{e}"
        );
    }
}
