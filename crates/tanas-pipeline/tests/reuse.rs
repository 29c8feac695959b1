//! When the pipeline finds an artifact in the store and when it must make a new one, on a
//! tiny distance-matrix experiment (mnist-0 and mnist-1, one seed, one epoch, Fishers of 32
//! val samples): a rerun touches no network and no Fisher; a changed training setting makes
//! new networks (and so new Fishers) beside the old ones; a changed Fisher setting makes new
//! Fishers of the same networks; a second experiment sharing a task finds its network and
//! Fisher; the matrix finds what its network parts (the cluster executors' jobs) made; a
//! dictionary reopened with other settings is refused with the fields named.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] functions

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use burn::backend::Autodiff;
use tanas_core::Store;
use tanas_cpu::Cpu;
use tanas_data::DataDirs;
use tanas_pipeline::dictionary::{DictSettings, TaskDictionary};
use tanas_pipeline::{Experiment, run_matrix, run_matrix_part};

type B = Autodiff<Cpu>;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The experiment with `train` lines added to its `[train]` table and `fisher` as the rest of
/// its `[fisher]` table.
fn experiment(dir: &Path, train: &str, fisher: &str) -> Experiment {
    experiment_of(dir, "\"mnist-0\", \"mnist-1\"", train, fisher)
}

/// The experiment of the tasks `ids` (a TOML list's inside).
fn experiment_of(dir: &Path, ids: &str, train: &str, fisher: &str) -> Experiment {
    let tasks = repo().join("configs/tasks/mnist.toml");
    let text = format!(
        "task_files = [{tasks:?}]\ntasks = [{ids}]\nseeds = [0]\nmetrics = [\"ftd\"]\nfloor_seeds = 0\n\
         [train]\nepochs = 1\nbatch_size = 64\n{train}\n[fisher]\n{fisher}\n"
    );
    Experiment::parse(&text, &dir.join("exp.toml")).unwrap()
}

fn run(exp: &Experiment, out: &Path, store: &Path) -> Result<(), tanas_pipeline::PipelineError> {
    let dirs = DataDirs::only([repo().join("data")]);
    run_matrix::<B>(exp, &dirs, out, &Store::new(store), &Default::default()).map(|_| ())
}

type Files = BTreeMap<PathBuf, (Vec<u8>, SystemTime)>;

/// Every file under `dir`: its bytes and modification time.
fn files(dir: &Path) -> Files {
    let mut all = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
                let rel = path.strip_prefix(dir).unwrap().to_path_buf();
                all.insert(rel, (std::fs::read(&path).unwrap(), modified));
            }
        }
    }
    all
}

