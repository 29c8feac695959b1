//! `cargo xtask bench conv [--devices cuda,cudnn] [--torch PYTHON] [--steps N]`: milliseconds
//! per call of a convolution's three passes (forward, data gradient, weight gradient) on
//! ResNet-18's and DARTS's shapes: `tanas bench conv` once per device, then
//! `fixtures/torch/bench_conv.py` on the shapes tanas printed, in one run. One table (ms per
//! device and PyTorch's, and each device's ratio to PyTorch: below 1, tanas faster), the
//! rows as JSON in `target/bench/conv.json`.

use std::path::Path;

use anyhow::{Context, Result};
use serde_json::{Map, Value, json};
use tanas_core::write_atomic;

use crate::bench::{table, torch_json};
use crate::tanas::Tanas;

/// Runs the convolution benchmark with the `tanas` binary `bin`; `reps` timed calls per pass.
pub fn run(
    bin: &Path,
    root: &Path,
    devices: &[String],
    torch: Option<(&Path, &str)>,
    reps: usize,
) -> Result<()> {
    let bench = root.join("target/bench");
    std::fs::create_dir_all(&bench).context("target/bench")?;
    let reps_arg = reps.to_string();
    let mut rows: Vec<Map<String, Value>> = Vec::new();
    for device in devices {
        eprintln!("tanas bench conv on {device}");
        let tanas = Tanas {
            bin: bin.to_path_buf(),
            root: root.to_path_buf(),
            device: device.clone(),
            store: None,
        };
        let got: Vec<Map<String, Value>> =
            tanas.json(&["bench", "conv", "--json", "--reps", &reps_arg])?;
        for mut r in got {
            eprintln!(
                "{} {} on {device}: {} ms",
                r.get("name").unwrap_or(&Value::Null),
                r.get("pass").unwrap_or(&Value::Null),
                r.get("ms").unwrap_or(&Value::Null)
            );
            r.insert("side".into(), json!("tanas"));
            r.insert("device".into(), json!(device));
            rows.push(r);
        }
    }
    if let Some((python, torch_device)) = torch {
        let shapes = bench.join("conv-shapes.json");
        write_atomic(&shapes, serde_json::to_string(&rows)?.as_bytes())?;
        eprintln!("PyTorch on {torch_device}");
        let args = [
            "--shapes".to_string(),
            shapes.display().to_string(),
            "--reps".to_string(),
            reps_arg.clone(),
            "--device".to_string(),
            torch_device.to_string(),
        ];
        let got: Vec<Map<String, Value>> =
            serde_json::from_value(torch_json(python, root, "bench_conv.py", &args)?)
                .context("bench_conv.py: not an array of objects")?;
        rows.extend(got);
    }
    print!("{}", table(&summary(&rows, devices))?);
    println!(
        "ms per call; <device>/pytorch = tanas ms / PyTorch ms (below 1: tanas faster); TF32 {}",
        if std::env::var("TANAS_TF32").is_ok_and(|v| v == "1") {
            "on (TANAS_TF32=1)"
        } else {
            "off"
        }
    );
    let json = serde_json::to_string_pretty(&rows)?;
    println!("{json}");
    let out = bench.join("conv.json");
    write_atomic(&out, json.as_bytes())?;
    eprintln!("JSON: {}", out.display());
    Ok(())
}

/// One row per shape and pass: each device's ms, PyTorch's, and the ratios.
fn summary(rows: &[Map<String, Value>], devices: &[String]) -> Value {
    let ms = |side: &str, device: Option<&str>, name: &Value, pass: &Value| {
        rows.iter()
            .find(|r| {
                r.get("side").and_then(Value::as_str) == Some(side)
                    && (device.is_none() || r.get("device").and_then(Value::as_str) == device)
                    && r.get("name") == Some(name)
                    && r.get("pass") == Some(pass)
            })
            .and_then(|r| r.get("ms"))
            .and_then(Value::as_f64)
    };
    let mut out = Vec::new();
    let first = devices.first().map(String::as_str);
    for r in rows.iter().filter(|r| {
        r.get("side").and_then(Value::as_str) == Some("tanas")
            && r.get("device").and_then(Value::as_str) == first
    }) {
        let (name, pass) = (&r["name"], &r["pass"]);
        let py = ms("pytorch", None, name, pass);
        let mut s = Map::new();
        s.insert("shape".into(), name.clone());
        s.insert("pass".into(), pass.clone());
        for d in devices {
            let t = ms("tanas", Some(d), name, pass);
            s.insert(format!("{d}_ms"), t.into());
            if let (Some(t), Some(p)) = (t, py) {
                s.insert(format!("{d}/pytorch"), json!(t / p));
            }
        }
        if py.is_some() {
            s.insert("pytorch_ms".into(), py.into());
        }
        out.push(Value::Object(s));
    }
    Value::Array(out)
}
