//! `cargo xtask bench data` is [`crate::bench_data`], `cargo xtask bench conv`
//! [`crate::bench_conv`].
//!
//! `cargo xtask bench fisher | train [--devices cpu,flex] [--torch PYTHON]`: runs
//! `tanas bench` once per network and per device (one process each, so the peak memory of a
//! row is that network's; dev profile: burn optimised, see Cargo.toml) and, with `--torch`,
//! `PYTHON fixtures/torch/bench.py` for the same network right after, so that both sides of
//! a network run under the same machine load; `--rounds N` repeats that, alternating, and the
//! table shows each side's median round. Prints one table with both sides and the ratios,
//! then every row as JSON; the JSON is also written to `target/bench/<what>.json` so
//! docs/perf.md can quote one run.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::Parser;
use serde_json::{Map, Value, json};

use crate::tanas::{Tanas, build_tanas, is_gpu, workspace_root};
use tanas_core::write_atomic;

/// The genotype of the default cell networks (DARTS_V2), relative to the workspace root.
const DARTS_V2: &str = "configs/genotypes/darts_v2.json";

/// The default cell network skeletons (C, L) of `train`.
const DEFAULT_SKELETONS: [(usize, usize); 2] = [(16, 8), (8, 5)];

/// Options of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// What to measure: `fisher`, `train`, `conv` (a convolution's passes, per shape) or
    /// `data` (loading an image folder, against torchvision).
    what: String,
    /// Devices of the tanas side (`cpu`, `flex`, `cuda[:N]`, `cudnn[:N]`), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "cpu", alias = "device")]
    devices: Vec<String>,
    /// Also time PyTorch: this Python (with torch) runs fixtures/torch/bench.py.
    #[arg(long)]
    torch: Option<PathBuf>,
    /// The PyTorch side's device (default: `cuda` when the first tanas device is CUDA, else
    /// `cpu`).
    #[arg(long)]
    torch_device: Option<String>,
    /// A prebuilt `tanas` binary (default: build one; `--features cuda` for CUDA devices).
    #[arg(long)]
    tanas: Option<PathBuf>,
    /// Threads of the PyTorch side (`torch.set_num_threads`).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Rounds per network, the sides alternating (tanas, PyTorch, tanas, ...); the table
    /// shows each side's median round (default: train 3, fisher 1).
    #[arg(long)]
    rounds: Option<usize>,
    /// The networks and their settings.
    #[command(flatten)]
    nets: NetFlags,
    /// The same options as above, after `--` (as in `cargo xtask bench train -- --archs
    /// small-cnn`); they take precedence.
    #[arg(last = true)]
    extra: Vec<String>,
}

/// Which networks, with which settings (the options of `tanas bench`).
#[derive(Debug, Clone, Default, PartialEq, clap::Args)]
struct NetFlags {
    /// Architectures (default: train: small-cnn, resnet18, cellnet; fisher: small-cnn,
    /// resnet18). `cellnet` without --channels/--layers means DARTS_V2 at C=16 L=8 and C=8 L=5.
    #[arg(long, value_delimiter = ',')]
    archs: Option<Vec<String>>,
    /// Mini-batch size of every network (default: train 128, cell networks 64; fisher 128).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Timed training steps after 2 warm-up steps (default 5); `conv`: timed calls per
    /// pass (default 20).
    #[arg(long)]
    steps: Option<usize>,
    /// Fisher samples (default 512).
    #[arg(long)]
    samples: Option<usize>,
    /// Samples the per-sample Fisher loop is timed on, extrapolated to --samples (default:
    /// tanas 64, PyTorch all).
    #[arg(long)]
    naive_samples: Option<usize>,
    /// Genotype of the cell networks (default: configs/genotypes/darts_v2.json).
    #[arg(long)]
    genotype: Option<String>,
    /// Initial channels C of the cell networks.
    #[arg(long)]
    channels: Option<usize>,
    /// Number of cells L of the cell networks.
    #[arg(long)]
    layers: Option<usize>,
}

/// The options after `--`.
#[derive(Debug, Parser)]
#[command(name = "tanas bench", no_binary_name = true)]
struct Extra {
    #[command(flatten)]
    nets: NetFlags,
    /// Accepted and ignored (the rows are always read as JSON).
    #[arg(long, hide = true)]
    json: bool,
}

