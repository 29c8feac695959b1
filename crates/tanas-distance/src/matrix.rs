//! [`DistanceMatrix`]: asymmetric task-distance matrices per seed, their mean and std over
//! seeds, and their JSON / CSV files.
//!
//! # Convention
//!
//! Rows are **source** tasks `a`, columns **target** tasks `b`:
//! `d[a][b] = distance(F[a,b], F[b,b])`, where `F[a,b]` is the Fisher diagonal of the network
//! trained on task `a` taken on the Fisher probe data of task `b` (the papers take its test
//! data; docs/distances.md says which samples tanas takes) (paper 003, Algorithm 1; paper 000,
//! Algorithm 1 writes `d[b, t]` for baseline `b` and target `t`). Column `b` therefore lists how
//! far every learned task is from target `b`, and the closest learned task to a target is the
//! row minimum of its column ([`DistanceMatrix::closest_source`]). The matrix is not symmetric:
//! `d[a][b]` and `d[b][a]` use different networks and different data.
//!
//! # Files
//!
//! - JSON ([`DistanceMatrix::write_json`], read back by [`DistanceMatrix::read_json`]; one
//!   matrix row per line): an object with `format` (`tanas-distance-matrix/1`), `convention` (the sentence above),
//!   `metric` (`{"name": "ftd"}`, `{"name": "logdet", "sigma2": 1e-8}`, `{"name": "cosine"}`),
//!   `head` (`pad` / `exclude`), `tasks` (ids, the row and column order), `seeds`, `mean`, `std`,
//!   `count` (square arrays indexed `[source][target]`; `null` where no seed has a value) and
//!   `per_seed` (seed -> square array, `null` where unset).
//! - CSV ([`DistanceMatrix::write_csv`]): one long-format table, one row per ordered pair in
//!   row-major order, columns `source,target,n,mean,std,seed_<s>...` (one column per seed; empty
//!   where unset). Values are printed with full `f64` precision.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{DistanceError, Result};
use crate::metric::{HeadRule, TaskDistance};

/// A square `[source][target]` array of optional values (`None` where there is none).
pub type Grid = Vec<Vec<Option<f64>>>;

/// The `format` value of distance-matrix JSON files.
pub const MATRIX_FORMAT: &str = "tanas-distance-matrix/1";

/// The row/column convention, written into the JSON files.
pub const CONVENTION: &str = "rows = source task a (the network trained on a), columns = target \
task b (its Fisher probe data): d[a][b] = distance(F[a,b], F[b,b]), F[a,b] = Fisher of network a \
on the probe data of task b";

/// Asymmetric task-distance matrices, one per seed, over a fixed list of tasks; see the
/// [module docs](self) for the row/column convention and the files.
#[derive(Debug, Clone, PartialEq)]
pub struct DistanceMatrix {
    metric: TaskDistance,
    head: HeadRule,
    tasks: Vec<String>,
    per_seed: BTreeMap<u64, Grid>,
}

/// What [`DistanceMatrix::from_json`] reads of a JSON file; the other fields (`convention`,
/// `seeds`, `mean`, `std`, `count`) are derived and recomputed.
#[derive(Deserialize)]
struct MatrixFile {
    format: String,
    metric: TaskDistance,
    head: HeadRule,
    tasks: Vec<String>,
    per_seed: BTreeMap<u64, Grid>,
}

/// The paths [`DistanceMatrix::write_all`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatrixFiles {
    /// `<stem>.json`.
    pub json: PathBuf,
    /// `<stem>.csv`.
    pub csv: PathBuf,
    /// `<stem>.svg`.
    pub svg: PathBuf,
    /// `<stem>.png`.
    pub png: PathBuf,
}