/// The finished artifacts of `kind` in the store: their keys.
fn keys(store: &Path, kind: &str) -> BTreeSet<String> {
    std::fs::read_dir(store.join(kind))
        .map(|it| {
            it.map(|e| e.unwrap().path())
                .filter(|p| p.join("stamp.json").is_file())
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The files of `before` still there with the same bytes and time in `after`.
fn untouched(before: &Files, after: &Files) -> bool {
    before.iter().all(|(p, v)| after.get(p) == Some(v))
}

/// The store paths `nets.json` of the run in `out` names.
fn nets_of(out: &Path) -> Vec<String> {
    let nets: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("nets.json")).unwrap()).unwrap();
    nets.as_array()
        .unwrap()
        .iter()
        .map(|n| n["network"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_rerun_finds_every_artifact_and_a_changed_setting_makes_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (out, store) = (dir.path().join("run"), dir.path().join("store"));
    const FISHER: &str = "samples = 32\nbatch_size = 16";
    let exp = experiment(dir.path(), "", FISHER);
    run(&exp, &out, &store).unwrap();
    let (first_out, first_store) = (files(&out), files(&store));
    let nets = keys(&store, "network");
    assert_eq!((nets.len(), keys(&store, "fisher").len()), (2, 4));

    // A rerun makes nothing: the store untouched, every output file the same.
    run(&exp, &out, &store).unwrap();
    assert_eq!(files(&store), first_store);
    let second_out = files(&out);
    let bytes = |f: &Files| {
        f.iter()
            .map(|(p, v)| (p.clone(), v.0.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(bytes(&second_out), bytes(&first_out));

    // Another training setting: two new networks and four new Fishers beside the old ones,
    // which stay as they were; the run's nets.json names the new networks.
    run(&experiment(dir.path(), "lr = 0.002", FISHER), &out, &store).unwrap();
    let after = files(&store);
    assert!(untouched(&first_store, &after));
    let all_nets = keys(&store, "network");
    assert_eq!((all_nets.len(), keys(&store, "fisher").len()), (4, 8));
    let new: Vec<String> = nets_of(&out);
    assert!(
        new.iter()
            .all(|id| !nets.contains(id.trim_start_matches("network/"))),
        "{new:?}"
    );

    // Another Fisher setting: four new Fishers of the same networks, nothing else.
    let mut fishers = keys(&store, "fisher").len();
    for fisher in [
        "samples = 24",
        "estimator = \"mc\"\nmc_samples = 1",
        "estimator = \"mc\"\nmc_samples = 2",
        "estimator = \"batch\"\nbatch_size = 16",
        "estimator = \"batch\"\nbatch_size = 8",
    ] {
        let before = files(&store);
        run(&experiment(dir.path(), "", fisher), &out, &store).unwrap();
        assert!(untouched(&before, &files(&store)), "{fisher}");
        assert_eq!(keys(&store, "network"), all_nets, "{fisher}");
        fishers += 4;
        assert_eq!(
            keys(&store, "fisher").len(),
            fishers,
            "{fisher}: a Fisher was reused"
        );
    }

    // Another experiment sharing mnist-0 with the first: its network and own Fisher are
    // found; only mnist-2's network and the three Fishers that involve it are made.
    let before = files(&store);
    let shared = experiment_of(dir.path(), "\"mnist-0\", \"mnist-2\"", "", FISHER);
    run(&shared, &dir.path().join("other"), &store).unwrap();
    assert!(untouched(&before, &files(&store)));
    assert_eq!(keys(&store, "network").len(), all_nets.len() + 1);
    assert_eq!(keys(&store, "fisher").len(), fishers + 3);
    assert_eq!(nets_of(&dir.path().join("other"))[0], nets_of(&out)[0]);
}

#[test]
fn network_parts_build_what_the_matrix_then_finds() {
    let dir = tempfile::tempdir().unwrap();
    let (store, dirs) = (
        dir.path().join("store"),
        DataDirs::only([repo().join("data")]),
    );
    let exp = experiment(dir.path(), "", "samples = 32\nbatch_size = 16");
    let part = |task: &str, seed: u64| {
        let out = dir.path().join(format!("part-{task}-{seed}"));
        run_matrix_part::<B>(
            &exp,
            &dirs,
            &out,
            &Store::new(&store),
            &Default::default(),
            task,
            seed,
        )
    };
    // Each part: its network and its Fishers on both tasks.
    let net = part("mnist-1", 0).unwrap();
    assert_eq!((net.task.as_str(), net.seed), ("mnist-1", 0));
    assert_eq!(
        (keys(&store, "network").len(), keys(&store, "fisher").len()),
        (1, 2)
    );
    part("mnist-0", 0).unwrap();
    assert_eq!(
        (keys(&store, "network").len(), keys(&store, "fisher").len()),
        (2, 4)
    );
    // The matrix afterwards makes nothing and names the parts' networks.
    let before = files(&store);
    let out = dir.path().join("run");
    run(&exp, &out, &store).unwrap();
    assert_eq!(files(&store), before);
    assert!(nets_of(&out).contains(&net.network));
    // A task or seed the experiment does not have is a config error naming the file.
    for (task, seed) in [("mnist-9", 0), ("mnist-0", 1)] {
        let e = part(task, seed).unwrap_err().to_string();
        assert!(
            e.starts_with(&dir.path().join("exp.toml").display().to_string()),
            "{e}"
        );
    }
}

#[test]
fn a_dictionary_reopened_with_other_settings_names_the_fields() {
    let dir = tempfile::tempdir().unwrap();
    let settings: DictSettings = toml::from_str("arch = \"small-cnn\"\nseeds = [0]\n").unwrap();
    TaskDictionary::open_or_create(dir.path(), settings.clone()).unwrap();
    TaskDictionary::open_or_create(dir.path(), settings.clone()).unwrap();
    let mut other = settings;
    other.train.lr = 0.002;
    other.seeds = vec![0, 1];
    let err = TaskDictionary::open_or_create(dir.path(), other)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("other settings (seeds: [0] -> [0,1]; train.lr: 0.001 -> 0.002;"),
        "{err}"
    );
}

#[test]
fn a_prepared_task_is_added_without_building_anything() {
    let dir = tempfile::tempdir().unwrap();
    let (store_dir, dict_dir) = (dir.path().join("store"), dir.path().join("dict"));
    let store = Store::new(&store_dir);
    let settings: DictSettings = toml::from_str(
        "arch = \"small-cnn\"\nseeds = [0]\nskeleton = { channels = 4, layers = 2 }\n\
         [train]\nepochs = 1\n[fisher]\nsamples = 32\nbatch_size = 32\n\
         [search]\ncandidates = 2\nstages = 1\nmax_rounds = 1\nbatch_size = 32\n\
         train_limit = 96\nval_limit = 32\ntest_limit = 200\nfinal_epochs = 1\n\
         final_train_limit = 96\nfinal_val_limit = 32\n",
    )
    .unwrap();
    let task = tanas_data::TaskData::embedded_mnist("mnist-0").unwrap();
    let device = Default::default();
    // The preparation builds the network, its Fisher and the search, and no dictionary file.
    TaskDictionary::prepare::<B>(&dict_dir, &settings, &store, &task, &device).unwrap();
    assert!(!dict_dir.exists());
    let counts = |kind| keys(&store_dir, kind).len();
    assert_eq!(
        (counts("network"), counts("fisher"), counts("search")),
        (1, 1, 1)
    );
    // The addition finds it all: the store is untouched.
    let before = files(&store_dir);
    let mut dict = TaskDictionary::open_or_create(&dict_dir, settings.clone())
        .unwrap()
        .with_store(store.clone());
    let entry = dict.add::<B>(&task, &device).unwrap();
    let after = files(&store_dir);
    let changed: Vec<&PathBuf> = after
        .keys()
        .filter(|p| before.get(*p) != after.get(*p))
        .collect();
    assert!(
        changed.is_empty() && untouched(&before, &after),
        "{changed:?}"
    );
    assert_eq!(dict.manifest().tasks, [entry]);
    // Preparing for a dictionary made with other settings is an error naming the field.
    let mut other = settings;
    other.train.lr = 0.002;
    let err = TaskDictionary::prepare::<B>(&dict_dir, &other, &store, &task, &device)
        .unwrap_err()
        .to_string();
    assert!(err.contains("train.lr: 0.001 -> 0.002"), "{err}");
}
