//! The burn-free bottom of tanas: what every stage that writes files shares.
//!
//! - [`arch`]: the zoo's architecture names (`Arch`).
//! - [`cell`]: DARTS-style cell genotypes, the operations table and the skeleton (pure data).
//! - [`fsio`]: the atomic file writer (temporary file, sync, rename; ordinary permissions).
//! - [`hash`]: the one content hash (FNV-1a 64).
//! - [`limits`]: the bounds of every count and size, for flags and files alike.
//! - [`out_dir`]: an output directory is written by one command at a time (an exclusive
//!   advisory lock), and the temporary files an interrupted writer left there are removed when
//!   the next writer starts.
//! - [`report`]: the records the stages report as JSON, typed for their readers (xtask).
//! - [`settings`]: the one reader of TOML settings files (errors on one line, naming the file).
//! - [`store`]: the artifact store: every network, Fisher and search once, found by a key
//!   made of how it was made.
//! - `fuzz` (feature `fuzz`, tests only): mutation tests of file readers.

pub mod arch;
pub mod cell;
pub mod fsio;
#[cfg(feature = "fuzz")]
pub mod fuzz;
pub mod hash;
pub mod id;
pub mod limits;
pub mod out_dir;
pub mod report;
pub mod settings;
pub mod store;

pub use fsio::{FileError, WriteError, read_capped, read_text, refuse_symlink, write_atomic};
pub use hash::Fnv1a;
pub use out_dir::{OutDirError, OutDirLock};
pub use settings::{SettingsError, SettingsMismatch, one_line, read_toml};
pub use store::{Artifact, Store, StoreEntry, StoreError};
