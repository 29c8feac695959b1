//! Search spaces ([`SearchSpace`]): which cells a search may draw, and how it draws them.
//!
//! A space allows a set of operations, a set of intermediate-node counts, a cell style and a
//! skeleton (C, L) the candidates are built with. Both cells of a sampled genotype (normal
//! and reduction) have the same node count and are drawn independently.
//!
//! # JSON
//!
//! ```json
//! {"ops": ["none", "skip_connect", "conv_3x3"], "nodes": [3, 4], "style": "dense",
//!  "skeleton": {"channels": 16, "layers": 8}}
//! ```
//!
//! `style` defaults to `dense`, `skeleton` to DARTS's search network (C = 16, L = 8).
//! Operations and node counts are stored sorted (table order, ascending), so a space
//! written back to JSON is canonical and the same set of choices always samples the same.

use std::collections::BTreeSet;
use std::path::Path;

use rand::Rng;
use serde::{Deserialize, Serialize};
use tanas_zoo::cell::{CellGenotype, CellSkeleton, Edge, Genotype, INPUT_NODES, MAX_NODES, Op};

use crate::error::{Result, SearchError, SpaceError};

/// How the nodes of a cell are wired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CellStyle {
    /// DARTS: every intermediate node has exactly 2 incoming edges, from 2 distinct earlier
    /// nodes (the first intermediate node takes both inputs), each with one operation.
    Darts,
    /// The papers' densely connected cell: every earlier node feeds every later
    /// intermediate node, one operation per edge (`n (n + 3) / 2` edges for `n` nodes).
    Dense,
}

impl std::fmt::Display for CellStyle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CellStyle::Darts => "darts",
            CellStyle::Dense => "dense",
        })
    }
}

/// The skeleton of DARTS's search network (C = 16, L = 8), the default of a space.
pub const SEARCH_SKELETON: CellSkeleton = CellSkeleton {
    channels: 16,
    layers: 8,
};

/// A validated search space: allowed operations (non-empty, sorted, distinct), allowed
/// node counts (non-empty, each in `1..=MAX_NODES`, sorted, distinct), the cell style and
/// the skeleton candidates are built with. See the module docs for the JSON form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawSpace")]
pub struct SearchSpace {
    ops: Vec<Op>,
    nodes: Vec<usize>,
    style: CellStyle,
    skeleton: CellSkeleton,
}

impl SearchSpace {
    /// A space from its parts, validated (see [`SpaceError`]). The lists are sorted; a
    /// repeated operation or node count is an error.
    pub fn new(
        ops: impl IntoIterator<Item = Op>,
        nodes: impl IntoIterator<Item = usize>,
        style: CellStyle,
        skeleton: CellSkeleton,
    ) -> Result<Self, SpaceError> {
        let mut op_set = BTreeSet::new();
        for op in ops {
            if !op_set.insert(op) {
                return Err(SpaceError::DuplicateOp(op));
            }
        }
        let mut node_set = BTreeSet::new();
        for n in nodes {
            if n == 0 || n > MAX_NODES {
                return Err(SpaceError::NodeCount(n));
            }
            if !node_set.insert(n) {
                return Err(SpaceError::DuplicateNodes(n));
            }
        }
        if op_set.is_empty() {
            return Err(SpaceError::NoOps);
        }
        if node_set.is_empty() {
            return Err(SpaceError::NoNodes);
        }
        skeleton.validate().map_err(SpaceError::Skeleton)?;
        Ok(SearchSpace {
            ops: op_set.into_iter().collect(),
            nodes: node_set.into_iter().collect(),
            style,
            skeleton,
        })
    }

    /// The papers' general space (paper 003, section IV-A and V: "cell structures
    /// consisting of 3 or 4 nodes, and 10 operations"): [`Op::GENERAL_SPACE`], 3 or 4
    /// intermediate nodes, densely connected cells, on DARTS's search skeleton
    /// ([`SEARCH_SKELETON`]; change it with [`with_skeleton`](Self::with_skeleton)).
    pub fn general() -> Self {
        SearchSpace {
            ops: Op::GENERAL_SPACE.to_vec(),
            nodes: vec![3, 4],
            style: CellStyle::Dense,
            skeleton: SEARCH_SKELETON,
        }
    }

