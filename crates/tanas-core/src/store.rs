//! The artifact store: every network, Fisher diagonal and search exists once, under a key
//! that says exactly how it was made, and every stage finds it by that key.
//!
//! An artifact's key is the FNV-1a hash of its kind, its format version, its settings as
//! canonical JSON (object keys sorted, so field order does not matter) and the keys of the
//! artifacts it was made from. Layout:
//! ```text
//! <root>/<kind>/<key>/            a finished artifact: its files and stamp.json
//! <root>/<kind>/<key>.partial/    one being built (kept when interrupted: builds resume)
//! <root>/<kind>/<key>.lock        held while it is built (one builder per key; removed
//!                                 once the artifact is in place)
//! ```
//! `stamp.json` says what the artifact is: kind, format, key, settings and inputs, and the size
//! and FNV-1a hash of every file the build wrote. Names a person reads (task, seed,
//! architecture) are never the identity: stages list them in their own output directories,
//! next to the store path of each artifact.
//!
//! An artifact is verified whenever it is found: a file of another size or content than its
//! stamp records, or a directory without a readable stamp, is a damaged entry. Where the
//! recipe is at hand ([`Store::get_or_build`]) it is rebuilt under the key's lock with a
//! warning naming the file; found by id ([`Store::entry`]) it is an error naming it.
//!
//! [`Store::get_or_build`] returns a finished artifact at once; otherwise it takes the key's
//! lock (waiting for another process building the same key, then finding its result),
//! removes the temporary files a killed builder left, builds into the `.partial` directory,
//! writes the stamp and renames the directory into place, so a finished artifact is never
//! seen half-written.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Read;
use std::path::{Path, PathBuf};

use fs4::fs_std::FileExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Fnv1a, write_atomic};

/// Name of the file that says what a stored artifact is.
pub const STAMP_FILE: &str = "stamp.json";

/// A kind of stored artifact.
pub trait Artifact {
    /// Directory name of the kind (`network`, `fisher`, `search`).
    const KIND: &'static str;
    /// Format version: bump it when the files change, so old artifacts are not found.
    const FORMAT: u32;
}

/// What a stored artifact is (`stamp.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stamp {
    /// [`Artifact::KIND`].
    pub kind: String,
    /// [`Artifact::FORMAT`].
    pub format: u32,
    /// The key (16 hex digits).
    pub key: String,
    /// The settings it was made with, canonical.
    pub settings: Value,
    /// The keys of the artifacts it was made from (`kind/key`).
    pub inputs: Vec<String>,
    /// Every file the build wrote (path relative to the artifact's directory, `/`
    /// separated): its size and hash, checked whenever the artifact is found. Empty in stamps
    /// written before they were recorded, whose files are trusted.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, FileSum>,
}

/// The size and FNV-1a hash of one file of an artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSum {
    /// Bytes.
    pub size: u64,
    /// FNV-1a of the bytes (16 hex digits).
    pub fnv1a: String,
}

impl FileSum {
    /// The sum of the file at `path` (read in chunks).
    pub fn of(path: &Path) -> std::io::Result<Self> {
        let mut file = std::fs::File::open(path)?;
        let mut h = Fnv1a::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h = h.bytes(&buf[..n]);
            size += n as u64;
        }
        Ok(FileSum {
            size,
            fnv1a: h.hex(),
        })
    }
}

/// The sums of every regular file under `dir` but its stamp and temporary files.
fn file_sums(dir: &Path) -> std::io::Result<BTreeMap<String, FileSum>> {
    let mut sums = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in std::fs::read_dir(dir.join(&rel))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = rel.join(&name);
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(rel);
            } else if kind.is_file()
                && rel != Path::new(STAMP_FILE)
                && !name.starts_with(crate::fsio::TEMP_PREFIX)
            {
                let key = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                sums.insert(key, FileSum::of(&dir.join(&rel))?);
            }
        }
    }
    Ok(sums)
}

/// What is wrong with the files of the finished artifact in `dir`, if anything: a file its
/// stamp lists is missing, or has another size or content.
fn damage(dir: &Path, stamp: &Stamp) -> Option<String> {
    for (rel, sum) in &stamp.files {
        let path = dir.join(rel);
        let problem = match std::fs::symlink_metadata(&path) {
            Err(e) => e.to_string(),
            Ok(m) if !m.is_file() => "not a regular file".to_string(),
            Ok(m) if m.len() != sum.size => {
                format!("{} bytes, written with {}", m.len(), sum.size)
            }
            Ok(_) => match FileSum::of(&path) {
                Err(e) => e.to_string(),
                Ok(found) if found != *sum => "its content changed since it was written".into(),
                Ok(_) => continue,
            },
        };
        return Some(format!("{}: {problem}", path.display()));
    }
    None
}

