//! Mutation tests of the readers above the data layer: Fisher diagonals (safetensors), search
//! spaces (JSON), experiments, TA-NAS experiments and dictionary settings (TOML). Thousands of
//! mutated copies of a valid file each end in `Ok` or an error naming the file, never a panic,
//! and never allocate past a bound far below what a huge length field asks for.

use std::path::{Path, PathBuf};

use tanas_core::fuzz::{Alloc, fuzz_reader};
use tanas_fisher::{FisherDiag, FisherMeta, FisherTensor};
use tanas_pipeline::dictionary::DictSettings;
use tanas_pipeline::{Experiment, TanasExperiment};
use tanas_search::SearchSpace;

#[global_allocator]
static ALLOC: Alloc = Alloc::new(std::alloc::System, usize::MAX);

/// Mutated inputs per reader.
const CASES: u32 = 5_000;
/// No reader of these small files may hold more than this at once.
const BOUND: usize = 16 << 20;

fn ok<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<(), String> {
    r.map(|_| ()).map_err(|e| e.to_string())
}

fn configs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs")
}

/// An experiment file with its task files made absolute, so that it reads from anywhere.
fn experiment(name: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(configs().join("experiments").join(name)).expect(name);
    let tasks = configs().join("tasks");
    text.replace("../tasks/", &format!("{}/", tasks.display()))
        .into_bytes()
}

#[test]
fn readers_survive_mutated_files() {
    let meta = FisherMeta {
        arch: "small-cnn".into(),
        task: "mnist-1".into(),
        samples: 64,
        num_classes: 2,
        ..FisherMeta::default()
    };
    let diag = FisherDiag::from_tensors(
        meta,
        [
            FisherTensor::new("conv1.weight", vec![2, 1, 1, 2], vec![0.5, 1e-3, 3.25, 0.0]),
            FisherTensor::new("fc.bias", vec![3], vec![1.0, 2.0, 3.0]),
        ]
        .into_iter()
        .map(|t| t.expect("tensor")),
    )
    .expect("diagonal");
    let dir = tempfile::tempdir().expect("tempdir");
    let fisher = dir.path().join("f.safetensors");
    diag.save(&fisher).expect("save");
    let s = fuzz_reader(
        &ALLOC,
        "fisher.safetensors",
        &std::fs::read(&fisher).expect("read"),
        BOUND,
        CASES,
        |p| ok(FisherDiag::load(p)),
    );
    assert!(s.rejected > 0, "{s:?}");

    let space = SearchSpace::general().to_json();
    let s = fuzz_reader(&ALLOC, "space.json", space.as_bytes(), BOUND, CASES, |p| {
        ok(SearchSpace::load(p))
    });
    assert!(s.rejected > 0, "{s:?}");

    let matrix = experiment("mnist-small.toml");
    let s = fuzz_reader(&ALLOC, "experiment.toml", &matrix, BOUND, CASES, |p| {
        ok(Experiment::read(p))
    });
    assert!(s.rejected > 0, "{s:?}");
    let tanas = experiment("tanas-mnist2.toml");
    let s = fuzz_reader(&ALLOC, "tanas.toml", &tanas, BOUND, CASES, |p| {
        ok(TanasExperiment::read(p))
    });
    assert!(s.rejected > 0, "{s:?}");
    let settings = TanasExperiment::read(&configs().join("experiments/tanas-mnist2.toml"))
        .expect("tanas-mnist2.toml")
        .dictionary;
    let settings = toml::to_string(&settings).expect("settings TOML");
    let s = fuzz_reader(
        &ALLOC,
        "settings.toml",
        settings.as_bytes(),
        BOUND,
        CASES,
        |p| ok(DictSettings::read(p)),
    );
    assert!(s.rejected > 0, "{s:?}");
}
