//! Distances between Fisher diagonals: invariants, hand-computed examples, error cases.

#![allow(clippy::unwrap_used)]

use tanas_distance::{DistanceError, HeadRule, TaskDistance, compare, compare_files, distance};
use tanas_fisher::{FisherDiag, FisherMeta, FisherTensor};

const METRICS: [TaskDistance; 3] = [
    TaskDistance::Ftd,
    TaskDistance::LogDet { sigma2: 1e-8 },
    TaskDistance::Cosine,
];
const HEADS: [HeadRule; 2] = [HeadRule::Pad, HeadRule::Exclude];

/// A small deterministic generator (xorshift64*), so the tests need no RNG crate.
struct Rng(u64);

impl Rng {
    fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (x >> 40) as f32 / (1u64 << 24) as f32
    }
}

fn diag(tensors: &[(&str, &[usize], &[f32])]) -> FisherDiag {
    FisherDiag::from_tensors(
        FisherMeta::default(),
        tensors
            .iter()
            .map(|(n, s, v)| FisherTensor::new(*n, s.to_vec(), v.to_vec()).unwrap()),
    )
    .unwrap()
}

/// A small-cnn-like diagonal with a head of `classes` outputs; `sparsity` of the entries are 0.
fn random_diag(rng: &mut Rng, classes: usize, sparsity: f32) -> FisherDiag {
    let shapes: [(&str, Vec<usize>); 6] = [
        ("conv1.weight", vec![4, 3, 3, 3]),
        ("conv1.bias", vec![4]),
        ("bn1.weight", vec![4]),
        ("fc1.weight", vec![8, 16]),
        ("fc2.weight", vec![classes, 8]),
        ("fc2.bias", vec![classes]),
    ];
    let tensors = shapes.into_iter().map(|(name, shape)| {
        let n: usize = shape.iter().product();
        let values = (0..n)
            .map(|_| {
                let keep = rng.next_f32() >= sparsity;
                // Spread over several orders of magnitude, like real Fisher diagonals.
                if keep {
                    rng.next_f32() * 10f32.powf(-6.0 * rng.next_f32())
                } else {
                    0.0
                }
            })
            .collect();
        FisherTensor::new(name, shape, values).unwrap()
    });
    FisherDiag::from_tensors(FisherMeta::default(), tensors).unwrap()
}

fn scaled(d: &FisherDiag, c: f32) -> FisherDiag {
    let mut out = d.clone();
    for t in out.tensors_mut() {
        for v in t.values_mut() {
            *v *= c;
        }
    }
    out
}

#[test]
fn distance_to_itself_is_zero_for_every_metric() {
    let mut rng = Rng(7);
    for classes in [2, 10] {
        let f = random_diag(&mut rng, classes, 0.3);
        for metric in METRICS {
            for head in HEADS {
                assert_eq!(
                    distance(&f, &f, metric, head).unwrap(),
                    0.0,
                    "{metric} {head}"
                );
            }
        }
    }
}

#[test]
fn ftd_and_cosine_lie_in_unit_interval_and_logdet_is_non_negative() {
    let mut rng = Rng(42);
    for k in 0..200 {
        let sparsity = [0.0, 0.5, 0.95][k % 3];
        let a = random_diag(&mut rng, 10, sparsity);
        let b = random_diag(&mut rng, 10, sparsity);
        let ftd = distance(&a, &b, TaskDistance::Ftd, HeadRule::Pad).unwrap();
        assert!((0.0..=1.0).contains(&ftd), "ftd {ftd}");
        assert!(ftd > 0.0);
        let cos = distance(&a, &b, TaskDistance::Cosine, HeadRule::Pad).unwrap();
        assert!((0.0..=1.0).contains(&cos), "cosine {cos}");
        let ld = distance(&a, &b, TaskDistance::logdet(), HeadRule::Pad).unwrap();
        assert!(ld >= 0.0 && ld.is_finite(), "logdet {ld}");
    }
}

#[test]
fn ftd_is_one_for_disjoint_supports() {
    let a = diag(&[("w", &[4], &[1.0, 2.0, 0.0, 0.0]), ("b", &[2], &[0.0, 5.0])]);
    let b = diag(&[("w", &[4], &[0.0, 0.0, 3.0, 0.5]), ("b", &[2], &[7.0, 0.0])]);
    assert_eq!(
        distance(&a, &b, TaskDistance::Ftd, HeadRule::Pad).unwrap(),
        1.0
    );
    assert_eq!(
        distance(&a, &b, TaskDistance::Cosine, HeadRule::Pad).unwrap(),
        1.0
    );
}

