//! Finding the cuDNN library at run time: `TANAS_CUDNN` (the library file or its folder), then
//! the folders of `LD_LIBRARY_PATH`, then the `nvidia/cudnn/lib` folder of the pip wheel
//! `nvidia-cudnn-cu12` / `-cu13` (what PyTorch installs) in the usual Python package
//! folders, then the system's library folders. The first folder holding `libcudnn.so.9`
//! (or `libcudnn.so`) wins; none is an error that lists every place looked at.

use std::path::{Path, PathBuf};

/// The environment variable naming the cuDNN library file or its folder.
pub const CUDNN_ENV: &str = "TANAS_CUDNN";

/// File names of the cuDNN library, in the order tried in each folder.
pub const LIBRARY_NAMES: [&str; 2] = ["libcudnn.so.9", "libcudnn.so"];

/// Where the library was looked for, and the file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    /// Every folder (or file) tried, in order.
    pub tried: Vec<PathBuf>,
    /// The library file, if one was found.
    pub found: Option<PathBuf>,
}

impl Search {
    /// The error line when nothing was found.
    pub fn not_found(&self) -> String {
        let tried: Vec<String> = self.tried.iter().map(|p| p.display().to_string()).collect();
        format!(
            "cuDNN not found: no {} in {} (set {CUDNN_ENV} to the library or its folder, or `pip install nvidia-cudnn-cu12`)",
            LIBRARY_NAMES.join(" or "),
            if tried.is_empty() {
                "any folder".to_string()
            } else {
                tried.join(", ")
            }
        )
    }
}

/// The candidate folders (or files), in order, from the given environment: `explicit`
/// (`TANAS_CUDNN`), `ld_library_path`, the Python package folders below `prefixes` (e.g.
/// `/usr/local/lib`, a virtual environment's `lib`), then `system` library folders.
pub fn candidates(
    explicit: Option<&Path>,
    ld_library_path: Option<&std::ffi::OsStr>,
    prefixes: &[PathBuf],
    system: &[PathBuf],
) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(e) = explicit {
        out.push(e.to_path_buf());
    }
    if let Some(p) = ld_library_path {
        out.extend(std::env::split_paths(p).filter(|d| !d.as_os_str().is_empty()));
    }
    for prefix in prefixes {
        // <prefix>/python3.X/{site,dist}-packages/nvidia/cudnn/lib, every X found.
        let Ok(entries) = std::fs::read_dir(prefix) else {
            continue;
        };
        let mut pythons: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("python3"))
            })
            .collect();
        pythons.sort();
        for py in pythons {
            for packages in ["site-packages", "dist-packages"] {
                out.push(py.join(packages).join("nvidia/cudnn/lib"));
            }
        }
    }
    out.extend(system.iter().cloned());
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert(p.clone()));
    out
}

/// The first library file among `candidates`: a candidate that is a file is taken as it is;
/// a folder is searched for [`LIBRARY_NAMES`].
pub fn find(candidates: Vec<PathBuf>) -> Search {
    let found = candidates.iter().find_map(|c| {
        if c.is_file() {
            return Some(c.clone());
        }
        LIBRARY_NAMES
            .iter()
            .map(|n| c.join(n))
            .find(|f| f.is_file())
    });
    Search {
        tried: candidates,
        found,
    }
}

/// [`find`] over [`candidates`] of this process's environment.
pub fn search() -> Search {
    let env_path = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    let mut prefixes: Vec<PathBuf> = Vec::new();
    if let Some(venv) = env_path("VIRTUAL_ENV") {
        prefixes.push(PathBuf::from(venv).join("lib"));
    }
    if let Some(home) = env_path("HOME") {
        prefixes.push(PathBuf::from(home).join(".local/lib"));
    }
    prefixes.extend(["/usr/local/lib", "/usr/lib", "/opt/conda/lib"].map(PathBuf::from));
    let system = [
        "/usr/local/cuda/lib64",
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib64",
    ]
    .map(PathBuf::from);
    find(candidates(
        env_path(CUDNN_ENV).as_deref().map(Path::new),
        env_path("LD_LIBRARY_PATH").as_deref(),
        &prefixes,
        &system,
    ))
}

