//! The experiment profiles of `cargo xtask reproduce`, read from `configs/profiles/<name>.toml`
//! (or any file given by path): which tasks, networks, seeds and budgets each study uses; and
//! the config files the `tanas` stages read, written from them.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use serde::Deserialize;
pub use tanas_jobs::Resources;

/// One study: a set of tasks with its distance matrices, its task dictionary and its
/// TA-NAS searches.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Study {
    /// Directory name and report heading.
    pub name: String,
    /// Task files (repository-relative).
    pub task_files: Vec<String>,
    /// Datasets the tasks need (`tanas data info` names).
    pub datasets: Vec<String>,
    /// Epsilon-network architectures: one distance matrix each; the first also builds the
    /// task dictionary.
    pub archs: Vec<String>,
    /// Seeds 0..seeds.
    pub seeds: u64,
    /// Largest number of training epochs of the epsilon-networks.
    pub epochs: usize,
    /// Early stopping of the epsilon-networks: epochs without a new best val accuracy.
    pub patience: usize,
    /// The epsilon-networks' budget in optimiser steps (`TrainConfig::max_steps`): tasks of
    /// different sizes get about the same number of updates, `epochs` caps them.
    #[serde(default)]
    pub max_steps: Option<usize>,
    /// Fisher samples (the first N val samples of the data task).
    pub fisher_samples: usize,
    /// The `[search]` table of the dictionary (FUSE settings).
    pub search: toml::Table,
    /// Cell skeleton (C, L) of searched networks.
    pub skeleton: (usize, usize),
    /// Target tasks of the TA-NAS searches.
    pub targets: Vec<String>,
    /// Search seeds `0..N` of every method on every target (the spread the claims use).
    pub search_seeds: u64,
    /// Hand-designed networks trained like the found ones.
    pub baselines: Vec<String>,
    /// Why hand-designed networks the papers compare with are left out, if some are.
    #[serde(default)]
    pub baselines_note: Option<String>,
    /// How the FTD matches heads of different sizes (`exclude` or `pad`).
    pub head: String,
    /// The noise floor's seeds (the experiment's `floor_seeds`; default all).
    #[serde(default)]
    pub floor_seeds: Option<usize>,
    /// The transfer measurement (the experiment's `[transfer]` table; default: none).
    #[serde(default)]
    pub transfer: Option<toml::Table>,
}

/// A profile: its studies and the estimated seconds of each kind of stage on the reference
/// machine (for the ETA only).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The file's stem (`quick`, `paper`).
    #[serde(skip)]
    pub name: String,
    /// The file it was read from.
    #[serde(skip)]
    pub path: PathBuf,
    /// What it is, one line.
    pub summary: String,
    /// The studies, in order.
    pub studies: Vec<Study>,
    /// Estimated seconds per stage kind.
    pub estimate: Estimate,
    /// What each stage asks of a machine (the Slurm executor's requests).
    #[serde(default)]
    pub resources: Resources,
}

/// Estimated seconds of one stage of each kind (ETA only; measured on the 2-core CPU
/// machine for `quick`).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Estimate {
    /// A distance matrix (every network and Fisher of one architecture).
    pub matrix: f64,
    /// One dictionary task (its FUSE search; networks come from the matrix).
    pub dict_task: f64,
    /// One target search.
    pub search: f64,
    /// One hand-designed baseline, per million parameters.
    pub baseline_per_mparam: f64,
}

impl Profile {
    /// The profile `name`: `configs/profiles/<name>.toml` under `root`, or the file `name`
    /// when it ends in `.toml`.
    pub fn named(name: &str, root: &Path) -> Result<Self> {
        let path = if name.ends_with(".toml") {
            PathBuf::from(name)
        } else {
            root.join("configs/profiles").join(format!("{name}.toml"))
        };
        if !path.is_file() {
            let dir = root.join("configs/profiles");
            let mut known: Vec<String> = std::fs::read_dir(&dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| {
                    let p = e.path();
                    (p.extension()? == "toml").then(|| p.file_stem()?.to_str().map(String::from))?
                })
                .collect();
            known.sort();
            bail!(
                "unknown profile `{name}` ({} in {})",
                known.join(", "),
                dir.display()
            );
        }
        let mut profile: Profile = tanas_core::read_toml(&path)?;
        if let Err(problem) = profile.validate(root) {
            bail!("{}: {problem}", path.display());
        }
        profile.path = path.clone();
        profile.name = path
            .file_stem()
            .map_or_else(|| name.to_string(), |s| s.to_string_lossy().into_owned());
        Ok(profile)
    }
}

