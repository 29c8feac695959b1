//! Datasets declared as data: a `[[dataset]]` table of a task file names a folder of images
//! (torchvision's ImageFolder layout), NumPy arrays (Quick, Draw!'s one `<class>.npy` per
//! class, `images.npy` + `labels.npy`, or `.npz`) or CSV files (mnist-in-csv), and how they
//! become network input (`input_side`).
//!
//! ```toml
//! [[dataset]]
//! name = "my-set"            # tasks refer to it: dataset = "my-set"
//! format = "image-folder"    # image-folder | npy | csv
//! path = "data/my-set"       # relative to this file; default: <data-dir>/<name>/
//! # input_side = 32          # images are resized to this square side
//! # test_fraction = 0.2      # where the data has no test split: a seeded, stratified split
//! # on_error = "fail"        # or "skip": unreadable images are left out and counted
//! # classes = ["cat", "dog"] # which class folders / files, in this order (default: all, sorted)
//! # max_per_class = 7000     # the first N images of each class (of each split, if split)
//! ```
//!
//! Decoding happens once: the decoded set is kept in the data directories' cache (an artifact
//! store, [`DataDirs::cache`]) under a key of the declaration and every source file's name,
//! size and modification time, and verified by its file sums whenever it is found.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tanas_core::{Artifact, Fnv1a, Store};

use crate::catalog::{DataDirs, Dataset};
use crate::decode::{Collected, MAX_INPUT_SIDE, MIN_INPUT_SIDE};
use crate::error::{DataError, Result};
use crate::image_set::ImageSet;
use crate::{csv_set, folder, npy};

/// How a declared dataset is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// `path/<class>/*` or `path/train/<class>/*` + `path/test/<class>/*`: PNG, JPEG, BMP.
    ImageFolder,
    /// `path/<class>.npy` (N x 784 or N x H x W uint8), or `images.npy` + `labels.npy` (in
    /// `train/` and `test/` where split), or `train.npz` + `test.npz` / one `.npz` holding
    /// `images` and `labels`.
    Npy,
    /// `path/train.csv` (and `path/test.csv`): header, label, pixels.
    Csv,
}

/// What an unreadable image does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// Stop with an error naming the file.
    #[default]
    Fail,
    /// Leave it out; `tanas data info` counts and names it.
    Skip,
}

/// An image left out under [`OnError::Skip`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// The file (a CSV row as `file:line`).
    pub file: PathBuf,
    /// Why.
    pub problem: String,
}

/// A `[[dataset]]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetDecl {
    /// The name tasks use (`dataset = "..."`); not a built-in's.
    pub name: String,
    /// How it is stored.
    pub format: Format,
    /// Where (relative to the declaring file; made absolute when read). Default:
    /// `<data-dir>/<name>/` in the data directories, like the built-ins.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Side of the square images the files are resized to.
    #[serde(default = "default_input_side")]
    pub input_side: usize,
    /// Share of each class drawn for the test split where the files have none.
    #[serde(default = "default_test_fraction")]
    pub test_fraction: f64,
    /// What an unreadable image does.
    #[serde(default)]
    pub on_error: OnError,
    /// The classes read, in this order (folder or file names; for label arrays and CSV the
    /// names of labels 0..k-1). Default: every class folder / file, sorted; labels by number.
    #[serde(default)]
    pub classes: Option<Vec<String>>,
    /// At most this many images of each class, the first in file order (of each split where
    /// the files have one; before the test split is drawn where they have none).
    #[serde(default)]
    pub max_per_class: Option<usize>,
    /// The file that declares it (not part of the TOML).
    #[serde(skip)]
    pub declared_in: PathBuf,
}

fn default_input_side() -> usize {
    32
}

fn default_test_fraction() -> f64 {
    0.2
}

/// Seed of the stratified test split of data without one.
const TEST_SPLIT_SEED: u64 = 0x7465_7374;

