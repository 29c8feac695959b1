//! `cargo xtask gpu-smoke`: the CUDA path end to end on a GPU machine. Trains small-cnn on
//! the device for one epoch of `mnist-3` (57 steps), takes its exact Fisher on the device
//! and on the CPU and checks that they agree (largest relative L2 error over the tensors at
//! most `--tolerance`); checks one training step of resnet18 and of DARTS_V2 (C=8, L=5) on
//! the device against the CPU from the same weights and batch (`tanas bench grads`: the
//! relative L2 error of all gradients at most `--grads-tolerance`), then times the training
//! step and the Fisher of small-cnn and resnet18 on the device (`tanas bench`). Writes
//! `<out>/gpu-smoke.json`.
//!
//! On a machine without cargo, run the xtask binary itself with `--tanas` pointing at a
//! `cargo build --release --features cuda` binary.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::bench::table;
use crate::tanas::{Tanas, build_tanas, workspace_root};
use tanas_core::write_atomic;

/// Options of `cargo xtask gpu-smoke`.
#[derive(Debug, clap::Args)]
pub struct GpuSmokeArgs {
    /// The device under test.
    #[arg(long, default_value = "cuda")]
    device: String,
    /// A `tanas` binary built with `--features cuda` (default: build one).
    #[arg(long)]
    tanas: Option<PathBuf>,
    /// Output directory (default: target/gpu-smoke).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Largest accepted relative L2 error of the device's Fisher against the CPU's.
    #[arg(long, default_value_t = 1e-3)]
    tolerance: f64,
    /// Largest accepted relative L2 error of one training step's gradients (all parameters as
    /// one vector) against the CPU's. Looser than the Fisher's: BatchNorm with batch
    /// statistics makes these gradients ill-conditioned (PyTorch's own float32 gradients of
    /// resnet18 and densenet121 differ from its float64 ones by 3e-3 and 5e-3, tanas-cpu's
    /// from Flex's by up to 9e-3; a wrong kernel gives errors near 1).
    #[arg(long, default_value_t = 2e-2)]
    grads_tolerance: f64,
    /// Networks timed by the benchmarks.
    #[arg(long, default_value = "small-cnn,resnet18")]
    archs: String,
}

/// Runs the smoke test.
pub fn run(args: &GpuSmokeArgs) -> Result<()> {
    let root = workspace_root();
    let bin = match &args.tanas {
        Some(t) => t.clone(),
        None => build_tanas(&root, true)?,
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| root.join("target/gpu-smoke"));
    let on = |device: &str| Tanas {
        bin: bin.clone(),
        root: root.clone(),
        device: device.to_string(),
        store: None,
    };
    let (device, cpu) = (on(&args.device), on("cpu"));
    let call = |t: &Tanas, stage: &[&str]| -> Result<Value> {
        let mut stage = stage.to_vec();
        stage.push("--json");
        t.json(&stage)
    };
    let dir = |name: &str| out.join(name).display().to_string();
    let data = ["--tasks", "configs/tasks/mnist.toml", "--task", "mnist-3"];

    eprintln!(
        "[1/5] training small-cnn on {} (1 epoch of mnist-3)",
        args.device
    );
    let run_dir = dir("train");
    let mut train = vec![
        "train",
        "--arch",
        "small-cnn",
        "--epochs",
        "1",
        "--out",
        &run_dir,
    ];
    train.extend(data);
    call(&device, &train)?;

    eprintln!(
        "[2/5] exact Fisher (512 test samples) on the CPU and on {}",
        args.device
    );
    let fisher = |out: &str| {
        let mut v = vec![
            "fisher",
            "small-cnn",
            "--num-classes",
            "10",
            "--run",
            &run_dir,
            "--limit",
            "512",
        ];
        v.extend(data);
        v.extend(["--out", out]);
        v.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let cpu_file = dir("fisher-cpu.safetensors");
    let cpu_args = fisher(&cpu_file);
    call(
        &cpu,
        &cpu_args.iter().map(String::as_str).collect::<Vec<_>>(),
    )?;
    let mut dev_args = fisher(&dir("fisher-device.safetensors"));
    dev_args.extend(["--reference".into(), cpu_file]);
    let dev = call(
        &device,
        &dev_args.iter().map(String::as_str).collect::<Vec<_>>(),
    )?;
    let err = dev["relative_error"]
        .as_f64()
        .context("no relative_error in the Fisher output")?;
    eprintln!(
        "      relative L2 error {err:.3e} (tolerance {:.0e})",
        args.tolerance
    );

    eprintln!(
        "[3/5] one training step of resnet18 and DARTS_V2 C=8 L=5 on {} and on the CPU",
        args.device
    );
    let grads = call(
        &device,
        &[
            "bench",
            "grads",
            "--archs",
            "resnet18,cellnet",
            "--genotype",
            "configs/genotypes/darts_v2.json",
            "--channels",
            "8",
            "--layers",
            "5",
        ],
    )?;
    let grads_err = grads
        .as_array()
        .context("`bench grads` output is not an array")?
        .iter()
        .map(|r| r["relative_error"].as_f64().unwrap_or(f64::NAN))
        .fold(0.0f64, |worst, e| {
            if worst.is_nan() || e.is_nan() {
                f64::NAN
            } else {
                worst.max(e)
            }
        });
    eprintln!(
        "      gradients' relative L2 error {grads_err:.3e} (tolerance {:.0e})",
        args.grads_tolerance
    );

    eprintln!("[4/5] training step timing ({})", args.archs);
    let bench_train = call(&device, &["bench", "train", "--archs", &args.archs])?;
    eprintln!("[5/5] Fisher timing ({})", args.archs);
    let bench_fisher = call(&device, &["bench", "fisher", "--archs", &args.archs])?;
    print!("{}", table(&grads)?);
    print!("{}", table(&bench_train)?);
    print!("{}", table(&bench_fisher)?);
    let report = json!({
        "device": args.device,
        "fisher_relative_error": err,
        "tolerance": args.tolerance,
        "grads": grads,
        "grads_relative_error": grads_err,
        "grads_tolerance": args.grads_tolerance,
        "bench_train": bench_train,
        "bench_fisher": bench_fisher,
    });
    let path = out.join("gpu-smoke.json");
    write_atomic(&path, serde_json::to_string_pretty(&report)?.as_bytes())?;
    eprintln!("JSON: {}", path.display());
    if err.is_nan() || err > args.tolerance {
        bail!(
            "the {} Fisher differs from the CPU's by {err:.3e} (relative L2), more than {:.0e}",
            args.device,
            args.tolerance
        );
    }
    if grads_err.is_nan() || grads_err > args.grads_tolerance {
        bail!(
            "one training step's gradients on {} differ from the CPU's by {grads_err:.3e} (relative L2), more than {:.0e}",
            args.device,
            args.grads_tolerance
        );
    }
    eprintln!("gpu-smoke passed");
    Ok(())
}
