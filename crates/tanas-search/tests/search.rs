//! FUSE and random search on small subsets of the embedded MNIST task `mnist-0` (digit 0 vs
//! rest), with tiny cell networks (C = 4, L = 1).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] functions

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use burn::backend::Autodiff;
use burn::data::dataset::Dataset;
use burn::module::AutodiffModule;
use tanas_core::SettingsMismatch;
use tanas_cpu::Cpu;
use tanas_data::{TaskData, TaskItem, TaskSplit};
use tanas_search::{
    CHECKPOINT_FILE, CellStyle, Fuse, FuseConfig, RESULT_FILE, RandomSearch, RandomSearchConfig,
    SearchCommon, SearchData, SearchError, SearchResult, SearchSpace, StageRecord, TRACE_FILE,
    WEIGHTS_FILE, read_trace,
};
use tanas_train::Tally;
use tanas_zoo::ZooModel;
use tanas_zoo::cell::{CellGenotype, CellSkeleton, Genotype, Op};

type B = Autodiff<Cpu>;

/// `mnist-0` (balanced; 1440 train, 160 val) with its test split cut to 128 samples.
fn data() -> &'static TaskData {
    static DATA: OnceLock<TaskData> = OnceLock::new();
    DATA.get_or_init(|| {
        let mut data = TaskData::embedded_mnist("mnist-0").unwrap();
        data.test = data.test.truncated(128);
        data
    })
}

fn skeleton() -> CellSkeleton {
    CellSkeleton::new(4, 1)
}

fn space() -> SearchSpace {
    SearchSpace::new(
        [Op::None, Op::SkipConnect, Op::MaxPool3x3, Op::Conv3x3],
        [1],
        CellStyle::Dense,
        skeleton(),
    )
    .unwrap()
}

fn fuse_config() -> FuseConfig {
    FuseConfig {
        candidates: 2,
        stages: 2,
        max_rounds: 2,
        common: SearchCommon {
            batch_size: 32,
            eval_batch_size: 128,
            seed: 7,
            train_limit: Some(128),
            val_limit: Some(64),
            final_epochs: 1,
            final_train_limit: Some(128),
            final_val_limit: Some(64),
            quiet: true,
            ..SearchCommon::default()
        },
        ..FuseConfig::default()
    }
}

/// A test split that counts its reads and records, at the first read, how far the search in
/// `dir` had got: (completed stages in the checkpoint, final weights written).
struct CountingTest {
    split: TaskSplit,
    dir: PathBuf,
    reads: AtomicUsize,
    first_read: Mutex<Option<(usize, bool)>>,
}

impl CountingTest {
    fn new(split: &TaskSplit, dir: &Path) -> Self {
        CountingTest {
            split: split.clone(),
            dir: dir.to_path_buf(),
            reads: AtomicUsize::new(0),
            first_read: Mutex::new(None),
        }
    }
}

impl Dataset<TaskItem> for CountingTest {
    fn get(&self, index: usize) -> Option<TaskItem> {
        if self.reads.fetch_add(1, Ordering::SeqCst) == 0 {
            let ckpt: serde_json::Value = serde_json::from_slice(
                &std::fs::read(self.dir.join(CHECKPOINT_FILE)).expect("checkpoint"),
            )
            .expect("checkpoint JSON");
            let stages = ckpt["steps"].as_array().map_or(0, Vec::len);
            let weights = self.dir.join(WEIGHTS_FILE).is_file();
            *self.first_read.lock().expect("lock") = Some((stages, weights));
        }
        self.split.get(index)
    }

    fn len(&self) -> usize {
        self.split.len()
    }
}

/// The reference FUSE run (seed 7), shared by the tests that compare against it.
struct Reference {
    dir: tempfile::TempDir,
    result: SearchResult,
    /// What its [`CountingTest`] saw at the first read of the test split.
    first_read: Option<(usize, bool)>,
    /// Reads of the test split.
    reads: usize,
}

