//! Mutation tests of file readers on stable Rust (feature `fuzz`, for tests only).
//!
//! [`fuzz_reader`] starts from a valid file and feeds a reader thousands of mutated copies
//! (bit flips, truncations, length fields set to huge or zero values, inserted and removed
//! bytes; a fixed seed, so every run tries the same inputs). Each must end in `Ok` or in an
//! error that names the file; a panic fails the test with the smallest input found, and an
//! allocation past the reader's bound aborts the test binary. The binary installs the
//! counting allocator the bound is enforced with:
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOC: tanas_core::fuzz::Alloc = tanas_core::fuzz::Alloc::new(std::alloc::System, usize::MAX);
//! ```

use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// The counting, limiting global allocator of a fuzz test binary.
pub type Alloc = cap::Cap<std::alloc::System>;

/// One change to a file's bytes; positions are taken modulo the length.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Flip one bit.
    Flip {
        /// Byte position.
        at: usize,
        /// Bit 0-7.
        bit: u8,
    },
    /// Keep only the first `len` bytes.
    Truncate {
        /// Bytes kept.
        len: usize,
    },
    /// Overwrite 4 bytes with a (usually extreme) u32, big- or little-endian.
    SetU32 {
        /// Byte position.
        at: usize,
        /// The value.
        value: u32,
        /// Byte order.
        big_endian: bool,
    },
    /// Overwrite 8 bytes with a little-endian u64 (e.g. a safetensors header length).
    SetU64 {
        /// Byte position.
        at: usize,
        /// The value.
        value: u64,
    },
    /// Insert bytes.
    Insert {
        /// Byte position.
        at: usize,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// Remove up to `len` bytes.
    Remove {
        /// Byte position.
        at: usize,
        /// Bytes removed.
        len: usize,
    },
}

/// A position, half the time within the first 64 bytes (where the headers are).
fn position() -> impl Strategy<Value = usize> {
    prop_oneof![0usize..64, any::<usize>()]
}

fn extreme_u32() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0),
        Just(1),
        Just(u32::MAX),
        Just(i32::MAX as u32),
        Just(1 << 30),
        any::<u32>()
    ]
}

fn extreme_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0),
        Just(u64::MAX),
        Just(i64::MAX as u64),
        Just(1 << 40),
        any::<u64>()
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (position(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        1 => any::<usize>().prop_map(|len| Mutation::Truncate { len }),
        2 => (position(), extreme_u32(), any::<bool>())
            .prop_map(|(at, value, big_endian)| Mutation::SetU32 { at, value, big_endian }),
        1 => (position(), extreme_u64()).prop_map(|(at, value)| Mutation::SetU64 { at, value }),
        1 => (position(), proptest::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        1 => (position(), 1usize..16).prop_map(|(at, len)| Mutation::Remove { at, len }),
    ]
}

/// `base` with `mutations` applied in order.
pub fn apply(base: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut b = base.to_vec();
    let pos = |at: usize, len: usize| if len == 0 { 0 } else { at % len };
    let put = |b: &mut Vec<u8>, at: usize, bytes: &[u8]| {
        if b.len() >= bytes.len() {
            let at = pos(at, b.len() - bytes.len() + 1);
            b[at..at + bytes.len()].copy_from_slice(bytes);
        }
    };
    for m in mutations {
        match m {
            Mutation::Flip { at, bit } => {
                if !b.is_empty() {
                    let at = pos(*at, b.len());
                    b[at] ^= 1 << bit;
                }
            }
            Mutation::Truncate { len } => b.truncate(pos(*len, b.len() + 1)),
            Mutation::SetU32 {
                at,
                value,
                big_endian,
            } => {
                let bytes = if *big_endian {
                    value.to_be_bytes()
                } else {
                    value.to_le_bytes()
                };
                put(&mut b, *at, &bytes);
            }
            Mutation::SetU64 { at, value } => put(&mut b, *at, &value.to_le_bytes()),
            Mutation::Insert { at, bytes } => {
                let at = pos(*at, b.len() + 1);
                b.splice(at..at, bytes.iter().copied());
            }
            Mutation::Remove { at, len } => {
                if !b.is_empty() {
                    let at = pos(*at, b.len());
                    let end = (at + len).min(b.len());
                    b.drain(at..end);
                }
            }
        }
    }
    b
}

/// Resets the allocation limit when a read ends, even by a panic.
struct Limit(&'static Alloc);

impl Limit {
    fn set(alloc: &'static Alloc, bound: usize) -> Self {
        // The limit can only fail to be set below what is allocated; it is above here.
        let _ = alloc.set_limit(alloc.allocated().saturating_add(bound));
        Self(alloc)
    }
}

impl Drop for Limit {
    fn drop(&mut self) {
        let _ = self.0.set_limit(usize::MAX);
    }
}

/// What a fuzzing run saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FuzzStats {
    /// Mutated inputs the reader accepted.
    pub accepted: usize,
    /// Mutated inputs it rejected with an error naming the file.
    pub rejected: usize,
}

/// Writes `cases` mutated copies of the valid file `valid` to a file named `file` and reads
/// each with `read`, which must not allocate more than `bound` bytes beyond what was allocated
/// before it, must not panic, and must return `Ok` or an error message naming `file`.
/// Panics (failing the test) with the smallest failing input otherwise.
pub fn fuzz_reader(
    alloc: &'static Alloc,
    file: &str,
    valid: &[u8],
    bound: usize,
    cases: u32,
    read: impl Fn(&Path) -> Result<(), String>,
) -> FuzzStats {
    // Memory-backed where there is one: thousands of rewrites of the file stay off the disk.
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .expect("a temporary directory");
    let path = dir.path().join(file);
    std::fs::write(&path, valid).expect("write the valid file");
    if let Err(e) = read(&path) {
        panic!("{file}: the valid file is not read: {e}");
    }
    eprintln!("fuzzing {file}: {cases} mutated inputs");
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let stats = std::cell::Cell::new(FuzzStats {
        accepted: 0,
        rejected: 0,
    });
    let strategy = proptest::collection::vec(mutation(), 1..4);
    let result = runner.run(&strategy, |mutations| {
        let bytes = apply(valid, &mutations);
        std::fs::write(&path, &bytes).expect("write the mutated file");
        let outcome = {
            let _limit = Limit::set(alloc, bound);
            read(&path)
        };
        let mut s = stats.get();
        match outcome {
            Ok(()) => s.accepted += 1,
            Err(e) => {
                prop_assert!(e.contains(file), "the error does not name {file}: {e}");
                s.rejected += 1;
            }
        }
        stats.set(s);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{file}: {e}");
    }
    stats.get()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_stay_in_bounds() {
        let base = b"0123456789";
        let m = [
            Mutation::SetU64 { at: 2, value: 1 },
            Mutation::Insert {
                at: 10,
                bytes: vec![9],
            },
            Mutation::Remove { at: 0, len: 3 },
            Mutation::Flip { at: 0, bit: 0 },
        ];
        assert_eq!(apply(base, &m), [1, 0, 0, 0, 0, 0, 0, 9]);
        assert_eq!(apply(b"", &m[..1]), b"");
        assert_eq!(apply(base, &[Mutation::Truncate { len: 25 }]), b"012");
        // Positions past the end wrap around.
        assert_eq!(
            apply(base, &[Mutation::Flip { at: 11, bit: 0 }]),
            b"0023456789"
        );
    }
}
