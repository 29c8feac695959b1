//! Sums in a fixed order that the compiler vectorises: the same bits on any thread count.

/// `f(a[i], b[i])` summed into 16 lanes (`i % 16` of the full chunks of 16), and the sum of
/// the last `len % 16` terms; the caller adds them up in the precision it needs.
#[inline(always)]
pub(crate) fn lanes(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> ([f32; 16], f32) {
    let mut lanes = [0.0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(&x, &y)| f(x, y))
        .sum();
    for (x, y) in ca.zip(cb) {
        for j in 0..16 {
            lanes[j] += f(x[j], y[j]);
        }
    }
    (lanes, tail)
}
