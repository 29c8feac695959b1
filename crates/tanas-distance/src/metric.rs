//! Distances between two Fisher diagonals: [`TaskDistance`] (FTD, log-det, cosine), the
//! parameter matching by name with its [`HeadRule`], and [`distance`] / [`compare`].
//!
//! # Matching and normalisation
//!
//! Tensors are matched by name; both diagonals must have the same names. Two tensors of one
//! name must have the same shape, except that they may differ in the leading dimension alone
//! (classification heads of different size, e.g. `fc.weight` `[2, 256]` vs `[10, 256]`, or
//! `fc.bias` `[2]` vs `[10]`). The [`HeadRule`] decides about the classification head:
//! [`HeadRule::Exclude`] leaves the final classification layer out of both diagonals for every
//! pair, equal-size heads included (their rows mean different classes in different tasks); the
//! layer is the one the architecture names ([`Arch::head`], from [`FisherMeta::arch`]), and
//! only for a diagonal of no known architecture the tensors differing in their leading
//! dimension are taken for it. [`HeadRule::Pad`] appends zero rows to the smaller head
//! (zero-padding along dimension 0, the authors' rule) and compares equal-size heads as they
//! are. Any other difference is an error.
//!
//! [`FisherMeta::arch`]: tanas_fisher::FisherMeta
//!
//! After matching, each diagonal is divided by its trace over every compared parameter (unit
//! trace over the whole network), so the distances compare the *shape* of the two Fisher
//! diagonals, not their scale. Padding adds zeros and does not change the trace; exclusion
//! happens before normalisation. All sums are accumulated in `f64`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tanas_core::arch::Arch;
use tanas_fisher::FisherDiag;

use crate::error::{DistanceError, Result};

/// The default `sigma2` of [`TaskDistance::LogDet`] (paper 000's `sigma^2`).
pub const DEFAULT_SIGMA2: f64 = 1e-8;

/// A distance between two Fisher diagonals `F_a` (first) and `F_b` (second), both normalised to
/// unit trace (`p = F_a / tr F_a`, `q = F_b / tr F_b`, `n` compared entries).
///
/// In a distance matrix the first diagonal is `F[a,b]` (the network of source task `a` on the
/// probe data of target task `b`) and the second `F[b,b]`; see [`crate::DistanceMatrix`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "lowercase")]
pub enum TaskDistance {
    /// Fisher Task Distance (paper 003, eq. (4)):
    /// `d = (1/sqrt 2) * || sqrt(p) - sqrt(q) ||_2`.
    ///
    /// It is the Hellinger distance between the distributions `p` and `q`, so `d` is in `[0, 1]`:
    /// expanding the square, `sum_i (sqrt p_i - sqrt q_i)^2 = sum p + sum q - 2 sum sqrt(p_i q_i)
    /// = 2 (1 - BC)` with `BC = sum_i sqrt(p_i q_i)`, since both traces are 1. Every term of `BC`
    /// is non-negative, so `BC >= 0`, and by Cauchy-Schwarz
    /// `BC <= sqrt(sum p) sqrt(sum q) = 1`. Hence `d^2 = 1 - BC` is in `[0, 1]`; `d = 0` iff
    /// `p = q`, and `d = 1` iff `p_i q_i = 0` for every `i` (disjoint supports).
    Ftd,
    /// Log-determinant distance (paper 000, eq. (1)-(2)) on the diagonal:
    /// `d = | (1/n) sum_i ln(p_i + sigma2) - (1/n) sum_i ln(q_i + sigma2) |`.
    ///
    /// For a diagonal matrix `ln det(F + sigma2 I) = sum_i ln(F_ii + sigma2)`, so this is eq. (1)
    /// with `n = m` (matching makes the parameter counts equal), i.e. eq. (2), here on the
    /// unit-trace diagonals. `d >= 0`, `d = 0` when `p = q`; it is not bounded above.
    LogDet {
        /// The constant added to every entry (paper 000's `sigma^2`); must be positive.
        sigma2: f64,
    },
    /// `d = 1 - <p, q> / (|p| |q|)`, one minus the cosine similarity: the baseline paper 003
    /// compares against (Figure 9). In `[0, 1]` since the entries are non-negative.
    Cosine,
}

impl TaskDistance {
    /// The names accepted by [`FromStr`], in the order of the variants.
    pub const NAMES: [&'static str; 3] = ["ftd", "logdet", "cosine"];

    /// The log-det distance with [`DEFAULT_SIGMA2`].
    pub fn logdet() -> Self {
        TaskDistance::LogDet {
            sigma2: DEFAULT_SIGMA2,
        }
    }

    /// The short name (`ftd`, `logdet`, `cosine`), as in [`fmt::Display`].
    pub fn name(&self) -> &'static str {
        match self {
            TaskDistance::Ftd => "ftd",
            TaskDistance::LogDet { .. } => "logdet",
            TaskDistance::Cosine => "cosine",
        }
    }