/// What reading a declared dataset saw, besides the images.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeclaredInfo {
    /// Original image size (`"WxH"`, `" rgb"` for colour) -> count.
    pub sizes: BTreeMap<String, usize>,
    /// Images left out under `on_error = "skip"`.
    pub skipped: Vec<Skipped>,
    /// FNV-1a of the decoded images and labels.
    pub digest: String,
    /// Whether the decoded set came from the cache.
    #[serde(skip)]
    pub cached: bool,
}

/// A decoded dataset: its class names, splits and what reading it saw.
struct Decoded {
    classes: Vec<String>,
    train: ImageSet,
    test: ImageSet,
    info: DeclaredInfo,
}

/// The decoded sets in the cache.
struct DecodedSet;
impl Artifact for DecodedSet {
    const KIND: &'static str = "dataset";
    const FORMAT: u32 = 1;
}

/// `meta.json` of a cached decoded set.
#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    classes: Vec<String>,
    channels: usize,
    side: usize,
    train: usize,
    test: usize,
    info: DeclaredInfo,
}

impl DatasetDecl {
    /// Checks the table and makes `path` absolute against `file`, the declaring file.
    pub(crate) fn resolve(&mut self, file: &Path) -> Result<()> {
        let bad = |p: String| DataError::format(file, format!("[[dataset]] `{}`: {p}", self.name));
        tanas_core::id::check_id(&self.name).map_err(|p| bad(format!("name {p}")))?;
        if !(MIN_INPUT_SIDE..=MAX_INPUT_SIDE).contains(&self.input_side) {
            return Err(bad(format!(
                "input_side {} is not in {MIN_INPUT_SIDE}..={MAX_INPUT_SIDE}",
                self.input_side
            )));
        }
        if !(self.test_fraction > 0.0 && self.test_fraction < 1.0) {
            return Err(bad(format!(
                "test_fraction {} is not in (0, 1)",
                self.test_fraction
            )));
        }
        if self.max_per_class == Some(0) {
            return Err(bad("max_per_class must be at least 1".into()));
        }
        if let Some(classes) = &self.classes {
            let mut seen = std::collections::HashSet::new();
            if classes.is_empty() || classes.len() > tanas_core::limits::MAX_CLASSES {
                return Err(bad(format!(
                    "classes must list 1 to {} names",
                    tanas_core::limits::MAX_CLASSES
                )));
            }
            if let Some(c) = classes.iter().find(|c| !seen.insert(c.as_str())) {
                return Err(bad(format!("class `{c}` listed twice")));
            }
            if let Some(c) = classes
                .iter()
                .find(|c| c.is_empty() || c.contains(['/', '\\']) || c.starts_with('.'))
            {
                return Err(bad(format!(
                    "class `{c}` is not a plain folder or file name"
                )));
            }
        }
        let dir = file.parent().unwrap_or(Path::new(""));
        self.path = self
            .path
            .as_ref()
            .map(|p| std::path::absolute(dir.join(p)).unwrap_or(dir.join(p)));
        self.declared_in = file.to_path_buf();
        Ok(())
    }

