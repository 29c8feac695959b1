//! The known datasets, where their files live, and how they are found in the data directories.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::cifar::{CifarKind, read_cifar};
use crate::error::{DataError, Result};
use crate::idx::read_idx_pair;
use crate::image_set::ImageSet;

/// A dataset tanas can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetName {
    /// MNIST handwritten digits (IDX).
    Mnist,
    /// Zalando's Fashion-MNIST (IDX).
    FashionMnist,
    /// CIFAR-10 (binary version).
    #[serde(rename = "cifar10")]
    Cifar10,
    /// CIFAR-100 (binary version), fine and coarse labels.
    #[serde(rename = "cifar100")]
    Cifar100,
}

const MNIST_CLASSES: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
const FASHION_CLASSES: [&str; 10] = [
    "t-shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle-boot",
];
const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];
const CIFAR100_COARSE: [&str; 20] = [
    "aquatic_mammals",
    "fish",
    "flowers",
    "food_containers",
    "fruit_and_vegetables",
    "household_electrical_devices",
    "household_furniture",
    "insects",
    "large_carnivores",
    "large_man-made_outdoor_things",
    "large_natural_outdoor_scenes",
    "large_omnivores_and_herbivores",
    "medium_mammals",
    "non-insect_invertebrates",
    "people",
    "reptiles",
    "small_mammals",
    "trees",
    "vehicles_1",
    "vehicles_2",
];
const CIFAR100_FINE: [&str; 100] = [
    "apple",
    "aquarium_fish",
    "baby",
    "bear",
    "beaver",
    "bed",
    "bee",
    "beetle",
    "bicycle",
    "bottle",
    "bowl",
    "boy",
    "bridge",
    "bus",
    "butterfly",
    "camel",
    "can",
    "castle",
    "caterpillar",
    "cattle",
    "chair",
    "chimpanzee",
    "clock",
    "cloud",
    "cockroach",
    "couch",
    "crab",
    "crocodile",
    "cup",
    "dinosaur",
    "dolphin",
    "elephant",
    "flatfish",
    "forest",
    "fox",
    "girl",
    "hamster",
    "house",
    "kangaroo",
    "keyboard",
    "lamp",
    "lawn_mower",
    "leopard",
    "lion",
    "lizard",
    "lobster",
    "man",
    "maple_tree",
    "motorcycle",
    "mountain",
    "mouse",
    "mushroom",
    "oak_tree",
    "orange",
    "orchid",
    "otter",
    "palm_tree",
    "pear",
    "pickup_truck",
    "pine_tree",
    "plain",
    "plate",
    "poppy",
    "porcupine",
    "possum",
    "rabbit",
    "raccoon",
    "ray",
    "road",
    "rocket",
    "rose",
    "sea",
    "seal",
    "shark",
    "shrew",
    "skunk",
    "skyscraper",
    "snail",
    "snake",
    "spider",
    "squirrel",
    "streetcar",
    "sunflower",
    "sweet_pepper",
    "table",
    "tank",
    "telephone",
    "television",
    "tiger",
    "tractor",
    "train",
    "trout",
    "tulip",
    "turtle",
    "wardrobe",
    "whale",
    "willow_tree",
    "wolf",
    "woman",
    "worm",
];

/// The files of one dataset in its directory: (train files, test files).
struct Layout {
    train: &'static [&'static str],
    test: &'static [&'static str],
}

impl DatasetName {
    /// Every known dataset.
    pub const ALL: [DatasetName; 4] = [
        Self::Mnist,
        Self::FashionMnist,
        Self::Cifar10,
        Self::Cifar100,
    ];

