//! When the pipeline reuses a stored artifact and when it must not, on a tiny distance-matrix
//! experiment (mnist-0 and mnist-1, one seed, one epoch, Fishers of 32 val samples): a rerun
//! touches no network and no Fisher; a changed training setting is refused with the field
//! named; a changed Fisher setting recomputes the Fishers and leaves the networks alone.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] functions

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use burn::backend::Autodiff;
use tanas_cpu::Cpu;
use tanas_data::DataDirs;
use tanas_pipeline::{Experiment, run_matrix};

type B = Autodiff<Cpu>;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The experiment with `train` lines added to its `[train]` table and `fisher` as the rest of
/// its `[fisher]` table.
fn experiment(dir: &Path, train: &str, fisher: &str) -> Experiment {
    let tasks = repo().join("configs/tasks/mnist.toml");
    let text = format!(
        "task_files = [{tasks:?}]\ntasks = [\"mnist-0\", \"mnist-1\"]\nseeds = [0]\nmetrics = [\"ftd\"]\n\
         [train]\nepochs = 1\nbatch_size = 64\n{train}\n[fisher]\n{fisher}\n"
    );
    Experiment::parse(&text, &dir.join("exp.toml")).unwrap()
}

fn run(exp: &Experiment, out: &Path) -> Result<(), tanas_pipeline::PipelineError> {
    let dirs = DataDirs::only([repo().join("data")]);
    run_matrix::<B>(exp, &dirs, out, &Default::default()).map(|_| ())
}

/// Every file under `dir`: its bytes and modification time.
fn files(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, SystemTime)> {
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

/// The files of one stage: the networks (`nets/`) or the Fishers (`fisher/`).
fn stage(
    all: &BTreeMap<PathBuf, (Vec<u8>, SystemTime)>,
    prefix: &str,
) -> BTreeMap<PathBuf, (Vec<u8>, SystemTime)> {
    let kept: BTreeMap<_, _> = all
        .iter()
        .filter(|(p, _)| p.starts_with(prefix))
        .map(|(p, v)| (p.clone(), v.clone()))
        .collect();
    assert!(!kept.is_empty(), "no files under {prefix}/");
    kept
}

fn bytes(files: &BTreeMap<PathBuf, (Vec<u8>, SystemTime)>) -> BTreeMap<PathBuf, Vec<u8>> {
    files
        .iter()
        .map(|(p, (b, _))| (p.clone(), b.clone()))
        .collect()
}

#[test]
fn a_rerun_reuses_every_artifact_and_a_changed_setting_is_not_reused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    const FISHER: &str = "samples = 32\nbatch_size = 16";
    let exp = experiment(dir.path(), "", FISHER);
    run(&exp, &out).unwrap();
    let first = files(&out);

    // A rerun rebuilds nothing: networks and Fishers untouched, every other file the same.
    run(&exp, &out).unwrap();
    let second = files(&out);
    assert_eq!(stage(&second, "nets"), stage(&first, "nets"));
    assert_eq!(stage(&second, "fisher"), stage(&first, "fisher"));
    assert_eq!(bytes(&second), bytes(&first));

    // Another training setting: refused, naming the field, nothing rebuilt.
    let err = run(&experiment(dir.path(), "lr = 0.002", FISHER), &out)
        .unwrap_err()
        .to_string();
    assert!(err.contains("lr") && err.contains("0.002"), "{err}");
    assert_eq!(files(&out), second);

    // Another Fisher setting: the Fishers are recomputed, the networks reused.
    for fisher in [
        "samples = 24",
        "estimator = \"mc\"\nmc_samples = 1",
        "estimator = \"mc\"\nmc_samples = 2",
        "estimator = \"batch\"\nbatch_size = 16",
        "estimator = \"batch\"\nbatch_size = 8",
    ] {
        let before = files(&out);
        run(&experiment(dir.path(), "", fisher), &out).unwrap();
        let after = files(&out);
        assert_eq!(stage(&after, "nets"), stage(&before, "nets"), "{fisher}");
        let (f0, f1) = (stage(&before, "fisher"), stage(&after, "fisher"));
        for (path, (b1, _)) in &f1 {
            let reused = f0[path].0 == *b1;
            assert!(!reused, "{fisher}: {} was reused", path.display());
        }
    }
}
