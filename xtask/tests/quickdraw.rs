//! `cargo xtask reproduce --profile quickdraw` end to end on generated files in Quick, Draw!'s
//! numpy_bitmap format (one `<class>.npy` of N x 784 uint8 per class), at a tiny budget: the
//! profile's own task file and study, smaller numbers. Without the files the study is
//! skipped with a line that says so.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Drawings of class `c`: a stroke along row `2c + 4` and column `27 - 2c`, shifted a little
/// from drawing to drawing.
fn drawings(c: usize, n: usize) -> Vec<u8> {
    let mut px = vec![0u8; n * 784];
    for i in 0..n {
        let shift = i % 3;
        for k in 2..26 {
            px[i * 784 + (2 * c + 3 + shift) * 28 + k] = 255;
            px[i * 784 + k * 28 + (26 - 2 * c - shift)] = 200;
        }
    }
    px
}

/// The quickdraw profile with the smoke profile's budgets.
fn tiny_profile(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(root().join("configs/profiles/quickdraw.toml")).unwrap();
    let mut profile: toml::Table = toml::from_str(&text).unwrap();
    let study = profile["studies"].as_array_mut().unwrap()[0]
        .as_table_mut()
        .unwrap();
    for (key, value) in [
        ("seeds", 1),
        ("epochs", 1),
        ("max_steps", 4),
        ("patience", 1),
        ("fisher_samples", 32),
        ("search_seeds", 1),
    ] {
        study.insert(key.into(), toml::Value::Integer(value));
    }
    study.insert(
        "baselines".into(),
        toml::Value::Array(vec!["small-cnn".into()]),
    );
    let search: toml::Table = toml::from_str(
        "candidates = 2\nstages = 1\nepochs_w = 1\nepochs_alpha = 1\nmax_rounds = 1\nbatch_size = 32\ntrain_limit = 64\nval_limit = 32\nfinal_epochs = 1\nfinal_batch_size = 64\nfinal_train_limit = 128\nfinal_val_limit = 32",
    )
    .unwrap();
    study.insert("search".into(), toml::Value::Table(search));
    let path = dir.join("quickdraw-tiny.toml");
    std::fs::write(&path, toml::to_string(&profile).unwrap()).unwrap();
    path
}

fn reproduce(profile: &Path, out: &Path, data: &Path, cache: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args([
            "reproduce",
            "--executor",
            "local",
            "--jobs",
            "2",
            "--profile",
        ])
        .arg(profile)
        .arg("--out")
        .arg(out)
        .current_dir(root())
        .env("TANAS_DATA_DIR", data)
        .env("TANAS_CACHE_DIR", cache)
        .env_remove("TANAS_STORE")
        .output()
        .unwrap()
}

#[test]
fn quickdraw_profile_runs_end_to_end_on_generated_files() {
    let dir = tempfile::tempdir().unwrap();
    let profile = tiny_profile(dir.path());
    let classes = [
        "airplane", "apple", "bicycle", "cat", "clock", "fish", "house", "star", "tree", "umbrella",
    ];
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("quickdraw")).unwrap();
    for (c, class) in classes.iter().enumerate() {
        std::fs::write(
            data.join("quickdraw").join(format!("{class}.npy")),
            tanas_data::npy::encode("|u1", &[40, 784], &drawings(c, 40)),
        )
        .unwrap();
    }

    // Without the files: skipped, saying so.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = reproduce(
        &profile,
        &dir.path().join("none"),
        &empty,
        &dir.path().join("cache"),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("study `quickdraw` skipped: dataset quickdraw not found"),
        "{stderr}"
    );

    let report_dir = dir.path().join("out");
    let out = reproduce(&profile, &report_dir, &data, &dir.path().join("cache"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = std::fs::read_to_string(report_dir.join("REPORT.md")).unwrap();
    assert!(report.contains("quickdraw-cat"), "{report}");
    assert!(
        report.contains("digit-0") && report.contains("fashion-coat"),
        "{report}"
    );
    let tasks = std::fs::read_to_string(report_dir.join("tasks.json")).unwrap();
    assert!(tasks.contains("\"dataset\": \"quickdraw\""), "{tasks}");
}
