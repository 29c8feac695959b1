//! Typed errors for genotypes, skeletons and cell networks.

use std::fmt;

use super::op::Op;

/// Which of the two cells of a genotype something refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CellKind {
    /// The normal cell (keeps the spatial size and the channel count).
    Normal,
    /// The reduction cell (halves the spatial size, doubles the channels).
    Reduce,
}

impl CellKind {
    /// Both kinds, normal first.
    pub const BOTH: [CellKind; 2] = [CellKind::Normal, CellKind::Reduce];

    /// The JSON key of this cell in a genotype (`normal` or `reduce`).
    pub fn key(self) -> &'static str {
        match self {
            CellKind::Normal => "normal",
            CellKind::Reduce => "reduce",
        }
    }
}

impl fmt::Display for CellKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CellKind::Normal => "normal",
            CellKind::Reduce => "reduction",
        })
    }
}

/// Where in a genotype an edge sits: its cell and its index in that cell's edge list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdgeAt {
    /// The cell.
    pub cell: CellKind,
    /// Index of the edge in the cell's `edges` list (0-based).
    pub edge: usize,
}

impl fmt::Display for EdgeAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} cell, edge {}", self.cell, self.edge)
    }
}

/// Formats an optional location as a parenthesised suffix (empty when absent).
fn at_suffix(at: &Option<EdgeAt>) -> String {
    at.map(|a| format!(" ({a})")).unwrap_or_default()
}

/// Everything that can be wrong with a genotype, a skeleton or a cell network configuration.
///
/// Every invalid input yields one of these; building a [`CellNet`](super::CellNet) never panics
/// on a bad genotype.
#[derive(Debug, thiserror::Error)]
pub enum CellError {
    /// The genotype text is not valid JSON or does not have the genotype's shape.
    #[error("invalid genotype JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// An operation name that is not in the operations table.
    #[error("unknown operation `{name}`{}; known operations: {}", at_suffix(.at), Op::names_joined())]
    UnknownOp {
        /// The name as written.
        name: String,
        /// The edge that names it, when known.
        at: Option<EdgeAt>,
    },
    /// A cell with an unsupported number of intermediate nodes.
    #[error(
        "{cell} cell has {nodes} intermediate nodes; a cell has 1 to {max} (the papers use 3 or 4)",
        max = super::genotype::MAX_NODES
    )]
    NodeCount {
        /// The cell.
        cell: CellKind,
        /// The node count given.
        nodes: usize,
    },
    /// An edge whose target is one of the two input nodes (0 = c_{k-2}, 1 = c_{k-1}).
    #[error(
        "{at}: edge {from} -> {to} ends at input node {to}; edges must end at an intermediate node (2..)"
    )]
    EdgeToInput {
        /// The edge.
        at: EdgeAt,
        /// Source node.
        from: usize,
        /// Target node.
        to: usize,
    },
    /// An edge that does not go from an earlier node to a later one.
    #[error(
        "{at}: edge {from} -> {to} does not go forward; an edge goes from an earlier node to a later one"
    )]
    BackwardEdge {
        /// The edge.
        at: EdgeAt,
        /// Source node.
        from: usize,
        /// Target node.
        to: usize,
    },
    /// An edge that names a node the cell does not have.
    #[error(
        "{at}: edge {from} -> {to} names a node that does not exist; this cell has nodes 0..={last}"
    )]
    NodeOutOfRange {
        /// The edge.
        at: EdgeAt,
        /// Source node.
        from: usize,
        /// Target node.
        to: usize,
        /// The last node of the cell (`nodes + 1`).
        last: usize,
    },
    /// An intermediate node that no edge feeds.
    #[error("{cell} cell: intermediate node {node} has no incoming edge")]
    NodeWithoutInput {
        /// The cell.
        cell: CellKind,
        /// The node (2-based numbering, as in the edges).
        node: usize,
    },
    /// The same `(from, to, op)` edge listed twice.
    #[error("{at}: edge {from} -> {to} with `{op}` repeats edge {first}")]
    DuplicateEdge {
        /// The repeated edge.
        at: EdgeAt,
        /// Index of the first occurrence.
        first: usize,
        /// Source node.
        from: usize,
        /// Target node.
        to: usize,
        /// The operation.
        op: Op,
    },
    /// A densely connected cell built from a list of operations of the wrong length.
    #[error(
        "a densely connected cell with {nodes} nodes has {expected} edges, but {got} operations were given"
    )]
    DenseOpCount {
        /// Intermediate nodes.
        nodes: usize,
        /// Edges such a cell has (`nodes * (nodes + 3) / 2`).
        expected: usize,
        /// Operations given.
        got: usize,
    },
    /// A DARTS-style cell given as `(op, input)` pairs whose count is not even (two per node).
    #[error("a DARTS-style cell takes two (op, input) pairs per node, but {got} pairs were given")]
    DartsPairCount {
        /// Pairs given.
        got: usize,
    },
    /// A skeleton or head size that cannot build a network.
    #[error("invalid cell network configuration: {0}")]
    Config(String),
}
