//! Genotypes: the two cells (normal and reduction) of a cell network as edge lists.
//!
//! Node numbering inside a cell: node 0 is `c_{k-2}` (the output of the cell two back), node 1
//! is `c_{k-1}` (the previous cell), nodes `2..2 + nodes` are the intermediate nodes. Every edge
//! goes from an earlier node to an intermediate node and carries one [`Op`]; an intermediate
//! node is the sum of its incoming edges, and the cell's output is the channel concatenation
//! of all intermediate nodes (DARTS's concat). DARTS genotypes (two incoming edges per node)
//! and the papers' densely connected cells (every earlier node feeds every later node) are both
//! edge lists of this form.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::error::{CellError, CellKind, EdgeAt};
use super::op::Op;

/// Number of input nodes of a cell (`c_{k-2}` and `c_{k-1}`).
pub const INPUT_NODES: usize = 2;

/// Largest number of intermediate nodes a cell may have. The papers search cells of 3 or 4
/// nodes (DARTS uses 4); 1 and 2 are accepted for small experiments and tests.
pub const MAX_NODES: usize = 4;

/// One edge of a cell: `op` applied to node `from`, summed into node `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Edge {
    /// Source node (0 = `c_{k-2}`, 1 = `c_{k-1}`, 2.. = intermediate nodes).
    pub from: usize,
    /// Target node, an intermediate node (`2..2 + nodes`).
    pub to: usize,
    /// The operation on the edge.
    pub op: Op,
}

impl Edge {
    /// An edge `from -> to` carrying `op`.
    pub fn new(from: usize, to: usize, op: Op) -> Self {
        Edge { from, to, op }
    }
}

/// One cell of a genotype: the number of intermediate nodes and the edges between nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellGenotype {
    /// Number of intermediate nodes (1..=[`MAX_NODES`]; the papers use 3 or 4).
    pub nodes: usize,
    /// The edges, in the order their operations are built (and named: `ops.{i}`).
    pub edges: Vec<Edge>,
}

impl CellGenotype {
    /// Number of edges of a densely connected cell with `nodes` intermediate nodes: node `j`
    /// (`2 <= j < 2 + nodes`) has `j` incoming edges, so `nodes * (nodes + 3) / 2` in all.
    pub fn dense_edge_count(nodes: usize) -> usize {
        nodes.saturating_mul(nodes.saturating_add(3)) / 2
    }

    /// A densely connected cell: every earlier node feeds every later intermediate node.
    ///
    /// `ops` lists one operation per edge, ordered by target node, then by source node:
    /// `0->2, 1->2, 0->3, 1->3, 2->3, 0->4, ...` ([`dense_edge_count`](Self::dense_edge_count)
    /// operations). The node count is checked by [`validate`](Self::validate).
    pub fn dense(nodes: usize, ops: &[Op]) -> Result<Self, CellError> {
        let expected = Self::dense_edge_count(nodes);
        if ops.len() != expected {
            return Err(CellError::DenseOpCount {
                nodes,
                expected,
                got: ops.len(),
            });
        }
        Ok(CellGenotype {
            nodes,
            edges: dense_edges(nodes, ops),
        })
    }

    /// A DARTS-style cell from DARTS's `[(op, input), ...]` list: pairs `2k` and `2k + 1` feed
    /// intermediate node `k + 2`. The cell is not validated here (see [`Genotype::new`]).
    pub fn darts(pairs: &[(Op, usize)]) -> Result<Self, CellError> {
        if !pairs.len().is_multiple_of(2) {
            return Err(CellError::DartsPairCount { got: pairs.len() });
        }
        let edges = pairs
            .iter()
            .enumerate()
            .map(|(i, &(op, from))| Edge {
                from,
                to: INPUT_NODES + i / 2,
                op,
            })
            .collect();
        Ok(CellGenotype {
            nodes: pairs.len() / 2,
            edges,
        })
    }