impl Profile {
    /// Checks every value the file gives, with the bounds the stages use
    /// (`tanas_core::limits`), so that a mistake is named with the profile's field before
    /// any stage runs.
    fn validate(&self, root: &Path) -> std::result::Result<(), String> {
        let r = &self.resources;
        if r.cpus == 0 || r.mem_mib == 0 || !(r.time_s.is_finite() && r.time_s > 0.0) {
            return Err(format!(
                "resources: cpus ({}) and mem_mib ({}) must be at least 1, time_s ({}) a finite number above 0",
                r.cpus, r.mem_mib, r.time_s
            ));
        }
        let e = &self.estimate;
        for (field, v) in [
            ("matrix", e.matrix),
            ("dict_task", e.dict_task),
            ("search", e.search),
            ("baseline_per_mparam", e.baseline_per_mparam),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!(
                    "estimate.{field} = {v}: must be a finite number >= 0"
                ));
            }
        }
        if self.studies.is_empty() {
            return Err("no [[studies]]".into());
        }
        for (i, study) in self.studies.iter().enumerate() {
            // Study names become folders of the report: plain names, each once.
            if let Err(p) = tanas_core::id::check_id(&study.name) {
                return Err(format!("study name {:?} {p}", study.name));
            }
            if self.studies[..i].iter().any(|s| s.name == study.name) {
                return Err(format!("study `{}` is named twice", study.name));
            }
            study
                .validate(root)
                .map_err(|p| format!("study `{}`: {p}", study.name))?;
        }
        Ok(())
    }
}

impl Study {
    /// Checks the study's own values (its search and transfer tables are checked by the
    /// `tanas` readers of the files written from them, before any stage runs).
    fn validate(&self, root: &Path) -> std::result::Result<(), String> {
        use tanas_core::limits::{MAX_COUNT, MAX_SEEDS, count, counts};
        let seeds = usize::try_from(self.seeds).unwrap_or(usize::MAX);
        let search_seeds = usize::try_from(self.search_seeds).unwrap_or(usize::MAX);
        counts(
            &[("seeds", seeds), ("search_seeds", search_seeds)],
            MAX_SEEDS,
        )?;
        counts(
            &[
                ("epochs", self.epochs),
                ("patience", self.patience),
                ("fisher_samples", self.fisher_samples),
            ],
            MAX_COUNT,
        )?;
        if let Some(m) = self.max_steps {
            count("max_steps", m, MAX_COUNT)?;
        }
        if let Some(f) = self.floor_seeds
            && f > seeds
        {
            return Err(format!("floor_seeds = {f}: more than the {seeds} seeds"));
        }
        tanas_core::cell::CellSkeleton::new(self.skeleton.0, self.skeleton.1)
            .validate()
            .map_err(|e| e.to_string())?;
        if !matches!(self.head.as_str(), "exclude" | "pad") {
            return Err(format!(
                "head = {:?}: must be \"exclude\" or \"pad\"",
                self.head
            ));
        }
        for (field, list) in [
            ("task_files", &self.task_files),
            ("datasets", &self.datasets),
            ("archs", &self.archs),
            ("targets", &self.targets),
        ] {
            if list.is_empty() {
                return Err(format!("{field} is empty"));
            }
        }
        for f in &self.task_files {
            if !root.join(f).is_file() {
                return Err(format!("task_files: {f}: no such file"));
            }
        }
        let arch = |a: &str| -> std::result::Result<(), String> {
            a.parse::<tanas_core::arch::Arch>()
                .map(drop)
                .map_err(|e| e.to_string())
        };
        for a in &self.archs {
            arch(a).map_err(|e| format!("archs: {e}"))?;
        }
        for b in &self.baselines {
            match b.split_once(':') {
                Some(("cellnet", genotype)) => {
                    let file = root
                        .join("configs/genotypes")
                        .join(format!("{genotype}.json"));
                    if !file.is_file() {
                        return Err(format!(
                            "baselines: {b:?}: no genotype file {}",
                            file.display()
                        ));
                    }
                }
                Some(_) => {
                    return Err(format!(
                        "baselines: {b:?}: only `cellnet:<genotype>` takes a genotype"
                    ));
                }
                None => arch(b).map_err(|e| format!("baselines: {e}"))?,
            }
        }
        Ok(())
    }

