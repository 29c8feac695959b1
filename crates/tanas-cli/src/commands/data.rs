//! `tanas data info` and `tanas data check`.

use std::path::PathBuf;

use anyhow::bail;
use tanas_core::report::{DataInfo, DatasetInfo, SplitInfo, Unreadable};
use tanas_data::task::LabelKind;
use tanas_data::{DataDirs, Dataset, DatasetDecl, DatasetName, OnError, TaskFile};

use crate::cli::DataCommand;
use crate::output::outln;
use crate::output::{counts, print_json};

pub fn run(cmd: DataCommand, dirs: &DataDirs) -> anyhow::Result<()> {
    let (files, json, check) = match cmd {
        DataCommand::Info { files, json } => (files, json, false),
        DataCommand::Check { files, json } => (files, json, true),
    };
    let declared = declarations(&files)?;
    let mut infos: Vec<DatasetInfo> = Vec::new();
    if !check || files.is_empty() {
        infos.extend(DatasetName::ALL.into_iter().map(|n| builtin(n, dirs)));
    }
    // A check reads every file (no cache) and goes on past unreadable ones to name them all.
    let check_dirs = dirs.clone().with_cache(None);
    for decl in &declared {
        infos.push(if check {
            let mut all = decl.clone();
            all.on_error = OnError::Skip;
            declared_info(&all, &check_dirs)
        } else {
            declared_info(decl, dirs)
        });
    }
    if json {
        print_json(&DataInfo {
            search_path: dirs.dirs().to_vec(),
            datasets: infos.clone(),
        })?;
    } else {
        print_text(&infos, dirs);
    }
    if check {
        let bad: Vec<String> = infos
            .iter()
            .filter(|i| i.found || i.declared_in.is_some())
            .filter_map(|i| match (&i.error, i.unreadable.len()) {
                (Some(e), _) => Some(format!("{}: {e}", i.name)),
                (None, 0) => None,
                (None, n) => Some(format!(
                    "{}: {n} unreadable file(s), the first {}: {}",
                    i.name,
                    i.unreadable[0].file.display(),
                    i.unreadable[0].problem
                )),
            })
            .collect();
        if !bad.is_empty() {
            bail!("{}", bad.join("; "));
        }
    }
    Ok(())
}

/// The `[[dataset]]` tables of `files`, in order.
fn declarations(files: &[PathBuf]) -> anyhow::Result<Vec<DatasetDecl>> {
    let mut out = Vec::new();
    for f in files {
        out.extend(TaskFile::read_declarations(f)?.datasets);
    }
    Ok(out)
}

fn split_info(ds: &Dataset) -> (SplitInfo, SplitInfo) {
    let n = ds.classes.len();
    let info = |set: &tanas_data::ImageSet| SplitInfo {
        images: set.len(),
        per_class: set.class_counts(LabelKind::Fine, n),
    };
    (info(&ds.train), info(&ds.test))
}

fn empty(name: &str) -> DatasetInfo {
    DatasetInfo {
        name: name.to_string(),
        found: false,
        dir: None,
        train: None,
        test: None,
        error: None,
        declared_in: None,
        classes: Vec::new(),
        sizes: Default::default(),
        unreadable: Vec::new(),
    }
}

fn builtin(name: DatasetName, dirs: &DataDirs) -> DatasetInfo {
    let mut info = empty(name.as_str());
    let dir = match dirs.locate(name) {
        Ok(dir) => dir,
        Err(e) => {
            info.error = Some(e.to_string());
            return info;
        }
    };
    info.found = true;
    info.dir = Some(dir.display().to_string());
    match Dataset::read(name, &dir) {
        Ok(ds) => {
            let (train, test) = split_info(&ds);
            (info.train, info.test) = (Some(train), Some(test));
        }
        Err(e) => info.error = Some(e.to_string()),
    }
    info
}

fn declared_info(decl: &DatasetDecl, dirs: &DataDirs) -> DatasetInfo {
    let mut info = empty(&decl.name);
    info.declared_in = Some(decl.declared_in.clone());
    let root = match decl.root(dirs) {
        Ok(root) => root,
        Err(e) => {
            info.error = Some(e.to_string());
            return info;
        }
    };
    info.found = true;
    info.dir = Some(root.display().to_string());
    match decl.load_with_info(dirs) {
        Ok((ds, seen)) => {
            let (train, test) = split_info(&ds);
            (info.train, info.test) = (Some(train), Some(test));
            info.classes = ds.classes;
            info.sizes = seen.sizes;
            info.unreadable = seen
                .skipped
                .into_iter()
                .map(|s| Unreadable {
                    file: s.file,
                    problem: s.problem,
                })
                .collect();
        }
        Err(e) => info.error = Some(e.to_string()),
    }
    info
}

fn print_text(infos: &[DatasetInfo], dirs: &DataDirs) {
    let path: Vec<_> = dirs
        .dirs()
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    outln!("search path: {}", path.join(", "));
    for i in infos {
        match (&i.train, &i.test, &i.error) {
            (Some(tr), Some(te), _) => {
                outln!(
                    "{:<14} {}",
                    i.name.as_str(),
                    i.dir.as_deref().unwrap_or_default()
                );
                if !i.classes.is_empty() {
                    outln!("{:<14} classes {}", "", i.classes.join(", "));
                }
                outln!(
                    "{:<14} train {:>6}  per class {}",
                    "",
                    tr.images,
                    counts(&tr.per_class)
                );
                outln!(
                    "{:<14} test  {:>6}  per class {}",
                    "",
                    te.images,
                    counts(&te.per_class)
                );
                if !i.sizes.is_empty() {
                    let sizes: Vec<String> =
                        i.sizes.iter().map(|(s, n)| format!("{s}: {n}")).collect();
                    outln!("{:<14} sizes {}", "", sizes.join(", "));
                }
                if !i.unreadable.is_empty() {
                    outln!("{:<14} {} unreadable:", "", i.unreadable.len());
                    for u in &i.unreadable {
                        outln!("{:<14}   {}: {}", "", u.file.display(), u.problem);
                    }
                }
            }
            (_, _, Some(e)) if i.found => outln!("{:<14} INVALID: {e}", i.name.as_str()),
            (_, _, e) => outln!(
                "{:<14} missing: {}",
                i.name.as_str(),
                e.as_deref().unwrap_or_default()
            ),
        }
    }
}
