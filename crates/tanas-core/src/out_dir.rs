//! One writer per output directory.
//!
//! [`OutDirLock::acquire`] creates the directory, takes an exclusive advisory lock on its
//! `.tanas-lock` file (released by the operating system when the process ends, however it ends)
//! and writes the holder's pid into it; a second writer fails at once with "DIR is in use by
//! pid N". Holding the lock, it removes the temporary files of tanas's atomic writers that a
//! killed writer left anywhere under the directory (names `.tanas-*.tmp` and `.tanas-tmp-*`):
//! no live writer can own them. Readers of finished artifacts take no lock.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use fs4::fs_std::FileExt;

/// Name of the lock file inside a locked directory.
pub const LOCK_FILE: &str = ".tanas-lock";

/// Why an output directory could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum OutDirError {
    /// Another process holds the directory's lock.
    #[error("{} is in use by {} (another tanas command is writing to it)", dir.display(), holder(*pid))]
    InUse {
        /// The directory.
        dir: PathBuf,
        /// The holder's pid, when it could be read from the lock file.
        pid: Option<u32>,
    },
    /// The directory or its lock file could not be created or locked.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

fn holder(pid: Option<u32>) -> String {
    pid.map_or_else(|| "another process".into(), |p| format!("pid {p}"))
}

/// The exclusive right to write an output directory, held until dropped.
#[derive(Debug)]
pub struct OutDirLock {
    dir: PathBuf,
    _file: File,
}

impl OutDirLock {
    /// Creates `dir` if needed, locks it and removes stale temporary files under it.
    pub fn acquire(dir: &Path) -> Result<Self, OutDirError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| OutDirError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io(&path))?;
        if !file.try_lock_exclusive().map_err(io(&path))? {
            let mut text = String::new();
            let pid = file
                .read_to_string(&mut text)
                .ok()
                .and_then(|_| text.trim().parse().ok());
            return Err(OutDirError::InUse {
                dir: dir.to_path_buf(),
                pid,
            });
        }
        file.set_len(0).map_err(io(&path))?;
        file.rewind().map_err(io(&path))?;
        writeln!(file, "{}", std::process::id()).map_err(io(&path))?;
        remove_stale_temps(dir).map_err(io(dir))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            _file: file,
        })
    }

    /// The locked directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Whether `name` is that of a temporary file of one of tanas's atomic writers.
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with(".tanas-tmp-") || (name.starts_with(".tanas-") && name.ends_with(".tmp"))
}

/// Removes every file under `dir` (symbolic links are not followed) whose name
/// [`is_temp_name`]; returns how many were removed.
pub fn remove_stale_temps(dir: &Path) -> std::io::Result<usize> {
    let mut removed = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_file() && entry.file_name().to_str().is_some_and(is_temp_name) {
                std::fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_is_refused_until_the_first_is_done() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("out");
        let first = OutDirLock::acquire(&dir).unwrap();
        let e = OutDirLock::acquire(&dir).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "{} is in use by pid {} (another tanas command is writing to it)",
                dir.display(),
                std::process::id()
            )
        );
        drop(first);
        OutDirLock::acquire(&dir).unwrap();
    }

    #[test]
    fn stale_temp_files_are_removed_and_nothing_else() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path();
        let deep = dir.join("nets/mnist-2/seed-0");
        std::fs::create_dir_all(&deep).unwrap();
        let stale = [
            deep.join(".tanas-weights-abc123.tmp"),
            dir.join(".tanas-tmp-XyZ"),
            dir.join(".tanas-fisher-1.tmp"),
            deep.join(".tanas-search-q.tmp"),
        ];
        let kept = [
            deep.join("weights.safetensors"),
            dir.join(".tanas-notes"),
            dir.join("tanas-x.tmp"),
            dir.join("user.tmp"),
        ];
        for p in stale.iter().chain(&kept) {
            std::fs::write(p, b"x").unwrap();
        }
        let _lock = OutDirLock::acquire(dir).unwrap();
        assert!(stale.iter().all(|p| !p.exists()));
        assert!(kept.iter().all(|p| p.exists()));
        assert!(dir.join(LOCK_FILE).exists());
    }
}
