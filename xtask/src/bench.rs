//! `cargo xtask bench fisher | train`: runs `tanas bench` (dev profile: burn optimised, see
//! Cargo.toml) and prints its table and JSON; the JSON is also written to
//! `target/bench/<what>.json` so docs/perf.md can quote one run.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::fsutil::write_atomic;
use crate::reproduce::{build_tanas, workspace_root};

/// Options of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// What to measure: `fisher` or `train`.
    what: String,
    /// Device (`cpu`, `cuda[:N]`).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Extra arguments passed to `tanas bench <what>` (e.g. `--archs small-cnn`).
    #[arg(last = true)]
    extra: Vec<String>,
}

/// Runs the benchmark.
pub fn run(args: &BenchArgs) -> Result<()> {
    if !matches!(args.what.as_str(), "fisher" | "train") {
        bail!("unknown benchmark `{}` (fisher, train)", args.what);
    }
    let root = workspace_root();
    let tanas = build_tanas(&root)?;
    let text = tanas_bench(&tanas, &root, args, false)?;
    print!("{text}");
    let json = tanas_bench(&tanas, &root, args, true)?;
    println!("{json}");
    let out = root
        .join("target/bench")
        .join(format!("{}.json", args.what));
    std::fs::create_dir_all(out.parent().unwrap_or(Path::new("."))).context("target/bench")?;
    write_atomic(&out, json.as_bytes())?;
    eprintln!("JSON: {}", out.display());
    Ok(())
}

fn tanas_bench(tanas: &Path, root: &Path, args: &BenchArgs, json: bool) -> Result<String> {
    let mut cmd = Command::new(tanas);
    cmd.args(["--device", &args.device, "bench", &args.what])
        .args(&args.extra)
        .current_dir(root);
    if json {
        cmd.arg("--json");
    }
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {}", tanas.display()))?;
    if !out.status.success() {
        bail!(
            "tanas bench {}: {}",
            args.what,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