    /// Checks the cell; `cell` only labels the errors.
    pub fn validate(&self, cell: CellKind) -> Result<(), CellError> {
        if self.nodes == 0 || self.nodes > MAX_NODES {
            return Err(CellError::NodeCount {
                cell,
                nodes: self.nodes,
            });
        }
        let last = self.nodes + INPUT_NODES - 1;
        let mut seen: HashMap<(usize, usize, Op), usize> = HashMap::new();
        for (edge, e) in self.edges.iter().enumerate() {
            let at = EdgeAt { cell, edge };
            let (from, to) = (e.from, e.to);
            if to < INPUT_NODES {
                return Err(CellError::EdgeToInput { at, from, to });
            }
            if to > last || from > last {
                return Err(CellError::NodeOutOfRange { at, from, to, last });
            }
            if from >= to {
                return Err(CellError::BackwardEdge { at, from, to });
            }
            if let Some(&first) = seen.get(&(from, to, e.op)) {
                return Err(CellError::DuplicateEdge {
                    at,
                    first,
                    from,
                    to,
                    op: e.op,
                });
            }
            seen.insert((from, to, e.op), edge);
        }
        for node in INPUT_NODES..=last {
            if !self.edges.iter().any(|e| e.to == node) {
                return Err(CellError::NodeWithoutInput { cell, node });
            }
        }
        Ok(())
    }

    /// The edges into `node`, with their indices in [`edges`](Self::edges).
    pub fn incoming(&self, node: usize) -> impl Iterator<Item = (usize, &Edge)> {
        self.edges
            .iter()
            .enumerate()
            .filter(move |(_, e)| e.to == node)
    }

    /// The set of operations the cell uses.
    pub fn ops(&self) -> BTreeSet<Op> {
        self.edges.iter().map(|e| e.op).collect()
    }

    /// Whether every earlier node feeds every intermediate node (the papers' dense cells).
    pub fn is_dense(&self) -> bool {
        (INPUT_NODES..INPUT_NODES + self.nodes)
            .all(|to| (0..to).all(|from| self.edges.iter().any(|e| e.from == from && e.to == to)))
    }
}

/// A cell network's architecture: a normal cell and a reduction cell.
///
/// JSON form (serde): `{"normal": CELL, "reduce": CELL}` with
/// `CELL = {"nodes": 4, "edges": [{"from": 0, "to": 2, "op": "sep_conv_3x3"}, ...]}`
/// (`"reduction"` is accepted for `"reduce"`). Deserializing validates, so a `Genotype` read
/// from JSON is always buildable; [`Genotype::from_json`] gives the typed [`CellError`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawGenotype")]
pub struct Genotype {
    /// The normal cell.
    pub normal: CellGenotype,
    /// The reduction cell (edges leaving nodes 0 and 1 run at stride 2).
    pub reduce: CellGenotype,
}

impl Genotype {
    /// A validated genotype from its two cells.
    pub fn new(normal: CellGenotype, reduce: CellGenotype) -> Result<Self, CellError> {
        let g = Genotype { normal, reduce };
        g.validate()?;
        Ok(g)
    }

    /// A genotype whose cells are both densely connected with `nodes` intermediate nodes, from
    /// one operation per edge for each cell (order: see [`CellGenotype::dense`]).
    pub fn dense(nodes: usize, normal_ops: &[Op], reduce_ops: &[Op]) -> Result<Self, CellError> {
        Genotype::new(
            CellGenotype::dense(nodes, normal_ops)?,
            CellGenotype::dense(nodes, reduce_ops)?,
        )
    }

    /// DARTS_V2, the cell published by DARTS (second-order search on CIFAR-10), 4 nodes, 8 edges
    /// per cell, output = concat of nodes 2..=5.
    pub fn darts_v2() -> Self {
        use Op::*;
        Genotype {
            normal: CellGenotype {
                nodes: 4,
                edges: vec![
                    Edge::new(0, 2, SepConv3x3),
                    Edge::new(1, 2, SepConv3x3),
                    Edge::new(0, 3, SepConv3x3),
                    Edge::new(1, 3, SepConv3x3),
                    Edge::new(1, 4, SepConv3x3),
                    Edge::new(0, 4, SkipConnect),
                    Edge::new(0, 5, SkipConnect),
                    Edge::new(2, 5, DilConv3x3),
                ],
            },
            reduce: CellGenotype {
                nodes: 4,
                edges: vec![
                    Edge::new(0, 2, MaxPool3x3),
                    Edge::new(1, 2, MaxPool3x3),
                    Edge::new(2, 3, SkipConnect),
                    Edge::new(1, 3, MaxPool3x3),
                    Edge::new(0, 4, MaxPool3x3),
                    Edge::new(2, 4, SkipConnect),
                    Edge::new(2, 5, SkipConnect),
                    Edge::new(1, 5, MaxPool3x3),
                ],
            },
        }
    }

