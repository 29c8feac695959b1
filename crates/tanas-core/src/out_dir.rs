//! One writer per output directory.
//!
//! [`OutDirLock::acquire`] creates the directory, takes an exclusive advisory lock on its
//! `.tanas-lock` file (released by the operating system when the process ends, however it ends)
//! and writes the holder's pid into it; a second writer fails at once with "DIR is in use by
//! pid N". Holding the lock, it removes the temporary files that killed writers left anywhere
//! under the directory ([`is_stale_temp`]: an atomic writer's `.tanas-tmp-<pid>-*` whose
//! process is gone), never those of a live process: a store nested in the directory may have
//! other writers. Readers of finished artifacts take no lock.

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
        crate::refuse_symlink(&path).map_err(io(&path))?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io(&path))?;
        if !file.try_lock_exclusive().map_err(io(&path))? {
            return Err(OutDirError::InUse {
                dir: dir.to_path_buf(),
                pid: holder_pid(&mut file),
            });
        }
        write_holder_pid(&mut file).map_err(io(&path))?;
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

/// The pid the holder of the lock `file` wrote into it ([`write_holder_pid`]), if readable.
pub(crate) fn holder_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// Writes this process's pid into the lock `file` it now holds.
pub(crate) fn write_holder_pid(file: &mut File) -> std::io::Result<()> {
    file.set_len(0)?;
    file.rewind()?;
    writeln!(file, "{}", std::process::id())
}

/// Whether `name` is a temporary file of one of tanas's atomic writers whose process is gone:
/// `.tanas-tmp-<pid>-*` of a pid that is not running (on systems without `/proc`, none is
/// known to be gone), or a name of an older tanas that carries no pid (`.tanas-tmp-*`
/// without one, `.tanas-*.tmp`).
pub fn is_stale_temp(name: &str) -> bool {
    if let Some(rest) = name.strip_prefix(crate::fsio::TEMP_PREFIX) {
        return match rest
            .split_once('-')
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        {
            Some(pid) => !alive(pid),
            None => true,
        };
    }
    name.starts_with(".tanas-") && name.ends_with(".tmp")
}

/// Whether process `pid` is running (this one always is).
fn alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    pid == std::process::id() || !proc.join("self").exists() || proc.join(pid.to_string()).exists()
}

/// Removes every file under `dir` (symbolic links are not followed) that [`is_stale_temp`];
/// returns how many were removed.
pub fn remove_stale_temps(dir: &Path) -> std::io::Result<usize> {
    let mut removed = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_file() && entry.file_name().to_str().is_some_and(is_stale_temp) {
                match std::fs::remove_file(entry.path()) {
                    // Its writer may have renamed it into place meanwhile.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    r => {
                        r?;
                        removed += 1;
                    }
                }
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
        // A pid that is not running: above the kernel's largest.
        let gone = 4_194_305;
        let stale = [
            deep.join(".tanas-weights-abc123.tmp"),
            dir.join(".tanas-tmp-XyZ"),
            dir.join(format!(".tanas-tmp-{gone}-XyZ")),
            dir.join(".tanas-fisher-1.tmp"),
            deep.join(".tanas-search-q.tmp"),
        ];
        // Files of live writers (this process; pid 1) stay: another command may be writing
        // into a store nested in the directory.
        let kept = [
            deep.join("weights.safetensors"),
            dir.join(".tanas-notes"),
            dir.join("tanas-x.tmp"),
            dir.join("user.tmp"),
            deep.join(format!(".tanas-tmp-{}-AbC", std::process::id())),
            deep.join(".tanas-tmp-1-AbC"),
        ];
        for p in stale.iter().chain(&kept) {
            std::fs::write(p, b"x").unwrap();
        }
        let _lock = OutDirLock::acquire(dir).unwrap();
        assert!(stale.iter().all(|p| !p.exists()));
        assert!(kept.iter().all(|p| p.exists()));
        assert!(dir.join(LOCK_FILE).exists());
    }

    /// A command taking a directory sweeps while another writes into a store nested in it:
    /// the live writer's temporary files are not touched, so none of its writes fails.
    #[test]
    fn a_sweep_leaves_a_live_writer_alone() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("dict");
        let partial = dir.join("store/search/k.partial");
        std::fs::create_dir_all(&partial).unwrap();
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            let sweeps = s.spawn(|| {
                let mut n = 0;
                while !done.load(std::sync::atomic::Ordering::SeqCst) {
                    drop(OutDirLock::acquire(&dir).unwrap());
                    n += 1;
                }
                n
            });
            for i in 0..400 {
                let line = format!("{{\"round\": {i}}}\n").repeat(64);
                crate::write_atomic(&partial.join("trace.jsonl"), line.as_bytes())
                    .unwrap_or_else(|e| panic!("write {i}: {e}"));
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            assert!(sweeps.join().unwrap() > 0);
        });
    }
}
