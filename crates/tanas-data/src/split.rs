//! [`TaskData`]: a dataset relabelled by a [`TaskSpec`], with balanced train / val splits
//! carved from the training images, the untouched test split, and the Fisher probe: training
//! images the dataset holds out from every task's train and val ([`probe_mask`]).

use std::sync::Arc;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::catalog::Dataset;
use crate::error::{DataError, Result};
use crate::image_set::ImageSet;
use crate::task::{Relabelling, TaskSpec};

/// Which split of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Fitting weights.
    Train,
    /// Model selection, early stop, architecture weights.
    Val,
    /// Evaluated once at the end.
    Test,
    /// The Fisher probe: the dataset's held-out training images of the task's classes,
    /// which no task of the dataset trains or validates on ([`probe_mask`]).
    Probe,
}

impl std::str::FromStr for Split {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "train" => Ok(Self::Train),
            "val" => Ok(Self::Val),
            "test" => Ok(Self::Test),
            "probe" => Ok(Self::Probe),
            _ => Err(format!("unknown split `{s}` (train, val, test, probe)")),
        }
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Train => "train",
            Self::Val => "val",
            Self::Test => "test",
            Self::Probe => "probe",
        })
    }
}

/// FNV-1a (64 bit, hex) over the samples of `splits`: each split's length, then its
/// (index, label) pairs. Changes whenever the samples or their order do; what identifies the
/// data of a training run, a Fisher or a search.
pub fn fingerprint(splits: &[&TaskSplit]) -> String {
    let mut h = tanas_core::Fnv1a::new();
    for s in splits {
        h = h.u64(s.len() as u64);
        for (&i, &l) in s.indices.iter().zip(&s.labels) {
            h = h.u64(i as u64).u64(l as u64);
        }
    }
    h.hex()
}

/// Images of one split of a task: indices into a shared [`ImageSet`] with their task labels.
#[derive(Debug, Clone)]
pub struct TaskSplit {
    images: Arc<ImageSet>,
    indices: Vec<usize>,
    labels: Vec<usize>,
}

impl TaskSplit {
    /// A split of `images` made of the given (index, task label) pairs.
    pub fn new(images: Arc<ImageSet>, items: Vec<(usize, usize)>) -> Self {
        let (indices, labels) = items.into_iter().unzip();
        Self {
            images,
            indices,
            labels,
        }
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// Whether the split is empty.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// Indices of the samples into the underlying dataset split, in order.
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }

    /// Task labels of the samples, in order.
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }

    /// The dataset split the samples come from.
    pub fn images(&self) -> &ImageSet {
        &self.images
    }

    /// The first `n` samples (all if `n >= len()`).
    pub fn truncated(&self, n: usize) -> Self {
        self.window(0, n)
    }

    /// `n` samples after the first `skip` (fewer where the split ends first; none if `skip
    /// >= len()`).
    pub fn window(&self, skip: usize, n: usize) -> Self {
        let start = skip.min(self.len());
        let end = start.saturating_add(n).min(self.len());
        Self {
            images: self.images.clone(),
            indices: self.indices[start..end].to_vec(),
            labels: self.labels[start..end].to_vec(),
        }
    }

    /// Number of samples per task label.
    pub fn label_counts(&self, num_labels: usize) -> Vec<usize> {
        let mut counts = vec![0; num_labels];
        for &l in &self.labels {
            counts[l] += 1;
        }
        counts
    }
}

/// A task's data: the spec, its label count and the three splits.
#[derive(Debug, Clone)]
pub struct TaskData {
    /// The task definition.
    pub spec: TaskSpec,
    /// Number of task labels.
    pub num_labels: usize,
    /// Training split (balanced if the spec says so).
    pub train: TaskSplit,
    /// Validation split, carved from the dataset's training images.
    pub val: TaskSplit,
    /// The dataset's test split relabelled, in file order, never subsampled.
    pub test: TaskSplit,
    /// The Fisher probe: the dataset's probe images ([`probe_mask`]) of the task's classes,
    /// relabelled, in file order, at the dataset's label frequencies (like the test split).
    pub probe: TaskSplit,
    /// What identifies a declared dataset's content ([`Dataset::digest`]); `None` for the
    /// built-ins.
    pub dataset_digest: Option<String>,
    /// Per task label, its share of the dataset's training images before balancing: the
    /// label frequencies of the data the task meets (its test split's are not read), which
    /// the test decisions use ([`prior_shift`]).
    pub dataset_prior: Vec<f64>,
}