impl NetFlags {
    /// `self` with every option `over` sets replaced.
    fn overridden_by(self, over: NetFlags) -> NetFlags {
        NetFlags {
            archs: over.archs.or(self.archs),
            batch_size: over.batch_size.or(self.batch_size),
            steps: over.steps.or(self.steps),
            samples: over.samples.or(self.samples),
            naive_samples: over.naive_samples.or(self.naive_samples),
            genotype: over.genotype.or(self.genotype),
            channels: over.channels.or(self.channels),
            layers: over.layers.or(self.layers),
        }
    }
}

/// One benchmarked network.
#[derive(Debug, Clone, PartialEq)]
struct Network {
    arch: String,
    batch_size: usize,
    /// Genotype file, C and L of a cell network.
    cells: Option<(String, usize, usize)>,
}

impl Network {
    /// `small-cnn`, or `darts_v2 C=16 L=8` for a cell network.
    fn label(&self) -> String {
        match &self.cells {
            None => self.arch.clone(),
            Some((genotype, c, l)) => {
                let stem = Path::new(genotype)
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| self.arch.clone());
                format!("{stem} C={c} L={l}")
            }
        }
    }

    /// The options naming this network, the same for `tanas bench` and bench.py.
    fn args(&self) -> Vec<String> {
        let mut args = vec![
            "--archs".to_string(),
            self.arch.clone(),
            "--batch-size".to_string(),
            self.batch_size.to_string(),
        ];
        if let Some((genotype, c, l)) = &self.cells {
            args.extend([
                "--genotype".to_string(),
                genotype.clone(),
                "--channels".to_string(),
                c.to_string(),
                "--layers".to_string(),
                l.to_string(),
            ]);
        }
        args
    }
}

/// The networks of `what` under `flags` (see [`NetFlags`] for the defaults).
fn networks(what: &str, flags: &NetFlags) -> Vec<Network> {
    let default_archs: &[&str] = if what == "train" {
        &["small-cnn", "resnet18", "cellnet"]
    } else {
        &["small-cnn", "resnet18"]
    };
    let archs = flags
        .archs
        .clone()
        .unwrap_or_else(|| default_archs.iter().map(|a| a.to_string()).collect());
    let skeletons = match (flags.channels, flags.layers) {
        (None, None) => DEFAULT_SKELETONS.to_vec(),
        (c, l) => vec![(c.unwrap_or(16), l.unwrap_or(8))],
    };
    let genotype = flags.genotype.clone().unwrap_or_else(|| DARTS_V2.into());
    let mut out = Vec::new();
    for arch in archs {
        if arch == "cellnet" {
            let batch_size = flags
                .batch_size
                .unwrap_or(if what == "train" { 64 } else { 128 });
            for &(c, l) in &skeletons {
                out.push(Network {
                    arch: arch.clone(),
                    batch_size,
                    cells: Some((genotype.clone(), c, l)),
                });
            }
        } else {
            out.push(Network {
                arch,
                batch_size: flags.batch_size.unwrap_or(128),
                cells: None,
            });
        }
    }
    out
}

/// The options common to every network of `what`.
fn common_args(what: &str, flags: &NetFlags) -> Vec<String> {
    let mut args = Vec::new();
    if what == "train" {
        args.extend(["--steps".to_string(), flags.steps.unwrap_or(5).to_string()]);
    } else {
        args.extend([
            "--samples".to_string(),
            flags.samples.unwrap_or(512).to_string(),
        ]);
        if let Some(n) = flags.naive_samples {
            args.extend(["--naive-samples".to_string(), n.to_string()]);
        }
    }
    args
}

