//! Task specifications ([`TaskSpec`]) read from TOML files, and the relabelling they define.
//!
//! A task file holds `[[task]]` tables:
//!
//! ```toml
//! [[task]]
//! id = "mnist-2"
//! dataset = "mnist"
//! kind = "multi"          # indicator | multi | full | subset
//! classes = [0, 1, 2, 3]  # indices or class names
//! ```

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::catalog::{DataDirs, Dataset, DatasetName};
use crate::declared::DatasetDecl;
use crate::error::{DataError, Result};

/// How a task maps the dataset's classes to its own labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskKind {
    /// Binary: label 1 if the class is one of `classes`, else 0.
    Indicator,
    /// `classes[i]` -> i, every other class -> `classes.len()` ("anything else").
    Multi,
    /// The dataset's own labels.
    Full,
    /// Only the listed classes, relabelled `0..k-1`; other images are left out.
    Subset,
}

impl fmt::Display for TaskKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Indicator => "indicator",
            Self::Multi => "multi",
            Self::Full => "full",
            Self::Subset => "subset",
        })
    }
}

/// Which of a dataset's label sets a task reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LabelKind {
    /// The ordinary (fine) labels.
    #[default]
    Fine,
    /// The superclass labels (CIFAR-100's 20 coarse classes).
    Coarse,
}

/// A class named in a task spec: by index or by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ClassRef {
    /// The class index in the dataset.
    Index(usize),
    /// The class name (see [`DatasetName::class_names`]; a declared dataset's folder or
    /// file names).
    Name(String),
}

/// One task, as written in a task file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    /// Stable identifier, e.g. `mnist-0`.
    pub id: String,
    /// The dataset the task is defined on: a built-in ([`DatasetName`]) or one declared by a
    /// `[[dataset]]` table of the task file ([`DatasetDecl`]).
    pub dataset: String,
    /// How classes become task labels.
    pub kind: TaskKind,
    /// The classes the kind refers to (empty for `full`).
    #[serde(default)]
    pub classes: Vec<ClassRef>,
    /// Fine or coarse labels (coarse: CIFAR-100 superclasses).
    #[serde(default)]
    pub label_kind: LabelKind,
    /// Equalise the number of train / val samples per task label (default: true for
    /// `indicator` and `multi`, false otherwise).
    #[serde(default)]
    pub balance: Option<bool>,
    /// Fraction of the (balanced) training split carved out for validation.
    #[serde(default = "default_val_fraction")]
    pub val_fraction: f64,
    /// Seed of the balancing / validation draw.
    #[serde(default)]
    pub seed: u64,
    /// Free text shown by `tanas task show`.
    #[serde(default)]
    pub description: Option<String>,
}

fn default_val_fraction() -> f64 {
    0.1
}

/// A task file: a list of tasks with unique ids, and the datasets it declares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskFile {
    /// Other files whose `[[dataset]]` tables this file uses (relative to this file).
    #[serde(default)]
    pub include: Vec<PathBuf>,
    /// The datasets declared here (`[[dataset]]` tables) and in the included files.
    #[serde(rename = "dataset", default)]
    pub datasets: Vec<DatasetDecl>,
    /// The tasks, in file order.
    #[serde(rename = "task", default)]
    pub tasks: Vec<TaskSpec>,
    /// Where the file was read from (not part of the TOML).
    #[serde(skip)]
    pub path: PathBuf,
}

/// Where a task's dataset comes from: a built-in, or a `[[dataset]]` declaration.
#[derive(Debug, Clone, PartialEq)]
pub enum DatasetSource {
    /// MNIST, Fashion-MNIST, CIFAR-10 or CIFAR-100, looked up in the data directories.
    Builtin(DatasetName),
    /// A dataset declared in a task or dataset file.
    Declared(DatasetDecl),
}

impl DatasetSource {
    /// Reads the dataset (a declared one through the decoded-set cache of `dirs`).
    pub fn load(&self, dirs: &DataDirs) -> Result<Dataset> {
        match self {
            Self::Builtin(name) => dirs.load(*name),
            Self::Declared(decl) => decl.load(dirs),
        }
    }
}

impl TaskFile {
    /// Reads and validates a task file.
    pub fn read(path: &Path) -> Result<Self> {
        let text = tanas_core::read_text(path).map_err(|e| DataError::io(path, e))?;
        Self::parse(&text, path)
    }