    /// The folder holding the files: `path`, or the first `<data-dir>/<name>/`.
    pub fn root(&self, dirs: &DataDirs) -> Result<PathBuf> {
        if let Some(p) = &self.path {
            return if p.is_dir() {
                Ok(p.clone())
            } else {
                Err(DataError::NotFound {
                    name: self.name.clone(),
                    file: p.display().to_string(),
                    searched: format!("the path declared in {}", self.declared_in.display()),
                })
            };
        }
        dirs.dirs()
            .iter()
            .map(|d| d.join(&self.name))
            .find(|d| d.is_dir())
            .ok_or_else(|| DataError::NotFound {
                name: self.name.clone(),
                file: format!("{}/", self.name),
                searched: dirs
                    .dirs()
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Reads the dataset.
    pub fn load(&self, dirs: &DataDirs) -> Result<Dataset> {
        self.load_with_info(dirs).map(|(d, _)| d)
    }

    /// Reads the dataset: from the cache of `dirs` when it holds this declaration over these
    /// files, else decoded (and kept there).
    pub fn load_with_info(&self, dirs: &DataDirs) -> Result<(Dataset, DeclaredInfo)> {
        let root = self.root(dirs)?;
        let source = Source::list(self, &root)?;
        let Some(cache) = dirs.cache() else {
            return Ok(self.dataset(&root, self.decode(&source)?));
        };
        let key = serde_json::json!({
            "format": self.format,
            "input_side": self.input_side,
            "test_fraction": self.test_fraction,
            "on_error": self.on_error,
            "classes": self.classes,
            "max_per_class": self.max_per_class,
            "root": root.display().to_string(),
            "files": source.listing(),
        });
        // A decoding error is the dataset's and ends the load; a cache that cannot be
        // written or read (a read-only home, a full disk) only costs the decoding again.
        let (mut built, mut failed) = (None, None);
        let found = Store::new(cache).get_or_build::<DecodedSet, DataError>(&key, &[], |dir| {
            let decoded = self.decode(&source).map_err(|e| {
                failed = Some(e);
                DataError::format(dir, "not decoded")
            })?;
            let written = write_cache(dir, &decoded);
            built = Some(decoded);
            written
        });
        if let Some(e) = failed {
            return Err(e);
        }
        let cached = found.and_then(|entry| match built.take() {
            Some(d) => Ok(d),
            None => read_cache(&entry.dir),
        });
        let decoded = match (cached, built) {
            (Ok(mut d), _) => {
                d.info.cached = true;
                d
            }
            (Err(e), built) => {
                tracing::warn!(
                    "{e}: the decoded-set cache is not used; decoding {}",
                    self.name
                );
                match built {
                    Some(d) => d,
                    None => self.decode(&source)?,
                }
            }
        };
        Ok(self.dataset(&root, decoded))
    }

    fn dataset(&self, root: &Path, d: Decoded) -> (Dataset, DeclaredInfo) {
        let dataset = Dataset {
            name: self.name.clone(),
            dir: root.to_path_buf(),
            classes: d.classes,
            coarse_classes: None,
            digest: Some(d.info.digest.clone()),
            train: d.train.into(),
            test: d.test.into(),
        };
        (dataset, d.info)
    }

    /// Decodes every file of `source` under the rule.
    fn decode(&self, source: &Source) -> Result<Decoded> {
        let side = self.input_side;
        let mut skipped = Vec::new();
        let max_classes = self
            .classes
            .as_ref()
            .map_or(tanas_core::limits::MAX_CLASSES, Vec::len);
        let (mut classes, train, test) = match source {
            Source::Folder(files) => (
                files.classes.clone(),
                folder::decode(&files.train, side, self.on_error, &mut skipped)?,
                match &files.test {
                    Some(t) => Some(folder::decode(t, side, self.on_error, &mut skipped)?),
                    None => None,
                },
            ),
            Source::PerClass { classes, files } => {
                let mut all = Collected::default();
                for (label, file) in files.iter().enumerate() {
                    let a = npy::read_npy(file, self.max_per_class)?;
                    all.extend(npy::images(&a, file, side, |_| label as u16)?);
                }
                (classes.clone(), all, None)
            }
            Source::Arrays { train, test } => {
                let read = |s: &ArrayFiles| -> Result<Collected> {
                    let (images, images_path, labels, labels_path) = match s {
                        ArrayFiles::Npy { images, labels } => (
                            npy::read_npy(images, None)?,
                            images.clone(),
                            npy::read_npy(labels, None)?,
                            labels.clone(),
                        ),
                        ArrayFiles::Npz(path) => {
                            let mut a = npy::read_npz(path, &["images", "labels"])?;
                            let labels = a.pop().expect("two arrays");
                            (
                                a.pop().expect("two arrays"),
                                path.join("images.npy"),
                                labels,
                                path.join("labels.npy"),
                            )
                        }
                    };
                    let l = npy::labels(&labels, &labels_path, max_classes)?;
                    if images.shape.first() != Some(&l.len()) {
                        return Err(DataError::Mismatch {
                            a: images_path,
                            b: labels_path,
                            problem: format!(
                                "{} images but {} labels",
                                images.shape.first().unwrap_or(&0),
                                l.len()
                            ),
                        });
                    }
                    npy::images(&images, &images_path, side, |i| l[i])
                };
                (
                    Vec::new(),
                    read(train)?,
                    test.as_ref().map(read).transpose()?,
                )
            }
            Source::Csv { train, test } => {
                let read = |p: &PathBuf, skipped: &mut Vec<Skipped>| {
                    csv_set::read_csv(p, side, max_classes, self.on_error, skipped)
                };
                let tr = read(train, &mut skipped)?;
                let te = match test {
                    Some(t) => Some(read(t, &mut skipped)?),
                    None => None,
                };
                (Vec::new(), tr, te)
            }
        };
        if classes.is_empty() {
            // Label arrays and CSV: the declared names, else the numbers 0..k-1.
            classes = match &self.classes {
                Some(c) => c.clone(),
                None => {
                    let k = train
                        .labels
                        .iter()
                        .chain(test.iter().flat_map(|t| &t.labels))
                        .max()
                        .map_or(0, |&m| usize::from(m) + 1);
                    (0..k).map(|c| c.to_string()).collect()
                }
            };
        }
        let first = |c: Collected| match self.max_per_class {
            Some(n) => c.first_per_class(n),
            None => c,
        };
        let (train, test) = match test {
            Some(test) => (first(train), first(test)),
            None => split_test(first(train), self.test_fraction),
        };
        if train.len() == 0 {
            return Err(DataError::format(
                source.first_file(),
                "no training images were read",
            ));
        }
        let channels = if train.any_colour() || test.any_colour() {
            3
        } else {
            1
        };
        let mut sizes = train.sizes.clone();
        for (k, v) in &test.sizes {
            *sizes.entry(k.clone()).or_default() += v;
        }
        let (train, test) = (
            train.into_set(side, channels),
            test.into_set(side, channels),
        );
        let info = DeclaredInfo {
            sizes,
            skipped,
            digest: digest(&classes, &train, &test),
            cached: false,
        };
        Ok(Decoded {
            classes,
            train,
            test,
            info,
        })
    }
}

/// FNV-1a of the class names, the images and the labels of both splits.
fn digest(classes: &[String], train: &ImageSet, test: &ImageSet) -> String {
    let mut h = Fnv1a::new().u64(classes.len() as u64);
    for c in classes {
        h = h.u64(c.len() as u64).bytes(c.as_bytes());
    }
    for set in [train, test] {
        h = h
            .u64(set.channels as u64)
            .u64(set.height as u64)
            .u64(set.len() as u64)
            .bytes(&set.pixels);
        for &l in &set.labels {
            h = h.bytes(&l.to_le_bytes());
        }
    }
    h.hex()
}

/// Per class, `round(count * fraction)` images drawn with a fixed seed go to test; both
/// parts keep file order.
fn split_test(all: Collected, fraction: f64) -> (Collected, Collected) {
    let classes = all
        .labels
        .iter()
        .map(|&l| usize::from(l) + 1)
        .max()
        .unwrap_or(0);
    let mut per_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (i, &l) in all.labels.iter().enumerate() {
        per_class[usize::from(l)].push(i);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(TEST_SPLIT_SEED);
    let mut is_test = vec![false; all.len()];
    for idx in &mut per_class {
        idx.shuffle(&mut rng);
        let n = (idx.len() as f64 * fraction).round() as usize;
        for &i in &idx[..n] {
            is_test[i] = true;
        }
    }
    all.partition(&is_test)
}

/// The files a declared dataset is read from.
enum Source {
    Folder(folder::FolderFiles),
    PerClass {
        classes: Vec<String>,
        files: Vec<PathBuf>,
    },
    Arrays {
        train: ArrayFiles,
        test: Option<ArrayFiles>,
    },
    Csv {
        train: PathBuf,
        test: Option<PathBuf>,
    },
}

enum ArrayFiles {
    Npy { images: PathBuf, labels: PathBuf },
    Npz(PathBuf),
}

impl Source {
    /// Finds the files of `decl` below `root`.
    fn list(decl: &DatasetDecl, root: &Path) -> Result<Self> {
        let wanted = decl.classes.as_deref();
        match decl.format {
            Format::ImageFolder => Ok(Self::Folder(folder::list(root, wanted)?)),
            Format::Csv => {
                let train = root.join("train.csv");
                if !train.is_file() {
                    return Err(DataError::format(root, "no train.csv"));
                }
                let test = root.join("test.csv");
                Ok(Self::Csv {
                    train,
                    test: test.is_file().then_some(test),
                })
            }
            Format::Npy => {
                let pair = |dir: &Path| {
                    let (images, labels) = (dir.join("images.npy"), dir.join("labels.npy"));
                    (images.is_file() && labels.is_file())
                        .then_some(ArrayFiles::Npy { images, labels })
                };
                if let Some(train) = pair(root) {
                    return Ok(Self::Arrays { train, test: None });
                }
                if let (Some(train), Some(test)) =
                    (pair(&root.join("train")), pair(&root.join("test")))
                {
                    return Ok(Self::Arrays {
                        train,
                        test: Some(test),
                    });
                }
                let (tr, te) = (root.join("train.npz"), root.join("test.npz"));
                if tr.is_file() && te.is_file() {
                    return Ok(Self::Arrays {
                        train: ArrayFiles::Npz(tr),
                        test: Some(ArrayFiles::Npz(te)),
                    });
                }
                let mut npz = Vec::new();
                let mut per_class = Vec::new();
                for entry in std::fs::read_dir(root).map_err(|e| DataError::io(root, e))? {
                    let path = entry.map_err(|e| DataError::io(root, e))?.path();
                    match path.extension().and_then(|e| e.to_str()) {
                        Some("npz") => npz.push(path),
                        Some("npy") => per_class.push(path),
                        _ => {}
                    }
                }
                if npz.len() == 1 && per_class.is_empty() {
                    return Ok(Self::Arrays {
                        train: ArrayFiles::Npz(npz.remove(0)),
                        test: None,
                    });
                }
                per_class.sort();
                let classes: Vec<String> = match wanted {
                    Some(w) => w.to_vec(),
                    None => per_class
                        .iter()
                        .filter_map(|p| p.file_stem()?.to_str().map(String::from))
                        .collect(),
                };
                if classes.is_empty() {
                    return Err(DataError::format(
                        root,
                        "no <class>.npy files, images.npy + labels.npy, train/ + test/ or .npz",
                    ));
                }
                if classes.len() > tanas_core::limits::MAX_CLASSES {
                    return Err(DataError::format(
                        root,
                        format!(
                            "{} class files (at most {} are read)",
                            classes.len(),
                            tanas_core::limits::MAX_CLASSES
                        ),
                    ));
                }
                let files: Vec<PathBuf> = classes
                    .iter()
                    .map(|c| root.join(format!("{c}.npy")))
                    .collect();
                if let Some(missing) = files.iter().find(|f| !f.is_file()) {
                    return Err(DataError::format(missing, "class file not found"));
                }
                Ok(Self::PerClass { classes, files })
            }
        }
    }

    /// Name, size and modification time of every source file (the cache key).
    fn listing(&self) -> Listing {
        let mut l = Listing::default();
        match self {
            Self::Folder(f) => {
                for (p, _) in f.train.iter().chain(f.test.iter().flatten()) {
                    l.file(p);
                }
            }
            Self::PerClass { files, .. } => files.iter().for_each(|p| l.file(p)),
            Self::Arrays { train, test } => {
                for a in std::iter::once(train).chain(test) {
                    match a {
                        ArrayFiles::Npy { images, labels } => {
                            l.file(images);
                            l.file(labels);
                        }
                        ArrayFiles::Npz(p) => l.file(p),
                    }
                }
            }
            Self::Csv { train, test } => std::iter::once(train).chain(test).for_each(|p| l.file(p)),
        }
        l
    }

    /// A file to name when nothing was read.
    fn first_file(&self) -> PathBuf {
        match self {
            Self::Folder(f) => f.train.first().map(|(p, _)| p.clone()).unwrap_or_default(),
            Self::PerClass { files, .. } => files[0].clone(),
            Self::Arrays {
                train: ArrayFiles::Npy { images, .. },
                ..
            } => images.clone(),
            Self::Arrays {
                train: ArrayFiles::Npz(p),
                ..
            } => p.clone(),
            Self::Csv { train, .. } => train.clone(),
        }
    }
}

/// FNV-1a of the names, sizes and modification times of files, and their count.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Listing {
    files: usize,
    #[serde(serialize_with = "hex")]
    hash: Fnv1a,
}

fn hex<S: serde::Serializer>(h: &Fnv1a, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&h.hex())
}

impl Listing {
    /// Adds a file (one that cannot be read adds its name alone: decoding names it).
    pub fn file(&mut self, path: &Path) {
        let name = path.as_os_str().as_encoded_bytes();
        let (size, mtime) = std::fs::metadata(path).map_or((u64::MAX, 0), |m| {
            let mtime = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos() as u64);
            (m.len(), mtime)
        });
        self.hash = self
            .hash
            .u64(name.len() as u64)
            .bytes(name)
            .u64(size)
            .u64(mtime);
        self.files += 1;
    }
}

const CACHE_FILES: [&str; 4] = ["train.u8", "train-labels.u16", "test.u8", "test-labels.u16"];

fn write_cache(dir: &Path, d: &Decoded) -> Result<()> {
    let Decoded {
        classes,
        train,
        test,
        info,
    } = d;
    let write = |name: &str, bytes: &[u8]| {
        tanas_core::write_atomic(&dir.join(name), bytes)
            .map_err(|e| DataError::io(e.path, e.source))
    };
    let labels = |s: &ImageSet| {
        s.labels
            .iter()
            .flat_map(|l| l.to_le_bytes())
            .collect::<Vec<u8>>()
    };
    write(CACHE_FILES[0], &train.pixels)?;
    write(CACHE_FILES[1], &labels(train))?;
    write(CACHE_FILES[2], &test.pixels)?;
    write(CACHE_FILES[3], &labels(test))?;
    let meta = Meta {
        classes: classes.clone(),
        channels: train.channels,
        side: train.height,
        train: train.len(),
        test: test.len(),
        info: info.clone(),
    };
    let text =
        serde_json::to_string_pretty(&meta).map_err(|e| DataError::format(dir, e.to_string()))?;
    write("meta.json", text.as_bytes())
}

fn read_cache(dir: &Path) -> Result<Decoded> {
    let meta_path = dir.join("meta.json");
    let text = tanas_core::read_text(&meta_path).map_err(|e| DataError::io(&meta_path, e))?;
    let meta: Meta =
        serde_json::from_str(&text).map_err(|e| DataError::format(&meta_path, e.to_string()))?;
    let read = |name: &str, len: usize| -> Result<Vec<u8>> {
        let path = dir.join(name);
        let bytes = std::fs::read(&path).map_err(|e| DataError::io(&path, e))?;
        if bytes.len() != len {
            return Err(DataError::format(
                &path,
                format!("{} bytes, meta.json says {len}", bytes.len()),
            ));
        }
        Ok(bytes)
    };
    let plane = meta.channels * meta.side * meta.side;
    let set = |pixels: Vec<u8>, labels: Vec<u8>| ImageSet {
        channels: meta.channels,
        height: meta.side,
        width: meta.side,
        pixels,
        labels: labels
            .chunks_exact(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .collect(),
        coarse_labels: None,
    };
    let train = set(
        read(CACHE_FILES[0], meta.train * plane)?,
        read(CACHE_FILES[1], meta.train * 2)?,
    );
    let test = set(
        read(CACHE_FILES[2], meta.test * plane)?,
        read(CACHE_FILES[3], meta.test * 2)?,
    );
    Ok(Decoded {
        classes: meta.classes,
        train,
        test,
        info: meta.info,
    })
}