fn reference() -> &'static Reference {
    static RUN: OnceLock<Reference> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let test = CountingTest::new(&data().test, dir.path());
        let fuse = Fuse::new(fuse_config(), space()).unwrap();
        let result = fuse
            .run::<B, _>(
                SearchData::from_task(data()),
                &test,
                dir.path(),
                &Default::default(),
            )
            .unwrap();
        let first_read = *test.first_read.lock().unwrap();
        let reads = test.reads.load(Ordering::SeqCst);
        Reference {
            dir,
            result,
            first_read,
            reads,
        }
    })
}

/// The trace of `dir` with every `seconds` field set to 0, line by line.
fn untimed_trace(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join(TRACE_FILE)).unwrap();
    text.lines()
        .map(|line| {
            let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
            zero_seconds(&mut v);
            serde_json::to_string(&v).unwrap()
        })
        .collect()
}

fn zero_seconds(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, x) in map.iter_mut() {
                if k.ends_with("seconds") {
                    *x = serde_json::json!(0.0);
                } else {
                    zero_seconds(x);
                }
            }
        }
        serde_json::Value::Array(xs) => xs.iter_mut().for_each(zero_seconds),
        _ => {}
    }
}

fn untimed(r: &SearchResult) -> SearchResult {
    SearchResult {
        search_seconds: 0.0,
        final_seconds: 0.0,
        ..r.clone()
    }
}

/// Every round's weights are a distribution.
fn assert_distribution(stages: &[StageRecord]) {
    for s in stages {
        assert!(!s.rounds.is_empty());
        for r in &s.rounds {
            assert_eq!(r.weights.len(), s.candidates.len());
            let sum: f64 = r.weights.iter().sum();
            assert!(
                (sum - 1.0).abs() < 1e-5,
                "stage {} round {}: sum {sum}",
                s.stage,
                r.round
            );
            assert!(r.weights.iter().all(|&w| w >= 0.0 && w.is_finite()));
        }
        assert_eq!(s.weights, s.rounds.last().unwrap().weights);
    }
}

#[test]
fn fuse_picks_the_convolution_cell_over_the_zero_cell() {
    // Candidate 0 computes nothing (every edge `none`: the logits are the classifier's bias);
    // candidate 1 convolves. The zero cell comes first, so a tie would pick it.
    let zero = Genotype::dense(1, &[Op::None; 2], &[Op::None; 2]).unwrap();
    let conv = Genotype::dense(1, &[Op::Conv3x3; 2], &[Op::Conv3x3; 2]).unwrap();
    assert_eq!(CellGenotype::dense_edge_count(1), 2);
    let cfg = FuseConfig {
        candidates: 2,
        max_rounds: 3,
        alpha_tolerance: 0.0,
        lr_alpha: 0.1,
        common: SearchCommon {
            lr: 3e-3,
            batch_size: 32,
            train_limit: Some(256),
            val_limit: Some(96),
            quiet: true,
            ..SearchCommon::default()
        },
        ..FuseConfig::default()
    };
    let fuse = Fuse::new(cfg, space()).unwrap();
    let record = fuse
        .strategy()
        .stage::<B>(
            &[zero, conv.clone()],
            false,
            SearchData::from_task(data()),
            1,
            &Default::default(),
        )
        .unwrap();
    assert_distribution(std::slice::from_ref(&record));
    assert_eq!(record.rounds.len(), 3, "tolerance 0 runs every round");
    assert_eq!(record.winner, 1, "{record:#?}");
    assert_eq!(record.winner_genotype(), Some(&conv));
    // Alpha moved towards the convolution cell in every round, and it is the better network.
    for r in &record.rounds {
        assert!(r.weights[1] > 0.5, "round {}: {:?}", r.round, r.weights);
    }
    assert!(
        record.val_accuracy[1] > record.val_accuracy[0],
        "{:?}",
        record.val_accuracy
    );
    assert_eq!(record.candidate_epochs, 3 * 2);
}

