//! Building and calling the `tanas` binary: the stages every xtask command drives.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The `tanas` binary and how to call it.
pub struct Tanas {
    /// The binary.
    pub bin: PathBuf,
    /// The directory it runs in (the workspace root: task files are relative to it).
    pub root: PathBuf,
    /// `--device` of every call.
    pub device: String,
    /// `--store` of every call (none: each command's default store).
    pub store: Option<PathBuf>,
}

impl Tanas {
    /// The whole command line of a call: the binary, `args`, then `--device`, `--quiet` and
    /// `--store` (it runs in [`Tanas::root`]).
    pub fn argv(&self, args: &[OsString]) -> Vec<OsString> {
        let mut argv = vec![self.bin.clone().into_os_string()];
        argv.extend(args.iter().cloned());
        argv.extend([
            "--device".into(),
            self.device.clone().into(),
            "--quiet".into(),
        ]);
        if let Some(store) = &self.store {
            argv.extend(["--store".into(), store.clone().into_os_string()]);
        }
        argv
    }

    fn command(&self, args: &[OsString]) -> Command {
        let argv = self.argv(args);
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]).current_dir(&self.root);
        cmd
    }

    /// Runs `tanas` with `args`; its output if it succeeded, else its error line.
    fn output(&self, args: &[OsString]) -> Result<std::process::Output> {
        let out = self
            .command(args)
            .output()
            .with_context(|| format!("cannot run {}", self.bin.display()))?;
        if !out.status.success() {
            bail!("{}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(out)
    }

    /// `tanas check KIND FILE`: the file read as its command reads it; the error line
    /// otherwise.
    pub fn check(&self, kind: &str, file: &std::path::Path) -> Result<()> {
        self.output(&["check".into(), kind.into(), file.into()])
            .map(drop)
    }

    /// Runs a query and parses its JSON output.
    pub fn json<T: serde::de::DeserializeOwned>(&self, args: &[&str]) -> Result<T> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        let out = self
            .output(&args)
            .map_err(|e| anyhow::anyhow!("tanas {}: {e}", show(&args)))?;
        serde_json::from_slice(&out.stdout)
            .with_context(|| format!("tanas {}: output is not JSON", show(&args)))
    }
}

/// The arguments as one line, for messages.
pub fn show(args: &[OsString]) -> String {
    args.iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether a `--device` value names a GPU (`cuda[:N]`, `cudnn[:N]`): the `tanas` binary must
/// be the `--features cuda` build.
pub fn is_gpu(device: &str) -> bool {
    device.starts_with("cuda") || device.starts_with("cudnn")
}

/// The workspace root: the parent of this crate's directory, or the current directory when
/// that is gone (the binary was copied to another machine).
pub fn workspace_root() -> PathBuf {
    let built_in = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    if built_in.join("Cargo.toml").is_file() {
        return built_in;
    }
    // A copied xtask binary (a GPU machine without cargo): the checkout it is run from.
    std::env::current_dir().unwrap_or(built_in)
}

/// Builds the `tanas` binary and returns its path: the dev profile (dependencies built with
/// opt-level 3, see Cargo.toml; the tests share the build) for the CPU, a release build with
/// `--features cuda` for CUDA devices.
pub fn build_tanas(root: &Path, cuda: bool) -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-p", "tanas-cli"]);
    if cuda {
        cmd.args(["--release", "--features", "cuda"]);
    }
    // Cargo's own progress follows: the first build compiles burn (about 10 minutes on a
    // 2-core machine); later ones take seconds.
    eprintln!(
        "building the tanas binary (cargo build -p tanas-cli{}; the first build takes about 10 minutes on 2 cores)",
        if cuda {
            " --release --features cuda"
        } else {
            ""
        }
    );
    let status = cmd.current_dir(root).status().context("cannot run cargo")?;
    if !status.success() {
        bail!("building the tanas binary failed");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    Ok(target
        .join(if cuda { "release" } else { "debug" })
        .join("tanas"))
}
