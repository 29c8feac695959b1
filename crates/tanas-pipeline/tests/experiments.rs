//! Experiment files: the committed ones parse, with the documented defaults.

use std::path::Path;

use tanas_distance::HeadRule;
use tanas_pipeline::{Experiment, TanasExperiment};

fn config(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../configs/experiments")
        .join(name)
}

/// The FTD leaves the classification head out unless a file says `head = "pad"`.
#[test]
fn the_head_rule_defaults_to_exclude() {
    let tanas = TanasExperiment::read(&config("tanas-mnist2.toml")).unwrap();
    assert_eq!(tanas.head, HeadRule::Exclude);
    let matrix = Experiment::read(&config("mnist-small.toml")).unwrap();
    assert_eq!(matrix.head, HeadRule::Exclude);
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(config("tanas-mnist2.toml"))
        .unwrap()
        .replace("../tasks/", &format!("{}/", config("../tasks").display()))
        .replace("metric = \"ftd\"", "metric = \"ftd\"\nhead = \"pad\"");
    let padded = dir.path().join("padded.toml");
    std::fs::write(&padded, text).unwrap();
    assert_eq!(TanasExperiment::read(&padded).unwrap().head, HeadRule::Pad);
}

/// The Fisher is taken on the dataset's probe split unless a file says otherwise (`test`:
/// the papers').
#[test]
fn the_fisher_probe_defaults_to_the_probe_split() {
    use tanas_data::Split;
    use tanas_pipeline::experiment::FisherSettings;
    assert_eq!(FisherSettings::default().split, Split::Probe);
    let matrix = Experiment::read(&config("mnist-small.toml")).unwrap();
    assert_eq!(matrix.fisher.split, Split::Probe);
    let literal: FisherSettings = toml::from_str("split = \"test\"\nsamples = 10").unwrap();
    assert_eq!((literal.split, literal.samples), (Split::Test, 10));
}

/// A dictionary task named twice is an error naming both entries, before anything runs.
#[test]
fn a_dictionary_task_named_twice_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(config("tanas-mnist2.toml"))
        .unwrap()
        .replace("../tasks/", &format!("{}/", config("../tasks").display()))
        .replace(
            "dictionary_tasks = [\"mnist-0\", ",
            "dictionary_tasks = [\"mnist-0\", \"mnist-0\", ",
        );
    let twice = dir.path().join("twice.toml");
    std::fs::write(&twice, text).unwrap();
    let e = TanasExperiment::read(&twice).unwrap_err().to_string();
    assert!(
        e.contains("twice.toml") && e.contains("`mnist-0` twice") && e.contains("1 and 2"),
        "{e}"
    );
}