    /// A test genotype that exercises every operation: the normal cell is densely connected
    /// (4 nodes, 14 edges, the operations of [`Op::ALL`] in turn); the reduction cell has every
    /// operation once on an edge leaving an input node (stride 2) and once between
    /// intermediate nodes (stride 1), 24 edges.
    pub fn every_op() -> Self {
        let normal_ops: Vec<Op> = Op::ALL.iter().cycle().take(14).copied().collect();
        let inner = [(2, 3), (2, 4), (3, 4), (2, 5), (3, 5), (4, 5)];
        let from_inputs = Op::ALL
            .iter()
            .enumerate()
            .map(|(i, &op)| Edge::new(i % 2, INPUT_NODES + i % 4, op));
        let between_nodes = Op::ALL.iter().enumerate().map(|(i, &op)| {
            let (from, to) = inner[i % inner.len()];
            Edge::new(from, to, op)
        });
        let reduce = CellGenotype {
            nodes: 4,
            edges: from_inputs.chain(between_nodes).collect(),
        };
        let normal = CellGenotype {
            nodes: 4,
            edges: dense_edges(4, &normal_ops),
        };
        Genotype { normal, reduce }
    }

    /// Checks both cells (see [`CellGenotype::validate`]).
    pub fn validate(&self) -> Result<(), CellError> {
        self.normal.validate(CellKind::Normal)?;
        self.reduce.validate(CellKind::Reduce)
    }

    /// The cell of the given kind.
    pub fn cell(&self, kind: CellKind) -> &CellGenotype {
        match kind {
            CellKind::Normal => &self.normal,
            CellKind::Reduce => &self.reduce,
        }
    }

    /// The set of operations used by either cell.
    pub fn ops(&self) -> BTreeSet<Op> {
        let mut ops = self.normal.ops();
        ops.extend(self.reduce.ops());
        ops
    }

    /// The number of intermediate nodes: the larger of the two cells' counts (searches build
    /// both cells with the same count; read [`CellGenotype::nodes`] for one cell).
    pub fn nodes(&self) -> usize {
        self.normal.nodes.max(self.reduce.nodes)
    }

    /// Parses and validates a genotype from JSON, with a typed error for every problem.
    pub fn from_json(text: &str) -> Result<Self, CellError> {
        let raw: RawGenotype = serde_json::from_str(text)?;
        Genotype::try_from(raw)
    }

    /// The genotype as pretty-printed JSON.
    pub fn to_json(&self) -> Result<String, CellError> {
        Ok(serde_json::to_string_pretty(self)?)
    }
}

/// The edges of a densely connected cell (by target, then source), carrying `ops` in turn;
/// stops early if `ops` runs out.
fn dense_edges(nodes: usize, ops: &[Op]) -> Vec<Edge> {
    (INPUT_NODES..INPUT_NODES + nodes)
        .flat_map(|to| (0..to).map(move |from| (from, to)))
        .zip(ops)
        .map(|((from, to), &op)| Edge { from, to, op })
        .collect()
}

/// Serde's view of a genotype before operation names are resolved and the cells checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGenotype {
    normal: RawCell,
    #[serde(alias = "reduction")]
    reduce: RawCell,
}

/// Serde's view of one cell.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCell {
    nodes: usize,
    edges: Vec<RawEdge>,
}

/// Serde's view of one edge (operation still a name).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEdge {
    from: usize,
    to: usize,
    op: String,
}

impl RawCell {
    /// Resolves the operation names; `cell` labels the errors.
    fn resolve(self, cell: CellKind) -> Result<CellGenotype, CellError> {
        let edges = self
            .edges
            .into_iter()
            .enumerate()
            .map(|(edge, e)| {
                let op = e.op.parse::<Op>().map_err(|_| CellError::UnknownOp {
                    name: e.op.clone(),
                    at: Some(EdgeAt { cell, edge }),
                })?;
                Ok(Edge::new(e.from, e.to, op))
            })
            .collect::<Result<Vec<_>, CellError>>()?;
        Ok(CellGenotype {
            nodes: self.nodes,
            edges,
        })
    }
}

impl TryFrom<RawGenotype> for Genotype {
    type Error = CellError;

    fn try_from(raw: RawGenotype) -> Result<Self, Self::Error> {
        Genotype::new(
            raw.normal.resolve(CellKind::Normal)?,
            raw.reduce.resolve(CellKind::Reduce)?,
        )
    }
}
