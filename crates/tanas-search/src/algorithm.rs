//! [`Algorithm`]: the search algorithms by name, and [`Algorithm::run_task`], which runs any
//! of them from FUSE's settings. Adding an algorithm: its strategy (a [`crate::SearchStrategy`],
//! `random.rs` is the smallest example), a variant here, and its arm in `run_task`; nothing
//! outside this crate changes.

use std::path::Path;

use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};
use tanas_data::TaskData;
use tanas_zoo::cell::Genotype;

use crate::config::{FuseConfig, RandomSearchConfig};
use crate::error::Result;
use crate::fuse::Fuse;
use crate::random::RandomSearch;
use crate::result::SearchResult;
use crate::space::SearchSpace;

/// Which search produced a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// FUSE ([`crate::Fuse`]).
    Fuse,
    /// The random-search baseline ([`crate::RandomSearch`]).
    Random,
}

impl Algorithm {
    /// Every algorithm, by name.
    pub const ALL: [(&'static str, Algorithm); 2] =
        [("fuse", Algorithm::Fuse), ("random", Algorithm::Random)];

    /// Runs (or resumes, or finds finished) this algorithm on `task` in `out`: FUSE with
    /// `cfg`, starting from `warm_start` where given; random search at FUSE's largest budget
    /// with `cfg`'s common settings ([`RandomSearchConfig::equal_budget`]), `warm_start` as its
    /// first candidate.
    pub fn run_task<B: AutodiffBackend>(
        self,
        cfg: &FuseConfig,
        space: SearchSpace,
        warm_start: Option<Genotype>,
        task: &TaskData,
        out: &Path,
        device: &B::Device,
    ) -> Result<SearchResult> {
        match self {
            Algorithm::Fuse => {
                let fuse = Fuse::new(cfg.clone(), space)?;
                match warm_start {
                    Some(g) => fuse.with_warm_start(g),
                    None => fuse,
                }
                .run_task::<B>(task, out, device)
            }
            Algorithm::Random => {
                let random = RandomSearch::new(RandomSearchConfig::equal_budget(cfg), space)?;
                match warm_start {
                    Some(g) => random.with_warm_start(g),
                    None => random,
                }
                .run_task::<B>(task, out, device)
            }
        }
    }
}

impl std::str::FromStr for Algorithm {
    type Err = String;

    /// By name; an unknown name's error lists the known ones.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Self::ALL
            .iter()
            .find(|(name, _)| *name == s)
            .map(|(_, a)| *a)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|(n, _)| *n).collect();
                format!("unknown algorithm `{s}` ({})", names.join(", "))
            })
    }
}
