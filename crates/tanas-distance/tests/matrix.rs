//! Distance matrices: mean / std over seeds, JSON / CSV files and heatmaps.

#![allow(clippy::unwrap_used)]

use tanas_distance::{DistanceError, DistanceMatrix, HeadRule, TaskDistance};

const TASKS: [&str; 3] = ["mnist-0", "mnist-1", "mnist-3"];

/// Three seeds; cell (mnist-0 -> mnist-1) holds 0.1, 0.2, 0.4; (mnist-1 -> mnist-0) only seed 0;
/// the diagonal is 0; the rest is unset except (mnist-3 -> mnist-1) = 0.5 for two seeds.
fn example() -> DistanceMatrix {
    let mut m = DistanceMatrix::new(TASKS, TaskDistance::Ftd, HeadRule::Pad).unwrap();
    for (seed, v) in [(0u64, 0.1), (1, 0.2), (2, 0.4)] {
        m.set(seed, "mnist-0", "mnist-1", v).unwrap();
        for t in TASKS {
            m.set(seed, t, t, 0.0).unwrap();
        }
    }
    m.set(0, "mnist-1", "mnist-0", 0.3).unwrap();
    m.set(0, "mnist-3", "mnist-1", 0.5).unwrap();
    m.set(2, "mnist-3", "mnist-1", 0.5).unwrap();
    m
}

#[test]
fn mean_and_std_over_seeds_match_hand_values() {
    let m = example();
    assert_eq!(m.seeds(), [0, 1, 2]);
    let (mean, std, count) = (m.mean(), m.std(), m.count());
    // 0.1, 0.2, 0.4: mean 0.7/3; sample variance ((-2/15)^2 + (-1/30)^2 + (1/6)^2) / 2 = 7/300.
    assert!((mean[0][1].unwrap() - 0.7 / 3.0).abs() < 1e-15);
    assert!((std[0][1].unwrap() - (7.0f64 / 300.0).sqrt()).abs() < 1e-15);
    assert!((std[0][1].unwrap() - 0.152_752_523).abs() < 1e-9);
    assert_eq!(count[0][1], 3);
    // One seed: std 0.
    assert_eq!(
        (mean[1][0], std[1][0], count[1][0]),
        (Some(0.3), Some(0.0), 1)
    );
    // Two equal values: std 0.
    assert_eq!((mean[2][1], std[2][1]), (Some(0.5), Some(0.0)));
    // Never set: no value.
    assert_eq!((mean[0][2], std[0][2], count[0][2]), (None, None, 0));
    assert_eq!(mean[1][1], Some(0.0));
    assert!(!m.is_complete());
    assert_eq!(m.get(1, "mnist-0", "mnist-1"), Some(0.2));
    assert_eq!(m.get(1, "mnist-1", "mnist-0"), None);
}

#[test]
fn closest_source_is_the_column_minimum_off_the_diagonal() {
    let m = example();
    // Column mnist-1: mnist-0 (0.233) and mnist-3 (0.5); the diagonal does not count.
    let (task, d) = m.closest_source("mnist-1").unwrap().unwrap();
    assert_eq!(task, "mnist-0");
    assert!((d - 0.7 / 3.0).abs() < 1e-15);
    assert_eq!(m.closest_source("mnist-3").unwrap(), None);
    assert!(m.closest_source("cifar").is_err());
}

#[test]
fn bad_inputs_are_errors() {
    assert!(matches!(
        DistanceMatrix::new(Vec::<String>::new(), TaskDistance::Ftd, HeadRule::Pad),
        Err(DistanceError::NoTasks)
    ));
    assert!(matches!(
        DistanceMatrix::new(["a", "b", "a"], TaskDistance::Ftd, HeadRule::Pad),
        Err(DistanceError::DuplicateTask(_))
    ));
    let mut m = example();
    let e = m.set(0, "mnist-0", "mnist-9", 0.1).unwrap_err();
    assert!(
        e.to_string().contains("mnist-9") && e.to_string().contains("mnist-3"),
        "{e}"
    );
    for bad in [f64::NAN, -0.1, f64::INFINITY] {
        assert!(matches!(
            m.set(0, "mnist-0", "mnist-1", bad),
            Err(DistanceError::InvalidValue { .. })
        ));
    }
}

#[test]
fn merge_combines_seeds_from_two_runs() {
    let mut a = DistanceMatrix::new(TASKS, TaskDistance::Ftd, HeadRule::Pad).unwrap();
    let mut b = a.clone();
    a.set(0, "mnist-0", "mnist-1", 0.1).unwrap();
    b.set(1, "mnist-0", "mnist-1", 0.3).unwrap();
    a.merge(&b).unwrap();
    assert_eq!(a.seeds(), [0, 1]);
    assert!((a.mean()[0][1].unwrap() - 0.2).abs() < 1e-15);
    let other = DistanceMatrix::new(TASKS, TaskDistance::Cosine, HeadRule::Pad).unwrap();
    assert!(matches!(
        a.merge(&other),
        Err(DistanceError::Incompatible(_))
    ));
}

