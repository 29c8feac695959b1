//! Genotypes: the operations table, JSON format, validation errors, helpers, words and DOT.

use std::collections::BTreeSet;

use tanas_zoo::cell::{
    CellError, CellGenotype, CellKind, CellSkeleton, Edge, EdgeAt, Genotype, Op,
};

/// `err` matches the pattern; the message shows it otherwise.
macro_rules! assert_is {
    ($err:expr, $pattern:pat $(if $guard:expr)?) => {
        assert!(matches!($err, $pattern $(if $guard)?), "{}", $err)
    };
}

/// One cell in JSON.
fn cell_json(nodes: usize, edges: &str) -> String {
    format!(r#"{{"nodes": {nodes}, "edges": [{edges}]}}"#)
}

/// A genotype JSON whose normal cell is `normal` and whose reduction cell is a valid one.
fn genotype_json(normal: &str) -> String {
    let reduce = cell_json(
        2,
        r#"{"from": 0, "to": 2, "op": "max_pool_3x3"}, {"from": 1, "to": 3, "op": "skip_connect"}"#,
    );
    format!(r#"{{"normal": {normal}, "reduce": {reduce}}}"#)
}

/// Parses a genotype whose normal cell has `nodes` nodes and the `edges`, written
/// `from>to op` and separated by commas.
fn parse_normal(nodes: usize, edges: &str) -> Result<Genotype, CellError> {
    let edges: Vec<String> = edges
        .split(", ")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let (nodes, op) = e.split_once(' ').expect("from>to op");
            let (from, to) = nodes.split_once('>').expect("from>to");
            format!(r#"{{"from": {from}, "to": {to}, "op": "{op}"}}"#)
        })
        .collect();
    Genotype::from_json(&genotype_json(&cell_json(nodes, &edges.join(", "))))
}

#[test]
fn op_table_names_round_trip() {
    let names: BTreeSet<&str> = Op::ALL.iter().map(|op| op.name()).collect();
    assert_eq!(names.len(), 12);
    for op in Op::ALL {
        assert_eq!(op.to_string().parse::<Op>().ok(), Some(op));
        let json = serde_json::to_string(&op).expect("serialize op");
        assert_eq!(json, format!("\"{}\"", op.name()));
        assert_eq!(serde_json::from_str::<Op>(&json).ok(), Some(op));
        assert!(!op.description().is_empty());
    }
    assert_eq!(Op::GENERAL_SPACE.len(), 10);
    assert!(Op::GENERAL_SPACE.iter().all(|op| Op::ALL.contains(op)));
    assert!(!Op::GENERAL_SPACE.contains(&Op::SepConv3x3));
    assert_eq!(
        Op::GENERAL_SPACE.map(Op::name).join(" "),
        "none skip_connect max_pool_3x3 avg_pool_3x3 conv_3x3 conv_5x5 conv_7x7 dil_conv_3x3 \
         dil_conv_5x5 conv_7x1_1x7"
    );
    assert!(Op::Conv7x1And1x7.has_params() && !Op::SkipConnect.has_params());
    for name in [
        "none",
        "skip_connect",
        "max_pool_3x3",
        "avg_pool_3x3",
        "conv_3x3",
        "conv_5x5",
        "conv_7x7",
        "sep_conv_3x3",
        "sep_conv_5x5",
        "dil_conv_3x3",
        "dil_conv_5x5",
        "conv_7x1_1x7",
    ] {
        assert!(name.parse::<Op>().is_ok(), "{name}");
    }
    let err = "sep_conv_7x7".parse::<Op>().expect_err("not in the table");
    assert!(matches!(err, CellError::UnknownOp { ref name, at: None } if name == "sep_conv_7x7"));
    assert!(err.to_string().contains("conv_7x1_1x7"), "{err}");
    assert!(serde_json::from_str::<Op>("\"zero\"").is_err());
}

#[test]
fn genotype_json_round_trip() {
    for g in [Genotype::darts_v2(), Genotype::every_op()] {
        g.validate().expect("valid");
        let json = g.to_json().expect("to json");
        assert_eq!(Genotype::from_json(&json).expect("from_json"), g);
        let via_serde: Genotype = serde_json::from_str(&json).expect("serde");
        assert_eq!(via_serde, g);
    }
}

#[test]
fn documented_json_format_parses() {
    let json = r#"{
        "normal": {"nodes": 3, "edges": [
            {"from": 0, "to": 2, "op": "conv_3x3"},
            {"from": 1, "to": 2, "op": "skip_connect"},
            {"from": 2, "to": 3, "op": "dil_conv_5x5"},
            {"from": 1, "to": 4, "op": "conv_7x1_1x7"},
            {"from": 3, "to": 4, "op": "avg_pool_3x3"}
        ]},
        "reduction": {"nodes": 3, "edges": [
            {"from": 0, "to": 2, "op": "max_pool_3x3"},
            {"from": 1, "to": 3, "op": "conv_5x5"},
            {"from": 2, "to": 4, "op": "none"}
        ]}
    }"#;
    let g = Genotype::from_json(json).expect("valid genotype");
    assert_eq!(g.nodes(), 3);
    assert_eq!(g.normal.edges[2], Edge::new(2, 3, Op::DilConv5x5));
    assert_eq!(g.reduce.edges.len(), 3);
    // Written back with the canonical key `reduce`.
    assert!(g.to_json().expect("json").contains("\"reduce\""));
}

