//! `cargo xtask bench fisher | train`: runs `tanas bench` once (dev profile: burn optimised,
//! see Cargo.toml) and prints its rows as a table and as JSON; the JSON is also written to
//! `target/bench/<what>.json` so docs/perf.md can quote one run.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::fsutil::write_atomic;
use crate::tanas::{Tanas, build_tanas, workspace_root};

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
    let tanas = Tanas {
        bin: build_tanas(&root, args.device != "cpu")?,
        root: root.clone(),
        device: args.device.clone(),
    };
    let mut call = vec!["bench", args.what.as_str(), "--json"];
    call.extend(args.extra.iter().map(String::as_str));
    let rows = tanas.json(&call)?;
    let json = serde_json::to_string_pretty(&rows)?;
    print!("{}", table(&rows)?);
    println!("{json}");
    let out = root
        .join("target/bench")
        .join(format!("{}.json", args.what));
    std::fs::create_dir_all(out.parent().unwrap_or(Path::new("."))).context("target/bench")?;
    write_atomic(&out, json.as_bytes())?;
    eprintln!("JSON: {}", out.display());
    Ok(())
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
}
