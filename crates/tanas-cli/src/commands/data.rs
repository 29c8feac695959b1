//! `tanas data info`.

use tanas_core::report::{DataInfo, DatasetInfo, SplitInfo};
use tanas_data::task::LabelKind;
use tanas_data::{DataDirs, Dataset, DatasetName};

use crate::cli::DataCommand;
use crate::output::outln;
use crate::output::{counts, print_json};

pub fn run(cmd: DataCommand, dirs: &DataDirs) -> anyhow::Result<()> {
    match cmd {
        DataCommand::Info { json } => {
            let infos: Vec<DatasetInfo> = DatasetName::ALL
                .into_iter()
                .map(|n| info(n, dirs))
                .collect();
            if json {
                print_json(&DataInfo {
                    search_path: dirs.dirs().to_vec(),
                    datasets: infos,
                })
            } else {
                print_text(&infos, dirs);
                Ok(())
            }
        }
    }
}

fn info(name: DatasetName, dirs: &DataDirs) -> DatasetInfo {
    let mut info = DatasetInfo {
        name: name.to_string(),
        found: false,
        dir: None,
        train: None,
        test: None,
        error: None,
    };
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
            let n = name.class_names().len();
            info.train = Some(SplitInfo {
                images: ds.train.len(),
                per_class: ds.train.class_counts(LabelKind::Fine, n),
            });
            info.test = Some(SplitInfo {
                images: ds.test.len(),
                per_class: ds.test.class_counts(LabelKind::Fine, n),
            });
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
