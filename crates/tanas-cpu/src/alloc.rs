//! The allocator of programs that train on [`crate::Cpu`]: mimalloc, told to keep the memory
//! it frees. Every op allocates its output; the system allocator, and mimalloc after its
//! default 1 s purge delay, hand large freed buffers back to the kernel, and each new one is
//! faulted in and zeroed page by page again (30 % of a resnet18 or DARTS training step in
//! the kernel's `clear_page`). Kept, the process stays near its peak, as PyTorch's caching
//! allocator does; the peak itself grows by about a fifth (docs/perf.md).

use std::os::raw::c_long;

/// The global allocator to install in a binary:
/// `#[global_allocator] static A: tanas_cpu::Allocator = tanas_cpu::Allocator;`
pub use mimalloc::MiMalloc as Allocator;

/// mimalloc's `mi_option_purge_delay` (its position in `mi_option_e`, mimalloc.h; the sys
/// crate has no constant for it). Its default in mimalloc v3 is 1000 ms.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Tells mimalloc never to return freed memory to the operating system, unless the user
/// chose a delay (`MIMALLOC_PURGE_DELAY=MS`, e.g. to trade speed for a lower peak). Call it
/// first thing in `main`, before any thread starts (mimalloc's options are not
/// thread-safe), in a binary whose global allocator is [`Allocator`].
pub fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: `mi_option_set` only writes mimalloc's option table; the option index is in
    // range (checked against its default by a test), and callers set it before other
    // threads exist, as mimalloc requires.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1 as c_long) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purge_delay_is_the_option_index() {
        // SAFETY: reading an option; no other thread of this test sets options.
        let default = unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) };
        assert_eq!(
            default, 1000,
            "mi_option_purge_delay is not option {PURGE_DELAY}"
        );
    }
}