    /// Parses and validates task-file text; `path` is used in error messages and relative
    /// dataset paths are taken from its directory.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let file = Self::parse_declarations(text, path, 0)?;
        if file.tasks.is_empty() {
            return Err(DataError::format(path, "no [[task]] tables"));
        }
        let mut seen = HashSet::new();
        for t in &file.tasks {
            check_id(&t.id).map_err(|p| file.task_error(t, format!("id {p}")))?;
            if !seen.insert(t.id.as_str()) {
                return Err(file.task_error(t, "duplicate task id"));
            }
            match file.source(&t.dataset).map_err(|p| file.task_error(t, p))? {
                DatasetSource::Builtin(_) => t.relabelling().map(drop),
                // The class names of a declared dataset are known once it is read.
                DatasetSource::Declared(_) => t.check_shape(),
            }
            .map_err(|p| file.task_error(t, p))?;
        }
        Ok(file)
    }

    /// Reads a file of `[[dataset]]` tables (tasks allowed but not required): what `tanas
    /// data info` lists.
    pub fn read_declarations(path: &Path) -> Result<Self> {
        let text = tanas_core::read_text(path).map_err(|e| DataError::io(path, e))?;
        Self::parse_declarations(&text, path, 0)
    }

    fn parse_declarations(text: &str, path: &Path, depth: usize) -> Result<Self> {
        let mut file: TaskFile = tanas_core::settings::parse_toml(text, path)
            .map_err(|e| DataError::format(path, e.problem))?;
        file.path = path.to_path_buf();
        let dir = path.parent().unwrap_or(Path::new(""));
        for decl in &mut file.datasets {
            decl.resolve(path)?;
        }
        for inc in std::mem::take(&mut file.include) {
            if depth >= 4 {
                return Err(DataError::format(
                    path,
                    "`include` nested more than 4 deep (a loop?)",
                ));
            }
            let inc_path = dir.join(&inc);
            let text = tanas_core::read_text(&inc_path)
                .map_err(|e| DataError::format(path, format!("include {}: {e}", inc.display())))?;
            let other = Self::parse_declarations(&text, &inc_path, depth + 1)?;
            file.datasets.extend(other.datasets);
            file.include.push(inc);
        }
        let mut names = HashSet::new();
        for decl in &file.datasets {
            if DatasetName::from_str_opt(&decl.name).is_some() {
                return Err(DataError::format(
                    path,
                    format!(
                        "[[dataset]] `{}`: the name of a built-in dataset",
                        decl.name
                    ),
                ));
            }
            if !names.insert(decl.name.as_str()) {
                return Err(DataError::format(
                    path,
                    format!("[[dataset]] `{}` declared twice", decl.name),
                ));
            }
        }
        Ok(file)
    }

    /// Where dataset `name` comes from: a built-in or a declaration of this file; an error in
    /// words naming both lists otherwise.
    pub fn source(&self, name: &str) -> std::result::Result<DatasetSource, String> {
        if let Some(b) = DatasetName::from_str_opt(name) {
            return Ok(DatasetSource::Builtin(b));
        }
        if let Some(d) = self.datasets.iter().find(|d| d.name == name) {
            return Ok(DatasetSource::Declared(d.clone()));
        }
        let builtin: Vec<_> = DatasetName::ALL.iter().map(|d| d.as_str()).collect();
        let declared: Vec<_> = self.datasets.iter().map(|d| d.name.as_str()).collect();
        Err(format!(
            "unknown dataset `{name}` (built-in: {}; declared in this file: {})",
            builtin.join(", "),
            if declared.is_empty() {
                "none".to_string()
            } else {
                declared.join(", ")
            }
        ))
    }

    /// The task with the given id.
    pub fn get(&self, id: &str) -> Result<&TaskSpec> {
        self.tasks.iter().find(|t| t.id == id).ok_or_else(|| {
            let ids: Vec<_> = self.tasks.iter().map(|t| t.id.as_str()).collect();
            DataError::Task {
                path: self.path.clone(),
                task: id.to_string(),
                problem: format!("no such task (tasks in this file: {})", ids.join(", ")),
            }
        })
    }

    /// Reads the dataset of task `spec` of this file.
    pub fn load_dataset(&self, spec: &TaskSpec, dirs: &DataDirs) -> Result<Dataset> {
        self.source(&spec.dataset)
            .map_err(|p| self.task_error(spec, p))?
            .load(dirs)
    }

    fn task_error(&self, t: &TaskSpec, problem: impl Into<String>) -> DataError {
        DataError::Task {
            path: self.path.clone(),
            task: t.id.clone(),
            problem: problem.into(),
        }
    }
}

