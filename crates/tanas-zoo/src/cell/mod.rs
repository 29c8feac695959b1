//! DARTS-style cell networks: the operations table ([`Op`]), genotypes ([`Genotype`]) and the
//! network built from them ([`CellNet`]).
//!
//! A genotype holds a normal and a reduction cell, each a small DAG: inputs `c_{k-2}` (node 0)
//! and `c_{k-1}` (node 1), intermediate nodes `2..2 + nodes`, every edge an operation, every
//! intermediate node the sum of its incoming edges, the output the concat of all intermediate
//! nodes. [`CellNet`] stacks such cells into DARTS's CIFAR skeleton ([`CellSkeleton`]).
//!
//! ```
//! use burn::backend::Flex;
//! use tanas_zoo::cell::{CellNet, CellSkeleton, Genotype, Op};
//!
//! let genotype = Genotype::darts_v2();
//! assert!(genotype.ops().contains(&Op::SepConv3x3));
//! let json = genotype.to_json().unwrap();
//! assert_eq!(Genotype::from_json(&json).unwrap(), genotype);
//! let net = CellNet::<Flex>::new(&genotype, &CellSkeleton::new(4, 3), 10, &Default::default())
//!     .unwrap();
//! # let _ = net;
//! ```

mod edge;
mod layers;
mod network;

pub use edge::EdgeOp;
pub use layers::{
    DilConv, FactorizedReduce, Identity, ReluConvBn, SepConv, SeqLayer, Zero, conv_7x1_1x7,
    sequential,
};
pub use network::{Cell, CellNet, Preprocess, STEM_IN_CHANNELS};
// The genotypes themselves are burn-free, in tanas-core.
pub use tanas_core::cell::{
    CellError, CellGenotype, CellKind, CellSkeleton, Edge, EdgeAt, Genotype, INPUT_NODES,
    MAX_NODES, Op,
};