#[test]
fn json_round_trip_and_csv_content() {
    let dir = tempfile::tempdir().unwrap();
    let m = example();
    let json = dir.path().join("ftd.json");
    m.write_json(&json).unwrap();
    let back = DistanceMatrix::read_json(&json).unwrap();
    assert_eq!(back, m);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["format"], "tanas-distance-matrix/1");
    assert_eq!(v["metric"]["name"], "ftd");
    assert_eq!(v["head"], "pad");
    assert_eq!(v["tasks"][2], "mnist-3");
    assert_eq!(v["per_seed"]["1"][0][1], 0.2);
    assert!(v["mean"][0][2].is_null());
    assert_eq!(v["count"][0][1], 3);

    let logdet = DistanceMatrix::new(
        ["a"],
        TaskDistance::LogDet { sigma2: 1e-6 },
        HeadRule::Exclude,
    )
    .unwrap();
    let p = dir.path().join("ld.json");
    logdet.write_json(&p).unwrap();
    assert_eq!(DistanceMatrix::read_json(&p).unwrap(), logdet);

    let csv_path = dir.path().join("ftd.csv");
    m.write_csv(&csv_path).unwrap();
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "source,target,n,mean,std,seed_0,seed_1,seed_2");
    assert_eq!(lines.len(), 1 + 9);
    let row: Vec<&str> = lines[2].split(',').collect();
    assert_eq!(&row[..3], ["mnist-0", "mnist-1", "3"]);
    assert!((row[3].parse::<f64>().unwrap() - 0.7 / 3.0).abs() < 1e-15);
    assert!((row[4].parse::<f64>().unwrap() - (7.0f64 / 300.0).sqrt()).abs() < 1e-15);
    assert_eq!(&row[5..], ["0.1", "0.2", "0.4"]);
    assert_eq!(lines[3], "mnist-0,mnist-3,0,,,,,");
    assert_eq!(lines[4], "mnist-1,mnist-0,1,0.3,0,0.3,,");

    // Only the written files are in the directory (atomic writes leave no temp file).
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);

    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{\"format\": 3}").unwrap();
    let e = DistanceMatrix::read_json(&broken).unwrap_err();
    assert!(e.to_string().contains("broken.json"), "{e}");
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR");
    let w = u32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
    let h = u32::from_be_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
    (w, h)
}

#[test]
fn heatmaps_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let m = example();
    let files = m.write_all(dir.path().join("out"), "ftd").unwrap();
    if let Ok(d) = std::env::var("TANAS_HEATMAP_DIR") {
        m.write_heatmaps(&d, "example").unwrap();
    }
    for p in [&files.json, &files.csv, &files.svg, &files.png] {
        assert!(p.exists(), "{}", p.display());
    }
    let svg = std::fs::read_to_string(&files.svg).unwrap();
    assert!(svg.starts_with("<svg"));
    let (w, h) = m.heatmap_size().unwrap();
    assert!(svg.contains(&format!("width=\"{w}\"")) && svg.contains(&format!("height=\"{h}\"")));
    // Cell texts (3 decimals), task ids, n/a for missing cells, the title.
    for text in [
        "0.233", "0.153", "0.300", "0.500", "0.000", "n/a", "mnist-3", "FTD", "3 seeds",
    ] {
        assert!(svg.contains(text), "SVG lacks {text:?}");
    }
    let png = std::fs::read(&files.png).unwrap();
    assert_eq!(png_size(&png), (w, h));
    assert!(png.len() > 2_000, "PNG of {} bytes", png.len());
    // A decoded PNG has non-white pixels (cells were drawn).
    let decoder = png::Decoder::new(std::io::Cursor::new(&png));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    reader.next_frame(&mut buf).unwrap();
    assert!(buf.iter().filter(|&&b| b < 200).count() > 10_000);
}

#[test]
fn heatmap_of_many_tasks_and_one_seed() {
    let tasks: Vec<String> = (0..12).map(|i| format!("cifar100-task-{i}")).collect();
    let mut m = DistanceMatrix::new(tasks.clone(), TaskDistance::logdet(), HeadRule::Pad).unwrap();
    for (i, a) in tasks.iter().enumerate() {
        for (j, b) in tasks.iter().enumerate() {
            m.set(7, a, b, (i as f64 - j as f64).abs() * 0.37).unwrap();
        }
    }
    let svg = m.heatmap_svg().unwrap();
    assert!(svg.contains("4.070") && svg.contains("1 seed"));
    let png = m.heatmap_png().unwrap();
    assert_eq!(png_size(&png), m.heatmap_size().unwrap());
    if let Ok(d) = std::env::var("TANAS_HEATMAP_DIR") {
        m.write_heatmaps(&d, "many").unwrap();
    }
}
