//! Scratch buffers reused across calls, one per thread.

use std::cell::RefCell;

thread_local! {
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// The largest buffer a thread keeps between calls (1 Mi floats); larger ones go back to
/// the allocator, so the peak memory stays that of the tensors.
const KEEP_MAX: usize = 1 << 20;

/// Runs `f` on a scratch buffer of `len` elements owned by this thread. Its contents are
/// whatever an earlier call left there (zeros where it grew): callers write before they read.
///
/// The buffer is taken out of the thread-local slot for the call, so a call that re-enters
/// on the same thread (rayon work stealing) gets a fresh buffer instead of a borrow error.
pub(crate) fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    let mut buf = SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()));
    buf.resize(len, 0.0);
    let r = f(&mut buf);
    if buf.capacity() <= KEEP_MAX {
        SCRATCH.with(|s| {
            let mut slot = s.borrow_mut();
            if slot.capacity() < buf.capacity() {
                *slot = buf;
            }
        });
    }
    r
}