    /// The built-in dataset of this name, if there is one.
    pub fn from_str_opt(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == name)
    }

    /// The name used on the command line, in task files and as directory name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mnist => "mnist",
            Self::FashionMnist => "fashion-mnist",
            Self::Cifar10 => "cifar10",
            Self::Cifar100 => "cifar100",
        }
    }

    /// Names of the (fine) classes, indexed by label.
    pub fn class_names(self) -> &'static [&'static str] {
        match self {
            Self::Mnist => &MNIST_CLASSES,
            Self::FashionMnist => &FASHION_CLASSES,
            Self::Cifar10 => &CIFAR10_CLASSES,
            Self::Cifar100 => &CIFAR100_FINE,
        }
    }

    /// Channels, height and width of the dataset's images.
    pub fn image_shape(self) -> (usize, usize, usize) {
        match self {
            Self::Mnist | Self::FashionMnist => (1, 28, 28),
            Self::Cifar10 | Self::Cifar100 => (3, 32, 32),
        }
    }

    /// Names of the coarse classes (superclasses), where the dataset has them.
    pub fn coarse_class_names(self) -> Option<&'static [&'static str]> {
        (self == Self::Cifar100).then_some(&CIFAR100_COARSE[..])
    }

    fn layout(self) -> Layout {
        match self {
            Self::Mnist | Self::FashionMnist => Layout {
                train: &["train-images-idx3-ubyte", "train-labels-idx1-ubyte"],
                test: &["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"],
            },
            Self::Cifar10 => Layout {
                train: &[
                    "data_batch_1.bin",
                    "data_batch_2.bin",
                    "data_batch_3.bin",
                    "data_batch_4.bin",
                    "data_batch_5.bin",
                ],
                test: &["test_batch.bin"],
            },
            Self::Cifar100 => Layout {
                train: &["train.bin"],
                test: &["test.bin"],
            },
        }
    }

    /// Sub-directories of `<data-dir>/<name>/` that may hold the files, in the order tried:
    /// the directory itself, then the folder the original archive unpacks to.
    fn subdirs(self) -> &'static [&'static str] {
        match self {
            Self::Mnist | Self::FashionMnist => &[""],
            Self::Cifar10 => &["", "cifar-10-batches-bin"],
            Self::Cifar100 => &["", "cifar-100-binary"],
        }
    }
}

impl fmt::Display for DatasetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DatasetName {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Self::from_str_opt(s).ok_or_else(|| {
            let names: Vec<_> = Self::ALL.iter().map(|d| d.as_str()).collect();
            format!("unknown dataset `{s}` (known: {})", names.join(", "))
        })
    }
}

/// The ordered list of directories datasets are looked up in.
///
/// Order: directories given explicitly (`--data-dir`, repeatable, or the path list in
/// `TANAS_DATA_DIR`), the repository's `data/` (embedded data), then `/usr/share/datasets`
/// (where Debian's dataset packages install).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDirs {
    dirs: Vec<PathBuf>,
    cache: Option<PathBuf>,
}

impl DataDirs {
    /// The given directories first, then the default ones.
    pub fn new(explicit: impl IntoIterator<Item = PathBuf>) -> Self {
        let defaults = [Self::embedded(), PathBuf::from("/usr/share/datasets")];
        let mut dirs: Vec<PathBuf> = Vec::new();
        for d in explicit.into_iter().chain(defaults) {
            if !dirs.contains(&d) {
                dirs.push(d);
            }
        }
        Self { dirs, cache: None }
    }

    /// Exactly these directories, nothing added, no cache.
    pub fn only(dirs: impl IntoIterator<Item = PathBuf>) -> Self {
        Self {
            dirs: dirs.into_iter().collect(),
            cache: None,
        }
    }