#[test]
fn fuse_run_writes_trace_result_and_reads_test_only_at_the_end() {
    let Reference {
        dir,
        result,
        first_read,
        reads,
    } = reference();
    let cfg = fuse_config();
    // The test split was read once, every sample, after all stages and the final training.
    assert_eq!(*first_read, Some((cfg.stages, true)));
    assert_eq!(*reads, data().test.len());
    assert_eq!(result.score.test_samples, data().test.len());

    let trace: Vec<StageRecord> = read_trace(&dir.path().join(TRACE_FILE)).unwrap();
    assert_eq!(trace.len(), cfg.stages);
    assert_distribution(&trace);
    assert!(!trace[0].incumbent && trace[1].incumbent);
    assert_eq!(
        Some(&trace[1].candidates[0]),
        trace[0].winner_genotype(),
        "the winner of a stage is the next stage's incumbent"
    );
    for s in &trace {
        assert_eq!(s.candidates.len(), cfg.candidates);
        assert!(s.candidates.iter().all(|g| space().contains(g)));
        assert!(s.rounds.len() <= cfg.max_rounds);
    }
    let epochs: usize = trace
        .iter()
        .map(|s| s.rounds.len() * cfg.candidates * cfg.epochs_w)
        .sum();
    assert_eq!(result.candidate_epochs, epochs);
    assert_eq!(trace.last().unwrap().candidate_epochs, epochs);
    assert!(epochs <= cfg.max_candidate_epochs());

    assert_eq!(Some(&result.genotype), trace[1].winner_genotype());
    assert_eq!(result.space, space());
    assert!(result.params > 0);
    assert!((0.0..=1.0).contains(&result.score.test_accuracy));
    assert_eq!(result.final_train_samples, 128 + 64);
    // The stored weights give the stored accuracy: the plain arg-max on the test split
    // (mnist-0's test split keeps the dataset's frequencies, about a tenth digit 0, while
    // training was balanced; no prior shift is applied), with the balanced accuracy beside it.
    let device = Default::default();
    let spec = tanas_search::cell_spec(&result.genotype, skeleton(), 2);
    let model = ZooModel::<B>::new(&spec, &device).unwrap();
    let model = tanas_zoo::load_pytorch(model, dir.path().join(WEIGHTS_FILE))
        .unwrap()
        .valid();
    let e = tanas_train::evaluate(
        &model,
        &data().test,
        cfg.common.eval_batch_size,
        Tally::default(),
        &device,
    );
    let e = e.unwrap();
    assert_eq!(e.accuracy, result.score.test_accuracy);
    assert_eq!(e.balanced_accuracy, result.score.balanced_accuracy);
    assert_eq!(result.score.prior_accuracy, None);
    let stored = SearchResult::load(&dir.path().join(RESULT_FILE)).unwrap();
    assert_eq!(&stored, result);
    assert!(dir.path().join(WEIGHTS_FILE).is_file());
    // No temporary file is left behind.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
}

/// The trace in `dir` and the `result` are the reference search's (timings left out).
fn assert_same_as_reference(dir: &Path, result: &SearchResult) {
    let reference = reference();
    assert_eq!(untimed_trace(dir), untimed_trace(reference.dir.path()));
    assert_eq!(untimed(result), untimed(&reference.result));
}

#[test]
fn same_seed_gives_the_same_trace() {
    let dir = tempfile::tempdir().unwrap();
    let fuse = Fuse::new(fuse_config(), space()).unwrap();
    let result = fuse
        .run_task::<B>(data(), dir.path(), &Default::default())
        .unwrap();
    assert_same_as_reference(dir.path(), &result);
}