    /// The distance-matrix experiment of `arch` (`tanas distance matrix`), with the task
    /// files as absolute paths under `root`.
    pub fn experiment_toml(&self, arch: &str, root: &Path) -> String {
        let files: Vec<String> = self
            .task_files
            .iter()
            .map(|f| format!("{:?}", root.join(f).display().to_string()))
            .collect();
        format!(
            "# Written by `cargo xtask reproduce`.\ntask_files = [{}]\narch = \"{arch}\"\nseeds = {}\nmetrics = [{}]\nhead = \"{}\"\n{}\n{}\n{}{}",
            files.join(", "),
            self.seeds_toml(),
            self.metrics()
                .iter()
                .map(|m| format!("{m:?}"))
                .collect::<Vec<_>>()
                .join(", "),
            self.head,
            self.floor_seeds
                .map_or(String::new(), |k| format!("floor_seeds = {k}\n")),
            self.train_toml(),
            self.fisher_toml(),
            self.transfer.as_ref().map_or(String::new(), |t| format!(
                "\n[transfer]\n{}",
                toml::to_string(t).unwrap_or_default()
            )),
        )
    }

    /// The dictionary settings (`tanas dict add --settings`): the first architecture,
    /// trained and Fisher-ed exactly as in its distance matrix.
    pub fn dict_toml(&self) -> String {
        format!(
            "# Written by `cargo xtask reproduce`.\narch = \"{}\"\nseeds = {}\nskeleton = {{ channels = {}, layers = {} }}\n\n{}\n{}\n[search]\n{}",
            self.archs[0],
            self.seeds_toml(),
            self.skeleton.0,
            self.skeleton.1,
            self.train_toml(),
            self.fisher_toml(),
            self.search_toml()
        )
    }

    /// The `[search]` table's lines.
    pub fn search_toml(&self) -> String {
        toml::to_string(&self.search).unwrap_or_default()
    }

