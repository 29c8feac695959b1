//! Search spaces: sampling stays inside the space, and invalid space files are typed errors
//! that name the file.

use std::collections::BTreeSet;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tanas_core::FileError;
use tanas_search::{CellStyle, SearchError, SearchSpace, SpaceError};
use tanas_zoo::cell::{CellSkeleton, Genotype, INPUT_NODES, Op};

#[test]
fn sampling_uses_only_allowed_ops_and_node_counts() {
    let skeleton = CellSkeleton::new(4, 3);
    let spaces = [
        SearchSpace::general(),
        SearchSpace::new([Op::Conv3x3, Op::None], [3], CellStyle::Dense, skeleton).unwrap(),
        SearchSpace::new([Op::DilConv5x5], [4], CellStyle::Darts, skeleton).unwrap(),
        SearchSpace::new(
            [Op::SkipConnect, Op::MaxPool3x3, Op::Conv7x1And1x7],
            [3, 4],
            CellStyle::Darts,
            skeleton,
        )
        .unwrap(),
        SearchSpace::from_genotype(&Genotype::darts_v2(), skeleton).unwrap(),
    ];
    for space in &spaces {
        let allowed: BTreeSet<Op> = space.ops().iter().copied().collect();
        let mut seen_ops = BTreeSet::new();
        let mut seen_nodes = BTreeSet::new();
        for seed in 0..300 {
            let g = space.sample(&mut ChaCha8Rng::seed_from_u64(seed));
            g.validate().unwrap();
            assert!(space.contains(&g), "{g:?} not in {space:?}");
            assert!(
                g.ops().is_subset(&allowed),
                "{:?} uses {:?}",
                space,
                g.ops()
            );
            assert_eq!(g.normal.nodes, g.reduce.nodes);
            assert!(space.nodes().contains(&g.normal.nodes));
            for cell in [&g.normal, &g.reduce] {
                for node in INPUT_NODES..INPUT_NODES + cell.nodes {
                    let incoming = cell.incoming(node).count();
                    match space.style() {
                        CellStyle::Dense => assert_eq!(incoming, node),
                        CellStyle::Darts => assert_eq!(incoming, 2),
                    }
                }
            }
            seen_ops.extend(g.ops());
            seen_nodes.insert(g.normal.nodes);
        }
        // Uniform per choice: over 300 draws every allowed choice shows up.
        assert_eq!(seen_ops, allowed, "{space:?}");
        assert_eq!(
            seen_nodes,
            space.nodes().iter().copied().collect::<BTreeSet<_>>()
        );
    }
}

#[test]
fn sampling_is_seeded() {
    let space = SearchSpace::general();
    let draw = |seed| space.sample(&mut ChaCha8Rng::seed_from_u64(seed));
    assert_eq!(draw(7), draw(7));
    assert_ne!(draw(7), draw(8));
}

#[test]
fn space_json_round_trips_and_is_canonical() {
    let text = r#"{"ops": ["conv_3x3", "none"], "nodes": [4, 3], "style": "darts",
                   "skeleton": {"channels": 8, "layers": 5}}"#;
    let s = SearchSpace::from_json(text).unwrap();
    assert_eq!(s.ops(), &[Op::None, Op::Conv3x3]);
    assert_eq!(s.nodes(), &[3, 4]);
    assert_eq!(s.style(), CellStyle::Darts);
    assert_eq!(s.skeleton(), CellSkeleton::new(8, 5));
    assert_eq!(SearchSpace::from_json(&s.to_json()).unwrap(), s);
    // Defaults: dense cells on DARTS's search skeleton.
    let s = SearchSpace::from_json(r#"{"ops": ["none"], "nodes": [3]}"#).unwrap();
    assert_eq!(s.style(), CellStyle::Dense);
    assert_eq!(s.skeleton(), tanas_search::SEARCH_SKELETON);
}