#[test]
fn resume_after_an_interruption_gives_the_same_result() {
    let dir = tempfile::tempdir().unwrap();
    let flag = Arc::new(AtomicBool::new(true));
    let fuse = Fuse::new(fuse_config(), space())
        .unwrap()
        .with_interrupt(flag.clone());
    let err = fuse
        .run_task::<B>(data(), dir.path(), &Default::default())
        .unwrap_err();
    assert!(
        matches!(err, SearchError::Interrupted { completed: 1, .. }),
        "{err:?}"
    );
    assert_eq!(untimed_trace(dir.path()).len(), 1);
    assert!(!dir.path().join(RESULT_FILE).exists());

    flag.store(false, Ordering::SeqCst);
    let result = fuse
        .run_task::<B>(data(), dir.path(), &Default::default())
        .unwrap();
    assert_same_as_reference(dir.path(), &result);

    // A finished directory returns its result as stored.
    let again = fuse
        .run_task::<B>(data(), dir.path(), &Default::default())
        .unwrap();
    assert_eq!(again, result);
}

/// A warm start puts the given cell first in stage 1 (as its incumbent), even outside the
/// space; a checkpoint made without it is not resumed with it.
#[test]
fn warm_start_is_the_first_incumbent() {
    let cfg = FuseConfig {
        stages: 1,
        ..fuse_config()
    };
    let start = Genotype::dense(
        1,
        &[Op::Conv3x3, Op::Conv3x3],
        &[Op::AvgPool3x3, Op::Conv3x3],
    )
    .unwrap();
    assert!(
        !space().contains(&start),
        "the start lies outside the space"
    );
    let dir = tempfile::tempdir().unwrap();
    let search = |fuse: Fuse| {
        fuse.search::<B>(
            tanas_search::SearchData::from_task(data()),
            dir.path(),
            &Default::default(),
        )
    };
    let warm = Fuse::new(cfg.clone(), space())
        .unwrap()
        .with_warm_start(start.clone());
    let outcome = search(warm).unwrap();
    let first = &outcome[0];
    assert!(first.incumbent);
    assert_eq!(first.candidates[0], start);
    assert_eq!(first.candidates.len(), cfg.candidates);
    assert!(space().contains(&first.candidates[1]));
    // Drawn candidates after the incumbent are those of a cold start's stage 1.
    let cold = Fuse::new(cfg.clone(), space()).unwrap();
    assert_eq!(
        first.candidates[1..],
        cold.strategy().stage_candidates("mnist-0", 1, Some(&start))[1..]
    );
    let err = search(cold).unwrap_err();
    assert!(
        matches!(&err, SearchError::ConfigMismatch(SettingsMismatch { field, .. }) if field.starts_with("warm_start")),
        "{err:?}"
    );
}

#[test]
fn resume_with_other_settings_is_refused() {
    let reference_dir = &reference().dir;
    let mut cfg = fuse_config();
    cfg.common.lr = 0.01;
    let err = Fuse::new(cfg, space())
        .unwrap()
        .run_task::<B>(data(), reference_dir.path(), &Default::default())
        .unwrap_err();
    match err {
        SearchError::ConfigMismatch(SettingsMismatch { field, .. }) => {
            assert_eq!(field, "config.lr")
        }
        other => panic!("expected ConfigMismatch, got {other:?}"),
    }
    let other_space = SearchSpace::general().with_skeleton(skeleton()).unwrap();
    let err = Fuse::new(fuse_config(), other_space)
        .unwrap()
        .run_task::<B>(data(), reference_dir.path(), &Default::default())
        .unwrap_err();
    assert!(
        matches!(&err, SearchError::ConfigMismatch(SettingsMismatch { field, .. }) if field.starts_with("space.")),
        "{err:?}"
    );
    // A random search does not go on from a FUSE directory.
    let err = RandomSearch::new(RandomSearchConfig::default(), space())
        .unwrap()
        .run_task::<B>(data(), reference_dir.path(), &Default::default())
        .unwrap_err();
    assert!(
        matches!(&err, SearchError::ConfigMismatch(SettingsMismatch { field, .. }) if field == "format"),
        "{err:?}"
    );
}