#[test]
fn unknown_op_is_typed_with_its_location() {
    let err = parse_normal(1, "0>2 conv_3x3, 1>2 conv_9x9").expect_err("unknown op");
    match err {
        CellError::UnknownOp { name, at } => {
            assert_eq!(name, "conv_9x9");
            assert_eq!(
                at,
                Some(EdgeAt {
                    cell: CellKind::Normal,
                    edge: 1
                })
            );
        }
        other => panic!("wrong error: {other}"),
    }
}

#[test]
fn edge_to_input_node_is_rejected() {
    let err = parse_normal(1, "0>1 conv_3x3, 0>2 conv_3x3").expect_err("edge into input");
    assert_is!(err, CellError::EdgeToInput { from: 0, to: 1, at } if at.edge == 0 && at.cell == CellKind::Normal);
}

#[test]
fn backward_and_self_edges_are_rejected() {
    let err = parse_normal(2, "0>2 conv_3x3, 1>3 conv_3x3, 3>2 conv_3x3").expect_err("backwards");
    assert_is!(err, CellError::BackwardEdge { from: 3, to: 2, at } if at.edge == 2);
    let err = parse_normal(1, "2>2 conv_3x3").expect_err("self");
    assert_is!(err, CellError::BackwardEdge { from: 2, to: 2, .. });
}

#[test]
fn node_without_input_is_rejected() {
    let err = parse_normal(3, "0>2 conv_3x3, 1>4 conv_3x3").expect_err("node 3 has no input");
    assert_is!(
        err,
        CellError::NodeWithoutInput {
            cell: CellKind::Normal,
            node: 3
        }
    );
}

#[test]
fn node_count_out_of_range_is_rejected() {
    let err = parse_normal(0, "").expect_err("zero nodes");
    assert_is!(
        err,
        CellError::NodeCount {
            nodes: 0,
            cell: CellKind::Normal
        }
    );
    let edges: Vec<String> = (2..7).map(|to| format!("0>{to} conv_3x3")).collect();
    let err = parse_normal(5, &edges.join(", ")).expect_err("five nodes");
    assert_is!(err, CellError::NodeCount { nodes: 5, .. });
    // The reduction cell is checked too, and labelled as such.
    let g = Genotype::darts_v2();
    let bad = Genotype::new(
        g.normal.clone(),
        CellGenotype {
            nodes: 0,
            edges: vec![],
        },
    )
    .expect_err("empty reduction cell");
    assert_is!(
        bad,
        CellError::NodeCount {
            cell: CellKind::Reduce,
            ..
        }
    );
    assert!(bad.to_string().contains("reduction cell"), "{bad}");
}

