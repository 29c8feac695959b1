//! The experiment profiles of `cargo xtask reproduce`: which tasks, networks, seeds and
//! budgets each study uses, and the config files the `tanas` stages read.

use std::path::Path;

use anyhow::{Result, bail};

/// One study: a set of tasks with its distance matrices, its task dictionary and its
/// TA-NAS searches.
#[derive(Debug, Clone)]
pub struct Study {
    /// Directory name and report heading.
    pub name: &'static str,
    /// Task files (repository-relative).
    pub task_files: Vec<&'static str>,
    /// Datasets the tasks need (`tanas data info` names).
    pub datasets: Vec<&'static str>,
    /// Epsilon-network architectures: one distance matrix each; the first also builds the
    /// task dictionary.
    pub archs: Vec<&'static str>,
    /// Seeds 0..seeds.
    pub seeds: u64,
    /// Largest number of training epochs of the epsilon-networks.
    pub epochs: usize,
    /// Early stopping of the epsilon-networks: epochs without a new best val accuracy.
    pub patience: usize,
    /// Fisher samples (the first N val samples of the data task).
    pub fisher_samples: usize,
    /// The `[search]` table of the dictionary (FUSE settings, TOML).
    pub search: &'static str,
    /// Cell skeleton (C, L) of searched networks.
    pub skeleton: (usize, usize),
    /// Target tasks of the TA-NAS searches.
    pub targets: Vec<&'static str>,
    /// Search seeds `0..N` of every method on every target (the spread the claims use).
    pub search_seeds: u64,
    /// Hand-designed networks trained like the found ones.
    pub baselines: Vec<&'static str>,
    /// Why hand-designed networks the papers compare with are left out, if some are.
    pub baselines_note: Option<&'static str>,
    /// How the FTD matches heads of different sizes (`exclude` or `pad`).
    pub head: &'static str,
}

/// A profile: its studies and the estimated seconds of each kind of stage on the reference
/// machine (for the ETA only).
#[derive(Debug, Clone)]
pub struct Profile {
    /// `quick` or `paper`.
    pub name: &'static str,
    /// What it is, one line.
    pub summary: &'static str,
    /// The studies, in order.
    pub studies: Vec<Study>,
    /// Estimated seconds per stage kind.
    pub estimate: Estimate,
}

/// Estimated seconds of one stage of each kind (ETA only; measured on the 2-core CPU
/// machine for `quick`).
#[derive(Debug, Clone, Copy)]
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

/// The FUSE settings of the quick profile, for a 2-core CPU: the search on small subsets
/// (FUSE compares candidates with each other), the time spent where it decides the result:
/// the final retraining on the train + val split (measured on mnist-2: dense C=4, L=3 cells
/// of full convolutions reach 0.96-0.98 test accuracy in 3-8 epochs on a cosine schedule,
/// 10-20 s per epoch; 3 rather than 4 epochs keep the profile within 30 minutes on 2 cores),
/// capped at 3600 + 400 samples so that the 10-label dictionary tasks cost no more than the
/// targets (mnist-2 and fashion-2 use their whole splits).
const QUICK_SEARCH: &str = "candidates = 3
stages = 2
epochs_w = 1
epochs_alpha = 1
max_rounds = 2
batch_size = 32
train_limit = 256
val_limit = 96
final_epochs = 3
final_batch_size = 64
final_train_limit = 3600
final_val_limit = 400
";

/// The FUSE settings of the paper profile: five candidates (paper 002), 10 stages, the
/// papers' 100-epoch training for the final network.
const PAPER_SEARCH: &str = "candidates = 5
stages = 10
epochs_w = 1
epochs_alpha = 1
max_rounds = 5
batch_size = 64
final_epochs = 100
";

impl Profile {
    /// The profile called `name`.
    pub fn named(name: &str) -> Result<Self> {
        match name {
            "quick" => Ok(Self::quick()),
            "paper" => Ok(Self::paper()),
            _ => bail!("unknown profile `{name}` (quick, paper)"),
        }
    }

