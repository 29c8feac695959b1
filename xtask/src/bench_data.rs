//! `cargo xtask bench data [--torch PYTHON] [--rounds N]`: loading a folder of 70,000 PNG
//! files (Fashion-MNIST written in torchvision's ImageFolder layout) as a declared
//! `image-folder` dataset, against torchvision's ImageFolder with PIL, in one run:
//!
//! - `tanas cold`: `tanas task show` of a task on it with an empty cache: listing, decoding,
//!   keeping the decoded set in the cache; the whole process's wall-clock time.
//! - `tanas cached`: the same again: the decoded set found in the cache.
//! - `tanas idx`: the same images read from the IDX files by the built-in reader.
//! - `torchvision wN`: `fixtures/torch/bench_data.py time` (ImageFolder, its PIL loader,
//!   PILToTensor, a DataLoader of batches of 256 with N workers), its own timer (Python's
//!   start-up and imports left out).
//!
//! The PNG folder is written once by `bench_data.py make` into `target/bench/fashion-png`
//! from the full Fashion-MNIST (`/usr/share/datasets/fashion-mnist`, Debian's
//! `dataset-fashion-mnist`), else the embedded subset. Every round runs every side once, in
//! turn; the table shows each side's median. JSON in `target/bench/data.json`.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tanas_core::write_atomic;

use crate::bench::torch_json;

/// The PyTorch side, in fixtures/torch.
const SCRIPT: &str = "bench_data.py";

/// Runs the data benchmark with the `tanas` binary `bin`.
pub fn run(bin: &Path, root: &Path, torch: Option<&Path>, rounds: usize) -> Result<()> {
    let Some(python) = torch else {
        bail!(
            "bench data needs --torch PYTHON (with torch, torchvision and pillow): it writes the PNG folder and times torchvision"
        );
    };
    let bench = root.join("target/bench");
    let idx = ["/usr/share/datasets/fashion-mnist", "data/fashion-mnist"]
        .iter()
        .map(|d| root.join(d))
        .find(|d| {
            d.join("train-images-idx3-ubyte.gz").is_file()
                || d.join("train-images-idx3-ubyte").is_file()
        })
        .context(
            "no Fashion-MNIST IDX files (/usr/share/datasets/fashion-mnist or data/fashion-mnist)",
        )?;
    let pngs = bench.join("fashion-png");
    if !pngs.join("test").is_dir() {
        eprintln!("writing {} from {}", pngs.display(), idx.display());
        let make = [
            "make".into(),
            idx.display().to_string(),
            pngs.display().to_string(),
        ];
        torch_json(python, root, SCRIPT, &make)?;
    }
    let tasks = bench.join("data-tasks.toml");
    const TASKS: &str = "[[dataset]]\nname = \"fashion-png\"\nformat = \"image-folder\"\npath = \"fashion-png\"\ninput_side = 28\n\n[[task]]\nid = \"png\"\ndataset = \"fashion-png\"\nkind = \"full\"\n\n[[task]]\nid = \"idx\"\ndataset = \"fashion-mnist\"\nkind = \"full\"\n";
    write_atomic(&tasks, TASKS.as_bytes())?;
    let cache = bench.join("data-cache");
    let idx_parent = idx.parent().map(Path::to_path_buf).unwrap_or_default();
    let tanas = |task: &str| -> Result<f64> {
        let t0 = Instant::now();
        let out = Command::new(bin)
            .arg("--cache-dir")
            .arg(&cache)
            .arg("--data-dir")
            .arg(&idx_parent)
            .args(["task", "show", "--json", "--task", task, "--tasks"])
            .arg(&tasks)
            .current_dir(root)
            .output()
            .with_context(|| format!("cannot run {}", bin.display()))?;
        if !out.status.success() {
            bail!(
                "tanas task show: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(t0.elapsed().as_secs_f64())
    };
    let sides = [
        "tanas cold",
        "tanas cached",
        "tanas idx",
        "torchvision w0",
        "torchvision w2",
    ];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); sides.len()];
    let mut images = 0;
    for round in 1..=rounds {
        eprintln!("round {round}/{rounds}");
        if cache.exists() {
            std::fs::remove_dir_all(&cache).with_context(|| cache.display().to_string())?;
        }
        times[0].push(tanas("png")?);
        times[1].push(tanas("png")?);
        times[2].push(tanas("idx")?);
        for (i, workers) in [(3, "0"), (4, "2")] {
            let time = [
                "time".into(),
                pngs.display().to_string(),
                "--workers".into(),
                workers.into(),
            ];
            let row = torch_json(python, root, SCRIPT, &time)?;
            images = row["images"].as_u64().unwrap_or(0);
            times[i].push(
                row["seconds"]
                    .as_f64()
                    .context("bench_data.py: no seconds")?,
            );
        }
    }
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[(v.len() - 1) / 2]
    };
    let torch_best = median(&times[3]).min(median(&times[4]));
    let rows: Vec<Value> = sides
        .iter()
        .zip(&times)
        .map(|(side, t)| {
            let s = median(t);
            json!({
                "side": side,
                "images": images,
                "seconds": s,
                "images_per_second": images as f64 / s,
                "speedup_vs_best_torchvision": torch_best / s,
                "rounds": t,
            })
        })
        .collect();
    let summary: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "side": r["side"],
                "images": r["images"],
                "seconds": r["seconds"],
                "images_per_second": r["images_per_second"],
                "vs_torchvision": r["speedup_vs_best_torchvision"],
            })
        })
        .collect();
    print!("{}", crate::bench::table(&Value::Array(summary))?);
    println!(
        "median of {rounds} round(s); vs_torchvision = the faster torchvision time / this side's (above 1: faster than torchvision)"
    );
    let text = serde_json::to_string_pretty(&rows)?;
    println!("{text}");
    let out = bench.join("data.json");
    write_atomic(&out, text.as_bytes())?;
    eprintln!("JSON: {}", out.display());
    Ok(())
}