#[test]
fn nodes_outside_the_cell_are_rejected() {
    let err = parse_normal(1, "0>2 conv_3x3, 1>3 conv_3x3").expect_err("node 3 does not exist");
    assert_is!(err, CellError::NodeOutOfRange { to: 3, last: 2, .. });
}

#[test]
fn duplicate_edges_are_rejected_but_parallel_ops_are_not() {
    let err = parse_normal(1, "0>2 conv_3x3, 0>2 conv_3x3").expect_err("duplicate");
    assert_is!(
        err,
        CellError::DuplicateEdge {
            first: 0,
            op: Op::Conv3x3,
            ..
        }
    );
    parse_normal(1, "0>2 conv_3x3, 0>2 conv_5x5").expect("two different ops on one pair of nodes");
}

#[test]
fn malformed_json_is_a_json_error() {
    for text in [
        "",
        "{",
        r#"{"normal": {"nodes": 1, "edges": []}}"#,
        &genotype_json(
            r#"{"nodes": 1, "edges": [{"from": 0, "to": 2, "op": "conv_3x3", "x": 1}]}"#,
        ),
        &genotype_json(r#"{"nodes": -1, "edges": []}"#),
    ] {
        let err = Genotype::from_json(text).expect_err(text);
        assert!(matches!(err, CellError::Json(_)), "{text}: {err}");
    }
}

#[test]
fn plain_serde_also_validates() {
    let text = genotype_json(&cell_json(1, r#"{"from": 2, "to": 2, "op": "conv_3x3"}"#));
    let err = serde_json::from_str::<Genotype>(&text).expect_err("invalid");
    assert!(err.to_string().contains("does not go forward"), "{err}");
}

#[test]
fn dense_cells() {
    assert_eq!(CellGenotype::dense_edge_count(3), 9);
    assert_eq!(CellGenotype::dense_edge_count(4), 14);
    let ops: Vec<Op> = Op::GENERAL_SPACE.iter().cycle().take(9).copied().collect();
    let cell = CellGenotype::dense(3, &ops).expect("dense");
    assert!(cell.is_dense());
    assert_eq!(cell.edges[0], Edge::new(0, 2, Op::None));
    assert_eq!(cell.edges[2], Edge::new(0, 3, Op::MaxPool3x3));
    assert_eq!(cell.edges[8], Edge::new(3, 4, Op::DilConv5x5));
    let g = Genotype::dense(3, &ops, &ops).expect("genotype");
    assert_eq!(g.nodes(), 3);
    let err = Genotype::dense(4, &ops, &ops).expect_err("9 ops for 4 nodes");
    assert_is!(
        err,
        CellError::DenseOpCount {
            nodes: 4,
            expected: 14,
            got: 9
        }
    );
    assert!(!Genotype::darts_v2().normal.is_dense());
}

#[test]
fn darts_pairs_give_darts_v2() {
    use Op::*;
    let normal = CellGenotype::darts(&[
        (SepConv3x3, 0),
        (SepConv3x3, 1),
        (SepConv3x3, 0),
        (SepConv3x3, 1),
        (SepConv3x3, 1),
        (SkipConnect, 0),
        (SkipConnect, 0),
        (DilConv3x3, 2),
    ])
    .expect("pairs");
    let reduce = CellGenotype::darts(&[
        (MaxPool3x3, 0),
        (MaxPool3x3, 1),
        (SkipConnect, 2),
        (MaxPool3x3, 1),
        (MaxPool3x3, 0),
        (SkipConnect, 2),
        (SkipConnect, 2),
        (MaxPool3x3, 1),
    ])
    .expect("pairs");
    assert_eq!(
        Genotype::new(normal, reduce).expect("valid"),
        Genotype::darts_v2()
    );
    let err = CellGenotype::darts(&[(SepConv3x3, 0)]).expect_err("odd");
    assert!(matches!(err, CellError::DartsPairCount { got: 1 }));
}

#[test]
fn ops_and_nodes_helpers() {
    let g = Genotype::darts_v2();
    let ops: Vec<Op> = g.ops().into_iter().collect();
    assert_eq!(
        ops,
        vec![
            Op::SkipConnect,
            Op::MaxPool3x3,
            Op::SepConv3x3,
            Op::DilConv3x3
        ]
    );
    assert_eq!(g.nodes(), 4);
    assert_eq!(g.cell(CellKind::Reduce), &g.reduce);
    let every = Genotype::every_op();
    every.validate().expect("valid");
    assert_eq!(every.normal.ops().len(), 12);
    assert_eq!(every.reduce.ops().len(), 12);
    // Every op sits on a stride-2 edge (leaving an input node) of the reduction cell.
    let strided: BTreeSet<Op> = every
        .reduce
        .edges
        .iter()
        .filter(|e| e.from < 2)
        .map(|e| e.op)
        .collect();
    assert_eq!(strided.len(), 12);
}

#[test]
fn dot_shows_both_cells() {
    let g = Genotype::darts_v2();
    let dot = g.to_dot();
    assert!(dot.starts_with("digraph genotype {"), "{dot}");
    assert!(dot.trim_end().ends_with('}'));
    assert!(dot.contains("subgraph cluster_normal"));
    assert!(dot.contains("subgraph cluster_reduce"));
    assert!(
        dot.contains("normal_2 -> normal_5 [label=\"dil_conv_3x3\"]"),
        "{dot}"
    );
    assert!(
        dot.contains("reduce_1 -> reduce_5 [label=\"max_pool_3x3\"]"),
        "{dot}"
    );
    assert!(dot.contains("reduce_5 -> reduce_out"));
    assert_eq!(dot.matches('{').count(), dot.matches('}').count());
    let edges = dot.matches(" -> ").count();
    assert_eq!(edges, 8 + 4 + 8 + 4);
}

#[test]
fn display_describes_cells_in_words() {
    let text = Genotype::darts_v2().to_string();
    assert!(text.contains("normal cell: 4 intermediate nodes"), "{text}");
    assert!(
        text.contains("reduction cell: 4 intermediate nodes"),
        "{text}"
    );
    assert!(
        text.contains("node 5 = skip_connect(c_{k-2}) + dil_conv_3x3(node 2)"),
        "{text}"
    );
    assert!(
        text.contains("operations: skip_connect, max_pool_3x3, sep_conv_3x3, dil_conv_3x3"),
        "{text}"
    );
    let dense = Genotype::dense(3, &[Op::Conv3x3; 9], &[Op::None; 9]).expect("dense");
    assert!(dense.to_string().contains("densely connected"));
}

#[test]
fn skeleton_serde_and_defaults() {
    let d = CellSkeleton::default();
    assert_eq!((d.channels, d.layers), (36, 20));
    let s: CellSkeleton = serde_json::from_str(r#"{"channels": 16}"#).expect("partial");
    assert_eq!(s, CellSkeleton::new(16, 20));
    assert!(serde_json::from_str::<CellSkeleton>(r#"{"channel": 16}"#).is_err());
    let json = serde_json::to_string(&CellSkeleton::new(8, 5)).expect("json");
    assert_eq!(json, r#"{"channels":8,"layers":5}"#);
    let r: Vec<usize> = (0..20).filter(|&i| d.is_reduction(i)).collect();
    assert_eq!(r, vec![6, 13]);
    assert!(CellSkeleton::new(0, 3).validate().is_err());
    assert!(CellSkeleton::new(4, 0).validate().is_err());
}