/// What a lookup of a key finds.
enum Lookup {
    /// A finished, intact artifact.
    Finished(StoreEntry),
    /// Nothing.
    Missing,
    /// A directory that is not an intact artifact: why.
    Damaged(String),
}

impl Stamp {
    /// The stamp of `A` made with `settings` from `inputs`.
    pub fn new<A: Artifact>(
        settings: &impl Serialize,
        inputs: &[&StoreEntry],
    ) -> Result<Self, StoreError> {
        let settings =
            canonical(
                serde_json::to_value(settings).map_err(|e| StoreError::Settings {
                    kind: A::KIND,
                    problem: e.to_string(),
                })?,
            );
        let inputs: Vec<String> = inputs.iter().map(|e| e.id()).collect();
        let mut h = Fnv1a::new()
            .bytes(A::KIND.as_bytes())
            .u64(u64::from(A::FORMAT))
            .bytes(settings.to_string().as_bytes());
        for input in &inputs {
            h = h.u64(input.len() as u64).bytes(input.as_bytes());
        }
        Ok(Stamp {
            kind: A::KIND.into(),
            format: A::FORMAT,
            key: h.hex(),
            settings,
            inputs,
            files: BTreeMap::new(),
        })
    }

    /// The stamp without its file sums: what says how the artifact was made.
    fn recipe(&self) -> Stamp {
        Stamp {
            files: BTreeMap::new(),
            ..self.clone()
        }
    }
}

/// A finished artifact in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreEntry {
    /// Its kind.
    pub kind: String,
    /// Its key.
    pub key: String,
    /// Its directory.
    pub dir: PathBuf,
}

impl StoreEntry {
    /// `kind/key`: the artifact's path relative to the store root, and its identity as an
    /// input of another artifact.
    pub fn id(&self) -> String {
        format!("{}/{}", self.kind, self.key)
    }
}

/// Why the store could not give an artifact.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file or directory of the store could not be read, written or locked.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS's error.
        source: std::io::Error,
    },
    /// The settings of an artifact are not representable as JSON.
    #[error("settings of a {kind} artifact: {problem}")]
    Settings {
        /// The kind.
        kind: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// A stored artifact's stamp is unreadable or says it was made another way.
    #[error("{}: {problem}", path.display())]
    Stamp {
        /// The stamp file.
        path: PathBuf,
        /// What is wrong (for another recipe: the differing fields).
        problem: String,
    },
}

impl From<crate::WriteError> for StoreError {
    fn from(e: crate::WriteError) -> Self {
        StoreError::Io {
            path: e.path,
            source: e.source,
        }
    }
}

