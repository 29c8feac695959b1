//! Whether a task distance predicts transfer: per target column `b` and seed, the Spearman
//! rank correlation between the distances `d[., b]` of the sources and their negated
//! transfer gains `-g[., b]` (a distance predicts well when the nearest sources gain the
//! most), its mean over columns and seeds with a permutation p-value, and the top-1 hit rate
//! (the nearest source is the one that gains the most) against chance `1 / (K - 1)`.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// A `[source][target]` grid per seed (NaN where there is no value).
pub type Grids = Vec<Vec<Vec<f64>>>;

/// Permutation rounds of [`agreement`]'s p-value.
pub const ROUNDS: usize = 10_000;

/// The seed of the permutations (fixed: the same data give the same p-value).
const PERMUTATION_SEED: u64 = 20_231_206;

/// How well a predictor (lower = better source) agrees with the transfer gains.
#[derive(Debug, Clone, PartialEq)]
pub struct Agreement {
    /// Mean Spearman correlation between the predictor and the negated gain, over the
    /// columns and seeds where both vary.
    pub rho: f64,
    /// One-sided permutation p-value of `rho` (sources shuffled within each column and
    /// seed): `(1 + #{rho_perm >= rho}) / (1 + rounds)`.
    pub p: f64,
    /// Columns x seeds whose nearest source is the best transfer source (a tie at the
    /// nearest counts as the share of the tied sources that are the best).
    pub hits: f64,
    /// Columns x seeds counted.
    pub trials: usize,
    /// The hit rate of a random choice: the mean of `1 / (K - 1)` over the columns.
    pub chance: f64,
}

/// Ranks from 1, ties sharing their mean rank.
fn ranks(x: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&i, &j| x[i].total_cmp(&x[j]));
    let mut r = vec![0.0; x.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && x[order[j + 1]] == x[order[i]] {
            j += 1;
        }
        let mean = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            r[k] = mean;
        }
        i = j + 1;
    }
    r
}

/// Spearman's rank correlation (Pearson's on the ranks, ties at mean ranks); `None` when a
/// side is constant or there are fewer than 2 values.
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() || x.len() < 2 {
        return None;
    }
    let (rx, ry) = (ranks(x), ranks(y));
    let n = x.len() as f64;
    let (mx, my) = (rx.iter().sum::<f64>() / n, ry.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in rx.iter().zip(&ry) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}

/// One column of one seed: the sources' predictor values and gains (sources with both).
fn columns(pred: &Grids, gain: &Grids) -> Vec<(Vec<f64>, Vec<f64>)> {
    let mut out = Vec::new();
    for (p, g) in pred.iter().zip(gain) {
        let n = g.len();
        for b in 0..n {
            let (x, y): (Vec<f64>, Vec<f64>) = (0..n)
                .filter(|&a| a != b && p[a][b].is_finite() && g[a][b].is_finite())
                .map(|a| (p[a][b], g[a][b]))
                .unzip();
            if x.len() >= 2 {
                out.push((x, y));
            }
        }
    }
    out
}

/// The mean over `cols` of Spearman(predictor, -gain), over the columns where it exists.
fn mean_rho(cols: &[(Vec<f64>, Vec<f64>)]) -> Option<f64> {
    let rhos: Vec<f64> = cols
        .iter()
        .filter_map(|(x, y)| {
            let neg: Vec<f64> = y.iter().map(|v| -v).collect();
            spearman(x, &neg)
        })
        .collect();
    (!rhos.is_empty()).then(|| rhos.iter().sum::<f64>() / rhos.len() as f64)
}

/// How well `pred` (per seed, lower = predicted better source) agrees with `gain` (per
/// seed, the same seeds in the same order); `None` when no column has two sources.
pub fn agreement(pred: &Grids, gain: &Grids, rounds: usize) -> Option<Agreement> {
    let cols = columns(pred, gain);
    let rho = mean_rho(&cols)?;
    let mut rng = ChaCha8Rng::seed_from_u64(PERMUTATION_SEED);
    let mut shuffled = cols.clone();
    let mut above = 0usize;
    for _ in 0..rounds {
        for ((x, _), (orig, _)) in shuffled.iter_mut().zip(&cols) {
            x.clone_from(orig);
            x.shuffle(&mut rng);
        }
        if mean_rho(&shuffled).is_some_and(|r| r >= rho - 1e-12) {
            above += 1;
        }
    }
    let mut hits = 0.0;
    let mut chance = 0.0;
    for (x, y) in &cols {
        let lo = x.iter().copied().fold(f64::INFINITY, f64::min);
        let best = y.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let nearest: Vec<usize> = (0..x.len()).filter(|&i| x[i] == lo).collect();
        let right = nearest.iter().filter(|&&i| y[i] == best).count();
        hits += right as f64 / nearest.len() as f64;
        chance += 1.0 / x.len() as f64;
    }
    Some(Agreement {
        rho,
        p: (1 + above) as f64 / (1 + rounds) as f64,
        hits,
        trials: cols.len(),
        chance: chance / cols.len() as f64,
    })
}