pub use tanas_core::id::{ID_MAX_LEN, check_id};

/// The map from a dataset class to a task label, with the number of task labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relabelling {
    /// `map[class]` is the task label of that class, `None` if the class is left out.
    pub map: Vec<Option<usize>>,
    /// Number of task labels.
    pub num_labels: usize,
}

impl Relabelling {
    /// The task label of a dataset class (`None`: not part of the task).
    pub fn label(&self, class: u16) -> Option<usize> {
        self.map.get(class as usize).copied().flatten()
    }
}

impl TaskSpec {
    /// Whether train / val are balanced per task label.
    pub fn balanced(&self) -> bool {
        self.balance
            .unwrap_or(matches!(self.kind, TaskKind::Indicator | TaskKind::Multi))
    }

    /// The class names of the label kind this task reads, for a task on a built-in dataset.
    pub fn class_names(&self) -> std::result::Result<&'static [&'static str], String> {
        let dataset = DatasetName::from_str_opt(&self.dataset)
            .ok_or_else(|| format!("`{}` is not a built-in dataset", self.dataset))?;
        match self.label_kind {
            LabelKind::Fine => Ok(dataset.class_names()),
            LabelKind::Coarse => dataset
                .coarse_class_names()
                .ok_or_else(|| format!("dataset {} has no coarse labels", self.dataset)),
        }
    }

    /// Resolves `classes` to indices into `names`, checking range, names and duplicates.
    pub fn class_indices_over<S: AsRef<str>>(
        &self,
        names: &[S],
    ) -> std::result::Result<Vec<usize>, String> {
        let mut seen = HashSet::new();
        self.classes
            .iter()
            .map(|c| {
                let i = match c {
                    ClassRef::Index(i) if *i < names.len() => *i,
                    ClassRef::Index(i) => {
                        return Err(format!(
                            "class {i} out of range (the dataset has {})",
                            names.len()
                        ));
                    }
                    ClassRef::Name(n) => {
                        names.iter().position(|x| x.as_ref() == n).ok_or_else(|| {
                            let known: Vec<&str> = names.iter().map(AsRef::as_ref).collect();
                            format!("unknown class name `{n}` (known: {})", known.join(", "))
                        })?
                    }
                };
                if seen.insert(i) {
                    Ok(i)
                } else {
                    Err(format!("class {i} listed twice"))
                }
            })
            .collect()
    }

    /// [`Self::class_indices_over`] the built-in dataset's class names.
    pub fn class_indices(&self) -> std::result::Result<Vec<usize>, String> {
        self.class_indices_over(self.class_names()?)
    }

    /// What can be checked without the dataset's class names: the validation fraction and
    /// the number of classes the kind needs.
    pub fn check_shape(&self) -> std::result::Result<(), String> {
        if !(0.0..1.0).contains(&self.val_fraction) {
            return Err(format!(
                "val_fraction {} is not in [0, 1)",
                self.val_fraction
            ));
        }
        match self.kind {
            TaskKind::Full if !self.classes.is_empty() => {
                Err("kind `full` takes no classes".into())
            }
            TaskKind::Full => Ok(()),
            _ if self.classes.is_empty() => {
                Err(format!("kind `{}` needs at least one class", self.kind))
            }
            TaskKind::Subset if self.classes.len() < 2 => {
                Err("kind `subset` needs at least two classes".into())
            }
            _ => Ok(()),
        }
    }

    /// The class -> task label map this spec defines over a dataset whose classes (of the
    /// spec's label kind) are `names`; an error in words if the spec is invalid.
    pub fn relabelling_over<S: AsRef<str>>(
        &self,
        names: &[S],
    ) -> std::result::Result<Relabelling, String> {
        self.check_shape()?;
        let n = names.len();
        let classes = self.class_indices_over(names)?;
        let (map, num_labels) = match self.kind {
            TaskKind::Full => ((0..n).map(Some).collect(), n),
            TaskKind::Indicator => {
                if classes.len() == n {
                    return Err("indicator over every class leaves label 0 empty".into());
                }
                (
                    (0..n)
                        .map(|c| Some(usize::from(classes.contains(&c))))
                        .collect(),
                    2,
                )
            }
            TaskKind::Multi => {
                if classes.len() == n {
                    return Err(
                        "multi over every class leaves `anything else` empty: use kind `full`"
                            .into(),
                    );
                }
                let k = classes.len();
                (
                    (0..n)
                        .map(|c| Some(classes.iter().position(|&x| x == c).unwrap_or(k)))
                        .collect(),
                    k + 1,
                )
            }
            TaskKind::Subset => (
                (0..n)
                    .map(|c| classes.iter().position(|&x| x == c))
                    .collect(),
                classes.len(),
            ),
        };
        Ok(Relabelling { map, num_labels })
    }

    /// [`Self::relabelling_over`] the built-in dataset's class names.
    pub fn relabelling(&self) -> std::result::Result<Relabelling, String> {
        self.relabelling_over(self.class_names()?)
    }

    /// Number of task labels (a task on a built-in dataset; 0 if invalid).
    pub fn num_labels(&self) -> usize {
        self.relabelling().map(|r| r.num_labels).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<TaskFile> {
        TaskFile::parse(text, Path::new("tasks.toml"))
    }

    fn one(body: &str) -> TaskSpec {
        parse(&format!("[[task]]\nid = \"t\"\n{body}"))
            .unwrap()
            .tasks
            .remove(0)
    }

    fn err(body: &str) -> String {
        let e = parse(&format!("[[task]]\nid = \"t\"\n{body}"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("tasks.toml"), "names the file: {e}");
        e
    }

    #[test]
    fn ids_that_are_not_plain_names_are_rejected() {
        let body = "dataset = \"mnist\"\nkind = \"full\"";
        for bad in [
            "/tmp/x/ESCAPE",
            "../../escape",
            "..",
            ".hidden",
            "a/b",
            "a\\\\b",
            "",
            "a b",
            "-m0",
            "--help",
        ] {
            let text = format!("[[task]]\nid = \"{bad}\"\n{body}");
            let e = parse(&text).expect_err(bad).to_string();
            assert!(
                e.starts_with("tasks.toml") && e.contains(": id "),
                "{bad}: {e}"
            );
        }
        let long = "x".repeat(ID_MAX_LEN + 1);
        assert!(parse(&format!("[[task]]\nid = \"{long}\"\n{body}")).is_err());
        for good in ["mnist-0", "cifar100_coarse.3", "T1"] {
            parse(&format!("[[task]]\nid = \"{good}\"\n{body}")).expect(good);
        }
    }

    #[test]
    fn indicator_maps_listed_classes_to_one() {
        let r = one("dataset = \"mnist\"\nkind = \"indicator\"\nclasses = [0, 6]")
            .relabelling()
            .unwrap();
        assert_eq!(r.num_labels, 2);
        let expect: Vec<_> = (0..10)
            .map(|c| Some(usize::from(c == 0 || c == 6)))
            .collect();
        assert_eq!(r.map, expect);
    }

    #[test]
    fn multi_adds_anything_else() {
        let r = one(
            "dataset = \"cifar10\"\nkind = \"multi\"\nclasses = [\"bird\", \"frog\", \"horse\"]",
        )
        .relabelling()
        .unwrap();
        assert_eq!(r.num_labels, 4);
        assert_eq!(r.label(2), Some(0)); // bird
        assert_eq!(r.label(6), Some(1)); // frog
        assert_eq!(r.label(7), Some(2)); // horse
        for c in [0, 1, 3, 4, 5, 8, 9] {
            assert_eq!(r.label(c), Some(3));
        }
    }

    #[test]
    fn full_and_subset() {
        let r = one("dataset = \"fashion-mnist\"\nkind = \"full\"")
            .relabelling()
            .unwrap();
        assert_eq!((r.num_labels, r.label(7)), (10, Some(7)));
        let r = one("dataset = \"mnist\"\nkind = \"subset\"\nclasses = [7, 2]")
            .relabelling()
            .unwrap();
        assert_eq!(r.num_labels, 2);
        assert_eq!(
            (r.label(7), r.label(2), r.label(0)),
            (Some(0), Some(1), None)
        );
    }

    #[test]
    fn coarse_labels_by_superclass_name() {
        let t = one("dataset = \"cifar100\"\nkind = \"full\"\nlabel_kind = \"coarse\"");
        assert_eq!(t.num_labels(), 20);
        let t = one(
            "dataset = \"cifar100\"\nkind = \"indicator\"\nlabel_kind = \"coarse\"\nclasses = [\"vehicles_1\", \"vehicles_2\"]",
        );
        assert_eq!(t.class_indices().unwrap(), vec![18, 19]);
        assert!(
            err("dataset = \"mnist\"\nkind = \"full\"\nlabel_kind = \"coarse\"")
                .contains("no coarse labels")
        );
    }

    #[test]
    fn defaults() {
        let t = one("dataset = \"mnist\"\nkind = \"multi\"\nclasses = [1]");
        assert!(t.balanced());
        assert_eq!((t.val_fraction, t.seed), (0.1, 0));
        assert!(!one("dataset = \"mnist\"\nkind = \"full\"").balanced());
        assert!(one("dataset = \"mnist\"\nkind = \"full\"\nbalance = true").balanced());
    }

    #[test]
    fn invalid_specs_are_errors() {
        assert!(
            err("dataset = \"mnist\"\nkind = \"indicator\"\nclasses = [10]")
                .contains("out of range")
        );
        assert!(
            err("dataset = \"mnist\"\nkind = \"indicator\"\nclasses = [\"ten\"]")
                .contains("unknown class name `ten`")
        );
        assert!(
            err("dataset = \"mnist\"\nkind = \"indicator\"\nclasses = [1, 1]")
                .contains("listed twice")
        );
        assert!(
            err("dataset = \"mnist\"\nkind = \"indicator\"\nclasses = []")
                .contains("needs at least one class")
        );
        assert!(
            err("dataset = \"mnist\"\nkind = \"full\"\nclasses = [1]").contains("takes no classes")
        );
        assert!(
            err("dataset = \"mnist\"\nkind = \"subset\"\nclasses = [1]").contains("at least two")
        );
        assert!(
            err("dataset = \"mnist\"\nkind = \"indicator\"\nclasses = [0,1,2,3,4,5,6,7,8,9]")
                .contains("label 0 empty")
        );
        assert!(
            err("dataset = \"mnist\"\nkind = \"full\"\nval_fraction = 1.0")
                .contains("val_fraction")
        );
        assert!(
            err("dataset = \"imagenet\"\nkind = \"full\"").contains("unknown dataset `imagenet`")
        );
        assert!(
            err("dataset = \"mnist\"\nkind = \"full\"\nclases = [1]").contains("unknown field")
        );
        let e = parse("[[task]]\nid = \"a\"\ndataset = \"mnist\"\nkind = \"full\"\n[[task]]\nid = \"a\"\ndataset = \"mnist\"\nkind = \"full\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("duplicate task id"), "{e}");
        assert!(parse("").unwrap_err().to_string().contains("no [[task]]"));
        assert!(!err("dataset = \"mnist\"\nkind = \"full\"\nclases = [1]").contains('\n'));
    }

    #[test]
    fn get_names_known_ids() {
        let f = parse("[[task]]\nid = \"a\"\ndataset = \"mnist\"\nkind = \"full\"").unwrap();
        assert_eq!(f.get("a").unwrap().id, "a");
        let e = f.get("b").unwrap_err().to_string();
        assert!(
            e.contains("`b`") && e.contains("tasks in this file: a"),
            "{e}"
        );
    }

    #[test]
    fn shipped_task_files_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/tasks");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let file = TaskFile::read(&path).unwrap();
            let expect = if path.ends_with("quickdraw.toml") {
                11
            } else {
                4
            };
            assert_eq!(file.tasks.len(), expect, "{}", path.display());
            n += 1;
        }
        assert_eq!(n, 6);
        let c100 = TaskFile::read(&dir.join("cifar100.toml")).unwrap();
        let labels: Vec<_> = c100.tasks.iter().map(TaskSpec::num_labels).collect();
        assert_eq!(labels, vec![2, 2, 11, 21]);
    }
}
