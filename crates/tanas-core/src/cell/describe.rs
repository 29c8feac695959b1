//! Human-readable descriptions of genotypes: the `Display` in words and Graphviz DOT.

use std::fmt::{self, Write as _};

use super::error::CellKind;
use super::genotype::{CellGenotype, Genotype, INPUT_NODES};

/// The name of node `i` of a cell in words.
fn node_name(i: usize) -> String {
    match i {
        0 => "c_{k-2}".to_string(),
        1 => "c_{k-1}".to_string(),
        n => format!("node {n}"),
    }
}

/// Writes one cell in words: a header line and one line per intermediate node.
fn write_cell(f: &mut fmt::Formatter<'_>, kind: CellKind, cell: &CellGenotype) -> fmt::Result {
    let last = INPUT_NODES + cell.nodes - 1;
    let style = if cell.is_dense() {
        ", densely connected"
    } else {
        ""
    };
    write!(
        f,
        "{kind} cell: {} intermediate nodes{style}, output = concat of nodes {INPUT_NODES}..={last}",
        cell.nodes
    )?;
    if kind == CellKind::Reduce {
        f.write_str(" (edges from c_{k-2} and c_{k-1} at stride 2)")?;
    }
    writeln!(f)?;
    for node in INPUT_NODES..=last {
        let terms: Vec<String> = cell
            .incoming(node)
            .map(|(_, e)| format!("{}({})", e.op, node_name(e.from)))
            .collect();
        let terms = if terms.is_empty() {
            "(no input)".to_string()
        } else {
            terms.join(" + ")
        };
        writeln!(f, "  node {node} = {terms}")?;
    }
    Ok(())
}

impl fmt::Display for Genotype {
    /// The two cells in words, one line per intermediate node, then the operations used.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for kind in CellKind::BOTH {
            write_cell(f, kind, self.cell(kind))?;
        }
        let ops: Vec<&str> = self.ops().into_iter().map(|op| op.name()).collect();
        write!(f, "operations: {}", ops.join(", "))
    }
}

/// Appends one cell as a DOT cluster.
fn dot_cell(out: &mut String, kind: CellKind, cell: &CellGenotype) -> fmt::Result {
    let k = kind.key();
    writeln!(out, "  subgraph cluster_{k} {{")?;
    writeln!(out, "    label=\"{kind} cell\";")?;
    for i in 0..INPUT_NODES {
        writeln!(
            out,
            "    {k}_{i} [label=\"{}\", fillcolor=darkseagreen2];",
            node_name(i)
        )?;
    }
    let last = INPUT_NODES + cell.nodes - 1;
    for i in INPUT_NODES..=last {
        writeln!(out, "    {k}_{i} [label=\"{i}\", fillcolor=lightblue];")?;
    }
    writeln!(
        out,
        "    {k}_out [label=\"c_{{k}}\", fillcolor=palegoldenrod];"
    )?;
    for e in &cell.edges {
        writeln!(
            out,
            "    {k}_{} -> {k}_{} [label=\"{}\"];",
            e.from, e.to, e.op
        )?;
    }
    for i in INPUT_NODES..=last {
        writeln!(out, "    {k}_{i} -> {k}_out [style=dashed, color=gray];")?;
    }
    writeln!(out, "  }}")
}

impl Genotype {
    /// Graphviz DOT of both cells (one cluster each, `normal` then `reduce`; node ids
    /// `normal_0`, `normal_2`, `reduce_out`, ...; edges labelled with their operation).
    pub fn to_dot(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = self.write_dot(&mut out);
        out
    }

    /// Writes the DOT text into `out`.
    fn write_dot(&self, out: &mut String) -> fmt::Result {
        writeln!(out, "digraph genotype {{")?;
        writeln!(out, "  rankdir=LR;")?;
        writeln!(
            out,
            "  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\"];"
        )?;
        writeln!(out, "  edge [fontname=\"Helvetica\", fontsize=10];")?;
        for kind in CellKind::BOTH {
            dot_cell(out, kind, self.cell(kind))?;
        }
        writeln!(out, "}}")
    }
}