/// Two tasks searched with one config draw different candidates (the task id is on the seed
/// path); one task draws the same ones every time.
#[test]
fn candidate_draws_depend_on_the_task() {
    let space = SearchSpace::general();
    let fuse = Fuse::new(fuse_config(), space.clone()).unwrap();
    let tasks = [
        "mnist-0",
        "mnist-1",
        "mnist-2",
        "fashion-0",
        "fashion-1",
        "fashion-2",
    ];
    let firsts: Vec<Vec<Genotype>> = tasks
        .iter()
        .map(|t| fuse.strategy().stage_candidates(t, 1, None))
        .collect();
    for (i, a) in firsts.iter().enumerate() {
        assert_eq!(
            a,
            &fuse.strategy().stage_candidates(tasks[i], 1, None),
            "{}",
            tasks[i]
        );
        for (j, b) in firsts.iter().enumerate().skip(i + 1) {
            assert_ne!(a, b, "{} and {} draw the same", tasks[i], tasks[j]);
        }
    }
    let random =
        RandomSearch::new(RandomSearchConfig::equal_budget(&fuse_config()), space).unwrap();
    assert_ne!(
        random.strategy().candidate("mnist-0", 1),
        random.strategy().candidate("mnist-1", 1)
    );
    assert_eq!(
        random.strategy().candidate("mnist-0", 1),
        random.strategy().candidate("mnist-0", 1)
    );
}

#[test]
fn random_search_respects_its_budget() {
    let fuse = fuse_config();
    let cfg = RandomSearchConfig {
        samples: 3,
        epochs: 1,
        ..RandomSearchConfig::equal_budget(&fuse)
    };
    assert_eq!(cfg.budget(), 3);
    let dir = tempfile::tempdir().unwrap();
    let random = RandomSearch::new(cfg.clone(), space()).unwrap();
    let result = random
        .run_task::<B>(data(), dir.path(), &Default::default())
        .unwrap();
    let trace: Vec<tanas_search::CandidateRecord> =
        read_trace(&dir.path().join(TRACE_FILE)).unwrap();
    assert_eq!(trace.len(), cfg.samples);
    for (i, c) in trace.iter().enumerate() {
        assert_eq!(c.index, i + 1);
        assert_eq!(c.candidate_epochs, (i + 1) * cfg.epochs);
        assert!(space().contains(&c.genotype));
        assert_eq!(c.genotype, random.strategy().candidate("mnist-0", i + 1));
    }
    assert_eq!(result.candidate_epochs, cfg.budget());
    let best = trace.iter().fold(&trace[0], |b, c| {
        if c.val_accuracy > b.val_accuracy {
            c
        } else {
            b
        }
    });
    assert_eq!(result.genotype, best.genotype);
    assert_eq!(result.val_accuracy, best.val_accuracy);
    assert_eq!(result.score.test_samples, data().test.len());
    assert!(result.search_seconds > 0.0);

    // The equal-budget helper matches FUSE's largest budget.
    let equal = RandomSearchConfig::equal_budget(&fuse);
    assert_eq!(equal.budget(), fuse.max_candidate_epochs());
}

#[test]
fn invalid_inputs_are_typed_errors() {
    let err = Fuse::new(
        FuseConfig {
            stages: 0,
            ..fuse_config()
        },
        space(),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            SearchError::InvalidConfig {
                field: "stages",
                ..
            }
        ),
        "{err:?}"
    );
    let fuse = Fuse::new(fuse_config(), space()).unwrap();
    let empty = data().val.truncated(0);
    let dir = tempfile::tempdir().unwrap();
    let err = fuse
        .search::<B>(
            SearchData::new(&data().train, &empty, 2),
            dir.path(),
            &Default::default(),
        )
        .unwrap_err();
    assert!(matches!(err, SearchError::EmptySplit { .. }), "{err:?}");
    // A task with 2 labels searched with 1 output.
    let err = fuse
        .search::<B>(
            SearchData::new(&data().train, &data().val, 1),
            dir.path(),
            &Default::default(),
        )
        .unwrap_err();
    assert!(
        matches!(err, SearchError::LabelOutOfRange { .. }),
        "{err:?}"
    );
    assert!(!dir.path().join(CHECKPOINT_FILE).exists());
}
