//! Sharing artifacts between stages that compute the same thing.
//!
//! The task dictionary is built with exactly the settings of the first distance matrix, so
//! its epsilon-networks and Fisher diagonals are the matrix's files: they are linked (or
//! copied) into the dictionary's layout before `tanas dict add` / `tanas search` run, which
//! then find them and check them like any earlier run of their own (training config and
//! seed; Fisher settings and the hash of the weights it was taken of) before reusing them.
//! Nothing is linked over an existing file.

use std::path::Path;

use anyhow::{Context, Result};

/// Networks and own Fisher of dictionary task `task`, from the matrix run `matrix`.
pub fn dictionary_task(matrix: &Path, dict: &Path, task: &str, seeds: u64) -> Result<()> {
    let dest = dict.join("tasks").join(task);
    for seed in 0..seeds {
        let s = format!("seed-{seed}");
        copy_dir(
            &matrix.join("nets").join(task).join(&s),
            &dest.join("nets").join(&s),
        )?;
        let own = format!("{task}--on--{task}.safetensors");
        let from = matrix.join("fisher").join(&s).join(&own);
        if from.exists() {
            copy_file(&from, &dest.join("fisher").join(&s).join(&own))?;
        }
    }
    Ok(())
}

/// Networks of target `target` and every Fisher taken on its data (`*--on--<target>`),
/// from the matrix run into the dictionary's `targets/<target>/`.
pub fn target_of_dictionary(matrix: &Path, dict: &Path, target: &str, seeds: u64) -> Result<()> {
    let dest = dict.join("targets").join(target);
    let suffix = format!("--on--{target}.safetensors");
    for seed in 0..seeds {
        let s = format!("seed-{seed}");
        copy_dir(
            &matrix.join("nets").join(target).join(&s),
            &dest.join("nets").join(&s),
        )?;
        let fdir = matrix.join("fisher").join(&s);
        if !fdir.is_dir() {
            continue;
        }
        for entry in read_dir(&fdir)? {
            let name = entry.file_name();
            if name.to_string_lossy().ends_with(&suffix) {
                copy_file(&entry.path(), &dest.join("fisher").join(&s).join(&name))?;
            }
        }
    }
    Ok(())
}

/// Links (or copies) `from` to `to` unless `to` exists; creates `to`'s directory. A missing
/// `from` is an error.
fn copy_file(from: &Path, to: &Path) -> Result<()> {
    if to.exists() {
        return Ok(());
    }
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create", dir.display()))?;
    }
    if std::fs::hard_link(from, to).is_err() {
        // Another file system: copy to a temporary name, then rename, so `to` is whole.
        let bytes =
            std::fs::read(from).with_context(|| format!("{}: cannot read", from.display()))?;
        tanas_core::write_atomic(to, &bytes)?;
    }
    Ok(())
}

/// Copies the tree `from` to `to` (files linked) unless `to` exists; a missing `from` is
/// nothing to share.
pub fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    if to.exists() || !from.is_dir() {
        return Ok(());
    }
    // Build under a temporary name and rename, so a half-shared tree is never seen.
    let tmp = to.with_extension("sharing");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)
            .with_context(|| format!("{}: cannot remove", tmp.display()))?;
    }
    link_tree(from, &tmp)?;
    std::fs::rename(&tmp, to).with_context(|| format!("{}: cannot rename", to.display()))
}

fn link_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("{}: cannot create", to.display()))?;
    for entry in read_dir(from)? {
        let path = entry.path();
        let dest = to.join(entry.file_name());
        if path.is_dir() {
            link_tree(&path, &dest)?;
        } else {
            copy_file(&path, &dest)?;
        }
    }
    Ok(())
}

fn read_dir(dir: &Path) -> Result<Vec<std::fs::DirEntry>> {
    std::fs::read_dir(dir)
        .and_then(|it| it.collect::<std::io::Result<Vec<_>>>())
        .with_context(|| format!("{}: cannot list", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_nets_and_fishers_without_overwriting() -> Result<()> {
        let tmp = tempfile::tempdir()?;
        let m = tmp.path().join("matrix");
        let d = tmp.path().join("dict");
        for (rel, text) in [
            ("nets/a/seed-0/weights.safetensors", "wa"),
            ("nets/b/seed-0/weights.safetensors", "wb"),
            ("fisher/seed-0/a--on--a.safetensors", "faa"),
            ("fisher/seed-0/b--on--a.safetensors", "fba"),
            ("fisher/seed-0/a--on--b.safetensors", "fab"),
        ] {
            tanas_core::write_atomic(&m.join(rel), text.as_bytes())?;
        }
        tanas_core::write_atomic(&d.join("tasks/b/nets/seed-0/weights.safetensors"), b"own")?;
        dictionary_task(&m, &d, "a", 1)?;
        dictionary_task(&m, &d, "b", 1)?;
        target_of_dictionary(&m, &d, "a", 1)?;
        let read = |rel: &str| std::fs::read_to_string(d.join(rel)).unwrap_or_default();
        assert_eq!(read("tasks/a/nets/seed-0/weights.safetensors"), "wa");
        assert_eq!(read("tasks/a/fisher/seed-0/a--on--a.safetensors"), "faa");
        // b's networks were there already: kept.
        assert_eq!(read("tasks/b/nets/seed-0/weights.safetensors"), "own");
        assert_eq!(read("targets/a/fisher/seed-0/b--on--a.safetensors"), "fba");
        assert!(
            !d.join("targets/a/fisher/seed-0/a--on--b.safetensors")
                .exists()
        );
        Ok(())
    }
}
