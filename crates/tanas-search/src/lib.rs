//! Architecture search for tanas: search spaces over DARTS-style cells ([`SearchSpace`]),
//! the FUSE search of the papers ([`Fuse`]) and a random-search baseline ([`RandomSearch`]),
//! with resumable, traced runs. See `docs/search.md` for the method as implemented.
//!
//! Both searches are [`SearchStrategy`]s run by one driver, the [`Searcher`]: the strategy
//! computes its next step (a FUSE stage, a random-search candidate) and names the best cell;
//! the driver owns the files, resume, interruption and the final step. A new algorithm is a
//! new strategy in this crate.
//!
//! # Data discipline
//!
//! The search phase ([`Fuse::search`], [`RandomSearch::search`]) takes a [`SearchData`]:
//! train and val splits only. The test split is passed to [`Fuse::run`] /
//! [`RandomSearch::run`], which hand it to [`retrain_and_test`] after the search and the final
//! retraining are done; it is evaluated exactly once.
//!
//! # Files (in the output directory)
//!
//! - `trace.jsonl`: one line per FUSE stage ([`StageRecord`]) or random-search candidate
//!   ([`CandidateRecord`]);
//! - `checkpoint.json`: config, space, data identity, warm start and the completed steps
//!   (stages / candidates);
//! - `weights.safetensors`: the final network (PyTorch names and layouts);
//! - `result.json`: the [`SearchResult`]; its presence marks a finished search.
//!
//! Every file is written to a temporary file and renamed. Running again on the same
//! directory resumes after the last completed stage (candidate) and ends with the same
//! result as an uninterrupted run.
//!
//! # Determinism
//!
//! Every random choice derives from the config's `seed`: candidate samples (ChaCha8 on a
//! stream per stage / candidate), initial weights (backend seeded per stage and candidate,
//! under `tanas_train::seeded`'s lock) and epoch orders (`tanas_train::epoch_order`). With a
//! deterministic backend (Flex on CPU), the same config gives a bit-identical trace apart
//! from its `seconds` fields.

pub mod algorithm;
pub mod config;
pub mod data;
pub mod driver;
pub mod error;
mod fit;
pub mod fuse;
pub mod learned;
pub mod random;
pub mod result;
pub mod space;
pub mod store;

pub use algorithm::Algorithm;
pub use config::{FuseConfig, NoOtherFields, RandomSearchConfig, SearchCommon, SearchConfig};
pub use data::{DataIdentity, SearchData, Splits};
pub use driver::{SearchStep, SearchStrategy, Searcher};
pub use error::{Result, SearchError, SpaceError};
pub use fit::derive_seed;
pub use fuse::{Fuse, FuseStrategy, RoundRecord, StageRecord};
pub use learned::{SpaceRule, op_evidence};
pub use random::{CandidateRecord, RandomSearch, RandomStrategy};
pub use result::{FinalConfig, FinalOutcome, SearchResult, TestScore, cell_spec, retrain_and_test};
pub use space::{CellStyle, SEARCH_SKELETON, SearchSpace};
pub use store::{CHECKPOINT_FILE, RESULT_FILE, TRACE_FILE, WEIGHTS_FILE, read_trace};