impl TaskData {
    /// Task `id` of the task file `tasks`, its dataset looked up in `dirs`.
    pub fn load(tasks: &std::path::Path, id: &str, dirs: &crate::DataDirs) -> Result<Self> {
        let file = crate::TaskFile::read(tasks)?;
        let spec = file.get(id)?;
        Self::build(spec, &file.load_dataset(spec, dirs)?)
    }

    /// Task `id` of the repository's `configs/tasks/mnist.toml` on the embedded data
    /// ([`crate::DataDirs::embedded`]): what the tests and examples train on.
    pub fn embedded_mnist(id: &str) -> Result<Self> {
        let tasks =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/tasks/mnist.toml");
        Self::load(
            &tasks,
            id,
            &crate::DataDirs::only([crate::DataDirs::embedded()]),
        )
    }

    /// Builds the task's splits from a loaded dataset.
    ///
    /// Probe: the eligible training images the dataset holds out ([`probe_mask`]), in file
    /// order; they are in no task's train or val split. Train and val: per task label, the
    /// other eligible training images are shuffled with the
    /// spec's seed; with balancing every label keeps the count of the rarest label. Of each
    /// label's images, `round(count * val_fraction)` go to val and the rest to train, so
    /// balanced splits have exactly equal counts per label. Both splits are returned in file
    /// order. Test: every test image whose class belongs to the task, in file order.
    pub fn build(spec: &TaskSpec, dataset: &Dataset) -> Result<Self> {
        if spec.dataset != dataset.name {
            return Err(task_error(
                dataset,
                spec,
                format!(
                    "task is defined on {} but got {}",
                    spec.dataset, dataset.name
                ),
            ));
        }
        let names = dataset.class_names(spec.label_kind).ok_or_else(|| {
            task_error(
                dataset,
                spec,
                format!(
                    "dataset {} has no {:?} labels",
                    dataset.name, spec.label_kind
                ),
            )
        })?;
        let relabel = spec
            .relabelling_over(names)
            .map_err(|p| task_error(dataset, spec, p))?;
        let train_set = dataset.train.clone();
        let test_set = dataset.test.clone();
        let pool =
            relabelled(&train_set, spec, &relabel).map_err(|p| task_error(dataset, spec, p))?;
        let test =
            relabelled(&test_set, spec, &relabel).map_err(|p| task_error(dataset, spec, p))?;

        let held_out = probe_mask(&dataset.train);
        let mut per_label: Vec<Vec<usize>> = vec![Vec::new(); relabel.num_labels];
        let mut counts = vec![0usize; relabel.num_labels];
        let mut probe = Vec::new();
        for &(i, l) in &pool {
            counts[l] += 1;
            if held_out[i] {
                probe.push((i, l));
            } else {
                per_label[l].push(i);
            }
        }
        if let Some(l) = per_label.iter().position(Vec::is_empty) {
            return Err(task_error(
                dataset,
                spec,
                format!("task label {l} has no training images"),
            ));
        }
        let dataset_prior = counts
            .iter()
            .map(|&c| c as f64 / pool.len() as f64)
            .collect();
        let keep = per_label.iter().map(Vec::len).min().unwrap_or(0);
        let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
        let (mut train, mut val) = (Vec::new(), Vec::new());
        for (label, idx) in per_label.iter_mut().enumerate() {
            idx.shuffle(&mut rng);
            if spec.balanced() {
                idx.truncate(keep);
            }
            let n_val = (idx.len() as f64 * spec.val_fraction).round() as usize;
            val.extend(idx[..n_val].iter().map(|&i| (i, label)));
            train.extend(idx[n_val..].iter().map(|&i| (i, label)));
        }
        train.sort_unstable();
        val.sort_unstable();
        Ok(Self {
            spec: spec.clone(),
            num_labels: relabel.num_labels,
            train: TaskSplit::new(train_set.clone(), train),
            val: TaskSplit::new(train_set.clone(), val),
            test: TaskSplit::new(test_set, test),
            probe: TaskSplit::new(train_set, probe),
            dataset_digest: dataset.digest.clone(),
            dataset_prior,
        })
    }

    /// The logit shift of the test decisions of a network trained on this task's train split
    /// (and val split, which has the same label frequencies): [`prior_shift`] to
    /// [`TaskData::dataset_prior`].
    pub fn test_prior_shift(&self) -> Vec<f64> {
        prior_shift(&self.dataset_prior, &[&self.train])
    }

    /// The split of the given kind.
    pub fn split(&self, split: Split) -> &TaskSplit {
        match split {
            Split::Train => &self.train,
            Split::Val => &self.val,
            Split::Test => &self.test,
            Split::Probe => &self.probe,
        }
    }
}