/// Runs the benchmark.
pub fn run(args: &BenchArgs) -> Result<()> {
    let what = args.what.as_str();
    if !matches!(what, "fisher" | "train" | "conv" | "data") {
        bail!("unknown benchmark `{what}` (fisher, train, conv, data)");
    }
    if what == "data" {
        let root = workspace_root();
        let bin = match &args.tanas {
            Some(bin) => bin.clone(),
            None => build_tanas(&root, false)?,
        };
        return crate::bench_data::run(
            &bin,
            &root,
            args.torch.as_deref(),
            args.rounds.unwrap_or(3).max(1),
        );
    }
    let mut flags = args.nets.clone();
    if !args.extra.is_empty() {
        let extra = Extra::try_parse_from(&args.extra)
            .map_err(|e| anyhow::anyhow!("options after `--`: {}", e.to_string().trim()))?;
        flags = flags.overridden_by(extra.nets);
    }
    let nets = networks(what, &flags);
    if nets.is_empty() {
        bail!("no networks to benchmark");
    }
    let root = workspace_root();
    let cuda = args.devices.iter().any(|d| is_gpu(d));
    let bin = match &args.tanas {
        Some(bin) => bin.clone(),
        None => build_tanas(&root, cuda)?,
    };
    let torch_device = args.torch_device.clone().unwrap_or_else(|| {
        let first = args.devices.first().map(String::as_str).unwrap_or("cpu");
        if is_gpu(first) { "cuda" } else { "cpu" }.to_string()
    });
    if what == "conv" {
        let torch = args.torch.as_deref().map(|p| (p, torch_device.as_str()));
        let reps = flags.steps.unwrap_or(20).max(1);
        return crate::bench_conv::run(&bin, &root, &args.devices, torch, reps);
    }
    let common = common_args(what, &flags);
    let rounds = args
        .rounds
        .unwrap_or(if what == "train" { 3 } else { 1 })
        .max(1);
    let mut rows = Vec::new();
    for (i, net) in nets.iter().enumerate() {
        let label = net.label();
        let mut call: Vec<String> = vec!["bench".into(), what.into(), "--json".into()];
        call.extend(net.args());
        call.extend(common.iter().cloned());
        for round in 1..=rounds {
            let at = format!(
                "[{}/{}] {label} (round {round}/{rounds})",
                i + 1,
                nets.len()
            );
            for device in &args.devices {
                eprintln!("{at}: tanas on {device}");
                let tanas = Tanas {
                    bin: bin.clone(),
                    root: root.clone(),
                    device: device.clone(),
                    store: None,
                };
                let call: Vec<&str> = call.iter().map(String::as_str).collect();
                for row in rows_of(tanas.json(&call)?)? {
                    // Each number as soon as it is measured: a run cut short keeps them.
                    let key = main_key(what);
                    eprintln!(
                        "{at}: tanas on {device}: {key} {}",
                        row.get(key).unwrap_or(&Value::Null)
                    );
                    rows.push(Measured {
                        network: label.clone(),
                        device: Some(device.clone()),
                        row: tagged(row, "tanas", &label, round),
                    });
                }
            }
            if let Some(python) = &args.torch {
                eprintln!("{at}: PyTorch");
                let mut py: Vec<String> = vec![what.into()];
                py.extend(net.args());
                py.extend(common.iter().cloned());
                py.extend(["--threads".into(), args.threads.to_string()]);
                py.extend(["--device".into(), torch_device.clone()]);
                for row in rows_of(torch_json(python, &root, "bench.py", &py)?)? {
                    rows.push(Measured {
                        network: label.clone(),
                        device: None,
                        row: tagged(row, "pytorch", &label, round),
                    });
                }
            }
        }
    }
    let summary = summary(what, &rows, &args.devices);
    let rows = Value::Array(rows.into_iter().map(|m| Value::Object(m.row)).collect());
    let json = serde_json::to_string_pretty(&rows)?;
    print!("{}", table(&summary)?);
    println!("{}", legend(what));
    println!("{json}");
    let out = root.join("target/bench").join(format!("{what}.json"));
    std::fs::create_dir_all(out.parent().unwrap_or(Path::new("."))).context("target/bench")?;
    write_atomic(&out, json.as_bytes())?;
    eprintln!("JSON: {}", out.display());
    Ok(())
}

/// Runs `python fixtures/torch/SCRIPT ARGS` in `root` and parses its JSON output.
pub fn torch_json(python: &Path, root: &Path, script: &str, args: &[String]) -> Result<Value> {
    let script = root.join("fixtures/torch").join(script);
    let out = Command::new(python)
        .arg(&script)
        .args(args)
        .current_dir(root)
        .output()
        .with_context(|| format!("cannot run {}", python.display()))?;
    let shown = || {
        format!(
            "{} {} {}",
            python.display(),
            script.display(),
            args.join(" ")
        )
    };
    if !out.status.success() {
        bail!(
            "{}: {}",
            shown(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    serde_json::from_slice(&out.stdout).with_context(|| format!("{}: output is not JSON", shown()))
}

/// The rows of one benchmark call (a JSON array of objects).
fn rows_of(value: Value) -> Result<Vec<Map<String, Value>>> {
    serde_json::from_value(value).context("benchmark JSON: not an array of objects")
}

/// `row` with `side`, `network` and `round` first.
fn tagged(row: Map<String, Value>, side: &str, network: &str, round: usize) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("side".into(), json!(side));
    out.insert("network".into(), json!(network));
    out.insert("round".into(), json!(round));
    for (k, v) in row {
        out.entry(k).or_insert(v);
    }
    out
}

/// The column a benchmark's ratios are taken of: training images/s, or the exact Fisher's
/// seconds.
fn main_key(what: &str) -> &'static str {
    if what == "train" {
        "images_per_second"
    } else {
        "exact_s"
    }
}

/// What the ratio columns mean.
fn legend(what: &str) -> &'static str {
    if what == "train" {
        "images/s; <device>/pytorch = tanas images/s / PyTorch images/s (above 1: tanas faster); \
         peak = VmHWM of the process, MiB"
    } else {
        "seconds; pytorch_exact_s = PyTorch's fastest exact method (pytorch_method: per-sample \
         loop or vmap); <device>/pytorch = tanas exact_s / pytorch_exact_s (below 1: tanas faster)"
    }
}