impl DistanceMatrix {
    /// An empty matrix over `tasks` (the row and column order) for `metric` and `head`. Fails if
    /// there is no task, an id is empty, or an id repeats.
    pub fn new(
        tasks: impl IntoIterator<Item = impl Into<String>>,
        metric: TaskDistance,
        head: HeadRule,
    ) -> Result<Self> {
        let tasks: Vec<String> = tasks.into_iter().map(Into::into).collect();
        if tasks.is_empty() || tasks.iter().any(String::is_empty) {
            return Err(DistanceError::NoTasks);
        }
        for (i, t) in tasks.iter().enumerate() {
            if tasks[..i].contains(t) {
                return Err(DistanceError::DuplicateTask(t.clone()));
            }
        }
        metric.validate()?;
        Ok(Self {
            metric,
            head,
            tasks,
            per_seed: BTreeMap::new(),
        })
    }

    /// The metric.
    pub fn metric(&self) -> TaskDistance {
        self.metric
    }

    /// The head rule.
    pub fn head(&self) -> HeadRule {
        self.head
    }

    /// The task ids: the row and the column order.
    pub fn tasks(&self) -> &[String] {
        &self.tasks
    }

    /// The seeds that have at least one value, ascending.
    pub fn seeds(&self) -> Vec<u64> {
        self.per_seed.keys().copied().collect()
    }

    /// The number of seeds that have at least one value.
    pub fn num_seeds(&self) -> usize {
        self.per_seed.len()
    }

    /// The index of task `id`.
    pub fn index_of(&self, id: &str) -> Result<usize> {
        self.tasks
            .iter()
            .position(|t| t == id)
            .ok_or_else(|| DistanceError::UnknownTask {
                task: id.to_string(),
                known: self.tasks.join(", "),
            })
    }

    /// Sets `d[source][target]` for `seed` (overwriting any previous value). Fails on an unknown
    /// task or a value that is not finite and non-negative.
    pub fn set(&mut self, seed: u64, source: &str, target: &str, d: f64) -> Result<()> {
        let (i, j) = (self.index_of(source)?, self.index_of(target)?);
        if !(d.is_finite() && d >= 0.0) {
            return Err(DistanceError::InvalidValue {
                seed,
                source_task: source.to_string(),
                target: target.to_string(),
                value: d,
            });
        }
        let n = self.tasks.len();
        self.per_seed
            .entry(seed)
            .or_insert_with(|| vec![vec![None; n]; n])[i][j] = Some(d);
        Ok(())
    }

    /// `d[source][target]` for `seed`, if set (and `None` for unknown tasks).
    pub fn get(&self, seed: u64, source: &str, target: &str) -> Option<f64> {
        let (i, j) = (self.index_of(source).ok()?, self.index_of(target).ok()?);
        self.per_seed.get(&seed)?[i][j]
    }

    /// The matrix of one seed, if it has any value.
    pub fn seed_grid(&self, seed: u64) -> Option<&Grid> {
        self.per_seed.get(&seed)
    }

    /// Per cell, the values of the seeds that have one, in seed order.
    fn cell_values(&self, i: usize, j: usize) -> Vec<f64> {
        self.per_seed.values().filter_map(|g| g[i][j]).collect()
    }

    fn map_cells<T>(&self, f: impl Fn(&[f64]) -> T) -> Vec<Vec<T>> {
        let n = self.tasks.len();
        (0..n)
            .map(|i| (0..n).map(|j| f(&self.cell_values(i, j))).collect())
            .collect()
    }

    /// Per cell, the number of seeds that have a value.
    pub fn count(&self) -> Vec<Vec<usize>> {
        self.map_cells(<[f64]>::len)
    }

    /// Per cell, the mean over the seeds that have a value (`None` where none has).
    pub fn mean(&self) -> Grid {
        self.map_cells(mean)
    }

    /// Per cell, the sample standard deviation (divisor `n - 1`) over the seeds that have a
    /// value; `0` with one seed, `None` with none.
    pub fn std(&self) -> Grid {
        self.map_cells(sample_std)
    }

    /// Whether every cell has a value for every seed (and there is at least one seed).
    pub fn is_complete(&self) -> bool {
        !self.per_seed.is_empty()
            && self
                .per_seed
                .values()
                .all(|g| g.iter().flatten().all(Option::is_some))
    }

