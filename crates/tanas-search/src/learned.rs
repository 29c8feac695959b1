//! A learned task's search space S(a*) (paper 003, Algorithm 2; section IV-A): what the FUSE
//! search of a dictionary task says about which operations work for it.
//!
//! The default rule ([`SpaceRule::Evidence`]) keeps the node counts of the task's best cell and
//! the `ops` operations with the most **evidence** over the whole search: for operation `o`,
//!
//! ```text
//! evidence(o) = sum over stages s, candidates c of  softmax(alpha_s)_c * freq_c(o)  -  S / |O|
//! ```
//!
//! where `freq_c(o)` is the share of `c`'s edges (both cells) that carry `o`, `S` the number of
//! stages and `|O|` the number of operations of the searched space: how much more of `o` the
//! architecture weights put on than uniform sampling would (each stage's weights sum to 1).
//! Ties go to the operation earlier in the table. Paper 000 (section 4) searches such a space:
//! "4 nodes and 6 operations". [`SpaceRule::Union`] (every operation the best cell uses) is the
//! first round's rule, kept for comparison: a dense 4-node cell has 28 edges, so it covers
//! nearly every operation and restricts nothing.

use serde::{Deserialize, Serialize};
use tanas_zoo::cell::{CellSkeleton, Genotype, Op};

use crate::error::SpaceError;
use crate::fuse::StageRecord;
use crate::space::SearchSpace;

/// How a learned task's space is built from its search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SpaceRule {
    /// The best cell's node counts and the `ops` operations of most evidence (default 4).
    Evidence {
        /// Operations kept.
        ops: usize,
    },
    /// The best cell's node counts and every operation it uses.
    Union,
}

impl Default for SpaceRule {
    fn default() -> Self {
        SpaceRule::Evidence { ops: 4 }
    }
}

/// Every operation of `ops` with its evidence in `stages` (see the module docs), in the order
/// of `ops`.
pub fn op_evidence(stages: &[StageRecord], ops: &[Op]) -> Vec<(Op, f64)> {
    let uniform = stages.len() as f64 / ops.len().max(1) as f64;
    ops.iter()
        .map(|&op| {
            let weighted: f64 = stages
                .iter()
                .flat_map(|s| s.candidates.iter().zip(&s.weights))
                .map(|(c, w)| w * share(c, op))
                .sum();
            (op, weighted - uniform)
        })
        .collect()
}

/// The share of `genotype`'s edges (both cells) that carry `op`.
fn share(genotype: &Genotype, op: Op) -> f64 {
    let edges = genotype.normal.edges.iter().chain(&genotype.reduce.edges);
    let (n, with) = edges.fold((0usize, 0usize), |(n, w), e| {
        (n + 1, w + usize::from(e.op == op))
    });
    if n == 0 { 0.0 } else { with as f64 / n as f64 }
}

impl SearchSpace {
    /// The learned space of a task whose search in `searched` ended with `best` after
    /// `stages`, by `rule`, on `skeleton`.
    pub fn learned(
        rule: SpaceRule,
        best: &Genotype,
        stages: &[StageRecord],
        searched: &SearchSpace,
        skeleton: CellSkeleton,
    ) -> Result<Self, SpaceError> {
        // The best cell's node counts and wiring style, and its operations for `Union`.
        let union = SearchSpace::from_genotype(best, skeleton)?;
        match rule {
            SpaceRule::Union => Ok(union),
            SpaceRule::Evidence { ops } => {
                let mut ranked = op_evidence(stages, searched.ops());
                // Stable: equal evidence keeps table order.
                ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
                SearchSpace::new(
                    ranked.into_iter().take(ops.max(1)).map(|(op, _)| op),
                    union.nodes().iter().copied(),
                    union.style(),
                    skeleton,
                )
            }
        }
    }
}