/// An artifact store rooted at a directory (created on first use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// The store at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Store { root: root.into() }
    }

    /// Its root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The finished artifact of `stamp`, if there is one; a damaged one (see the module
    /// docs) is an error naming what is wrong.
    pub fn get<A: Artifact>(&self, stamp: &Stamp) -> Result<Option<StoreEntry>, StoreError> {
        match self.lookup::<A>(stamp)? {
            Lookup::Finished(entry) => Ok(Some(entry)),
            Lookup::Missing => Ok(None),
            Lookup::Damaged(problem) => Err(StoreError::Stamp {
                path: self.root.join(A::KIND).join(&stamp.key),
                problem: format!("{problem}; remove the directory to rebuild it"),
            }),
        }
    }

    /// What the store holds under `stamp`'s key.
    fn lookup<A: Artifact>(&self, stamp: &Stamp) -> Result<Lookup, StoreError> {
        let dir = self.root.join(A::KIND).join(&stamp.key);
        let path = dir.join(STAMP_FILE);
        let text = match crate::read_text(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(if std::fs::symlink_metadata(&dir).is_ok() {
                    Lookup::Damaged(format!("{}: missing", path.display()))
                } else {
                    Lookup::Missing
                });
            }
            Err(source) => return Err(StoreError::Io { path, source }),
        };
        let stored: Stamp = match serde_json::from_str(&text) {
            Ok(s) => s,
            Err(e) => {
                return Ok(Lookup::Damaged(format!(
                    "{}: not a stamp ({e})",
                    path.display()
                )));
            }
        };
        if stored.recipe() != *stamp {
            let fields = differing_fields(
                &serde_json::to_value(stored.recipe()).unwrap_or(Value::Null),
                &serde_json::to_value(stamp).unwrap_or(Value::Null),
            );
            return Err(StoreError::Stamp {
                path,
                problem: format!("made with other settings: {}", fields.join("; ")),
            });
        }
        Ok(match damage(&dir, &stored) {
            Some(problem) => Lookup::Damaged(problem),
            None => Lookup::Finished(StoreEntry {
                kind: A::KIND.into(),
                key: stamp.key.clone(),
                dir,
            }),
        })
    }

    /// The finished artifact whose [`StoreEntry::id`] is `id` (as a stage recorded it).
    pub fn entry(&self, id: &str) -> Result<StoreEntry, StoreError> {
        let dir = self.root.join(id);
        let stamp = dir.join(STAMP_FILE);
        match id.split_once('/') {
            Some((kind, key))
                if kind.bytes().all(|c| c.is_ascii_lowercase() || c == b'-')
                    && !kind.is_empty()
                    && key.bytes().all(|c| c.is_ascii_hexdigit())
                    && stamp.is_file() =>
            {
                let text = crate::read_text(&stamp).map_err(|source| StoreError::Io {
                    path: stamp.clone(),
                    source,
                })?;
                let stored: Stamp = serde_json::from_str(&text).map_err(|e| StoreError::Stamp {
                    path: stamp.clone(),
                    problem: format!("not a stamp ({e})"),
                })?;
                if let Some(problem) = damage(&dir, &stored) {
                    return Err(StoreError::Stamp {
                        path: dir,
                        problem: format!("{problem}; a damaged store entry"),
                    });
                }
                Ok(StoreEntry {
                    kind: kind.into(),
                    key: key.into(),
                    dir,
                })
            }
            _ => Err(StoreError::Stamp {
                path: stamp,
                problem: format!("no finished artifact `{id}` in this store"),
            }),
        }
    }

    /// The artifact `A` made with `settings` from `inputs`: found, or built by `build` into
    /// the directory it is given (which may hold what an interrupted build left).
    pub fn get_or_build<A: Artifact, E: From<StoreError>>(
        &self,
        settings: &impl Serialize,
        inputs: &[&StoreEntry],
        build: impl FnOnce(&Path) -> Result<(), E>,
    ) -> Result<StoreEntry, E> {
        let mut stamp = Stamp::new::<A>(settings, inputs)?;
        if let Lookup::Finished(found) = self.lookup::<A>(&stamp)? {
            return Ok(found);
        }
        let kind_dir = self.root.join(A::KIND);
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io { path, source }
        };
        crate::refuse_symlink(&kind_dir).map_err(io(&kind_dir))?;
        std::fs::create_dir_all(&kind_dir).map_err(io(&kind_dir))?;
        let lock_path = kind_dir.join(format!("{}.lock", stamp.key));
        crate::refuse_symlink(&lock_path).map_err(io(&lock_path))?;
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        let what = format!("{}/{}", A::KIND, stamp.key);
        lock_key(&mut lock, |pid| {
            tracing::warn!(
                "waiting for {} to finish building {what} (lock {})",
                pid.map_or_else(|| "another process".into(), |p| format!("pid {p}")),
                lock_path.display()
            );
        })
        .map_err(io(&lock_path))?;
        // Another process may have built it while this one waited for the lock.
        let dir = kind_dir.join(&stamp.key);
        match self.lookup::<A>(&stamp)? {
            Lookup::Finished(found) => return Ok(found),
            Lookup::Missing => {}
            Lookup::Damaged(problem) => {
                tracing::warn!("{problem}: a damaged store entry, rebuilt");
                crate::refuse_symlink(&dir)
                    .and_then(|()| std::fs::remove_dir_all(&dir))
                    .map_err(io(&dir))?;
            }
        }
        let partial = kind_dir.join(format!("{}.partial", stamp.key));
        crate::refuse_symlink(&partial).map_err(io(&partial))?;
        std::fs::create_dir_all(&partial).map_err(io(&partial))?;
        crate::out_dir::remove_stale_temps(&partial).map_err(io(&partial))?;
        build(&partial)?;
        stamp.files = file_sums(&partial).map_err(io(&partial))?;
        let text = serde_json::to_string_pretty(&stamp).map_err(|e| StoreError::Settings {
            kind: A::KIND,
            problem: e.to_string(),
        })?;
        write_atomic(&partial.join(STAMP_FILE), text.as_bytes()).map_err(StoreError::from)?;
        std::fs::rename(&partial, &dir).map_err(io(&dir))?;
        // Every holder of the lock looks for the finished artifact first, so a process still
        // waiting on this file, or one locking a new file of the same name, finds it.
        let _ = std::fs::remove_file(&lock_path);
        Ok(StoreEntry {
            kind: A::KIND.into(),
            key: stamp.key,
            dir,
        })
    }
}