    /// A human-readable label for figure titles (`FTD`, `log-det (sigma2 = 1e-8)`, `cosine`).
    pub fn label(&self) -> String {
        match self {
            TaskDistance::Ftd => "FTD".to_string(),
            TaskDistance::LogDet { sigma2 } => format!("log-det (sigma2 = {sigma2:e})"),
            TaskDistance::Cosine => "cosine".to_string(),
        }
    }

    /// This metric with `sigma2` set, if it is the log-det distance; other metrics are
    /// returned unchanged.
    pub fn with_sigma2(self, sigma2: f64) -> Self {
        match self {
            TaskDistance::LogDet { .. } => TaskDistance::LogDet { sigma2 },
            other => other,
        }
    }

    /// Checks the parameters (a positive finite `sigma2`).
    pub fn validate(&self) -> Result<()> {
        match *self {
            TaskDistance::LogDet { sigma2 } if !(sigma2.is_finite() && sigma2 > 0.0) => {
                Err(DistanceError::InvalidSigma2(sigma2))
            }
            _ => Ok(()),
        }
    }
}

impl Default for TaskDistance {
    /// [`TaskDistance::Ftd`], the papers' newest distance.
    fn default() -> Self {
        TaskDistance::Ftd
    }
}

impl fmt::Display for TaskDistance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TaskDistance {
    type Err = DistanceError;

    /// `ftd`, `logdet` (with [`DEFAULT_SIGMA2`]) or `cosine`, case-insensitive.
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ftd" => Ok(TaskDistance::Ftd),
            "logdet" | "log-det" => Ok(TaskDistance::logdet()),
            "cosine" => Ok(TaskDistance::Cosine),
            _ => Err(DistanceError::UnknownMetric(s.to_string())),
        }
    }
}

/// What to do with tensors whose shapes differ only in the leading (class) dimension:
/// classification heads of networks with different numbers of outputs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeadRule {
    /// Zero-pad the smaller tensor along dimension 0 to the larger one's size (the authors'
    /// rule). It compares output rows of unrelated classes (an indicator task's row 1 with
    /// another task's class 1), which adds a floor that grows with the difference in label
    /// counts.
    Pad,
    /// Leave the final classification layer out of both diagonals, before normalisation,
    /// whatever the head sizes (the default): the layer the architecture names, or, for a
    /// diagonal of no known architecture, the tensors whose shapes differ in dimension 0.
    #[default]
    Exclude,
}

impl HeadRule {
    /// The other rule (for a comparison of the two).
    pub fn other(self) -> Self {
        match self {
            HeadRule::Pad => HeadRule::Exclude,
            HeadRule::Exclude => HeadRule::Pad,
        }
    }

    /// The name (`pad`, `exclude`), as in [`fmt::Display`].
    pub fn name(&self) -> &'static str {
        match self {
            HeadRule::Pad => "pad",
            HeadRule::Exclude => "exclude",
        }
    }
}

impl fmt::Display for HeadRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for HeadRule {
    type Err = DistanceError;

    /// `pad` or `exclude`, case-insensitive.
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "pad" => Ok(HeadRule::Pad),
            "exclude" => Ok(HeadRule::Exclude),
            _ => Err(DistanceError::UnknownHeadRule(s.to_string())),
        }
    }
}

/// The outcome of [`compare`]: the distance and how the two diagonals were matched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The metric.
    pub metric: TaskDistance,
    /// The head rule.
    pub head: HeadRule,
    /// The distance from the first diagonal to the second.
    pub distance: f64,
    /// The number of compared entries (after padding or exclusion).
    pub entries: usize,
    /// The number of compared tensors.
    pub tensors: usize,
    /// Tensors that differed in their leading dimension and were zero-padded.
    pub padded: Vec<String>,
    /// Tensors left out: the classification head under [`HeadRule::Exclude`].
    pub excluded: Vec<String>,
}

/// One matched pair of tensors; the shorter slice is implicitly zero-padded at its end, which is
/// zero-padding along dimension 0 in row-major layout.
struct Pair<'a> {
    a: &'a [f32],
    b: &'a [f32],
}

impl Pair<'_> {
    /// The entries `(a_i, b_i)` in `f64`, zero-padded to the longer length.
    fn entries(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        let n = self.a.len().max(self.b.len());
        (0..n).map(|i| {
            let x = self.a.get(i).map_or(0.0, |&v| f64::from(v));
            let y = self.b.get(i).map_or(0.0, |&v| f64::from(v));
            (x, y)
        })
    }
}

struct Alignment<'a> {
    pairs: Vec<Pair<'a>>,
    padded: Vec<String>,
    excluded: Vec<String>,
}