#[test]
fn formula_is_symmetric_but_the_matrix_is_not() {
    let mut rng = Rng(3);
    let (x, y) = (random_diag(&mut rng, 4, 0.2), random_diag(&mut rng, 4, 0.2));
    for metric in METRICS {
        let (d1, d2) = (
            distance(&x, &y, metric, HeadRule::Pad).unwrap(),
            distance(&y, &x, metric, HeadRule::Pad).unwrap(),
        );
        assert!((d1 - d2).abs() < 1e-12, "{metric}: {d1} vs {d2}");
    }

    // Two tasks A and B. F[x,y] = Fisher of network x on data of task y.
    // d[A][B] = distance(F[A,B], F[B,B]) and d[B][A] = distance(F[B,A], F[A,A]) compare
    // different pairs of diagonals, so they differ.
    let f_ab = diag(&[("w", &[3], &[1.0, 1.0, 1.0])]);
    let f_bb = diag(&[("w", &[3], &[1.0, 1.0, 2.0])]);
    let f_ba = diag(&[("w", &[3], &[4.0, 0.0, 1.0])]);
    let f_aa = diag(&[("w", &[3], &[1.0, 1.0, 1.0])]);
    let mut m =
        tanas_distance::DistanceMatrix::new(["A", "B"], TaskDistance::Ftd, HeadRule::Pad).unwrap();
    let d_ab = distance(&f_ab, &f_bb, TaskDistance::Ftd, HeadRule::Pad).unwrap();
    let d_ba = distance(&f_ba, &f_aa, TaskDistance::Ftd, HeadRule::Pad).unwrap();
    m.set(0, "A", "B", d_ab).unwrap();
    m.set(0, "B", "A", d_ba).unwrap();
    m.set(0, "A", "A", 0.0).unwrap();
    m.set(0, "B", "B", 0.0).unwrap();
    let mean = m.mean();
    assert!(mean[0][1].unwrap() > 0.0 && mean[1][0].unwrap() > 0.0);
    assert!(
        (mean[0][1].unwrap() - mean[1][0].unwrap()).abs() > 0.1,
        "{mean:?}"
    );
}

#[test]
fn exclude_drops_the_architectures_head_even_when_the_heads_are_equal_in_size() {
    let mut rng = Rng(11);
    let small_cnn = |mut d: FisherDiag| {
        d.meta.arch = "small-cnn".into();
        d
    };
    let without_head = |d: &FisherDiag| {
        let kept = d
            .tensors()
            .iter()
            .filter(|t| !t.name().starts_with("fc2."))
            .cloned();
        FisherDiag::from_tensors(FisherMeta::default(), kept).unwrap()
    };
    // Equal head sizes (two 10-label tasks, whose rows still mean different classes):
    // `exclude` leaves small-cnn's head `fc2` out, exactly as if it were not there; `pad`
    // compares it.
    let (a, b) = (
        small_cnn(random_diag(&mut rng, 10, 0.1)),
        small_cnn(random_diag(&mut rng, 10, 0.1)),
    );
    for metric in METRICS {
        let pad = compare(&a, &b, metric, HeadRule::Pad).unwrap();
        let exc = compare(&a, &b, metric, HeadRule::Exclude).unwrap();
        assert_eq!(exc.excluded, ["fc2.weight", "fc2.bias"], "{metric}");
        assert_eq!(exc.entries, a.numel() - 10 * 9);
        let reference = distance(&without_head(&a), &without_head(&b), metric, HeadRule::Pad);
        assert_eq!(exc.distance, reference.unwrap(), "{metric}");
        assert_ne!(pad.distance, exc.distance, "{metric}");
        assert!(pad.padded.is_empty() && pad.excluded.is_empty());
    }
    // Different head sizes: the same rule, the same reference; `pad` pads.
    let (a, b) = (
        small_cnn(random_diag(&mut rng, 2, 0.1)),
        small_cnn(random_diag(&mut rng, 10, 0.1)),
    );
    for metric in METRICS {
        let pad = compare(&a, &b, metric, HeadRule::Pad).unwrap();
        let exc = compare(&a, &b, metric, HeadRule::Exclude).unwrap();
        assert_eq!(pad.padded, ["fc2.weight", "fc2.bias"]);
        assert_eq!(exc.excluded, ["fc2.weight", "fc2.bias"]);
        assert_eq!(pad.entries, a.numel() - 2 * 9 + 2 * 9 * 5);
        assert_eq!(exc.entries, a.numel() - 2 * 9);
        let reference = distance(&without_head(&a), &without_head(&b), metric, HeadRule::Pad);
        assert_eq!(exc.distance, reference.unwrap(), "{metric}");
    }
    // A diagonal of no known architecture: the head is what differs in dimension 0, so
    // equal-size heads are compared under both rules.
    let (a, b) = (
        random_diag(&mut rng, 10, 0.1),
        random_diag(&mut rng, 10, 0.1),
    );
    for metric in METRICS {
        let pad = compare(&a, &b, metric, HeadRule::Pad).unwrap();
        let exc = compare(&a, &b, metric, HeadRule::Exclude).unwrap();
        assert_eq!(pad.distance, exc.distance, "{metric}");
        assert!(exc.excluded.is_empty());
    }
}

