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

#[cfg(test)]
mod tests {
    use super::vectorized;
    use crate::reduce::lanes;

    #[test]
    fn the_dispatched_loops_give_the_bits_of_the_baseline() {
        // Values whose products and sums round differently under a fused multiply-add or
        // another summation order.
        let a: Vec<f32> = (0..1003)
            .map(|i| ((i * 7919 % 1009) as f32).sqrt() * 1e-3)
            .collect();
        let b: Vec<f32> = (0..1003).map(|i| 1.0 / (1.0 + (i % 97) as f32)).collect();
        let axpy = |out: &mut [f32]| {
            out.iter_mut()
                .zip(&a)
                .zip(&b)
                .for_each(|((o, &x), &y)| *o += x * y + 0.1 * x);
        };
        let (mut base, mut wide) = (vec![0.5f32; a.len()], vec![0.5f32; a.len()]);
        axpy(&mut base);
        vectorized(
            #[inline(always)]
            || axpy(&mut wide),
        );
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&base), bits(&wide));
        let dot = |a: &[f32], b: &[f32]| {
            let (l, tail) = lanes(a, b, |x, y| x * y);
            (l.map(f32::to_bits), tail.to_bits())
        };
        assert_eq!(
            dot(&a, &b),
            vectorized(
                #[inline(always)]
                || dot(&a, &b)
            )
        );
    }
}