    /// The learned task closest to `target`: the source `a != target` with the smallest mean
    /// `d[a][target]`, and that distance; `None` if no other source has a value. Ties go to the
    /// first task in order.
    pub fn closest_source(&self, target: &str) -> Result<Option<(String, f64)>> {
        let j = self.index_of(target)?;
        let mean = self.mean();
        let mut best: Option<(usize, f64)> = None;
        for (i, row) in mean.iter().enumerate() {
            if i == j {
                continue;
            }
            match (row[j], best) {
                (Some(d), Some((_, b))) if d >= b => {}
                (Some(d), _) => best = Some((i, d)),
                (None, _) => {}
            }
        }
        Ok(best.map(|(i, d)| (self.tasks[i].clone(), d)))
    }

    /// Adds every value of `other` (same tasks, metric and head rule) to this matrix; values of
    /// `other` win where both have one. For results computed on several machines.
    pub fn merge(&mut self, other: &DistanceMatrix) -> Result<()> {
        if self.tasks != other.tasks {
            return Err(DistanceError::Incompatible(format!(
                "tasks differ ([{}] vs [{}])",
                self.tasks.join(", "),
                other.tasks.join(", ")
            )));
        }
        if self.metric != other.metric || self.head != other.head {
            return Err(DistanceError::Incompatible(format!(
                "metric/head differ ({} {} vs {} {})",
                self.metric.label(),
                self.head,
                other.metric.label(),
                other.head
            )));
        }
        let n = self.tasks.len();
        for (&seed, grid) in &other.per_seed {
            let mine = self
                .per_seed
                .entry(seed)
                .or_insert_with(|| vec![vec![None; n]; n]);
            for (mr, or) in mine.iter_mut().zip(grid) {
                for (m, o) in mr.iter_mut().zip(or) {
                    if o.is_some() {
                        *m = *o;
                    }
                }
            }
        }
        Ok(())
    }

