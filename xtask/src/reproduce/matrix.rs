//! A distance matrix as `tanas distance matrix` writes it (`tanas-distance-matrix/1`):
//! rows are source tasks `a`, columns target tasks `b`, `d[a][b]` with mean and std over
//! seeds.

use std::path::Path;

use anyhow::{Context, Result, bail};
use tanas_core::report::MatrixSummary;

/// Mean and std of one distance matrix.
#[derive(Debug, Clone)]
pub struct Matrix {
    /// `ftd`, `logdet`, ...
    pub metric: String,
    /// Task ids, row and column order.
    pub tasks: Vec<String>,
    /// Mean over seeds, `[source][target]`.
    pub mean: Vec<Vec<f64>>,
    /// Sample std over seeds.
    pub std: Vec<Vec<f64>>,
    /// Number of seeds.
    pub seeds: usize,
    /// Each seed's matrix, `[seed][source][target]` (NaN where missing; empty when the file
    /// has none).
    pub per_seed: Vec<Vec<Vec<f64>>>,
}

/// A grid of optional values (a JSON file's `null`s) as NaN-filled rows.
pub fn nan_grid(g: &[Vec<Option<f64>>]) -> Vec<Vec<f64>> {
    g.iter()
        .map(|r| r.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
        .collect()
}

/// One source task's distance to a target.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    /// The source task.
    pub task: String,
    /// Mean distance.
    pub mean: f64,
    /// Its std over seeds.
    pub std: f64,
    /// Its distance in each seed.
    pub per_seed: Vec<f64>,
}

impl Matrix {
    /// Reads a matrix JSON file.
    pub fn read(path: &Path) -> Result<Self> {
        let f: MatrixSummary = super::read_json(path)?;
        Self::from_summary(f).with_context(|| format!("{}", path.display()))
    }

    /// The matrix of a file's fields; its grids must be `tasks x tasks`.
    pub fn from_summary(f: MatrixSummary) -> Result<Self> {
        let m = Matrix {
            metric: f.metric.name,
            tasks: f.tasks,
            mean: f.mean,
            std: f.std,
            seeds: f.seeds.len(),
            per_seed: f.per_seed.values().map(|g| nan_grid(g)).collect(),
        };
        let n = m.tasks.len();
        if m.mean.len() != n
            || m.std.len() != n
            || m.mean.iter().chain(&m.std).any(|r| r.len() != n)
            || m.per_seed
                .iter()
                .any(|g| g.len() != n || g.iter().any(|r| r.len() != n))
        {
            bail!("grids are not {n} x {n}");
        }
        Ok(m)
    }

    /// Index of task `id`.
    pub fn index(&self, id: &str) -> Option<usize> {
        self.tasks.iter().position(|t| t == id)
    }

    /// The sources `a != target` that `keep` accepts, closest to `target` first.
    pub fn ranked(&self, target: &str, keep: impl Fn(&str) -> bool) -> Vec<Ranked> {
        let Some(b) = self.index(target) else {
            return Vec::new();
        };
        let mut out: Vec<Ranked> = self
            .tasks
            .iter()
            .enumerate()
            .filter(|(a, t)| *a != b && keep(t))
            .map(|(a, t)| Ranked {
                task: t.clone(),
                mean: self.mean[a][b],
                std: self.std[a][b],
                per_seed: self.per_seed.iter().map(|g| g[a][b]).collect(),
            })
            .collect();
        out.sort_by(|x, y| x.mean.total_cmp(&y.mean));
        out
    }

    /// In how many seeds `source` is the closest to `target` of the sources `keep` accepts
    /// (ties count for it), and of how many seeds.
    pub fn seeds_closest(
        &self,
        target: &str,
        source: &str,
        keep: impl Fn(&str) -> bool,
    ) -> (usize, usize) {
        let ranked = self.ranked(target, keep);
        let Some(own) = ranked.iter().find(|r| r.task == source) else {
            return (0, self.per_seed.len());
        };
        let wins = (0..self.per_seed.len())
            .filter(|&s| ranked.iter().all(|r| own.per_seed[s] <= r.per_seed[s]))
            .count();
        (wins, self.per_seed.len())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// A matrix from its mean grid, with one std everywhere: seeds 0, 1, 2 at mean - std,
    /// mean and mean + std.
    pub fn matrix(tasks: &[&str], mean: Vec<Vec<f64>>, std: f64) -> Matrix {
        let n = tasks.len();
        let shifted = |k: f64| -> Vec<Vec<f64>> {
            mean.iter()
                .map(|r| r.iter().map(|x| x + k * std).collect())
                .collect()
        };
        let v = json!({
            "metric": {"name": "ftd"},
            "tasks": tasks,
            "seeds": [0, 1, 2],
            "mean": mean,
            "std": vec![vec![std; n]; n],
            "per_seed": {"0": shifted(-1.0), "1": shifted(0.0), "2": shifted(1.0)},
        });
        Matrix::from_summary(serde_json::from_value(v).unwrap()).unwrap_or_else(|e| panic!("{e:#}"))
    }

    #[test]
    fn ranked_is_by_column_and_leaves_out_the_target() {
        let m = matrix(
            &["a", "b", "c"],
            vec![
                vec![0.0, 0.2, 0.9],
                vec![0.3, 0.0, 0.5],
                vec![0.1, 0.8, 0.0],
            ],
            0.01,
        );
        let r = m.ranked("a", |_| true);
        let names: Vec<&str> = r.iter().map(|x| x.task.as_str()).collect();
        assert_eq!(names, ["c", "b"]);
        assert_eq!(r[0].mean, 0.1);
        assert_eq!(m.ranked("a", |t| t != "c")[0].task, "b");
    }

    #[test]
    fn ragged_grids_are_rejected() {
        let v = json!({"metric": {"name": "ftd"}, "tasks": ["a", "b"], "mean": [[0.0]], "std": [[0.0]]});
        assert!(Matrix::from_summary(serde_json::from_value(v).unwrap()).is_err());
    }
}