#[test]
fn invalid_space_files_are_typed_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    type Expected = fn(&SpaceError) -> bool;
    let cases: [(&str, &str, Expected); 7] = [
        ("empty-ops.json", r#"{"ops": [], "nodes": [3]}"#, |e| {
            matches!(e, SpaceError::NoOps)
        }),
        (
            "empty-nodes.json",
            r#"{"ops": ["none"], "nodes": []}"#,
            |e| matches!(e, SpaceError::NoNodes),
        ),
        (
            "unknown-op.json",
            r#"{"ops": ["conv_3x3", "conv_9x9"], "nodes": [3]}"#,
            |e| matches!(e, SpaceError::UnknownOp { name } if name == "conv_9x9"),
        ),
        (
            "bad-nodes.json",
            r#"{"ops": ["none"], "nodes": [5]}"#,
            |e| matches!(e, SpaceError::NodeCount(5)),
        ),
        (
            "duplicate.json",
            r#"{"ops": ["none", "none"], "nodes": [3]}"#,
            |e| matches!(e, SpaceError::DuplicateOp(Op::None)),
        ),
        (
            "bad-skeleton.json",
            r#"{"ops": ["none"], "nodes": [3], "skeleton": {"channels": 0, "layers": 3}}"#,
            |e| matches!(e, SpaceError::Skeleton(_)),
        ),
        ("not-json.json", "{ops: none", |e| {
            matches!(e, SpaceError::Json(_))
        }),
    ];
    for (name, text, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let err = SearchSpace::load(&path).unwrap_err();
        let message = err.to_string();
        assert!(message.contains(name), "{name}: {message}");
        match err {
            SearchError::SpaceFile { path: p, source } => {
                assert_eq!(p, path);
                assert!(expected(&source), "{name}: unexpected {source:?}");
            }
            other => panic!("{name}: expected SpaceFile, got {other:?}"),
        }
    }
    let missing = dir.path().join("missing.json");
    let err = SearchSpace::load(&missing).unwrap_err();
    assert!(
        matches!(err, SearchError::File(FileError::Io { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("missing.json"));
}

#[test]
fn unknown_op_message_lists_the_known_ones() {
    let err = SearchSpace::from_json(r#"{"ops": ["zero"], "nodes": [3]}"#).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("`zero`") && message.contains("skip_connect"),
        "{message}"
    );
}

/// A dense 3-node genotype whose 18 edges carry `ops` in turn.
fn cycling(ops: &[Op]) -> Genotype {
    let edges: Vec<Op> = ops.iter().copied().cycle().take(9).collect();
    Genotype::dense(3, &edges, &edges).expect("a dense 3-node genotype")
}

/// A stage that weighs `candidates` by `weights` (softmax(alpha)).
fn stage(candidates: Vec<Genotype>, weights: Vec<f64>) -> tanas_search::StageRecord {
    tanas_search::StageRecord {
        stage: 1,
        incumbent: false,
        alpha: weights.iter().map(|w| w.ln()).collect(),
        val_accuracy: vec![0.5; candidates.len()],
        weights,
        candidates,
        winner: 0,
        converged: true,
        rounds: Vec::new(),
        seconds: 0.0,
        candidate_epochs: 1,
    }
}

/// The learned space keeps the best cell's node count and the operations the architecture
/// weights favour over uniform sampling (the evidence is worked out by hand below).
#[test]
fn learned_space_keeps_the_operations_of_most_evidence() {
    use tanas_search::{SpaceRule, op_evidence};
    let general = SearchSpace::general();
    // Shares of the 18 edges: good 2/3 conv_3x3, 1/3 conv_5x5; bad 2/3 max_pool, 1/3 none;
    // mixed 1/3 each of skip_connect, conv_3x3, avg_pool.
    let good = cycling(&[Op::Conv3x3, Op::Conv5x5, Op::Conv3x3]);
    let bad = cycling(&[Op::MaxPool3x3, Op::None, Op::MaxPool3x3]);
    let mixed = cycling(&[Op::SkipConnect, Op::Conv3x3, Op::AvgPool3x3]);
    let stages = vec![
        stage(vec![good.clone(), bad.clone()], vec![0.9, 0.1]),
        stage(vec![mixed, bad.clone(), good.clone()], vec![0.5, 0.2, 0.3]),
    ];
    let evidence = op_evidence(&stages, general.ops());
    let of = |op: Op| evidence.iter().find(|(o, _)| *o == op).unwrap().1;
    // Weighted shares minus 2 stages / 10 operations.
    let expected = [
        (
            Op::Conv3x3,
            0.9 * 2.0 / 3.0 + 0.5 / 3.0 + 0.3 * 2.0 / 3.0 - 0.2,
        ),
        (Op::Conv5x5, 0.9 / 3.0 + 0.3 / 3.0 - 0.2),
        (Op::MaxPool3x3, 0.1 * 2.0 / 3.0 + 0.2 * 2.0 / 3.0 - 0.2),
        (Op::SkipConnect, 0.5 / 3.0 - 0.2),
        (Op::None, 0.1 / 3.0 + 0.2 / 3.0 - 0.2),
        (Op::Conv7x7, -0.2),
    ];
    for (op, e) in expected {
        assert!((of(op) - e).abs() < 1e-12, "{op}: {} vs {e}", of(op));
    }
    let learned = SearchSpace::learned(
        SpaceRule::Evidence { ops: 3 },
        &good,
        &stages,
        &general,
        general.skeleton(),
    )
    .unwrap();
    let ops: BTreeSet<Op> = learned.ops().iter().copied().collect();
    assert_eq!(
        ops,
        BTreeSet::from([Op::Conv3x3, Op::Conv5x5, Op::MaxPool3x3])
    );
    assert_eq!(learned.nodes(), [3]);
    assert!(learned.contains(&good) && !learned.contains(&bad));
    // 3 ops on a dense 3-node cell: (3^9)^2 genotypes, far below 1 % of the general space.
    assert_eq!(learned.size(), 3f64.powi(18));
    assert!(learned.size() < 0.01 * general.size());
    // The union rule keeps every operation of the best cell.
    let union = SearchSpace::learned(
        SpaceRule::Union,
        &good,
        &stages,
        &general,
        general.skeleton(),
    )
    .unwrap();
    assert_eq!(union.ops().len(), 2);
}

/// Sizes in distinct genotypes: the general space, a DARTS-style space.
#[test]
fn space_sizes_count_genotypes() {
    let general = SearchSpace::general();
    assert_eq!(general.size(), 1e28 + 1e18);
    let darts = SearchSpace::new(
        [Op::Conv3x3, Op::None],
        [2],
        CellStyle::Darts,
        general.skeleton(),
    )
    .unwrap();
    // Node 2: inputs {0, 1} (1 way) x 2^2 ops; node 3: 3 pairs x 2^2; per cell 48, squared.
    assert_eq!(darts.size(), 48.0 * 48.0);
}
