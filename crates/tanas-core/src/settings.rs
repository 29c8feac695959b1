//! Settings files: every TOML file tanas reads (experiments, dictionary settings, training
//! configs, profiles) goes through [`read_toml`], so a bad one is always one line naming the
//! file and saying what is wrong.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// A settings file that could not be read or parsed.
#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}", path.display())]
pub struct SettingsError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong, on one line.
    pub problem: String,
}

/// An output directory that holds a `what` (a run, a search) made with other settings: the
/// error every resumable stage gives, naming the first setting that differs.
#[derive(Debug, thiserror::Error)]
#[error(
    "{}: holds a {what} with {field} = {stored}, but this run asks for {requested}; \
     use another output directory or the stored setting",
    dir.display()
)]
pub struct SettingsMismatch {
    /// What the directory holds, in words (`run`, `search`).
    pub what: &'static str,
    /// The output directory.
    pub dir: PathBuf,
    /// The setting that differs (`config.lr`, `epochs`).
    pub field: String,
    /// The stored value.
    pub stored: String,
    /// The requested value.
    pub requested: String,
}

/// Reads the TOML file `path` as a `T`.
pub fn read_toml<T: DeserializeOwned>(path: &Path) -> Result<T, SettingsError> {
    let text = crate::read_text(path).map_err(|e| SettingsError {
        path: path.to_path_buf(),
        problem: e.to_string(),
    })?;
    parse_toml(&text, path)
}

/// Parses TOML `text` (read from `path`, which the error names) as a `T`.
pub fn parse_toml<T: DeserializeOwned>(text: &str, path: &Path) -> Result<T, SettingsError> {
    toml::from_str(text).map_err(|e| SettingsError {
        path: path.to_path_buf(),
        problem: one_line(&e.to_string()),
    })
}

/// `s` on one line: parser messages span several (a caret under the offending key).
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Train {
        epochs: usize,
    }

    #[test]
    fn a_bad_file_is_one_line_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train.toml");
        std::fs::write(&path, "epochs = 3\nepoch = 4\n").unwrap();
        let e = read_toml::<Train>(&path).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}: ", path.display())), "{e}");
        assert!(
            e.contains("unknown field `epoch`") && !e.contains('\n'),
            "{e}"
        );
        let e = read_toml::<Train>(&dir.path().join("none.toml")).unwrap_err();
        assert!(e.to_string().contains("none.toml: "), "{e}");
    }
}