    /// The user's cache directory for decoded declared datasets: `$XDG_CACHE_HOME/tanas`,
    /// else `$HOME/.cache/tanas`; `None` without either.
    pub fn default_cache() -> Option<PathBuf> {
        std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|v| !v.is_empty())
                    .map(|h| PathBuf::from(h).join(".cache"))
            })
            .map(|d| d.join("tanas"))
    }

    /// These directories with decoded declared datasets kept in (and read from) `cache`.
    pub fn with_cache(mut self, cache: Option<PathBuf>) -> Self {
        self.cache = cache;
        self
    }

    /// Where decoded declared datasets are kept, if anywhere.
    pub fn cache(&self) -> Option<&Path> {
        self.cache.as_deref()
    }

    /// The repository's `data/` directory with the embedded datasets.
    pub fn embedded() -> PathBuf {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data");
        dir.canonicalize().unwrap_or(dir)
    }

    /// The directories, in search order.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// The directory holding `name`'s files: the first candidate that has its first train file
    /// (plain or `.gz`).
    pub fn locate(&self, name: DatasetName) -> Result<PathBuf> {
        let first = name.layout().train[0];
        for dir in &self.dirs {
            for sub in name.subdirs() {
                let base = dir.join(name.as_str());
                let candidate = if sub.is_empty() { base } else { base.join(sub) };
                if resolve(&candidate, first).is_some() {
                    return Ok(candidate);
                }
            }
        }
        Err(DataError::NotFound {
            name: name.to_string(),
            file: format!("{}/{first}[.gz]", name.as_str()),
            searched: self
                .dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    /// Finds and reads both splits of a dataset.
    pub fn load(&self, name: DatasetName) -> Result<Dataset> {
        let dir = self.locate(name)?;
        Dataset::read(name, &dir)
    }
}

/// `dir/file` or `dir/file.gz`, whichever exists.
fn resolve(dir: &Path, file: &str) -> Option<PathBuf> {
    let plain = dir.join(file);
    let gz = dir.join(format!("{file}.gz"));
    [plain, gz].into_iter().find(|p| p.is_file())
}

/// Both splits of a dataset, read from one directory.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Its name: a built-in's ([`DatasetName::as_str`]) or a declared one's.
    pub name: String,
    /// Where it was read from.
    pub dir: PathBuf,
    /// Names of the (fine) classes, indexed by label.
    pub classes: Vec<String>,
    /// Names of the coarse classes, where the dataset has them (CIFAR-100).
    pub coarse_classes: Option<Vec<String>>,
    /// What identifies a declared dataset's content (FNV-1a of its decoded images and
    /// labels); `None` for the built-ins, whose files are fixed.
    pub digest: Option<String>,
    /// The training split (shared by every task of the dataset).
    pub train: std::sync::Arc<ImageSet>,
    /// The test split.
    pub test: std::sync::Arc<ImageSet>,
}

impl Dataset {
    /// Reads both splits of `name` from `dir`.
    pub fn read(name: DatasetName, dir: &Path) -> Result<Self> {
        let layout = name.layout();
        let train = read_split(name, dir, layout.train)?;
        let test = read_split(name, dir, layout.test)?;
        let owned = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Ok(Self {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            classes: owned(name.class_names()),
            coarse_classes: name.coarse_class_names().map(owned),
            digest: None,
            train: train.into(),
            test: test.into(),
        })
    }

    /// The class names of the given label kind, if the dataset has them.
    pub fn class_names(&self, kind: crate::task::LabelKind) -> Option<&[String]> {
        match kind {
            crate::task::LabelKind::Fine => Some(&self.classes),
            crate::task::LabelKind::Coarse => self.coarse_classes.as_deref(),
        }
    }
}

fn read_split(name: DatasetName, dir: &Path, files: &[&str]) -> Result<ImageSet> {
    let paths = files
        .iter()
        .map(|f| {
            resolve(dir, f).ok_or_else(|| {
                DataError::io(
                    dir.join(f),
                    std::io::Error::new(std::io::ErrorKind::NotFound, "file not found (nor .gz)"),
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let set = match name {
        DatasetName::Mnist | DatasetName::FashionMnist => read_idx_pair(&paths[0], &paths[1], 10)?,
        DatasetName::Cifar10 => read_cifar(&paths, CifarKind::Cifar10)?,
        DatasetName::Cifar100 => read_cifar(&paths, CifarKind::Cifar100)?,
    };
    let shape = name.image_shape();
    if (set.channels, set.height, set.width) != shape {
        return Err(DataError::format(
            &paths[0],
            format!(
                "images are {}x{}x{}, {name} images are {}x{}x{}",
                set.channels, set.height, set.width, shape.0, shape.1, shape.2
            ),
        ));
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idx::{IdxArray, write_idx};
    use crate::task::LabelKind;

    fn write_mnist_like(dir: &Path, n_train: usize, gz: bool) {
        let ext = if gz { ".gz" } else { "" };
        let img = |n: usize| IdxArray {
            dims: vec![n, 28, 28],
            data: vec![7; n * 784],
        };
        let lab = |n: usize| IdxArray {
            dims: vec![n],
            data: (0..n).map(|i| (i % 10) as u8).collect(),
        };
        std::fs::create_dir_all(dir).unwrap();
        write_idx(
            &dir.join(format!("train-images-idx3-ubyte{ext}")),
            &img(n_train),
        )
        .unwrap();
        write_idx(
            &dir.join(format!("train-labels-idx1-ubyte{ext}")),
            &lab(n_train),
        )
        .unwrap();
        write_idx(&dir.join(format!("t10k-images-idx3-ubyte{ext}")), &img(10)).unwrap();
        write_idx(&dir.join(format!("t10k-labels-idx1-ubyte{ext}")), &lab(10)).unwrap();
    }

    #[test]
    fn explicit_dirs_are_searched_first() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        write_mnist_like(&a.path().join("mnist"), 20, true);
        write_mnist_like(&b.path().join("mnist"), 30, false);
        let dirs = DataDirs::only([b.path().into(), a.path().into()]);
        let ds = dirs.load(DatasetName::Mnist).unwrap();
        assert_eq!((ds.train.len(), ds.test.len()), (30, 10));
        let dirs = DataDirs::only([a.path().into(), b.path().into()]);
        assert_eq!(dirs.load(DatasetName::Mnist).unwrap().train.len(), 20);
    }

    #[test]
    fn missing_dataset_names_the_search_path() {
        let a = tempfile::tempdir().unwrap();
        let e = DataDirs::only([a.path().into()])
            .locate(DatasetName::Cifar10)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cifar10/data_batch_1.bin") && e.contains(&a.path().display().to_string()),
            "{e}"
        );
    }

    #[test]
    fn a_missing_second_file_is_an_error_naming_it() {
        let a = tempfile::tempdir().unwrap();
        let dir = a.path().join("fashion-mnist");
        write_mnist_like(&dir, 20, false);
        std::fs::remove_file(dir.join("t10k-labels-idx1-ubyte")).unwrap();
        let e = DataDirs::only([a.path().into()])
            .load(DatasetName::FashionMnist)
            .unwrap_err()
            .to_string();
        assert!(e.contains("t10k-labels-idx1-ubyte"), "{e}");
    }

    #[test]
    fn images_of_another_size_than_the_dataset_s_are_an_error() {
        let a = tempfile::tempdir().unwrap();
        let dir = a.path().join("mnist");
        write_mnist_like(&dir, 20, false);
        let small = IdxArray {
            dims: vec![10, 14, 14],
            data: vec![7; 10 * 196],
        };
        write_idx(&dir.join("t10k-images-idx3-ubyte"), &small).unwrap();
        let e = DataDirs::only([a.path().into()])
            .load(DatasetName::Mnist)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("t10k-images-idx3-ubyte")
                && e.contains("images are 1x14x14, mnist images are 1x28x28"),
            "{e}"
        );
    }

    #[test]
    fn cifar_archive_folder_is_found() {
        let a = tempfile::tempdir().unwrap();
        let dir = a.path().join("cifar100/cifar-100-binary");
        std::fs::create_dir_all(&dir).unwrap();
        let rec = |c: u8, f: u8| [vec![c, f], vec![0; 3072]].concat();
        std::fs::write(dir.join("train.bin"), [rec(1, 2), rec(3, 4)].concat()).unwrap();
        std::fs::write(dir.join("test.bin"), rec(5, 6)).unwrap();
        let ds = DataDirs::only([a.path().into()])
            .load(DatasetName::Cifar100)
            .unwrap();
        assert_eq!(ds.train.coarse_labels, Some(vec![1, 3]));
        assert_eq!(ds.test.labels, vec![6]);
    }

    #[test]
    fn embedded_data_is_complete() {
        let dirs = DataDirs::only([DataDirs::embedded()]);
        let mnist = dirs.load(DatasetName::Mnist).unwrap();
        assert_eq!(mnist.train.len() + mnist.test.len(), 10_000);
        assert_eq!((mnist.train.height, mnist.train.width), (28, 28));
        let fashion = dirs.load(DatasetName::FashionMnist).unwrap();
        assert_eq!(
            fashion.train.class_counts(LabelKind::Fine, 10),
            vec![600; 10]
        );
        assert_eq!(
            fashion.test.class_counts(LabelKind::Fine, 10),
            vec![100; 10]
        );
    }

    #[test]
    fn names_round_trip() {
        for d in DatasetName::ALL {
            assert_eq!(d.as_str().parse::<DatasetName>().unwrap(), d);
            assert_eq!(
                d.class_names().len(),
                if d == DatasetName::Cifar100 { 100 } else { 10 }
            );
        }
        assert!(
            "svhn"
                .parse::<DatasetName>()
                .unwrap_err()
                .contains("mnist, fashion-mnist")
        );
    }
}