/// One measured row: the network's label, the tanas device it ran on (`None`: PyTorch).
#[derive(Debug)]
struct Measured {
    network: String,
    device: Option<String>,
    row: Map<String, Value>,
}

/// One row per network: the tanas numbers per device, PyTorch's, and their ratios.
fn summary(what: &str, rows: &[Measured], devices: &[String]) -> Value {
    let mut labels: Vec<&str> = Vec::new();
    for m in rows {
        if !labels.contains(&m.network.as_str()) {
            labels.push(&m.network);
        }
    }
    let main = main_key(what);
    let num = |r: Option<&Map<String, Value>>, key: &str| {
        r.and_then(|r| r.get(key)).and_then(Value::as_f64)
    };
    // The median round of one side (the lower middle one of an even count).
    let find = |label: &str, device: Option<&str>| {
        let mut side: Vec<&Map<String, Value>> = rows
            .iter()
            .filter(|m| m.network == label && m.device.as_deref() == device)
            .map(|m| &m.row)
            .collect();
        side.sort_by(|a, b| {
            num(Some(a), main)
                .partial_cmp(&num(Some(b), main))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        side.get(side.len().saturating_sub(1) / 2).copied()
    };
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => json!(a / b),
        _ => Value::Null,
    };
    let torch = rows.iter().any(|m| m.device.is_none());
    let mut out = Vec::new();
    for label in labels {
        let py = find(label, None);
        let any = rows.iter().find(|m| m.network == label).map(|m| &m.row);
        let mut s = Map::new();
        s.insert("network".into(), json!(label));
        let key = if what == "train" {
            "batch_size"
        } else {
            "samples"
        };
        s.insert(key.into(), any.and_then(|r| r.get(key)).cloned().into());
        for d in devices {
            let t = find(label, Some(d));
            if what == "train" {
                s.insert(format!("{d}_img_s"), num(t, main).into());
                s.insert(format!("{d}_peak"), num(t, "peak_rss_mib").into());
            } else {
                s.insert(
                    format!("{d}_fwd_bwd_s"),
                    num(t, "forward_backward_s").into(),
                );
                s.insert(format!("{d}_exact_s"), num(t, main).into());
            }
            if torch {
                s.insert(format!("{d}/pytorch"), ratio(num(t, main), num(py, main)));
            }
        }
        if torch {
            if what == "train" {
                s.insert("pytorch_img_s".into(), num(py, main).into());
                s.insert("pytorch_peak".into(), num(py, "peak_rss_mib").into());
            } else {
                s.insert(
                    "pytorch_fwd_bwd_s".into(),
                    num(py, "forward_backward_s").into(),
                );
                s.insert("pytorch_exact_s".into(), num(py, main).into());
                s.insert(
                    "pytorch_method".into(),
                    py.and_then(|r| r.get("exact_method")).cloned().into(),
                );
                s.insert("pytorch_loop_s".into(), num(py, "loop_s").into());
                s.insert("pytorch_vmap_s".into(), num(py, "vmap_s").into());
            }
        }
        out.push(Value::Object(s));
    }
    Value::Array(out)
}

/// The rows of `tanas bench --json` (an array of flat objects) as an aligned text table.
pub fn table(json: &Value) -> Result<String> {
    let rows: Vec<serde_json::Map<String, Value>> =
        serde_json::from_value(json.clone()).context("benchmark JSON")?;
    let Some(first) = rows.first() else {
        return Ok(String::new());
    };
    let keys: Vec<&String> = first.keys().collect();
    let cell = |v: &serde_json::Value| match v {
        serde_json::Value::Number(n) if n.is_f64() => {
            format!("{:.3}", n.as_f64().unwrap_or_default())
        }
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        other => other.to_string(),
    };
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            keys.iter()
                .map(|k| row.get(*k).map(cell).unwrap_or_default())
                .collect()
        })
        .collect();
    // Each column as wide as its longest entry, plus two spaces.
    let widths: Vec<usize> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| cells.iter().map(|r| r[i].len()).fold(k.len(), usize::max) + 2)
        .collect();
    let line = |items: Vec<&str>| -> String {
        items
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:>w$}"))
            .collect::<String>()
            + "\n"
    };
    let mut out = line(keys.iter().map(|k| k.as_str()).collect());
    for row in &cells {
        out += &line(row.iter().map(String::as_str).collect());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_columns_fit_their_longest_entry() -> Result<()> {
        let t = table(&serde_json::json!([
            {"arch": "small-cnn", "forward_backward_s": 2.5},
            {"arch": "resnet18", "forward_backward_s": 73.25}
        ]))?;
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines.iter().all(|l| l.len() == lines[0].len()), "{t}");
        assert!(lines[0].contains(" arch  forward_backward_s"), "{t}");
        assert!(lines[2].ends_with("73.250"), "{t}");
        Ok(())
    }

    #[test]
    fn default_train_networks_are_the_four_of_the_issue() {
        let nets = networks("train", &NetFlags::default());
        let got: Vec<(String, usize)> = nets.iter().map(|n| (n.label(), n.batch_size)).collect();
        let want = [
            ("small-cnn", 128),
            ("resnet18", 128),
            ("darts_v2 C=16 L=8", 64),
            ("darts_v2 C=8 L=5", 64),
        ];
        assert_eq!(
            got,
            want.map(|(l, b)| (l.to_string(), b)).to_vec(),
            "{nets:?}"
        );
        assert_eq!(
            nets[2].args(),
            [
                "--archs",
                "cellnet",
                "--batch-size",
                "64",
                "--genotype",
                DARTS_V2,
                "--channels",
                "16",
                "--layers",
                "8"
            ]
        );
        let fisher = networks("fisher", &NetFlags::default());
        assert_eq!(
            fisher.iter().map(Network::label).collect::<Vec<_>>(),
            ["small-cnn", "resnet18"]
        );
    }

    #[test]
    fn options_after_the_separator_override_the_flags() -> Result<()> {
        let extra = Extra::try_parse_from([
            "--archs",
            "small-cnn,cellnet",
            "--channels",
            "4",
            "--batch-size",
            "2",
            "--json",
        ])?;
        let flags = NetFlags {
            batch_size: Some(8),
            steps: Some(1),
            ..NetFlags::default()
        }
        .overridden_by(extra.nets);
        assert_eq!(flags.steps, Some(1));
        let nets = networks("train", &flags);
        assert_eq!(nets.len(), 2, "{nets:?}");
        assert_eq!(nets[0].batch_size, 2);
        assert_eq!(nets[1].label(), "darts_v2 C=4 L=8");
        assert!(Extra::try_parse_from(["--nope"]).is_err());
        Ok(())
    }

    #[test]
    fn summary_pairs_both_sides_of_a_network() -> Result<()> {
        let row = |network: &str, device: Option<&str>, ips: f64, peak: f64| Measured {
            network: network.into(),
            device: device.map(String::from),
            row: rows_of(
                json!([{"batch_size": 128, "images_per_second": ips, "peak_rss_mib": peak}]),
            )
            .unwrap_or_default()
            .remove(0),
        };
        let rows = [
            row("small-cnn", Some("cpu"), 300.0, 100.0),
            row("small-cnn", None, 1200.0, 700.0),
            row("resnet18", Some("cpu"), 7.0, 900.0),
        ];
        let s = summary("train", &rows, &["cpu".to_string()]);
        assert_eq!(s[0]["cpu/pytorch"], json!(0.25));
        assert_eq!(s[0]["pytorch_peak"], json!(700.0));
        assert_eq!(s[1]["cpu/pytorch"], Value::Null);
        let t = table(&s)?;
        assert!(t.lines().nth(2).is_some_and(|l| l.contains('-')), "{t}");
        // Several rounds: each side's median round, its other fields included.
        let rounds = [
            row("small-cnn", Some("cpu"), 300.0, 100.0),
            row("small-cnn", Some("cpu"), 100.0, 101.0),
            row("small-cnn", Some("cpu"), 200.0, 102.0),
            row("small-cnn", None, 400.0, 700.0),
            row("small-cnn", None, 800.0, 701.0),
        ];
        let s = summary("train", &rounds, &["cpu".to_string()]);
        assert_eq!(s[0]["cpu_img_s"], json!(200.0));
        assert_eq!(s[0]["cpu_peak"], json!(102.0));
        assert_eq!(s[0]["cpu/pytorch"], json!(0.5));
        Ok(())
    }
}