    /// A learned task's space (paper 003, Algorithm 2, `S = S_{a*}`): the operations used by
    /// either cell of `genotype` and its cells' node counts; the style is `dense` when both
    /// cells are densely connected, else `darts`.
    pub fn from_genotype(genotype: &Genotype, skeleton: CellSkeleton) -> Result<Self, SpaceError> {
        genotype.validate().map_err(SpaceError::Genotype)?;
        let style = if genotype.normal.is_dense() && genotype.reduce.is_dense() {
            CellStyle::Dense
        } else {
            CellStyle::Darts
        };
        let nodes: BTreeSet<usize> = [genotype.normal.nodes, genotype.reduce.nodes].into();
        SearchSpace::new(genotype.ops(), nodes, style, skeleton)
    }

    /// The same space built on another skeleton.
    pub fn with_skeleton(mut self, skeleton: CellSkeleton) -> Result<Self, SpaceError> {
        skeleton.validate().map_err(SpaceError::Skeleton)?;
        self.skeleton = skeleton;
        Ok(self)
    }

    /// Parses and validates a space from JSON.
    pub fn from_json(text: &str) -> Result<Self, SpaceError> {
        let raw: RawSpace = serde_json::from_str(text)?;
        SearchSpace::try_from(raw)
    }

    /// Reads a space from a JSON file; every error names the file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = tanas_core::read_text(path).map_err(|e| SearchError::io(path, e))?;
        SearchSpace::from_json(&text).map_err(|source| SearchError::SpaceFile {
            path: path.to_path_buf(),
            source,
        })
    }

    /// The space as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // A space is plain data (names and integers): serialising it cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The number of distinct genotypes the space holds: for each node count `n`, the wirings
    /// of a cell times `|ops|` per edge, squared (normal and reduction cell). A float: the
    /// general space holds about 10^28.
    pub fn size(&self) -> f64 {
        let ops = self.ops.len() as f64;
        self.nodes
            .iter()
            .map(|&n| {
                let cell: f64 = (INPUT_NODES..INPUT_NODES + n)
                    .map(|to| match self.style {
                        CellStyle::Dense => ops.powi(to as i32),
                        // 2 distinct inputs among `to` earlier nodes, one op on each.
                        CellStyle::Darts => (to * (to - 1) / 2) as f64 * ops * ops,
                    })
                    .product();
                cell * cell
            })
            .sum()
    }

    /// The allowed operations, in table order.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// The allowed intermediate-node counts, ascending.
    pub fn nodes(&self) -> &[usize] {
        &self.nodes
    }

    /// The cell style.
    pub fn style(&self) -> CellStyle {
        self.style
    }

    /// The skeleton candidates are built with.
    pub fn skeleton(&self) -> CellSkeleton {
        self.skeleton
    }

    /// Draws a genotype: a node count uniformly from [`nodes`](Self::nodes), then both cells
    /// independently, every choice uniform (DARTS style: for each node, 2 distinct inputs
    /// among the earlier nodes; then one operation per edge, uniform over
    /// [`ops`](Self::ops)). The same RNG state gives the same genotype.
    ///
    /// This is uniform per choice, not uniform over genotypes (which would almost never draw
    /// the smaller node count: a dense 4-node cell has 10^5 times more op assignments than a
    /// 3-node one with 10 operations).
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Genotype {
        let nodes = self.nodes[rng.random_range(0..self.nodes.len())];
        let normal = self.sample_cell(nodes, rng);
        let reduce = self.sample_cell(nodes, rng);
        let genotype = Genotype { normal, reduce };
        debug_assert!(genotype.validate().is_ok() && self.contains(&genotype));
        genotype
    }

    /// One cell of `nodes` intermediate nodes.
    fn sample_cell<R: Rng + ?Sized>(&self, nodes: usize, rng: &mut R) -> CellGenotype {
        let mut edges = Vec::new();
        for to in INPUT_NODES..INPUT_NODES + nodes {
            let sources: Vec<usize> = match self.style {
                CellStyle::Dense => (0..to).collect(),
                CellStyle::Darts => {
                    let a = rng.random_range(0..to);
                    let mut b = rng.random_range(0..to - 1);
                    if b >= a {
                        b += 1;
                    }
                    vec![a.min(b), a.max(b)]
                }
            };
            for from in sources {
                let op = self.ops[rng.random_range(0..self.ops.len())];
                edges.push(Edge::new(from, to, op));
            }
        }
        CellGenotype { nodes, edges }
    }

    /// Whether `genotype` is one this space can draw: valid, both cells with the same
    /// allowed node count, the space's wiring, only allowed operations.
    pub fn contains(&self, genotype: &Genotype) -> bool {
        genotype.validate().is_ok()
            && genotype.normal.nodes == genotype.reduce.nodes
            && self.nodes.contains(&genotype.normal.nodes)
            && genotype.ops().iter().all(|op| self.ops.contains(op))
            && [&genotype.normal, &genotype.reduce]
                .iter()
                .all(|cell| self.wiring_fits(cell))
    }

    /// Whether the cell's edges have this space's wiring.
    fn wiring_fits(&self, cell: &CellGenotype) -> bool {
        match self.style {
            CellStyle::Dense => {
                cell.is_dense() && cell.edges.len() == CellGenotype::dense_edge_count(cell.nodes)
            }
            CellStyle::Darts => (INPUT_NODES..INPUT_NODES + cell.nodes).all(|node| {
                let sources: BTreeSet<usize> = cell.incoming(node).map(|(_, e)| e.from).collect();
                cell.incoming(node).count() == 2 && sources.len() == 2
            }),
        }
    }
}