    /// `quick`: the 8 MNIST and Fashion-MNIST tasks on the embedded data, small-cnn
    /// epsilon-networks, 3 seeds, tiny search budgets; about 30 minutes on a 2-core CPU.
    pub fn quick() -> Self {
        Profile {
            name: "quick",
            summary: "CPU, embedded data/: 8 MNIST + Fashion-MNIST tasks, small-cnn, 3 seeds, small search budgets, 3 search seeds per method",
            studies: vec![Study {
                name: "mnist-fashion",
                task_files: vec!["configs/tasks/mnist.toml", "configs/tasks/fashion.toml"],
                datasets: vec!["mnist", "fashion-mnist"],
                archs: vec!["small-cnn"],
                seeds: 3,
                epochs: 4,
                patience: 2,
                fisher_samples: 500,
                search: QUICK_SEARCH,
                skeleton: (4, 3),
                targets: vec!["mnist-2", "fashion-2"],
                search_seeds: 3,
                baselines: vec!["small-cnn"],
                baselines_note: Some(
                    "Hand-designed baselines: small-cnn only. ResNet-18 and VGG-16 (11-15 M parameters) train at about 60 images/s on this CPU: the final-training budget of the searched networks (3 epochs of the whole split) would take them 4-6 minutes per target, more than the whole search part of the profile; the paper profile trains them.",
                ),
                head: "exclude",
            }],
            estimate: Estimate {
                matrix: 420.0,
                dict_task: 52.0,
                search: 42.0,
                baseline_per_mparam: 12.0,
            },
        }
    }

    /// `paper`: the papers' settings (paper 003 section V) for MNIST, CIFAR-10 and
    /// CIFAR-100 where the data is present: VGG-16, ResNet-18 and DenseNet-121
    /// epsilon-networks, 10 seeds, 100 epochs, the Fisher on the whole val split; meant
    /// for `--device cuda`.
    pub fn paper() -> Self {
        let study = |name, file, dataset, target| Study {
            name,
            task_files: vec![file],
            datasets: vec![dataset],
            archs: vec!["vgg16", "resnet18", "densenet121"],
            seeds: 10,
            epochs: 100,
            patience: 10,
            fisher_samples: 10_000,
            search: PAPER_SEARCH,
            skeleton: (16, 8),
            targets: vec![target],
            search_seeds: 3,
            baselines: vec!["vgg16", "resnet18", "densenet121"],
            baselines_note: None,
            head: "exclude",
        };
        Profile {
            name: "paper",
            summary: "the papers' settings on MNIST, CIFAR-10, CIFAR-100 (VGG-16/ResNet-18/DenseNet-121, 10 seeds, 100 epochs); for a GPU",
            studies: vec![
                study("mnist", "configs/tasks/mnist.toml", "mnist", "mnist-2"),
                study(
                    "cifar10",
                    "configs/tasks/cifar10.toml",
                    "cifar10",
                    "cifar10-2",
                ),
                study(
                    "cifar100",
                    "configs/tasks/cifar100.toml",
                    "cifar100",
                    "cifar100-2",
                ),
            ],
            estimate: Estimate {
                matrix: 4.0 * 3600.0,
                dict_task: 3600.0,
                search: 3600.0,
                baseline_per_mparam: 60.0,
            },
        }
    }
}

impl Study {
    /// The distance-matrix experiment of `arch` (`tanas distance matrix`), with the task
    /// files as absolute paths under `root`.
    pub fn experiment_toml(&self, arch: &str, root: &Path) -> String {
        let files: Vec<String> = self
            .task_files
            .iter()
            .map(|f| format!("{:?}", root.join(f).display().to_string()))
            .collect();
        format!(
            "# Written by `cargo xtask reproduce`.\ntask_files = [{}]\narch = \"{arch}\"\nseeds = {}\nmetrics = [\"ftd\", \"logdet\"]\nhead = \"{}\"\n\n{}\n{}",
            files.join(", "),
            self.seeds_toml(),
            self.head,
            self.train_toml(),
            self.fisher_toml(),
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
            self.search
        )
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
            "[train]\nepochs = {}\npatience = {}\nbatch_size = 128\nlr = 1e-3\n",
            self.epochs, self.patience
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

    #[test]
    fn experiment_names_absolute_task_files() {
        let q = Profile::quick();
        let toml = q.studies[0].experiment_toml("small-cnn", Path::new("/repo"));
        assert!(
            toml.contains("\"/repo/configs/tasks/mnist.toml\""),
            "{toml}"
        );
        assert!(toml.contains("seeds = [0, 1, 2]"), "{toml}");
    }

    #[test]
    fn unknown_profile_is_an_error() {
        assert!(Profile::named("fast").is_err());
        assert_eq!(
            Profile::named("paper").map(|p| p.studies.len()).ok(),
            Some(3)
        );
    }
}