/// `value` with every object's keys in sorted order (arrays keep theirs).
pub fn canonical(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, canonical(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}

/// How long a builder tries a held key's lock before it says whom it waits for.
const LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(1);

/// Takes the exclusive lock `file` of a store key and writes this process's pid into it.
/// While another process holds it, tries for [`LOCK_PATIENCE`], then calls `waiting` with
/// the holder's pid (as the holder wrote it) and blocks until the lock is free.
fn lock_key(file: &mut std::fs::File, waiting: impl FnOnce(Option<u32>)) -> std::io::Result<()> {
    let start = std::time::Instant::now();
    let mut free = file.try_lock_exclusive()?;
    while !free && start.elapsed() < LOCK_PATIENCE {
        std::thread::sleep(std::time::Duration::from_millis(50));
        free = file.try_lock_exclusive()?;
    }
    if !free {
        waiting(crate::out_dir::holder_pid(file));
        file.lock_exclusive()?;
    }
    crate::out_dir::write_holder_pid(file)
}

/// The leaves where `stored` and `requested` differ, as `path: stored -> requested` (a
/// missing side shows as `(none)`), in sorted path order.
pub fn differing_fields(stored: &Value, requested: &Value) -> Vec<String> {
    let mut out = Vec::new();
    diff("", stored, requested, &mut out);
    out
}

fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                match (x.get(k), y.get(k)) {
                    (Some(u), Some(v)) => diff(&join(k), u, v, out),
                    (u, v) => out.push(format!(
                        "{}: {} -> {}",
                        join(k),
                        u.map_or("(none)".into(), |u| u.to_string()),
                        v.map_or("(none)".into(), |v| v.to_string())
                    )),
                }
            }
        }
        _ if a != b => out.push(format!(
            "{}: {a} -> {b}",
            if path.is_empty() { "(value)" } else { path }
        )),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Net;
    impl Artifact for Net {
        const KIND: &'static str = "network";
        const FORMAT: u32 = 1;
    }

    type R<T> = Result<T, StoreError>;

    #[test]
    fn the_key_depends_on_settings_and_inputs_not_on_field_order() -> R<()> {
        let a = Stamp::new::<Net>(&json!({"lr": 0.001, "epochs": 3}), &[])?;
        let b = Stamp::new::<Net>(&json!({"epochs": 3, "lr": 0.001}), &[])?;
        let c = Stamp::new::<Net>(&json!({"epochs": 3, "lr": 0.002}), &[])?;
        assert_eq!(a.key, b.key);
        assert_ne!(a.key, c.key);
        let input = StoreEntry {
            kind: "network".into(),
            key: a.key.clone(),
            dir: PathBuf::new(),
        };
        let d = Stamp::new::<Net>(&json!({"epochs": 3, "lr": 0.001}), &[&input])?;
        assert_ne!(a.key, d.key);
        assert_eq!(d.inputs, [format!("network/{}", a.key)]);
        Ok(())
    }

    #[test]
    fn builds_once_then_finds_and_resumes_an_interrupted_build() -> R<()> {
        let root = tempfile::tempdir().map_err(|e| StoreError::Io {
            path: PathBuf::new(),
            source: e,
        })?;
        let store = Store::new(root.path().join("store"));
        let settings = json!({"task": "mnist-2", "seed": 0});
        // An interrupted build leaves its partial directory (and a stale temporary file).
        let e = store
            .get_or_build::<Net, StoreError>(&settings, &[], |dir| {
                write_atomic(&dir.join("epoch-1"), b"1")?;
                std::fs::write(dir.join(".tanas-tmp-x"), b"junk").map_err(|source| {
                    StoreError::Io {
                        path: dir.into(),
                        source,
                    }
                })?;
                Err(StoreError::Settings {
                    kind: "network",
                    problem: "interrupted".into(),
                })
            })
            .unwrap_err();
        assert!(e.to_string().contains("interrupted"));
        let stamp = Stamp::new::<Net>(&settings, &[])?;
        assert_eq!(store.get::<Net>(&stamp)?, None);
        let mut builds = 0;
        let entry = store.get_or_build::<Net, StoreError>(&settings, &[], |dir| {
            builds += 1;
            assert!(dir.join("epoch-1").exists(), "the partial build is kept");
            assert!(
                !dir.join(".tanas-tmp-x").exists(),
                "stale temporaries removed"
            );
            write_atomic(&dir.join("weights"), b"w")?;
            Ok(())
        })?;
        assert_eq!(builds, 1);
        assert_eq!(entry.dir, store.root().join("network").join(&stamp.key));
        let left: Vec<_> = std::fs::read_dir(store.root().join("network"))
            .map(|it| it.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert_eq!(
            left,
            [std::ffi::OsString::from(&stamp.key)],
            "no lock, no partial left"
        );
        assert_eq!(
            std::fs::read(entry.dir.join("weights")).ok(),
            Some(b"w".to_vec())
        );
        let again = store.get_or_build::<Net, StoreError>(&settings, &[], |_| {
            panic!("a stored artifact is not built again")
        })?;
        assert_eq!(again, entry);
        assert_eq!(store.entry(&entry.id())?, entry);
        assert!(store.entry("network/0123").is_err());
        assert!(store.entry("../x").is_err());
        Ok(())
    }

    /// Issue 28: a finished entry whose file was truncated or replaced, or whose stamp was
    /// deleted, is never used as it is: found by its recipe it is rebuilt; found by id it is
    /// an error naming the file.
    #[test]
    fn a_damaged_entry_is_rebuilt_or_refused_never_used() -> R<()> {
        let root = tempfile::tempdir().map_err(|e| StoreError::Io {
            path: PathBuf::new(),
            source: e,
        })?;
        let store = Store::new(root.path());
        let settings = json!({"task": "mnist-0"});
        let build = |dir: &Path| -> R<()> {
            write_atomic(&dir.join("weights"), b"trained weights")?;
            write_atomic(&dir.join("checkpoint/state.json"), b"{}")?;
            Ok(())
        };
        let entry = store.get_or_build::<Net, StoreError>(&settings, &[], build)?;
        let stamp: Stamp = serde_json::from_str(
            &std::fs::read_to_string(entry.dir.join(STAMP_FILE)).unwrap_or_default(),
        )
        .map_err(|e| StoreError::Stamp {
            path: PathBuf::new(),
            problem: e.to_string(),
        })?;
        assert_eq!(
            stamp.files.keys().collect::<Vec<_>>(),
            ["checkpoint/state.json", "weights"]
        );
        let weights = entry.dir.join("weights");
        let damage_with = |bytes: &[u8]| std::fs::write(&weights, bytes).ok();
        for bad in [&b"trained"[..], b"trained weighTs"] {
            damage_with(bad);
            let e = store.entry(&entry.id()).unwrap_err().to_string();
            assert!(e.contains(&weights.display().to_string()), "{e}");
            let e = store
                .get::<Net>(&Stamp::new::<Net>(&settings, &[])?)
                .unwrap_err()
                .to_string();
            assert!(e.contains("weights"), "{e}");
            let mut builds = 0;
            let again = store.get_or_build::<Net, StoreError>(&settings, &[], |dir| {
                builds += 1;
                build(dir)
            })?;
            assert_eq!((builds, &again), (1, &entry));
            assert_eq!(
                std::fs::read(&weights).ok(),
                Some(b"trained weights".to_vec())
            );
        }
        // A deleted stamp: rebuilt, where a rename onto the old directory used to fail.
        std::fs::remove_file(entry.dir.join(STAMP_FILE)).ok();
        let mut builds = 0;
        store.get_or_build::<Net, StoreError>(&settings, &[], |dir| {
            builds += 1;
            build(dir)
        })?;
        assert_eq!(builds, 1);
        assert!(store.entry(&entry.id()).is_ok());
        Ok(())
    }

    #[test]
    fn a_builder_waiting_on_a_held_key_names_the_holder() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("k.lock");
        let open = move || {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .unwrap_or_else(|e| panic!("{e}"))
        };
        let mut holder = open();
        let mut said = None;
        lock_key(&mut holder, |_| said = Some("free lock")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(said, None, "a free lock is taken without a word");
        let text = std::fs::read_to_string(dir.path().join("k.lock")).unwrap_or_default();
        assert_eq!(text.trim(), std::process::id().to_string());
        let t0 = std::time::Instant::now();
        let waiter = std::thread::spawn(move || {
            let mut file = open();
            let mut seen = None;
            lock_key(&mut file, |pid| seen = Some((pid, t0.elapsed())))
                .unwrap_or_else(|e| panic!("{e}"));
            seen
        });
        std::thread::sleep(LOCK_PATIENCE + std::time::Duration::from_millis(500));
        drop(holder);
        let seen = waiter.join().unwrap_or_else(|_| panic!("waiter panicked"));
        let (pid, after) = seen.unwrap_or_else(|| panic!("the waiter said nothing"));
        assert_eq!(pid, Some(std::process::id()));
        assert!(after >= LOCK_PATIENCE, "{after:?}");
    }

    #[cfg(unix)]
    #[test]
    fn a_link_in_place_of_a_kind_folder_is_refused() {
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let outside = root.path().join("outside");
        std::fs::create_dir(&outside).unwrap_or_else(|e| panic!("{e}"));
        let store = Store::new(root.path().join("store"));
        std::fs::create_dir(root.path().join("store")).unwrap_or_else(|e| panic!("{e}"));
        std::os::unix::fs::symlink(&outside, root.path().join("store").join(Net::KIND))
            .unwrap_or_else(|e| panic!("{e}"));
        let e = store
            .get_or_build::<Net, StoreError>(&json!({"task": "t"}), &[], |dir| {
                Ok(write_atomic(&dir.join("weights"), b"w")?)
            })
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(e.contains("symbolic link"), "{e}");
        assert_eq!(
            std::fs::read_dir(&outside).map(|d| d.count()).unwrap_or(9),
            0
        );
    }

    #[test]
    fn two_builders_of_one_key_build_it_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = Store::new(root.path());
        let builds = AtomicUsize::new(0);
        let settings = json!({"task": "mnist-2"});
        let entries: Vec<StoreEntry> = std::thread::scope(|s| {
            let run = || {
                store.get_or_build::<Net, StoreError>(&settings, &[], |dir| {
                    builds.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(200));
                    Ok(write_atomic(&dir.join("weights"), b"w")?)
                })
            };
            let (a, b) = (s.spawn(run), s.spawn(run));
            [a, b]
                .map(|h| h.join().unwrap_or_else(|_| panic!("builder panicked")))
                .into_iter()
                .map(|r| r.unwrap_or_else(|e| panic!("{e}")))
                .collect()
        });
        assert_eq!(builds.load(Ordering::SeqCst), 1);
        assert_eq!(entries[0], entries[1]);
    }

    #[test]
    fn a_stamp_of_other_settings_names_the_differing_fields() -> R<()> {
        let root = tempfile::tempdir().map_err(|e| StoreError::Io {
            path: PathBuf::new(),
            source: e,
        })?;
        let store = Store::new(root.path());
        let settings = json!({"train": {"lr": 0.001, "epochs": 3}});
        let entry = store.get_or_build::<Net, StoreError>(&settings, &[], |_| Ok(()))?;
        // A stamp edited by hand (or a hash collision): refused, never silently reused.
        let path = entry.dir.join(STAMP_FILE);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        write_atomic(&path, text.replace("0.001", "0.002").as_bytes())?;
        let e = store
            .get_or_build::<Net, StoreError>(&settings, &[], |_| Ok(()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("made with other settings: settings.train.lr: 0.002 -> 0.001"),
            "{e}"
        );
        Ok(())
    }

    #[test]
    fn differing_fields_lists_every_leaf() {
        let a = json!({"x": 1, "y": {"z": [1, 2]}, "old": true});
        let b = json!({"x": 2, "y": {"z": [1, 3]}, "new": "n"});
        assert_eq!(
            differing_fields(&a, &b),
            [
                "new: (none) -> \"n\"",
                "old: true -> (none)",
                "x: 1 -> 2",
                "y.z: [1,2] -> [1,3]"
            ]
        );
    }
}