    /// The distances of the matrices: FTD and log-det, and the cosine where the study
    /// measures transfer (a third predictor of it).
    pub fn metrics(&self) -> Vec<&'static str> {
        let mut m = vec!["ftd", "logdet"];
        if self.transfer.is_some() {
            m.push("cosine");
        }
        m
    }

    /// The few-shot sizes of the transfer measurement (empty without one).
    pub fn transfer_samples(&self) -> Vec<usize> {
        self.transfer
            .as_ref()
            .and_then(|t| t.get("samples")?.as_array().cloned())
            .map_or_else(Vec::new, |a| {
                a.iter()
                    .filter_map(|v| usize::try_from(v.as_integer()?).ok())
                    .collect()
            })
    }

    /// The head rule the matrix also writes, for comparison.
    pub fn other_head(&self) -> &'static str {
        if self.head == "pad" { "exclude" } else { "pad" }
    }

    fn seeds_toml(&self) -> String {
        let seeds: Vec<String> = (0..self.seeds).map(|s| s.to_string()).collect();
        format!("[{}]", seeds.join(", "))
    }

    fn train_toml(&self) -> String {
        format!(
            "[train]\nepochs = {}\npatience = {}\n{}batch_size = 128\nlr = 1e-3\n",
            self.epochs,
            self.patience,
            self.max_steps
                .map_or(String::new(), |s| format!("max_steps = {s}\n"))
        )
    }

    fn fisher_toml(&self) -> String {
        format!(
            "[fisher]\nestimator = \"exact\"\nsamples = {}\nbatch_size = 128\n",
            self.fisher_samples
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    #[test]
    fn experiment_names_absolute_task_files() {
        let q = Profile::named("quick", &root()).unwrap();
        let toml = q.studies[0].experiment_toml("small-cnn", Path::new("/repo"));
        assert!(
            toml.contains("\"/repo/configs/tasks/mnist.toml\""),
            "{toml}"
        );
        assert!(toml.contains("seeds = [0, 1, 2]"), "{toml}");
    }

    #[test]
    fn unknown_profile_is_an_error_listing_the_known_ones() {
        let e = Profile::named("fast", &root()).unwrap_err().to_string();
        assert!(
            e.contains("unknown profile `fast` (paper, quick, quickdraw, smoke in "),
            "{e}"
        );
        let paper = Profile::named("paper", &root()).unwrap();
        assert_eq!((paper.name.as_str(), paper.studies.len()), ("paper", 3));
    }

    #[test]
    fn study_names_are_plain_names_each_once() {
        let dir = tempfile::tempdir().unwrap();
        let quick = std::fs::read_to_string(root().join("configs/profiles/quick.toml")).unwrap();
        for (name, text, needle) in [
            (
                "escape.toml",
                quick.replace("name = \"mnist-fashion\"", "name = \"../../escaped\""),
                "\"../../escaped\"",
            ),
            (
                "twice.toml",
                format!("{quick}\n{}", &quick[quick.find("[[studies]]").unwrap()..]),
                "named twice",
            ),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            let e = format!(
                "{:#}",
                Profile::named(path.to_str().unwrap(), &root()).unwrap_err()
            );
            assert!(e.contains(name) && e.contains(needle), "{e}");
        }
    }

    /// Issue 28: every value of a profile is checked at load, with the stages' bounds,
    /// naming the profile file, the study and the field.
    #[test]
    fn profile_mistakes_are_named_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let quick = std::fs::read_to_string(root().join("configs/profiles/quick.toml")).unwrap();
        for (i, (from, to, needle)) in [
            ("cpus = 2", "cpus = 0", "resources: cpus (0)"),
            ("time_s = 600.0", "time_s = -1.0", "time_s (-1)"),
            ("matrix = 620.0", "matrix = nan", "estimate.matrix = NaN"),
            ("seeds = 3", "seeds = 0", "study `mnist-fashion`: seeds = 0"),
            (
                "seeds = 3",
                "seeds = 1000000000",
                "seeds = 1000000000: must be from 1",
            ),
            ("epochs = 15", "epochs = 1000000000", "epochs = 1000000000"),
            (
                "head = \"exclude\"",
                "head = \"exlude\"",
                "head = \"exlude\"",
            ),
            (
                "skeleton = [4, 3]",
                "skeleton = [0, 0]",
                "skeleton channels = 0",
            ),
            (
                "skeleton = [4, 3]",
                "skeleton = [4, 100000]",
                "skeleton layers = 100000",
            ),
            (
                "archs = [\"small-cnn\"]",
                "archs = [\"small-cnnn\"]",
                "archs: ",
            ),
            (
                "\"cellnet:conv_3x3\"",
                "\"cellnet:conv_33\"",
                "baselines: \"cellnet:conv_33\"",
            ),
            ("floor_seeds = 1", "floor_seeds = 9", "floor_seeds = 9"),
            ("targets = [", "targets = [] #", "targets is empty"),
        ]
        .into_iter()
        .enumerate()
        {
            assert!(quick.contains(from), "{from}");
            let path = dir.path().join(format!("bad-{i}.toml"));
            std::fs::write(&path, quick.replacen(from, to, 1)).unwrap();
            let e = format!(
                "{:#}",
                Profile::named(path.to_str().unwrap(), &root()).unwrap_err()
            );
            assert!(
                e.starts_with(&path.display().to_string()) && e.contains(needle),
                "{to}: {e}"
            );
        }
        for name in ["quick", "paper", "smoke"] {
            Profile::named(name, &root()).unwrap();
        }
    }

    #[test]
    fn the_dictionary_settings_carry_the_search_table() {
        let q = Profile::named("quick", &root()).unwrap();
        let toml = q.studies[0].dict_toml();
        assert!(
            toml.contains("[search]\ncandidates = 3\nstages = 2\n"),
            "{toml}"
        );
        assert!(toml.contains("final_val_limit = 240\n"), "{toml}");
        assert!(toml.contains("max_steps = 170\n"), "{toml}");
        assert!(
            toml.contains("skeleton = { channels = 4, layers = 3 }"),
            "{toml}"
        );
    }
}