/// The share of each class of a dataset's training images held out as its Fisher probe.
pub const PROBE_FRACTION: f64 = 0.1;

/// Seed of the probe draw: one fixed draw per dataset, the same for every task.
const PROBE_SEED: u64 = 0x0070_726f_6265;

/// Which training images of `set` form the dataset's Fisher probe: of each class (fine
/// label), `floor(count * PROBE_FRACTION)` images drawn with a fixed seed. It depends on the
/// dataset alone, so every task of the dataset leaves the same images out of its train and
/// val splits, and a Fisher taken on them is taken on data no network of the dataset was
/// trained or selected on (docs/decisions.md).
pub fn probe_mask(set: &ImageSet) -> Vec<bool> {
    let mut mask = vec![false; set.len()];
    let Some(labels) = set.labels_of(crate::task::LabelKind::Fine) else {
        return mask;
    };
    let classes = labels
        .iter()
        .map(|&c| usize::from(c) + 1)
        .max()
        .unwrap_or(0);
    let mut per_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (i, &c) in labels.iter().enumerate() {
        per_class[usize::from(c)].push(i);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(PROBE_SEED);
    for idx in &mut per_class {
        idx.shuffle(&mut rng);
        let n = (idx.len() as f64 * PROBE_FRACTION).floor() as usize;
        for &i in &idx[..n] {
            mask[i] = true;
        }
    }
    mask
}

/// Per label, `ln(prior[l]) - ln(q[l])`, where `q` is the label frequencies of the samples of
/// `trained_on`: added to the logits of a network trained on those samples, it moves its
/// arg-max decisions from the training frequencies to `prior` (Bayes' rule for a change of
/// label prior, Saerens et al. 2002). 0 for labels absent from either side, and a constant
/// (no change of decisions) when `q` equals `prior`.
pub fn prior_shift(prior: &[f64], trained_on: &[&TaskSplit]) -> Vec<f64> {
    let mut counts = vec![0.0; prior.len()];
    for split in trained_on {
        for &l in split.labels() {
            if let Some(c) = counts.get_mut(l) {
                *c += 1.0;
            }
        }
    }
    prior_shift_from(prior, &counts)
}

/// [`prior_shift`] from the training label frequencies `trained` (counts or shares per
/// label; normalised here): what a user states for weights tanas did not train.
pub fn prior_shift_from(prior: &[f64], trained: &[f64]) -> Vec<f64> {
    let total: f64 = trained.iter().filter(|c| c.is_finite() && **c > 0.0).sum();
    prior
        .iter()
        .enumerate()
        .map(|(l, &p)| match trained.get(l) {
            Some(&c) if p > 0.0 && c > 0.0 && total > 0.0 => p.ln() - (c / total).ln(),
            _ => 0.0,
        })
        .collect()
}

/// (index, task label) of every image of `set` that belongs to the task, in file order.
fn relabelled(
    set: &ImageSet,
    spec: &TaskSpec,
    relabel: &Relabelling,
) -> std::result::Result<Vec<(usize, usize)>, String> {
    let labels = set.labels_of(spec.label_kind).ok_or_else(|| {
        format!(
            "dataset {} has no {:?} labels",
            spec.dataset, spec.label_kind
        )
    })?;
    Ok(labels
        .iter()
        .enumerate()
        .filter_map(|(i, &c)| relabel.label(c).map(|l| (i, l)))
        .collect())
}

fn task_error(dataset: &Dataset, spec: &TaskSpec, problem: impl Into<String>) -> DataError {
    DataError::Task {
        path: dataset.dir.clone(),
        task: spec.id.clone(),
        problem: problem.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::DatasetName;
    use crate::task::TaskFile;
    use std::path::Path;

    /// A synthetic 10-class dataset: class c has 20 + 3c training images and 5 + c test images.
    fn dataset() -> Dataset {
        let set = |per_class: &dyn Fn(u16) -> usize| {
            let labels: Vec<u16> = (0..10u16)
                .flat_map(|c| std::iter::repeat_n(c, per_class(c)))
                .collect();
            // Interleave classes so file order is not class order.
            let mut labels = labels;
            labels.sort_by_key(|&l| (l as usize * 7919) % 13);
            ImageSet {
                channels: 1,
                height: 2,
                width: 2,
                pixels: vec![0; labels.len() * 4],
                labels,
                coarse_labels: None,
            }
        };
        Dataset {
            name: "mnist".into(),
            dir: "synthetic".into(),
            classes: DatasetName::Mnist
                .class_names()
                .iter()
                .map(|s| s.to_string())
                .collect(),
            coarse_classes: None,
            digest: None,
            train: set(&|c| 20 + 3 * c as usize).into(),
            test: set(&|c| 5 + c as usize).into(),
        }
    }

    fn spec(body: &str) -> TaskSpec {
        TaskFile::parse(
            &format!("[[task]]\nid = \"t\"\ndataset = \"mnist\"\n{body}"),
            Path::new("t.toml"),
        )
        .unwrap()
        .tasks
        .remove(0)
    }

    #[test]
    fn balancing_is_exact() {
        let ds = dataset();
        // Multi {0, 1}: label 0 has 20 images, label 1 has 23, label 2 (else) has the rest;
        // 2 of class 0's go to the dataset's probe, so 18 per label remain.
        let data = TaskData::build(&spec("kind = \"multi\"\nclasses = [0, 1]"), &ds).unwrap();
        assert_eq!(data.num_labels, 3);
        assert_eq!(data.train.label_counts(3), vec![16, 16, 16]);
        assert_eq!(data.val.label_counts(3), vec![2, 2, 2]);
        // Train and val are disjoint, in file order, and carry the right labels.
        let mut all: Vec<_> = data
            .train
            .indices()
            .iter()
            .chain(data.val.indices())
            .copied()
            .collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 54);
        assert!(data.train.indices().windows(2).all(|w| w[0] < w[1]));
        let r = data.spec.relabelling().unwrap();
        for (&i, &l) in data.train.indices().iter().zip(data.train.labels()) {
            assert_eq!(r.label(ds.train.labels[i]), Some(l));
        }
    }

    #[test]
    fn the_probe_is_held_out_from_every_task_of_the_dataset() {
        let ds = dataset();
        let mask = probe_mask(&ds.train);
        // floor(10 %) of each class: 20 + 3c images of class c.
        for c in 0..10u16 {
            let n = (20 + 3 * c as usize) / 10;
            let held = (0..ds.train.len())
                .filter(|&i| mask[i] && ds.train.labels[i] == c)
                .count();
            assert_eq!(held, n, "class {c}");
        }
        let bodies = [
            "kind = \"indicator\"\nclasses = [0, 2, 4]",
            "kind = \"multi\"\nclasses = [0, 1]",
            "kind = \"full\"",
            "kind = \"subset\"\nclasses = [3, 5, 7]",
            "kind = \"full\"\nseed = 9\nbalance = true",
        ];
        for body in bodies {
            let data = TaskData::build(&spec(body), &ds).unwrap();
            // No task trains or validates on a probe image, and a task's probe is every probe
            // image of its classes, in file order, with the task's labels.
            for &i in data.train.indices().iter().chain(data.val.indices()) {
                assert!(!mask[i], "{body}: image {i}");
            }
            let r = data.spec.relabelling().unwrap();
            let expected: Vec<usize> = (0..ds.train.len())
                .filter(|&i| mask[i] && r.label(ds.train.labels[i]).is_some())
                .collect();
            assert_eq!(data.probe.indices(), expected.as_slice(), "{body}");
            for (&i, &l) in data.probe.indices().iter().zip(data.probe.labels()) {
                assert_eq!(r.label(ds.train.labels[i]), Some(l));
            }
            // It is drawn from the training images, never from the test split.
            assert_eq!(data.probe.images().len(), ds.train.len());
        }
        // The draw depends on the dataset alone.
        assert_eq!(probe_mask(&ds.train), mask);
    }

    #[test]
    fn balancing_is_deterministic_for_a_seed() {
        let ds = dataset();
        let a =
            TaskData::build(&spec("kind = \"indicator\"\nclasses = [3]\nseed = 7"), &ds).unwrap();
        let b =
            TaskData::build(&spec("kind = \"indicator\"\nclasses = [3]\nseed = 7"), &ds).unwrap();
        let c =
            TaskData::build(&spec("kind = \"indicator\"\nclasses = [3]\nseed = 8"), &ds).unwrap();
        assert_eq!(a.train.indices(), b.train.indices());
        assert_eq!(a.val.indices(), b.val.indices());
        assert_ne!(a.train.indices(), c.train.indices());
        assert_eq!(a.train.label_counts(2), c.train.label_counts(2));
    }

    #[test]
    fn the_dataset_prior_is_the_share_before_balancing_and_its_shift_undoes_the_balancing() {
        let ds = dataset();
        // Multi {0, 1}: 20 and 23 of the 335 training images, the other 292 "anything else".
        let data = TaskData::build(&spec("kind = \"multi\"\nclasses = [0, 1]"), &ds).unwrap();
        let total: f64 = (0..10).map(|c| 20.0 + 3.0 * c as f64).sum();
        let expect = [20.0 / total, 23.0 / total, (total - 43.0) / total];
        for (p, e) in data.dataset_prior.iter().zip(expect) {
            assert!((p - e).abs() < 1e-12, "{p} vs {e}");
        }
        // Trained on 1/3 each: the shift is ln(prior * 3), so shifted logits of a network
        // whose softmax is uniform give the prior back (up to a constant).
        let shift = data.test_prior_shift();
        for (s, e) in shift.iter().zip(expect) {
            assert!((s - (e * 3.0).ln()).abs() < 1e-12, "{s}");
        }
        // Without balancing the training frequencies are the prior's up to the rounding of the
        // probe and val draws: every label is shifted about alike.
        let full = TaskData::build(&spec("kind = \"full\""), &ds).unwrap();
        let shift = prior_shift(&full.dataset_prior, &[&full.train, &full.val]);
        assert!(shift.iter().all(|s| s.abs() < 0.05), "{shift:?}");
        // Labels missing on either side are left alone.
        let shift = prior_shift(&[0.5, 0.5, 0.0], &[&data.train]);
        assert!((shift[0] - 1.5f64.ln()).abs() < 1e-12 && shift[0] == shift[1]);
        assert_eq!(shift[2], 0.0);
        // Stated frequencies (counts or shares) give the shift of the samples they count.
        let counts: Vec<f64> = data
            .train
            .label_counts(3)
            .iter()
            .map(|&c| c as f64)
            .collect();
        assert_eq!(
            prior_shift_from(&data.dataset_prior, &counts),
            data.test_prior_shift()
        );
        let shares = [0.25, 0.25, 0.5];
        let from = prior_shift_from(&data.dataset_prior, &shares);
        assert!((from[2] - (expect[2] / 0.5).ln()).abs() < 1e-12, "{from:?}");
    }

    #[test]
    fn unbalanced_val_is_stratified() {
        let ds = dataset();
        let data = TaskData::build(&spec("kind = \"full\"\nval_fraction = 0.2"), &ds).unwrap();
        // Each class less its probe images (floor of 10 %).
        let per_class: Vec<usize> = (0..10).map(|c| 20 + 3 * c).map(|n| n - n / 10).collect();
        let val: Vec<usize> = per_class
            .iter()
            .map(|&n| (n as f64 * 0.2).round() as usize)
            .collect();
        assert_eq!(data.val.label_counts(10), val);
        let train: Vec<usize> = per_class.iter().zip(&val).map(|(n, v)| n - v).collect();
        assert_eq!(data.train.label_counts(10), train);
    }

    #[test]
    fn test_split_is_untouched() {
        let ds = dataset();
        for body in [
            "kind = \"indicator\"\nclasses = [3]",
            "kind = \"multi\"\nclasses = [0, 1]",
            "kind = \"full\"",
        ] {
            let data = TaskData::build(&spec(body), &ds).unwrap();
            let r = data.spec.relabelling().unwrap();
            assert_eq!(
                data.test.indices(),
                (0..ds.test.len()).collect::<Vec<_>>().as_slice()
            );
            let expect: Vec<usize> = ds
                .test
                .labels
                .iter()
                .map(|&c| r.label(c).unwrap())
                .collect();
            assert_eq!(data.test.labels(), expect.as_slice());
        }
        // A subset leaves other classes out of test as well, keeping file order.
        let data = TaskData::build(&spec("kind = \"subset\"\nclasses = [9, 4]"), &ds).unwrap();
        let expect: Vec<usize> = (0..ds.test.len())
            .filter(|&i| matches!(ds.test.labels[i], 9 | 4))
            .collect();
        assert_eq!(data.test.indices(), expect.as_slice());
        assert_eq!(data.test.label_counts(2), vec![14, 9]);
    }

    #[test]
    fn wrong_dataset_or_empty_label_is_an_error() {
        let ds = dataset();
        let mut s = spec("kind = \"full\"");
        s.dataset = "cifar10".into();
        assert!(
            TaskData::build(&s, &ds)
                .unwrap_err()
                .to_string()
                .contains("defined on cifar10")
        );
        let mut ds = dataset();
        Arc::make_mut(&mut ds.train)
            .labels
            .iter_mut()
            .for_each(|l| *l = (*l).min(8));
        let e = TaskData::build(&spec("kind = \"full\""), &ds)
            .unwrap_err()
            .to_string();
        assert!(e.contains("task label 9 has no training images"), "{e}");
    }
}