#[test]
fn name_and_shape_mismatches_are_errors_that_name_the_tensor() {
    let a = diag(&[("w", &[2, 3], &[1.0; 6]), ("b", &[2], &[1.0; 2])]);
    let missing = diag(&[("w", &[2, 3], &[1.0; 6])]);
    let extra = diag(&[
        ("w", &[2, 3], &[1.0; 6]),
        ("b", &[2], &[1.0; 2]),
        ("z", &[1], &[1.0]),
    ]);
    for head in HEADS {
        let e = distance(&a, &missing, TaskDistance::Ftd, head).unwrap_err();
        assert!(matches!(e, DistanceError::MissingTensor { .. }), "{e}");
        assert!(e.to_string().contains("`b`"), "{e}");
        let e = distance(&a, &extra, TaskDistance::Ftd, head).unwrap_err();
        assert!(e.to_string().contains("`z`"), "{e}");
        // Same leading dimension, different inner dimension: not a head, an error.
        let inner = diag(&[("w", &[2, 4], &[1.0; 8]), ("b", &[2], &[1.0; 2])]);
        let e = distance(&a, &inner, TaskDistance::Ftd, head).unwrap_err();
        assert!(matches!(e, DistanceError::ShapeMismatch { .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains("`w`") && msg.contains("[2, 3]") && msg.contains("[2, 4]"),
            "{msg}"
        );
        // Different rank: an error too.
        let rank = diag(&[("w", &[6], &[1.0; 6]), ("b", &[2], &[1.0; 2])]);
        let e = distance(&a, &rank, TaskDistance::Ftd, head).unwrap_err();
        assert!(matches!(e, DistanceError::ShapeMismatch { .. }), "{e}");
    }
}

#[test]
fn scaling_a_diagonal_changes_no_distance() {
    let mut rng = Rng(5);
    let (a, b) = (
        random_diag(&mut rng, 10, 0.2),
        random_diag(&mut rng, 10, 0.2),
    );
    // Powers of two scale f32 values exactly, so the distance must not move beyond f64
    // rounding; other factors round each f32 entry (relative 6e-8), which the tolerance allows.
    for (c, tol) in [
        (1024.0f32, 1e-12),
        (2f32.powi(-20), 1e-12),
        (3.7, 1e-6),
        (1e-6, 1e-6),
    ] {
        for metric in METRICS {
            let d = distance(&a, &b, metric, HeadRule::Pad).unwrap();
            let da = distance(&scaled(&a, c), &b, metric, HeadRule::Pad).unwrap();
            let db = distance(&a, &scaled(&b, c), metric, HeadRule::Pad).unwrap();
            for ds in [da, db] {
                assert!((d - ds).abs() <= tol * d, "{metric} x{c}: {d} vs {ds}");
            }
        }
    }
}

/// F_a = (1, 3), F_b = (2, 2), split over two tensors so that normalisation is over the whole
/// network: p = (1/4, 3/4), q = (1/2, 1/2).
fn hand_pair() -> (FisherDiag, FisherDiag) {
    (
        diag(&[("u", &[1], &[1.0]), ("v", &[1], &[3.0])]),
        diag(&[("u", &[1], &[2.0]), ("v", &[1], &[2.0])]),
    )
}

#[test]
fn hand_computed_ftd() {
    // d^2 = 1 - sum sqrt(p q) = 1 - (sqrt(1/8) + sqrt(3/8)) = 1 - (sqrt 2 + sqrt 6) / 4
    //     = 1 - cos 15 deg, so d = sqrt 2 * sin 7.5 deg = 0.184591911...
    let (a, b) = hand_pair();
    let d = distance(&a, &b, TaskDistance::Ftd, HeadRule::Pad).unwrap();
    let expected = 2f64.sqrt() * 7.5f64.to_radians().sin();
    assert!((d - expected).abs() < 1e-15, "{d} vs {expected}");
    assert!((d - 0.184_591_911).abs() < 1e-9);
}

#[test]
fn hand_computed_logdet() {
    // mean ln p - mean ln q = (ln 1/4 + ln 3/4) / 2 - ln 1/2 = ln(3/4) / 2, so
    // d = ln(4/3) / 2 = 0.143841036... (up to sigma2).
    let (a, b) = hand_pair();
    let s = 1e-8;
    let d = distance(&a, &b, TaskDistance::LogDet { sigma2: s }, HeadRule::Pad).unwrap();
    let exact = (((0.25f64 + s).ln() + (0.75 + s).ln()) / 2.0 - (0.5 + s).ln()).abs();
    assert!((d - exact).abs() < 1e-15, "{d} vs {exact}");
    assert!((d - 0.5 * (4.0f64 / 3.0).ln()).abs() < 1e-7);
    assert!((d - 0.143_841_036).abs() < 1e-7);
}

#[test]
fn hand_computed_cosine() {
    // <p, q> = 1/8 + 3/8 = 1/2, |p| = sqrt(10)/4, |q| = 1/sqrt 2: cos = 2/sqrt 5,
    // d = 1 - 2/sqrt 5 = 0.105572809...
    let (a, b) = hand_pair();
    let d = distance(&a, &b, TaskDistance::Cosine, HeadRule::Pad).unwrap();
    let expected = 1.0 - 2.0 / 5f64.sqrt();
    assert!((d - expected).abs() < 1e-15, "{d} vs {expected}");
}

#[test]
fn hand_computed_head_padding() {
    // a: body (1, 1), head (1, 1) -> padded to (1, 1, 0): p = (1/4, 1/4, 1/4, 1/4, 0).
    // b: body (1, 1), head (1, 1, 2):                   q = (1/6, 1/6, 1/6, 1/6, 1/3).
    // pad:     d^2 = 1 - 4 sqrt(1/24) = 1 - sqrt(2/3).
    // exclude: body only, p = q = (1/2, 1/2): d = 0.
    let a = diag(&[("body", &[2], &[1.0, 1.0]), ("fc.bias", &[2], &[1.0, 1.0])]);
    let b = diag(&[
        ("body", &[2], &[1.0, 1.0]),
        ("fc.bias", &[3], &[1.0, 1.0, 2.0]),
    ]);
    let pad = distance(&a, &b, TaskDistance::Ftd, HeadRule::Pad).unwrap();
    let expected = (1.0 - (2.0f64 / 3.0).sqrt()).sqrt();
    assert!((pad - expected).abs() < 1e-15, "{pad} vs {expected}");
    assert_eq!(
        distance(&a, &b, TaskDistance::Ftd, HeadRule::Exclude).unwrap(),
        0.0
    );
    // The padding is along dimension 0 of a 2-D head: rows of zeros at the end.
    let a2 = diag(&[("fc.weight", &[1, 2], &[1.0, 3.0])]);
    let b2 = diag(&[("fc.weight", &[2, 2], &[1.0, 3.0, 0.0, 0.0])]);
    assert_eq!(
        distance(&a2, &b2, TaskDistance::Ftd, HeadRule::Pad).unwrap(),
        0.0
    );
}

#[test]
fn metric_and_head_names_round_trip() {
    for metric in METRICS {
        let parsed: TaskDistance = metric.to_string().parse().unwrap();
        assert_eq!(parsed.name(), metric.name());
    }
    assert_eq!(
        "logdet".parse::<TaskDistance>().unwrap(),
        TaskDistance::logdet()
    );
    assert_eq!("FTD".parse::<TaskDistance>().unwrap(), TaskDistance::Ftd);
    assert!(matches!(
        "kl".parse::<TaskDistance>(),
        Err(DistanceError::UnknownMetric(_))
    ));
    for head in HEADS {
        assert_eq!(head.to_string().parse::<HeadRule>().unwrap(), head);
    }
    assert!("crop".parse::<HeadRule>().is_err());
    assert_eq!(
        TaskDistance::logdet().with_sigma2(1e-4),
        TaskDistance::LogDet { sigma2: 1e-4 }
    );
    let json = serde_json::to_string(&TaskDistance::LogDet { sigma2: 1e-8 }).unwrap();
    assert_eq!(json, r#"{"name":"logdet","sigma2":1e-8}"#);
}

#[test]
fn degenerate_inputs_are_errors() {
    let (a, b) = hand_pair();
    for bad in [0.0, -1.0, f64::NAN] {
        let e = distance(&a, &b, TaskDistance::LogDet { sigma2: bad }, HeadRule::Pad).unwrap_err();
        assert!(matches!(e, DistanceError::InvalidSigma2(_)), "{e}");
    }
    let zero = diag(&[("u", &[1], &[0.0]), ("v", &[1], &[0.0])]);
    let e = distance(&a, &zero, TaskDistance::Ftd, HeadRule::Pad).unwrap_err();
    assert!(matches!(e, DistanceError::ZeroTrace("second")), "{e}");
    // Every tensor is a head of different size and excluded: nothing left.
    let h2 = diag(&[("fc.bias", &[2], &[1.0, 1.0])]);
    let h3 = diag(&[("fc.bias", &[3], &[1.0, 1.0, 1.0])]);
    let e = distance(&h2, &h3, TaskDistance::Ftd, HeadRule::Exclude).unwrap_err();
    assert!(matches!(e, DistanceError::Empty), "{e}");
}

#[test]
fn files_compare_and_a_corrupt_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = hand_pair();
    let (pa, pb) = (
        dir.path().join("a.safetensors"),
        dir.path().join("b.safetensors"),
    );
    a.save(&pa).unwrap();
    b.save(&pb).unwrap();
    let c = compare_files(&pa, &pb, TaskDistance::Ftd, HeadRule::Pad).unwrap();
    assert!((c.distance - 2f64.sqrt() * 7.5f64.to_radians().sin()).abs() < 1e-15);
    assert_eq!((c.entries, c.tensors), (2, 2));

    let bad = dir.path().join("broken-fisher.safetensors");
    std::fs::write(&bad, b"definitely not safetensors").unwrap();
    let e = compare_files(&pa, &bad, TaskDistance::Ftd, HeadRule::Pad).unwrap_err();
    assert!(e.to_string().contains("broken-fisher.safetensors"), "{e}");
    let e = compare_files(
        dir.path().join("nope.safetensors"),
        &pb,
        TaskDistance::Ftd,
        HeadRule::Pad,
    )
    .unwrap_err();
    assert!(e.to_string().contains("nope.safetensors"), "{e}");
}

/// `exclude` is the default head rule: padding compares output rows of unrelated classes.
#[test]
fn the_default_head_rule_is_exclude() {
    assert_eq!(HeadRule::default(), HeadRule::Exclude);
    assert_eq!("EXCLUDE".parse::<HeadRule>().unwrap(), HeadRule::Exclude);
    // A 2-class head against a 10-class one: padding counts the 8 missing rows as zeros,
    // excluding leaves the heads out.
    let a = diag(&[
        ("conv.weight", &[2], &[1.0, 1.0]),
        ("fc.weight", &[2], &[1.0, 1.0]),
    ]);
    let b = diag(&[
        ("conv.weight", &[2], &[1.0, 1.0]),
        ("fc.weight", &[10], &[1.0; 10]),
    ]);
    let excluded = distance(&a, &b, TaskDistance::Ftd, HeadRule::default()).unwrap();
    assert!(excluded.abs() < 1e-9, "{excluded}");
    assert!(distance(&a, &b, TaskDistance::Ftd, HeadRule::Pad).unwrap() > 0.1);
}
