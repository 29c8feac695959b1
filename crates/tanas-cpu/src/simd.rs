//! Our own loops, compiled for the CPU they run on: [`vectorized`] runs a closure under the
//! widest instruction set the CPU has (AVX-512, else AVX2 + FMA, else the x86-64 baseline),
//! detected at run time by pulp (gemm's SIMD layer), so one binary runs everywhere and the
//! compiler may use wide vectors in whatever the closure inlines. Without it every loop of
//! this crate is compiled for SSE2 only.
//!
//! The float operations stay the same on every path (Rust never fuses `a * b + c` into one
//! rounding, and vectorising keeps the order of every sum the code writes), so results do
//! not depend on the CPU either.

/// Runs `f` under the best instruction set of this CPU. Mark the closure and the helpers it
/// calls `#[inline(always)]`, or they are compiled for the baseline.
#[inline(always)]
pub(crate) fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    pulp::Arch::new().dispatch(f)
}
