//! End-to-end tests: drive the `tanas` binary on the embedded data in `data/`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `tanas` with the given arguments, from the repository root, with no extra data dirs.
fn tanas(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tanas"))
        .args(args)
        .current_dir(repo())
        .env_remove("TANAS_DATA_DIR")
        .env_remove("RUST_LOG")
        .output()
        .expect("run tanas")
}

fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "tanas failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("valid JSON on stdout")
}

/// The single `error: ...` line of a failed run.
fn error_line(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "expected failure, got {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn data_info_finds_the_embedded_datasets() {
    let v = json(&tanas(&["data", "info", "--json"]));
    let ds = |name: &str| {
        v["datasets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == name)
            .unwrap()
            .clone()
    };
    let mnist = ds("mnist");
    assert_eq!(mnist["found"], true);
    let total =
        mnist["train"]["images"].as_u64().unwrap() + mnist["test"]["images"].as_u64().unwrap();
    assert_eq!(total, 10_000);
    let fashion = ds("fashion-mnist");
    assert_eq!(
        fashion["train"]["per_class"],
        serde_json::json!(vec![600; 10])
    );
    assert_eq!(
        fashion["test"]["per_class"],
        serde_json::json!(vec![100; 10])
    );
    let text = tanas(&["data", "info"]);
    assert!(text.status.success());
    assert!(String::from_utf8_lossy(&text.stdout).contains("fashion-mnist"));
}

#[test]
fn data_info_reports_a_corrupt_dataset_without_failing() {
    let dir = tempfile::tempdir().unwrap();
    let mnist = dir.path().join("mnist");
    std::fs::create_dir(&mnist).unwrap();
    std::fs::write(
        mnist.join("train-images-idx3-ubyte"),
        b"\x00\x00\x08\x03\x00\x00",
    )
    .unwrap();
    let v = json(&tanas(&[
        "--data-dir",
        dir.path().to_str().unwrap(),
        "data",
        "info",
        "--json",
    ]));
    let m = &v["datasets"][0];
    assert_eq!(m["found"], true);
    assert!(m["error"].as_str().unwrap().contains("mnist/train-"), "{m}");
}

#[test]
fn task_show_counts_balanced_splits() {
    let v = json(&tanas(&[
        "task",
        "show",
        "--tasks",
        "configs/tasks/mnist.toml",
        "--json",
    ]));
    let tasks = v.as_array().unwrap();
    assert_eq!(tasks.len(), 4);
    let labels: Vec<_> = tasks
        .iter()
        .map(|t| t["num_labels"].as_u64().unwrap())
        .collect();
    assert_eq!(labels, vec![2, 2, 5, 10]);
    for t in &tasks[..3] {
        let train: Vec<u64> = serde_json::from_value(t["train"].clone()).unwrap();
        assert!(train.windows(2).all(|w| w[0] == w[1]), "balanced: {t}");
    }
    // The test split is the dataset's, relabelled, never subsampled.
    let info = json(&tanas(&["data", "info", "--json"]));
    let mnist_test = info["datasets"][0]["test"]["images"].as_u64().unwrap();
    for t in tasks {
        let test: Vec<u64> = serde_json::from_value(t["test"].clone()).unwrap();
        assert_eq!(test.iter().sum::<u64>(), mnist_test);
    }
    let one = json(&tanas(&[
        "task",
        "show",
        "--tasks",
        "configs/tasks/fashion.toml",
        "--task",
        "fashion-2",
        "--json",
    ]));
    assert_eq!(one[0]["num_labels"], 4);
}

#[test]
fn bad_input_gives_one_error_line() {
    let e = error_line(&tanas(&["task", "show", "--tasks", "nope.toml"]));
    assert!(e.contains("nope.toml"), "{e}");
    let e = error_line(&tanas(&[
        "task",
        "show",
        "--tasks",
        "configs/tasks/mnist.toml",
        "--task",
        "mnist-9",
    ]));
    assert!(e.contains("mnist-9") && e.contains("mnist.toml"), "{e}");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[task]]\nid = \"x\"\ndataset = \"mnist\"\nkind = \"indicator\"\nclasses = [12]\n",
    )
    .unwrap();
    let e = error_line(&tanas(&["task", "show", "--tasks", bad.to_str().unwrap()]));
    assert!(e.contains("bad.toml") && e.contains("out of range"), "{e}");

    // A truncated dataset file in the first data dir: the error names it.
    let mnist = dir.path().join("mnist");
    std::fs::create_dir(&mnist).unwrap();
    for f in [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ] {
        let src = repo().join("data/mnist").join(format!("{f}.gz"));
        std::fs::copy(src, mnist.join(format!("{f}.gz"))).unwrap();
    }
    let labels = mnist.join("t10k-labels-idx1-ubyte.gz");
    let bytes = std::fs::read(&labels).unwrap();
    std::fs::write(&labels, &bytes[..bytes.len() / 2]).unwrap();
    let e = error_line(&tanas(&[
        "--data-dir",
        dir.path().to_str().unwrap(),
        "task",
        "show",
        "--tasks",
        "configs/tasks/mnist.toml",
    ]));
    assert!(e.contains("t10k-labels-idx1-ubyte.gz"), "{e}");

    let e = error_line(&tanas(&["--device", "tpu", "data", "info"]));
    assert!(e.contains("tpu"), "{e}");
}
