//! DARTS-style cell genotypes, burn-free: the operations table ([`Op`]), genotypes
//! ([`Genotype`]) and the network skeleton ([`CellSkeleton`]). tanas-zoo builds networks from
//! them (and re-exports them as `tanas_zoo::cell`); the search spaces draw them; reports and
//! `cargo xtask` read them without burn.
//!
//! A genotype holds a normal and a reduction cell, each a small DAG: inputs `c_{k-2}` (node 0)
//! and `c_{k-1}` (node 1), intermediate nodes `2..2 + nodes`, every edge an operation, every
//! intermediate node the sum of its incoming edges, the output the concat of all intermediate
//! nodes.
//!
//! ```
//! use tanas_core::cell::{Genotype, Op};
//!
//! let genotype = Genotype::darts_v2();
//! assert!(genotype.ops().contains(&Op::SepConv3x3));
//! let json = genotype.to_json().unwrap();
//! assert_eq!(Genotype::from_json(&json).unwrap(), genotype);
//! ```

mod describe;
mod error;
mod genotype;
mod op;
mod skeleton;

pub use error::{CellError, CellKind, EdgeAt};
pub use genotype::{CellGenotype, Edge, Genotype, INPUT_NODES, MAX_NODES};
pub use op::Op;
pub use skeleton::CellSkeleton;