/// Serde's view of a space before the names are resolved and the lists checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpace {
    ops: Vec<String>,
    nodes: Vec<usize>,
    #[serde(default = "default_style")]
    style: CellStyle,
    #[serde(default = "default_skeleton")]
    skeleton: CellSkeleton,
}

fn default_style() -> CellStyle {
    CellStyle::Dense
}

fn default_skeleton() -> CellSkeleton {
    SEARCH_SKELETON
}

impl TryFrom<RawSpace> for SearchSpace {
    type Error = SpaceError;

    fn try_from(raw: RawSpace) -> Result<Self, SpaceError> {
        let ops = raw
            .ops
            .iter()
            .map(|name| {
                name.parse::<Op>()
                    .map_err(|_| SpaceError::UnknownOp { name: name.clone() })
            })
            .collect::<Result<Vec<_>, _>>()?;
        SearchSpace::new(ops, raw.nodes, raw.style, raw.skeleton)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn general_space_is_the_papers() {
        let s = SearchSpace::general();
        assert_eq!(s.ops().len(), 10);
        assert_eq!(s.nodes(), &[3, 4]);
        assert_eq!(s.style(), CellStyle::Dense);
        let back = SearchSpace::from_json(&s.to_json()).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn darts_sampling_has_two_distinct_inputs() {
        let s = SearchSpace::new(
            [Op::Conv3x3, Op::SkipConnect],
            [4],
            CellStyle::Darts,
            CellSkeleton::new(4, 3),
        )
        .unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..200 {
            let g = s.sample(&mut rng);
            assert_eq!(g.normal.edges.len(), 8);
            assert!(s.contains(&g));
        }
    }

    #[test]
    fn from_genotype_reads_ops_nodes_and_style() {
        let g = Genotype::darts_v2();
        let s = SearchSpace::from_genotype(&g, CellSkeleton::new(4, 3)).unwrap();
        assert_eq!(s.style(), CellStyle::Darts);
        assert_eq!(s.nodes(), &[4]);
        assert_eq!(s.ops().iter().copied().collect::<BTreeSet<_>>(), g.ops());
        assert!(s.contains(&g));
        let dense = Genotype::dense(3, &[Op::Conv3x3; 9], &[Op::MaxPool3x3; 9]).unwrap();
        let s = SearchSpace::from_genotype(&dense, CellSkeleton::new(4, 3)).unwrap();
        assert_eq!(s.style(), CellStyle::Dense);
        assert_eq!(s.ops(), &[Op::MaxPool3x3, Op::Conv3x3]);
        assert!(s.contains(&dense));
    }
}