/// Checks that CUDA device `ordinal` can be used: the driver library is there (cudarc panics
/// without it) and the machine has such a device; an error line saying which is missing.
#[cfg(feature = "cuda")]
pub fn device(ordinal: usize) -> Result<(), String> {
    const DRIVER: [&str; 2] = ["libcuda.so.1", "libcuda.so"];
    // SAFETY: loading the NVIDIA driver library runs its initialisers, as cudarc's own load
    // of it does right after; no symbol is taken from this handle, which is dropped at once.
    let driver = DRIVER
        .iter()
        .any(|&name| unsafe { libloading::Library::new(name) }.is_ok());
    if !driver {
        return Err(format!(
            "no CUDA driver on this machine ({} not found; LD_LIBRARY_PATH is searched too)",
            DRIVER.join(" or ")
        ));
    }
    let count = cudarc::driver::CudaContext::device_count()
        .map_err(|e| format!("the CUDA driver: {e:?}"))?;
    if ordinal >= usize::try_from(count).unwrap_or(0) {
        return Err(format!("this machine has {count} CUDA device(s)"));
    }
    Ok(())
}

/// Loads the library found by [`search`] and its sibling `libcudnn_*` libraries into the
/// process, so that cudarc's loader (which opens `libcudnn.so.9` by name) finds them; the
/// file it loaded, or the error line of [`Search::not_found`].
#[cfg(feature = "cuda")]
pub fn load() -> Result<PathBuf, String> {
    use std::sync::OnceLock;
    static LOADED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            let s = search();
            let file = s.found.clone().ok_or_else(|| s.not_found())?;
            let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
            // cuDNN 9 opens its parts (graph, ops, cnn, engines) itself; loading them here
            // first makes that work whatever the library's run path says.
            let mut parts: Vec<PathBuf> = std::fs::read_dir(&dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("libcudnn_") && n.contains(".so"))
                })
                .collect();
            parts.sort();
            for part in parts.iter().chain(std::iter::once(&file)) {
                // SAFETY: loading a shared library runs its initialisers; these are NVIDIA's
                // cuDNN libraries, found where cuDNN is installed, and they are kept loaded
                // for the life of the process (the handle is leaked on purpose), so no symbol
                // handed out later outlives its library.
                let lib = unsafe {
                    libloading::os::unix::Library::open(
                        Some(part),
                        libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_GLOBAL,
                    )
                };
                match lib {
                    Ok(lib) => std::mem::forget(lib),
                    Err(e) if part == &file => {
                        return Err(format!("{}: cannot load cuDNN: {e}", file.display()));
                    }
                    Err(e) => tracing::debug!("{}: not loaded: {e}", part.display()),
                }
            }
            Ok(file)
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_folder_with_the_library_wins_and_a_miss_lists_every_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let wheel = d.join("venv/lib/python3.12/site-packages/nvidia/cudnn/lib");
        std::fs::create_dir_all(&wheel).expect("mkdir");
        std::fs::write(wheel.join("libcudnn.so.9"), b"").expect("write");
        let ld = d.join("ld");
        std::fs::create_dir_all(&ld).expect("mkdir");
        let c = candidates(
            None,
            Some(ld.as_os_str()),
            &[d.join("venv/lib")],
            &[d.join("system")],
        );
        assert_eq!(
            c,
            vec![
                ld.clone(),
                d.join("venv/lib/python3.12/site-packages/nvidia/cudnn/lib"),
                d.join("venv/lib/python3.12/dist-packages/nvidia/cudnn/lib"),
                d.join("system"),
            ]
        );
        assert_eq!(find(c).found, Some(wheel.join("libcudnn.so.9")));

        // TANAS_CUDNN first: a file is taken as it is.
        std::fs::write(ld.join("libcudnn.so"), b"").expect("write");
        let mine = d.join("mine.so");
        std::fs::write(&mine, b"").expect("write");
        let s = find(candidates(Some(&mine), Some(ld.as_os_str()), &[], &[]));
        assert_eq!(s.found, Some(mine));
        let s = find(candidates(None, Some(ld.as_os_str()), &[], &[]));
        assert_eq!(s.found, Some(ld.join("libcudnn.so")));

        let s = find(candidates(
            None,
            None,
            &[d.join("none")],
            &[d.join("system")],
        ));
        assert_eq!(s.found, None);
        let e = s.not_found();
        assert!(
            e.contains("libcudnn.so.9") && e.contains(&d.join("system").display().to_string()),
            "{e}"
        );
        assert!(e.contains(CUDNN_ENV), "{e}");
    }
}
