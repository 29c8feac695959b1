//! The report files of the committed quick reproduction (docs/results/quick) read back
//! through the types that wrote them and write out byte for byte, and read through
//! tanas-core's readers' views (what `cargo xtask reproduce` reads) with the same values.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tanas_core::report::{
    BaselineSummary, DictionarySummary, GainMatrix, NetSummary, NoiseFloor, SearchSummary,
};
use tanas_pipeline::dictionary::Manifest;
use tanas_pipeline::{BaselineReport, FinalReport};

fn study() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/results/quick/mnist-fashion")
}

/// `path` parsed as a `T`, after checking that `T` writes it out unchanged.
fn same_bytes<T: Serialize + DeserializeOwned>(path: &Path) -> T {
    let text = std::fs::read_to_string(path).expect("a committed report file");
    let value: T = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let again = serde_json::to_string_pretty(&value).expect("JSON");
    assert!(again == text, "{path:?} is written differently");
    value
}

fn view<T: DeserializeOwned>(path: &Path) -> T {
    let bytes = std::fs::read(path).expect("a committed report file");
    serde_json::from_slice(&bytes).expect("its view")
}

#[test]
fn search_reports_round_trip_and_read_through_their_views() {
    let mut searches = 0;
    for target in ["mnist-2", "fashion-2"] {
        let dir = study().join("search").join(target);
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with("baseline-") {
                let full: BaselineReport = same_bytes(&path);
                let seen: BaselineSummary = view(&path);
                assert_eq!(
                    (seen.params, seen.score, seen.seconds),
                    (full.params, full.score, full.seconds)
                );
            } else {
                let full: FinalReport = same_bytes(&path);
                let seen: SearchSummary = view(&path);
                assert_eq!(seen.outcome, full.outcome, "{name}");
                assert_eq!(seen.closest_task, full.closest_task);
                assert_eq!(seen.space_task, full.space_task);
                assert_eq!(
                    (seen.space_size, seen.warm_start),
                    (full.space_size, full.warm_start)
                );
                searches += 1;
            }
        }
    }
    assert_eq!(searches, 36, "6 methods x 3 seeds x 2 targets");
}

#[test]
fn matrix_records_and_the_dictionary_round_trip() {
    let nets: Vec<NetSummary> = same_bytes(&study().join("small-cnn/nets.json"));
    assert_eq!(nets.len(), 24, "8 tasks x 3 seeds");
    let noise: Vec<NoiseFloor> = same_bytes(&study().join("small-cnn/ftd-noise.json"));
    assert!(
        noise
            .iter()
            .all(|n| (n.pairs, n.across_init_pairs) == (1, 3)),
        "one floor seed; 3 seeds: 3 pairs of different seeds, each once"
    );
    for n in [100, 500] {
        let gain: GainMatrix =
            same_bytes(&study().join(format!("small-cnn/transfer-gain-n{n}.json")));
        assert_eq!(
            (gain.samples, gain.tasks.len(), gain.seeds.len()),
            (n, 8, 3)
        );
    }
    let path = study().join("dictionary.json");
    let manifest: Manifest = same_bytes(&path);
    let seen: DictionarySummary = view(&path);
    assert_eq!(seen.tasks.len(), manifest.tasks.len());
    for (s, m) in seen.tasks.iter().zip(&manifest.tasks) {
        assert_eq!(s.spec.id, m.spec.id);
        assert_eq!(s.genotype, m.genotype);
        assert_eq!(
            (s.test_accuracy, s.net_test_accuracy),
            (m.test_accuracy, m.net_test_accuracy)
        );
        assert_eq!((&s.space_ops, s.space_size), (&m.space_ops, m.space_size));
    }
}