/// The "same dataset" predictor of `tasks` (0 when source and target share a dataset, 1
/// otherwise), one grid per seed of `seeds`.
pub fn same_dataset(
    tasks: &[String],
    dataset_of: impl Fn(&str) -> Option<String>,
    seeds: usize,
) -> Grids {
    let ds: Vec<Option<String>> = tasks.iter().map(|t| dataset_of(t)).collect();
    let grid: Vec<Vec<f64>> = ds
        .iter()
        .map(|a| {
            ds.iter()
                .map(|b| match (a, b) {
                    (Some(a), Some(b)) => f64::from(u8::from(a != b)),
                    _ => f64::NAN,
                })
                .collect()
        })
        .collect();
    vec![grid; seeds]
}

/// `grids` with the pairs of different datasets left out (NaN): a predictor's ranking of the
/// sources that share the target's dataset, beyond telling the datasets apart.
pub fn within_dataset(
    grids: &Grids,
    tasks: &[String],
    dataset_of: impl Fn(&str) -> Option<String>,
) -> Grids {
    let ds: Vec<Option<String>> = tasks.iter().map(|t| dataset_of(t)).collect();
    grids
        .iter()
        .map(|g| {
            g.iter()
                .enumerate()
                .map(|(a, row)| {
                    row.iter()
                        .enumerate()
                        .map(|(b, &v)| match (&ds[a], &ds[b]) {
                            (Some(x), Some(y)) if x == y => v,
                            _ => f64::NAN,
                        })
                        .collect()
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_matches_hand_computed_values() {
        assert_eq!(spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]), Some(1.0));
        assert_eq!(spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), Some(-1.0));
        // Monotone, not linear: still 1.
        assert_eq!(
            spearman(&[1.0, 2.0, 3.0, 4.0], &[1.0, 8.0, 27.0, 1000.0]),
            Some(1.0)
        );
        // Ties at mean ranks: x ranks 1.5 1.5 3 4, y ranks 1 2 3 4: r = 0.9487 (scipy).
        let r = spearman(&[1.0, 1.0, 2.0, 3.0], &[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert!((r - 0.948_683_298).abs() < 1e-8, "{r}");
        assert_eq!(spearman(&[1.0, 1.0], &[1.0, 2.0]), None);
        assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), [3.5, 1.0, 3.5, 2.0]);
    }

    /// Gains with a known order; a distance that orders the sources exactly like the gains
    /// (nearest = largest gain) has rho 1, a p-value at the permutation floor and every hit;
    /// its negation rho -1 and p 1; pure noise no significance.
    #[test]
    fn agreement_finds_a_perfect_a_reversed_and_no_predictor() {
        let n = 6;
        let gain: Vec<Vec<f64>> = (0..n)
            .map(|a| {
                (0..n)
                    .map(|b| {
                        if a == b {
                            f64::NAN
                        } else {
                            ((a * 7 + b * 3) % 11) as f64
                        }
                    })
                    .collect()
            })
            .collect();
        let perfect: Vec<Vec<f64>> = gain
            .iter()
            .map(|r| r.iter().map(|g| 100.0 - g).collect())
            .collect();
        let reversed: Vec<Vec<f64>> = gain.clone();
        let (g, p, r) = (vec![gain.clone(); 2], vec![perfect; 2], vec![reversed; 2]);
        let good = agreement(&p, &g, 2000).unwrap();
        assert!((good.rho - 1.0).abs() < 1e-12, "{good:?}");
        assert!(good.p < 0.001, "{good:?}");
        assert_eq!((good.hits, good.trials), (12.0, 12));
        assert!((good.chance - 0.2).abs() < 1e-12);
        let bad = agreement(&r, &g, 2000).unwrap();
        assert!((bad.rho + 1.0).abs() < 1e-12 && bad.p > 0.99, "{bad:?}");
        assert_eq!(bad.hits, 0.0);
        // A predictor that is the same for every source: no correlation, hits at chance.
        let flat = vec![vec![vec![1.0; n]; n]; 2];
        assert!(agreement(&flat, &g, 100).is_none());
        // Same-dataset: 3 + 3 tasks; ties split the hit.
        let tasks: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
        let sd = same_dataset(
            &tasks,
            |t| Some(if t < "t3" { "x".into() } else { "y".into() }),
            2,
        );
        let a = agreement(&sd, &g, 200).unwrap();
        assert!(a.hits > 0.0 && a.hits < 12.0, "{a:?}");
        // Within one dataset the same-dataset predictor is constant: nothing to rank.
        let of = |t: &str| {
            Some(if t < "t3" {
                "x".to_string()
            } else {
                "y".into()
            })
        };
        assert!(agreement(&within_dataset(&sd, &tasks, of), &g, 200).is_none());
        // The perfect predictor stays perfect over the 2 sources of each column's dataset.
        let w = agreement(&within_dataset(&p, &tasks, of), &g, 200).unwrap();
        assert!((w.rho - 1.0).abs() < 1e-12 && w.chance == 0.5, "{w:?}");
    }

    #[test]
    fn a_random_predictor_is_not_significant() {
        let n = 8;
        let grid = |k: usize| -> Vec<Vec<f64>> {
            (0..n)
                .map(|a| {
                    (0..n)
                        .map(|b| ((a * 31 + b * 17 + k * 13) % 23) as f64)
                        .collect()
                })
                .collect()
        };
        let a = agreement(&vec![grid(1), grid(2)], &vec![grid(5), grid(9)], 2000).unwrap();
        assert!(a.p > 0.05, "{a:?}");
    }
}