/// The tensor names of the classification heads of the architectures `diags` were taken
/// with (empty for a diagonal of no known architecture).
fn head_tensors(diags: [&FisherDiag; 2]) -> Vec<String> {
    let mut names = Vec::new();
    for d in diags {
        if let Ok(arch) = d.meta.arch.parse::<Arch>() {
            for part in ["weight", "bias"] {
                let name = format!("{}.{part}", arch.head());
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
    }
    names
}

/// Matches the tensors of `a` and `b` by name under `head`.
fn align<'a>(a: &'a FisherDiag, b: &'a FisherDiag, head: HeadRule) -> Result<Alignment<'a>> {
    let mut out = Alignment {
        pairs: Vec::new(),
        padded: Vec::new(),
        excluded: Vec::new(),
    };
    let heads = match head {
        HeadRule::Exclude => head_tensors([a, b]),
        HeadRule::Pad => Vec::new(),
    };
    for ta in a.tensors() {
        let name = ta.name();
        let tb = b.get(name).ok_or_else(|| DistanceError::MissingTensor {
            name: name.to_string(),
            present: "first",
            missing: "second",
        })?;
        if heads.iter().any(|h| h == name) {
            out.excluded.push(name.to_string());
            continue;
        }
        let (sa, sb) = (ta.shape(), tb.shape());
        if sa == sb {
            out.pairs.push(Pair {
                a: ta.values(),
                b: tb.values(),
            });
            continue;
        }
        let head_like = !sa.is_empty() && sa.len() == sb.len() && sa[1..] == sb[1..];
        if !head_like {
            return Err(DistanceError::ShapeMismatch {
                name: name.to_string(),
                a: sa.to_vec(),
                b: sb.to_vec(),
            });
        }
        match head {
            HeadRule::Pad => {
                out.pairs.push(Pair {
                    a: ta.values(),
                    b: tb.values(),
                });
                out.padded.push(name.to_string());
            }
            HeadRule::Exclude => out.excluded.push(name.to_string()),
        }
    }
    if let Some(name) = b.names().find(|n| !a.contains(n)) {
        return Err(DistanceError::MissingTensor {
            name: name.to_string(),
            present: "second",
            missing: "first",
        });
    }
    Ok(out)
}

/// The distance from `a` to `b` under `metric`, matching tensors with `head` (see the
/// [module docs](self)). In a distance matrix `a` is `F[a,b]` and `b` is `F[b,b]`.
pub fn distance(
    a: &FisherDiag,
    b: &FisherDiag,
    metric: TaskDistance,
    head: HeadRule,
) -> Result<f64> {
    compare(a, b, metric, head).map(|c| c.distance)
}

/// Loads two Fisher diagonals from safetensors files and returns [`compare`] of them.
pub fn compare_files(
    a: impl AsRef<std::path::Path>,
    b: impl AsRef<std::path::Path>,
    metric: TaskDistance,
    head: HeadRule,
) -> Result<Comparison> {
    let a = FisherDiag::load(a)?;
    let b = FisherDiag::load(b)?;
    compare(&a, &b, metric, head)
}

/// Like [`distance`], and also reports how the diagonals were matched.
pub fn compare(
    a: &FisherDiag,
    b: &FisherDiag,
    metric: TaskDistance,
    head: HeadRule,
) -> Result<Comparison> {
    metric.validate()?;
    let al = align(a, b, head)?;

    // First pass: traces and entry count.
    let (mut ta, mut tb, mut n) = (0.0f64, 0.0f64, 0usize);
    for p in &al.pairs {
        ta += p.a.iter().map(|&v| f64::from(v)).sum::<f64>();
        tb += p.b.iter().map(|&v| f64::from(v)).sum::<f64>();
        n += p.a.len().max(p.b.len());
    }
    if n == 0 {
        return Err(DistanceError::Empty);
    }
    for (t, which) in [(ta, "first"), (tb, "second")] {
        if !(t > 0.0 && t.is_finite()) {
            return Err(DistanceError::ZeroTrace(which));
        }
    }
    let (ia, ib) = (1.0 / ta, 1.0 / tb);
    let normalised = || {
        al.pairs
            .iter()
            .flat_map(Pair::entries)
            .map(|(x, y)| (x * ia, y * ib))
    };

    // Second pass: the metric on the unit-trace diagonals.
    let d = match metric {
        TaskDistance::Ftd => {
            let s: f64 = normalised()
                .map(|(p, q)| {
                    let e = p.sqrt() - q.sqrt();
                    e * e
                })
                .sum();
            (0.5 * s).sqrt().min(1.0)
        }
        TaskDistance::LogDet { sigma2 } => {
            let s: f64 = normalised()
                .map(|(p, q)| (p + sigma2).ln() - (q + sigma2).ln())
                .sum();
            (s / n as f64).abs()
        }
        TaskDistance::Cosine => {
            let (mut pq, mut pp, mut qq) = (0.0f64, 0.0f64, 0.0f64);
            for (p, q) in normalised() {
                pq += p * q;
                pp += p * p;
                qq += q * q;
            }
            (1.0 - pq / (pp * qq).sqrt()).clamp(0.0, 1.0)
        }
    };
    Ok(Comparison {
        metric,
        head,
        distance: d,
        entries: n,
        tensors: al.pairs.len(),
        padded: al.padded,
        excluded: al.excluded,
    })
}