    /// The JSON document (see the [module docs](self)): pretty-printed, one matrix row per line.
    pub fn to_json(&self) -> Result<String> {
        let grid = |g: &[Vec<Option<f64>>], indent: &str| grid_json(g, indent);
        let mut fields = vec![
            ("format", compact(MATRIX_FORMAT)?),
            ("convention", compact(CONVENTION)?),
            ("metric", compact(&self.metric)?),
            ("head", compact(&self.head)?),
            ("tasks", compact(&self.tasks)?),
            ("seeds", compact(&self.seeds())?),
            ("mean", grid(&self.mean(), "  ")?),
            ("std", grid(&self.std(), "  ")?),
            ("count", grid_json(&self.count(), "  ")?),
        ];
        let mut per_seed = Vec::with_capacity(self.per_seed.len());
        for (seed, g) in &self.per_seed {
            per_seed.push(format!("    \"{seed}\": {}", grid(g, "    ")?));
        }
        let per_seed = if per_seed.is_empty() {
            "{}".to_string()
        } else {
            format!("{{\n{}\n  }}", per_seed.join(",\n"))
        };
        fields.push(("per_seed", per_seed));
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("  \"{k}\": {v}"))
            .collect();
        Ok(format!("{{\n{}\n}}", body.join(",\n")))
    }

    /// Parses a JSON document written by [`DistanceMatrix::to_json`]; `path` names it in errors.
    pub fn from_json(text: &str, path: &Path) -> Result<Self> {
        let bad = |problem: String| DistanceError::BadMatrixFile {
            path: path.to_path_buf(),
            problem,
        };
        let file: MatrixFile = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        if file.format != MATRIX_FORMAT {
            return Err(bad(format!(
                "format `{}`, expected `{MATRIX_FORMAT}`",
                file.format
            )));
        }
        let mut m = DistanceMatrix::new(file.tasks, file.metric, file.head)
            .map_err(|e| bad(e.to_string()))?;
        let n = m.tasks.len();
        for (seed, grid) in file.per_seed {
            if grid.len() != n || grid.iter().any(|r| r.len() != n) {
                return Err(bad(format!("per_seed[{seed}] is not {n} x {n}")));
            }
            for (i, row) in grid.iter().enumerate() {
                for (j, v) in row.iter().enumerate() {
                    if let Some(d) = *v {
                        let (a, b) = (m.tasks[i].clone(), m.tasks[j].clone());
                        m.set(seed, &a, &b, d).map_err(|e| bad(e.to_string()))?;
                    }
                }
            }
        }
        Ok(m)
    }

    /// Writes the JSON file atomically.
    pub fn write_json(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let mut text = self.to_json().map_err(|e| match e {
            DistanceError::BadMatrixFile { problem, .. } => DistanceError::BadMatrixFile {
                path: path.to_path_buf(),
                problem,
            },
            other => other,
        })?;
        text.push('\n');
        tanas_core::write_atomic(path, text.as_bytes())
            .map_err(|e| DistanceError::io(e.path, e.source))
    }

    /// Reads a JSON file written by [`DistanceMatrix::write_json`].
    pub fn read_json(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = tanas_core::read_text(path).map_err(|e| DistanceError::io(path, e))?;
        Self::from_json(&text, path)
    }

    /// The long-format CSV table (see the [module docs](self)).
    pub fn to_csv(&self) -> String {
        let seeds = self.seeds();
        let (mean, std, count) = (self.mean(), self.std(), self.count());
        let mut out = String::from("source,target,n,mean,std");
        for s in &seeds {
            out.push_str(&format!(",seed_{s}"));
        }
        out.push('\n');
        let opt = |v: Option<f64>| v.map(|d| d.to_string()).unwrap_or_default();
        for (i, a) in self.tasks.iter().enumerate() {
            for (j, b) in self.tasks.iter().enumerate() {
                out.push_str(&format!(
                    "{},{},{},{},{}",
                    csv_field(a),
                    csv_field(b),
                    count[i][j],
                    opt(mean[i][j]),
                    opt(std[i][j])
                ));
                for s in &seeds {
                    out.push(',');
                    out.push_str(&opt(self.per_seed[s][i][j]));
                }
                out.push('\n');
            }
        }
        out
    }

    /// Writes the CSV file atomically.
    pub fn write_csv(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        tanas_core::write_atomic(path, self.to_csv().as_bytes())
            .map_err(|e| DistanceError::io(e.path, e.source))
    }

    /// Writes `<dir>/<stem>.json`, `.csv`, `.svg` and `.png` (each atomically), creating `dir`
    /// if needed.
    pub fn write_all(&self, dir: impl AsRef<Path>, stem: &str) -> Result<MatrixFiles> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| DistanceError::io(dir, e))?;
        let json = dir.join(format!("{stem}.json"));
        let csv = dir.join(format!("{stem}.csv"));
        self.write_json(&json)?;
        self.write_csv(&csv)?;
        let h = self.write_heatmaps(dir, stem)?;
        Ok(MatrixFiles {
            json,
            csv,
            svg: h.svg,
            png: h.png,
        })
    }
}

/// `v` as compact JSON.
fn compact<T: Serialize + ?Sized>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| DistanceError::BadMatrixFile {
        path: PathBuf::from("<json>"),
        problem: e.to_string(),
    })
}

/// A square array as JSON, one row per line, rows indented by `indent` plus two spaces.
fn grid_json<T: Serialize>(g: &[Vec<T>], indent: &str) -> Result<String> {
    let rows = g
        .iter()
        .map(|r| compact(r).map(|s| format!("{indent}  {s}")))
        .collect::<Result<Vec<_>>>()?;
    Ok(format!("[\n{}\n{indent}]", rows.join(",\n")))
}

/// The mean of `v`, `None` if empty.
pub fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// The sample standard deviation (divisor `n - 1`) of `v`: `0` for one value, `None` if empty.
pub fn sample_std(v: &[f64]) -> Option<f64> {
    let m = mean(v)?;
    if v.len() < 2 {
        return Some(0.0);
    }
    let ss: f64 = v.iter().map(|x| (x - m) * (x - m)).sum();
    Some((ss / (v.len() - 1) as f64).sqrt())
}

/// `s` as a CSV field, quoted if it holds a comma, quote or line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
